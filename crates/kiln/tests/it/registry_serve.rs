//! The registry from the consumer's side, real components only: models trained and logged by
//! `kiln train --tracking-uri`, registered through the tracking server's REST API, then
//! `kiln predict -m models:/…` / `runs:/…` and `kiln serve -m models:/iris@champion` following
//! the alias under steady load while it moves v1 → v2 → a broken v3 → v1. Against `kiln server`
//! and, when the pinned `mlflow` is installed (KILN_TEST_PYTHON), against `mlflow server` too:
//! the client side must work with either.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::serve::test_python;

const MODEL: &str = "iris";
/// A row near the boundary between versicolor and virginica: its probabilities tell the two
/// trained models apart.
const ROW: [f64; 4] = [5.9, 3.0, 5.1, 1.8];

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A REST call to the tracking server: (status, JSON body).
fn api(base: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let url = format!("{base}/api/2.0/mlflow/{path}");
    let a = agent();
    let mut r = match method {
        "GET" => a.get(&url).call().unwrap(),
        _ => a.post(&url).header("Content-Type", "application/json").send(body.to_string()).unwrap(),
    };
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text }).unwrap_or(Value::Null))
}

#[track_caller]
fn api_ok(base: &str, path: &str, body: &Value) -> Value {
    let (status, v) = api(base, "POST", path, body);
    assert_eq!(status, 200, "POST {path} {body}: {v}");
    v
}

/// `kiln train` on iris with `C`, logged to `base`; returns (run id, local bundle directory).
fn train_and_log(base: &str, dir: &Path, c: &str) -> (String, PathBuf) {
    let out = dir.join(format!("out-{c}"));
    let (code, stdout, stderr) = run(kiln()
        .arg("train")
        .arg(example("iris").join("kiln.yaml"))
        .args(["-S", "cv.folds=0", "-S", &format!("model.C={c}"), "--experiment-name", "registry-serve"])
        .arg("--out")
        .arg(&out)
        .arg("--tracking-uri")
        .arg(base));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let run_id = stdout.lines().find_map(|l| l.strip_prefix("logged run ")).unwrap().split(' ').next().unwrap();
    (run_id.to_owned(), out.join("model"))
}

/// Registers `source` as the next version of [`MODEL`]; returns the version.
fn register(base: &str, source: &str, run_id: &str) -> String {
    let v = api_ok(base, "model-versions/create", &json!({"name": MODEL, "source": source, "run_id": run_id}));
    v["model_version"]["version"].as_str().unwrap().to_owned()
}

fn set_alias(base: &str, version: &str) {
    api_ok(base, "registered-models/alias", &json!({"name": MODEL, "alias": "champion", "version": version}));
}

/// Uploads an MLmodel with only an `sklearn` flavor (what a model kiln cannot run looks like)
/// as the run artifact `broken/MLmodel`, through the artifact proxy.
fn upload_foreign_model(base: &str, run_id: &str) {
    let (status, v) = api(base, "GET", &format!("runs/get?run_id={run_id}"), &Value::Null);
    assert_eq!(status, 200, "{v}");
    let root = v["run"]["info"]["artifact_uri"].as_str().unwrap();
    let rel = root.strip_prefix("mlflow-artifacts:").unwrap().trim_start_matches('/');
    let mlmodel = "artifact_path: broken\nflavors:\n  sklearn:\n    pickled_model: model.pkl\n    sklearn_version: 1.9.1\nmodel_uuid: 0123\n";
    let url = format!("{base}/api/2.0/mlflow-artifacts/artifacts/{rel}/broken/MLmodel");
    let r = agent().put(&url).header("Content-Type", "application/octet-stream").send(mlmodel).unwrap();
    assert_eq!(r.status().as_u16(), 200, "PUT {url}");
}

/// `kiln predict -m MODEL` on a few iris rows: (exit code, JSON document or stderr).
fn predict(model: &str, tracking: Option<&str>, cache: &Path, input: &Path) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let mut cmd = kiln();
    cmd.env("KILN_CACHE_DIR", cache)
        .args(["-q", "predict", "-m", model, "--proba", "-i"])
        .arg(input)
        .arg("-o")
        .arg(&out);
    if let Some(t) = tracking {
        cmd.args(["--tracking-uri", t]);
    }
    let (code, _, stderr) = run(&mut cmd);
    (code, if code == 0 { std::fs::read_to_string(out).unwrap() } else { stderr })
}

fn get_text(url: &str, accept: &str) -> (u16, String) {
    let mut r = agent().get(url).header("Accept", accept).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// The registered version `/version` says answers.
fn serving_version(s: &Server) -> String {
    let (status, text) = get_text(&s.url("/version"), "application/json");
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["model"]["registered_model"]["version"].as_str().unwrap_or("").to_owned()
}

fn metric(s: &Server, line_start: &str) -> f64 {
    let (_, text) = get_text(&s.url("/metrics"), "text/plain");
    text.lines().find_map(|l| l.strip_prefix(line_start)).map_or(0.0, |v| v.trim().parse().unwrap())
}

#[track_caller]
fn wait_for(what: &str, s: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; serve log:\n{}", s.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn score_body() -> String {
    json!({
        "dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "data": [ROW]},
        "params": {"predict_method": "predict_proba"},
    })
    .to_string()
}

/// Client threads scoring in a loop until stopped; every answer is recorded.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<std::collections::BTreeSet<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failures, seen, url) =
                    (stop.clone(), ok.clone(), failures.clone(), seen.clone(), url.to_owned());
                std::thread::spawn(move || {
                    let a = agent();
                    let body = score_body();
                    while !stop.load(Ordering::Relaxed) {
                        match a.post(&url).header("Content-Type", "application/json").send(body.as_str()) {
                            Ok(mut r) => {
                                let status = r.status().as_u16();
                                let text = r.body_mut().read_to_string().unwrap_or_default();
                                if status == 200 {
                                    ok.fetch_add(1, Ordering::Relaxed);
                                    seen.lock().unwrap().insert(text);
                                } else {
                                    failures.lock().unwrap().push(format!("{status}: {text}"));
                                }
                            }
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Self { stop, ok, failures, seen, threads }
    }

    fn finish(self) -> (usize, Vec<String>, std::collections::BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        let seen = self.seen.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failures, seen)
    }
}

/// The whole consumer-side scenario against the tracking server at `base`.
fn scenario(base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let input = dir.path().join("rows.csv");
    let iris = std::fs::read_to_string(example("iris").join("iris.csv")).unwrap();
    let rows: Vec<&str> = iris.lines().step_by(10).collect();
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();

    let (run1, bundle1) = train_and_log(base, dir.path(), "1.0");
    let (run2, bundle2) = train_and_log(base, dir.path(), "0.01");
    api_ok(base, "registered-models/create", &json!({"name": MODEL}));
    assert_eq!(register(base, &format!("runs:/{run1}/model"), &run1), "1");
    assert_eq!(register(base, &format!("runs:/{run2}/model"), &run2), "2");
    set_alias(base, "1");

    // `kiln predict` scores with exactly the bundle each URI names.
    let local1 = predict(&bundle1.to_string_lossy(), None, &cache, &input);
    let local2 = predict(&bundle2.to_string_lossy(), None, &cache, &input);
    assert_eq!(local1.0, 0, "{}", local1.1);
    assert_ne!(local1.1, local2.1, "the two models must answer differently");
    for (uri, want) in [
        ("models:/iris/1".to_owned(), &local1),
        ("models:/iris@champion".to_owned(), &local1),
        ("models:/iris/2".to_owned(), &local2),
        ("models:/iris/latest".to_owned(), &local2),
        (format!("runs:/{run1}/model"), &local1),
        (format!("runs:/{run2}/model"), &local2),
    ] {
        assert_eq!(&predict(&uri, Some(base), &cache, &input), want, "{uri}");
    }
    // A stage names its highest version.
    api_ok(
        base,
        "model-versions/transition-stage",
        &json!({"name": MODEL, "version": "1", "stage": "Production", "archive_existing_versions": false}),
    );
    assert_eq!(&predict("models:/iris/production", Some(base), &cache, &input), &local1);
    let (code, err) = predict("models:/iris/Staging", Some(base), &cache, &input);
    assert_eq!(code, 1);
    assert!(err.contains("has no version in stage Staging"), "{err}");
    // Registry URIs need a server; unknown versions and aliases say what the server said.
    let (code, err) = predict("models:/iris/1", None, &cache, &input);
    assert_eq!(code, 1);
    assert!(err.contains("--tracking-uri"), "{err}");
    let (code, err) = predict("models:/iris/9", Some(base), &cache, &input);
    assert_eq!(code, 1);
    assert!(err.contains("models:/iris/9") && err.contains("RESOURCE_DOES_NOT_EXIST"), "{err}");
    let (code, err) = predict("models:/iris@nobody", Some(base), &cache, &input);
    assert_eq!(code, 1);
    assert!(err.contains("models:/iris@nobody") && err.contains("nobody"), "{err}");

    // A version kiln cannot run: the error names its flavors.
    upload_foreign_model(base, &run1);
    assert_eq!(register(base, &format!("runs:/{run1}/broken"), &run1), "3");
    let (code, err) = predict("models:/iris/3", Some(base), &cache, &input);
    assert_eq!(code, 1);
    assert!(
        err.contains("models:/iris/3") && err.contains("not a kiln model") && err.contains("flavors: sklearn"),
        "{err}"
    );

    // `kiln serve` follows the alias under load: v1 → v2 → broken v3 (not swapped in) → v1.
    let serve_cache = dir.path().join("serve-cache");
    let s = Server::spawn(
        kiln()
            .env("KILN_CACHE_DIR", &serve_cache)
            .env("RUST_LOG", "info")
            .args(["serve", "--port", "0", "--poll-interval", "0.1", "-m", "models:/iris@champion"])
            .args(["--tracking-uri", base]),
    );
    assert_eq!(serving_version(&s), "1");
    let (status, plain) = get_text(&s.url("/version"), "*/*");
    assert_eq!((status, plain.as_str()), (200, env!("CARGO_PKG_VERSION")), "plain /version is MLflow's");
    let (_, doc) = get_text(&s.url("/version"), "application/json");
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["model"]["source"], "models:/iris@champion", "{doc}");
    assert_eq!(doc["model"]["name"], "iris", "{doc}");
    let score = || {
        let mut r =
            agent().post(&s.url("/invocations")).header("Content-Type", "application/json").send(score_body()).unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.body_mut().read_to_string().unwrap()
    };
    let answer1 = score();

    let load = Load::start(&s.url("/invocations"), 4);
    wait_for("some load", &s, || load.ok.load(Ordering::Relaxed) > 20);
    set_alias(base, "2");
    wait_for("version 2 to answer", &s, || serving_version(&s) == "2");
    let answer2 = score();
    assert_ne!(answer1, answer2, "version 2 answers differently");
    wait_for("load on version 2", &s, || load.seen.lock().unwrap().contains(&answer2));

    set_alias(base, "3");
    wait_for("the broken version to fail", &s, || metric(&s, "kiln_model_swap_failures_total ") >= 1.0);
    assert_eq!(serving_version(&s), "2", "the broken version must not be swapped in");
    assert_eq!(score(), answer2);

    set_alias(base, "1");
    wait_for("version 1 to answer again", &s, || serving_version(&s) == "1");
    assert_eq!(score(), answer1);
    let before = load.ok.load(Ordering::Relaxed);
    wait_for("more load on version 1", &s, || load.ok.load(Ordering::Relaxed) > before + 20);
    let (ok, failures, seen) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(seen.contains(&answer1) && seen.contains(&answer2), "{seen:?}");
    assert_eq!(seen.len(), 2, "only the two good versions answered: {seen:?}");

    assert_eq!(metric(&s, "kiln_model_swaps_total "), 2.0);
    // Tried once, then only after a backoff: not on every poll.
    let failed = metric(&s, "kiln_model_swap_failures_total ");
    assert!((1.0..=2.0).contains(&failed), "{failed}");
    let (_, metrics) = get_text(&s.url("/metrics"), "text/plain");
    assert!(
        metrics.contains(r#"registered_name="iris",registered_version="1",source="models:/iris@champion"} 1"#),
        "{metrics}"
    );
    let log = s.log.lock().unwrap().clone();
    assert!(log.contains("swapped in a new model version"), "{log}");
    assert!(log.contains("was not swapped in") && log.contains("flavors: sklearn"), "{log}");
    // A download is renamed into place whole: no temporary directory is left behind.
    let left: Vec<_> = std::fs::read_dir(serve_cache.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The tracking server going away while serving: polls fail, are counted, and the model keeps
/// answering.
fn tracking_server_down(base: &str, tracking: &mut Child) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::spawn(
        kiln()
            .env("KILN_CACHE_DIR", dir.path())
            .args(["serve", "--port", "0", "--poll-interval", "0.1", "-m", "models:/iris@champion"])
            .args(["--tracking-uri", base]),
    );
    tracking.kill().unwrap();
    tracking.wait().unwrap();
    wait_for("a failed poll", &s, || metric(&s, "kiln_model_poll_errors_total ") >= 2.0);
    let mut r =
        agent().post(&s.url("/invocations")).header("Content-Type", "application/json").send(score_body()).unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.body_mut().read_to_string().unwrap());
    wait_for("the warning", &s, || s.log.lock().unwrap().contains("cannot ask the tracking server"));
    let log = s.log.lock().unwrap().clone();
    assert_eq!(log.matches("cannot ask the tracking server").count(), 1, "logged once, not every poll:\n{log}");
}

#[test]
fn serve_follows_an_alias_on_kiln_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = sqlite_server(dir.path());
    let base = server.base.clone();
    scenario(&base);
    tracking_server_down(&base, &mut server.child);
}

/// A real `mlflow server` in its own process group (it starts worker processes), killed whole.
/// A real `mlflow server` (the test venv's), on SQLite and a local artifact directory, in its
/// own process group: it forks uvicorn workers and a job runner, and dropping it kills them all.
pub(crate) struct MlflowServer {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl MlflowServer {
    /// Starts one and waits (up to 3 minutes) until it answers `/health`.
    pub(crate) fn start(python: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.path().join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.path().join("artifacts"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let server = Self { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(180);
        let health = format!("{}/health", server.base);
        while agent().get(&health).call().map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(Instant::now() < deadline, "mlflow server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-s", "KILL", "--", &group]).status();
        // The leader at least, so the wait below cannot hang if the group kill failed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_follows_an_alias_on_mlflow_server() {
    let Some(python) = test_python() else { return };
    let server = MlflowServer::start(&python);
    scenario(&server.base);
}
