//! `kiln server` driven by the official `mlflow` client (tests/python/mlflow_tracking_client.py)
//! on each backend: SQLite, PostgreSQL and MariaDB (the machine's servers; a fresh database per
//! test, dropped afterwards). Without a database the test is skipped, except under CI.

use std::process::Command;

use crate::common::*;
use crate::serve::test_python;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Runs the mlflow client scenario against a `kiln server` on `uri`, artifacts on local disk.
fn scenario(uri: &str) {
    let artifacts = tempfile::tempdir().unwrap();
    scenario_with(uri, &artifacts.path().to_string_lossy(), &[]);
}

/// The mlflow client scenario against a `kiln server` on `uri` keeping artifacts at `dest`,
/// started with `env` (e.g. an S3 endpoint and credentials: the client itself gets none, it
/// goes through the server's artifact proxy).
pub(crate) fn scenario_with(uri: &str, dest: &str, env: &[(&str, String)]) {
    let Some(python) = test_python() else { return };
    let mut cmd = kiln();
    cmd.args(["server", "--port", "0", "--backend-store-uri", uri, "--artifacts-destination", dest]);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let s = Server::spawn(&mut cmd);
    let script = repo().join("tests/python/mlflow_tracking_client.py");
    let (code, stdout, stderr) = run(Command::new(&python).arg(&script).env("MLFLOW_TRACKING_URI", &s.base));
    assert_eq!(code, 0, "{stdout}\n{stderr}\nserver log:\n{}", s.log.lock().unwrap());
    assert!(stdout.contains("ok  mlflow.log_input"), "{stdout}");
    let script = repo().join("tests/python/mlflow_registry_client.py");
    let (code, stdout, stderr) = run(Command::new(&python).arg(&script).env("MLFLOW_TRACKING_URI", &s.base));
    assert_eq!(code, 0, "{stdout}\n{stderr}\nserver log:\n{}", s.log.lock().unwrap());
    assert!(stdout.contains("ok  delete_registered_model with an alias in use"), "{stdout}");
    concurrent_writers(&s);
    concurrent_versions(&s);
}

/// 8 clients register versions of one model at once: every request succeeds and the versions
/// are exactly 1..=40, none issued twice (the registered model's row lock on PostgreSQL and
/// MariaDB, the write lock on SQLite).
fn concurrent_versions(s: &Server) {
    let name = format!("concurrent-{}", std::process::id());
    let post = |path: &str, body: serde_json::Value| -> (u16, String) {
        let a: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = a
            .post(&s.url(&format!("/api/2.0/mlflow/{path}")))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (status, text) = post("registered-models/create", serde_json::json!({"name": name}));
    assert_eq!(status, 200, "{text}");
    let versions: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..5)
                        .map(|_| {
                            let body = serde_json::json!({"name": name, "source": "s3://bucket/model"});
                            let (status, text) = post("model-versions/create", body);
                            assert_eq!(status, 200, "{text}");
                            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                            v["model_version"]["version"].as_str().unwrap().parse::<i64>().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=40).collect::<Vec<_>>(), "{versions:?}");
    // A GET repeating `stages=` (as a query-string client sends a list).
    let a: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url =
        s.url(&format!("/api/2.0/mlflow/registered-models/get-latest-versions?name={name}&stages=None&stages=Staging"));
    let mut r = a.get(&url).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{text}");
    assert!(text.contains("\"version\":\"40\""), "{text}");
    // Oversized identifiers are a 400 naming the field, not a database error.
    let (status, text) = post(
        "model-versions/create",
        serde_json::json!({"name": name, "source": "s3://b/m", "run_id": "r".repeat(40)}),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("run_id"), "{text}");
}

/// 8 clients log to one run at once — the same param, the same tag, the same metric key — and
/// every request succeeds; the latest metric is the highest step and the history holds every
/// point. (Before `BEGIN IMMEDIATE` and the upserts: "database is locked" on SQLite, duplicate
/// keys on PostgreSQL and MariaDB.)
fn concurrent_writers(s: &Server) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let post = |a: &ureq::Agent, path: &str, body: &serde_json::Value| -> (u16, String) {
        let mut r = a
            .post(&s.url(&format!("/api/2.0/mlflow/{path}")))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (status, text) = post(&agent, "runs/create", &serde_json::json!({"experiment_id": "0"}));
    assert_eq!(status, 200, "{text}");
    let run: serde_json::Value = serde_json::from_str(&text).unwrap();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    let base = s.base.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (run_id, base) = (run_id.clone(), base.clone());
            std::thread::spawn(move || {
                let a: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                for k in 0..25 {
                    let step = t * 100 + k;
                    let body = serde_json::json!({"run_id": run_id,
                        "metrics": [{"key": "loss", "value": step, "timestamp": 1, "step": step}],
                        "params": [{"key": "shared", "value": "same"}, {"key": format!("p{t}"), "value": "x"}],
                        "tags": [{"key": "who", "value": format!("t{t}")}]});
                    let mut r = a
                        .post(&format!("{base}/api/2.0/mlflow/runs/log-batch"))
                        .header("Content-Type", "application/json")
                        .send(body.to_string())
                        .unwrap();
                    let status = r.status().as_u16();
                    assert_eq!(status, 200, "{}", r.body_mut().read_to_string().unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut r = agent.get(&s.url(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))).call().unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let data = &v["run"]["data"];
    assert_eq!(data["metrics"][0]["step"], 724, "{data}");
    assert_eq!(data["params"].as_array().unwrap().len(), 9, "{data}");
    let mut r = agent
        .get(&s.url(&format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss")))
        .call()
        .unwrap();
    let h: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    // Without max_results the whole history in one answer (as MLflow); with it, pages.
    assert_eq!(h["metrics"].as_array().unwrap().len(), 200);
    assert!(h.get("next_page_token").is_none(), "{h}");
    let page = |token: &str| -> serde_json::Value {
        let url = format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss&max_results=150{token}");
        serde_json::from_str(&agent.get(&s.url(&url)).call().unwrap().body_mut().read_to_string().unwrap()).unwrap()
    };
    let first = page("");
    assert_eq!(first["metrics"].as_array().unwrap().len(), 150);
    let second = page(&format!("&page_token={}", first["next_page_token"].as_str().unwrap()));
    assert_eq!(second["metrics"].as_array().unwrap().len(), 50);
    assert!(second.get("next_page_token").is_none(), "{second}");
    let steps: Vec<i64> = [&first, &second]
        .iter()
        .flat_map(|p| p["metrics"].as_array().unwrap().iter().map(|m| m["step"].as_i64().unwrap_or(0)))
        .collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]) && steps.len() == 200, "ordered by step");
}

fn fresh_name() -> String {
    format!(
        "kiln_it_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
    )
}

/// Runs a database CLI statement; false (or a panic under CI) when the server is unreachable.
fn sql(cmd: &mut Command, what: &str) -> bool {
    match cmd.output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            let msg = format!("{what}: {}", String::from_utf8_lossy(&o.stderr));
            assert!(!ci(), "CI=true and {msg}");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: {msg}");
            }
            false
        }
        Err(e) => {
            assert!(!ci(), "CI=true and {what}: {e}");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: {what}: {e}");
            }
            false
        }
    }
}

#[test]
fn the_official_mlflow_client_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(&format!("sqlite:///{}", dir.path().join("mlflow.db").display()));
}

fn psql(stmt: &str) -> Command {
    let mut c = Command::new("psql");
    c.args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", stmt]);
    c
}

/// A fresh database on the machine's PostgreSQL, dropped (connections and all) when dropped.
pub(crate) struct PgDatabase {
    name: String,
}

impl PgDatabase {
    /// `None` when PostgreSQL is unreachable (skipped; a failure under CI).
    pub(crate) fn create() -> Option<Self> {
        let name = fresh_name();
        sql(&mut psql(&format!("CREATE DATABASE {name}")), "PostgreSQL at 127.0.0.1:5432").then_some(Self { name })
    }

    pub(crate) fn uri(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).output();
    }
}

#[test]
fn the_official_mlflow_client_on_postgresql() {
    let Some(db) = PgDatabase::create() else { return };
    scenario(&db.uri());
}

#[test]
fn the_official_mlflow_client_on_mariadb() {
    let db = fresh_name();
    let mysql = |stmt: &str| {
        let mut c = Command::new("mariadb");
        c.args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", stmt]);
        c
    };
    if !sql(&mut mysql(&format!("CREATE DATABASE {db}")), "MariaDB at 127.0.0.1:3306") {
        return;
    }
    let result = std::panic::catch_unwind(|| scenario(&format!("mysql://root@127.0.0.1:3306/{db}")));
    sql(&mut mysql(&format!("DROP DATABASE {db}")), "dropping the test database");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Client mistakes are 4xx with MLflow's error shape, never a 5xx the client would retry for
/// minutes; and the store is left consistent (a refused batch writes nothing).
#[test]
fn bad_requests_get_mlflow_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite_server(dir.path());
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let call = |method: &str, path: &str, body: &str| -> (u16, serde_json::Value) {
        let url = s.url(&format!("/api/2.0/mlflow/{path}"));
        let mut r = if method == "GET" {
            agent.get(&url).call().unwrap()
        } else {
            agent.post(&url).header("Content-Type", "application/json").send(body).unwrap()
        };
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
    };
    let (status, v) = call("POST", "runs/create", r#"{"experiment_id": "0", "run_name": "r"}"#);
    assert_eq!(status, 200, "{v}");
    let run = v["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    let long = "k".repeat(251);
    let many: Vec<serde_json::Value> =
        (0..1001).map(|i| serde_json::json!({"key": "m", "value": i, "timestamp": 1, "step": i})).collect();
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        ("POST", "experiments/create", "{not json".into(), 400, "INVALID_PARAMETER_VALUE", "Invalid request"),
        ("POST", "experiments/create", "{}".into(), 400, "INVALID_PARAMETER_VALUE", "'name'"),
        ("POST", "experiments/create", r#"{"name": 5}"#.into(), 400, "INVALID_PARAMETER_VALUE", "Invalid request"),
        ("POST", "experiments/create", r#"{"name": "Default"}"#.into(), 400, "RESOURCE_ALREADY_EXISTS", "already exists"),
        ("GET", "experiments/get?experiment_id=424242", String::new(), 404, "RESOURCE_DOES_NOT_EXIST", "424242"),
        ("GET", "experiments/get?experiment_id=abc", String::new(), 404, "RESOURCE_DOES_NOT_EXIST", "abc"),
        ("GET", "runs/get?run_id=ffffffffffffffffffffffffffffffff", String::new(), 404, "RESOURCE_DOES_NOT_EXIST", "not found"),
        ("GET", "runs/get", String::new(), 400, "INVALID_PARAMETER_VALUE", "'run_id'"),
        ("POST", "runs/log-metric", format!(r#"{{"run_id": "{run}", "key": "m", "value": "high", "timestamp": 1}}"#), 400, "INVALID_PARAMETER_VALUE", "Invalid request"),
        ("POST", "runs/log-metric", format!(r#"{{"run_id": "{run}", "key": "m", "value": 1}}"#), 400, "INVALID_PARAMETER_VALUE", "'timestamp'"),
        ("POST", "runs/log-metric", format!(r#"{{"run_id": "{run}", "key": "../up", "value": 1, "timestamp": 1}}"#), 400, "INVALID_PARAMETER_VALUE", "Invalid metric name"),
        ("POST", "runs/log-parameter", format!(r#"{{"run_id": "{run}", "key": "{long}", "value": "v"}}"#), 400, "INVALID_PARAMETER_VALUE", "exceeded length limit of 250"),
        ("POST", "runs/log-batch", serde_json::json!({"run_id": run, "metrics": many}).to_string(), 400, "INVALID_PARAMETER_VALUE", "at most 1000 metrics"),
        ("POST", "runs/log-batch", serde_json::json!({"run_id": run, "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}).to_string(), 400, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys"),
        ("POST", "runs/log-batch", serde_json::json!({"run_id": run, "metrics": [{"key": "ok", "value": 1, "timestamp": 1}], "params": [{"key": "bad//key", "value": "x"}]}).to_string(), 400, "INVALID_PARAMETER_VALUE", "Invalid param name"),
        ("POST", "runs/update", format!(r#"{{"run_id": "{run}", "status": "DONE"}}"#), 400, "INVALID_PARAMETER_VALUE", "'status'"),
        ("POST", "runs/delete-tag", format!(r#"{{"run_id": "{run}", "key": "nope"}}"#), 404, "RESOURCE_DOES_NOT_EXIST", "No tag"),
        ("POST", "runs/search", r#"{"experiment_ids": ["0"], "max_results": 50001}"#.into(), 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ("POST", "runs/search", r#"{"experiment_ids": ["0"], "page_token": "garbage"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "page token"),
        ("POST", "runs/search", r#"{"experiment_ids": ["0"], "filter": "metrics.acc > 1 OR x = 'y'"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "OR is not supported at position 16"),
        ("POST", "runs/search", r#"{"experiment_ids": ["0"], "filter": "params.a = 'b'; DROP TABLE runs"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "unexpected character `;`"),
        ("POST", "runs/search", r#"{"experiment_ids": ["0"], "order_by": ["metrics.a", "metrics.a DESC"]}"#.into(), 400, "INVALID_PARAMETER_VALUE", "same key twice"),
        ("POST", "runs/log-metric", format!(r#"{{"run_id": "{run}", "key": "linked", "value": 1, "timestamp": 1, "model_id": "m-nope"}}"#), 404, "RESOURCE_DOES_NOT_EXIST", "Logged model with ID 'm-nope'"),
        ("POST", "logged-models/search", r#"{"experiment_ids": ["0"], "order_by": [{"field_name": "params.x"}]}"#.into(), 400, "INVALID_PARAMETER_VALUE", "Only metrics are supported"),
        ("POST", "logged-models/search", r#"{"experiment_ids": ["0"], "order_by": [{"field_name": "bogus"}]}"#.into(), 400, "INVALID_PARAMETER_VALUE", "Invalid order by field name: bogus"),
        ("POST", "logged-models/search", r#"{"experiment_ids": ["0"], "filter": "metrics.acc > 'high'"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "expected a number"),
        ("POST", "experiments/create", r#"{"name": "a", "artifact_location": "runs:/abc/x"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "cannot be a runs:/ URI"),
        ("POST", "experiments/create", r#"{"name": "b", "artifact_location": "file:///tmp/x#frag"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "fragments"),
        ("POST", "experiments/create", r#"{"name": "c", "artifact_location": "http://h/x?a=/../../etc"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "query"),
        ("POST", "experiments/create", r#"{"name": "d", "artifact_location": "mlflow-artifacts:/../../etc"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "'..' path segments"),
        ("POST", "experiments/create", r#"{"name": "e", "artifact_location": "file:///srv/%252e%252e/etc"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "'..' path segments"),
        ("POST", "traces/start", "{}".into(), 501, "NOT_IMPLEMENTED", "not implemented"),
        // The registry.
        ("POST", "registered-models/create", "{}".into(), 400, "INVALID_PARAMETER_VALUE", "'name'"),
        ("POST", "registered-models/create", r#"{"name": ["x"]}"#.into(), 400, "INVALID_PARAMETER_VALUE", "Invalid request"),
        ("POST", "registered-models/create", r#"{"name": "   "}"#.into(), 400, "INVALID_PARAMETER_VALUE", "'name'"),
        ("POST", "registered-models/create", r#"{"name": "a/b"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "cannot contain '/'"),
        ("POST", "registered-models/create", format!(r#"{{"name": "{}"}}"#, "n".repeat(257)), 400, "INVALID_PARAMETER_VALUE", "maximum length"),
        ("POST", "registered-models/create", format!(r#"{{"name": "t", "tags": [{{"key": "{long}", "value": "v"}}]}}"#), 400, "INVALID_PARAMETER_VALUE", "exceeded length limit of 250"),
        ("GET", "registered-models/get?name=nope", String::new(), 404, "RESOURCE_DOES_NOT_EXIST", "name=nope not found"),
        ("GET", "registered-models/search?max_results=1001", String::new(), 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ("GET", "registered-models/search?max_results=ten", String::new(), 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ("GET", "registered-models/search?filter=name%20%3D%20'a'%20OR%201%3D1", String::new(), 400, "INVALID_PARAMETER_VALUE", "OR is not supported"),
        ("GET", "registered-models/search?order_by=metrics.x", String::new(), 400, "INVALID_PARAMETER_VALUE", "order"),
        ("GET", "model-versions/search?filter=version_number%20%3E%20'x'", String::new(), 400, "INVALID_PARAMETER_VALUE", "not a number"),
        ("POST", "model-versions/create", r#"{"name": "nope", "source": "s3://b/m"}"#.into(), 404, "RESOURCE_DOES_NOT_EXIST", "nope"),
        ("POST", "model-versions/create", r#"{"name": "nope"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "'source'"),
        ("GET", "model-versions/get?name=nope&version=abc", String::new(), 400, "INVALID_PARAMETER_VALUE", "positive integer"),
        ("GET", "model-versions/get?name=nope&version=-1", String::new(), 400, "INVALID_PARAMETER_VALUE", "positive integer"),
        ("GET", "model-versions/get?name=nope&version=1", String::new(), 404, "RESOURCE_DOES_NOT_EXIST", "not found"),
        ("POST", "registered-models/alias", r#"{"name": "nope", "alias": "latest", "version": "1"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "reserved"),
        ("POST", "model-versions/transition-stage", r#"{"name": "nope", "version": "1", "stage": "Live", "archive_existing_versions": false}"#.into(), 400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage"),
        ("POST", "model-versions/transition-stage", r#"{"name": "nope", "version": "1", "stage": "None", "archive_existing_versions": "yes"}"#.into(), 400, "INVALID_PARAMETER_VALUE", "Invalid request"),
    ];
    for (method, path, body, status, code, msg) in cases {
        let (got, v) = call(method, path, &body);
        assert_eq!(got, status, "{method} {path}: {v}");
        assert_eq!(v["error_code"], code, "{method} {path}: {v}");
        assert!(v["message"].as_str().unwrap().contains(msg), "{method} {path}: want `{msg}` in {v}");
    }
    // Nothing of the refused batches was written; unicode keys and values round-trip.
    let (status, v) = call(
        "POST",
        "runs/log-batch",
        &serde_json::json!({"run_id": run,
        "params": [{"key": "größe", "value": "日本語"}], "metrics": [{"key": "acc", "value": "NaN", "timestamp": 5}]})
        .to_string(),
    );
    assert_eq!(status, 200, "{v}");
    let (_, v) = call("GET", &format!("runs/get?run_id={run}"), "");
    let data = &v["run"]["data"];
    assert_eq!(data["params"], serde_json::json!([{"key": "größe", "value": "日本語"}]), "{v}");
    assert_eq!(data["metrics"], serde_json::json!([{"key": "acc", "value": "NaN", "timestamp": 5}]), "{v}");
    // The web UI's prefix answers the same.
    let mut r = agent.get(&s.url(&format!("/ajax-api/2.0/mlflow/runs/get?run_id={run}"))).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains(&run));
}

/// The artifact proxy confines every path to its directory: each traversal class MLflow had a
/// CVE for is a 400, nothing is written or read outside, and a planted symlink leads nowhere.
#[test]
fn artifact_paths_cannot_escape_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("artifacts");
    let s = sqlite_server(dir.path());
    artifact_proxy_checks(&s);
    assert!(!dir.path().join("escape.txt").exists() && !std::path::Path::new("/etc/escape.txt").exists());
    assert!(store.join("1/r/artifacts/ok.txt").exists());
    let req = |method: &str, path: &str, body: &str| artifact_request(&s, method, path, body);
    // A symlink planted inside the store that points outside it is refused, not followed.
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, "secret").unwrap();
    std::os::unix::fs::symlink(dir.path(), store.join("link")).unwrap();
    let answer = req("GET", "/link/secret.txt", "");
    assert!(
        answer.starts_with("HTTP/1.1 400") && !answer.contains("secret\r") && !answer.ends_with("secret"),
        "{answer}"
    );
    assert!(req("PUT", "/link/planted.txt", "x").starts_with("HTTP/1.1 400"));
    assert!(!dir.path().join("planted.txt").exists());
    assert!(req("DELETE", "/1/r/artifacts/ok.txt", "").starts_with("HTTP/1.1 200"));
    assert!(!store.join("1/r/artifacts/ok.txt").exists());
    // No temp file of the interrupted upload is left behind.
    let left: Vec<_> =
        std::fs::read_dir(store.join("1/r/artifacts")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// One raw HTTP/1.1 request to the artifact proxy (raw, so that encoded traversal reaches the
/// server exactly as written).
pub(crate) fn artifact_request(s: &Server, method: &str, path: &str, body: &str) -> String {
    crate::serve::raw(
        &s.addr,
        format!(
            "{method} /api/2.0/mlflow-artifacts/artifacts{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// What the artifact proxy must do on any destination: upload, download with safe headers, list,
/// 400 for a directory, 404 for a missing file, every traversal class refused, an upload cut off
/// mid-body stored nowhere, directory delete. Leaves `1/r/artifacts/ok.txt` in place.
pub(crate) fn artifact_proxy_checks(s: &Server) {
    let req = |method: &str, path: &str, body: &str| artifact_request(s, method, path, body);
    assert!(req("PUT", "/1/r/artifacts/ok.txt", "fine").starts_with("HTTP/1.1 200"));
    let got = req("GET", "/1/r/artifacts/ok.txt", "");
    assert!(got.starts_with("HTTP/1.1 200") && got.ends_with("fine"), "{got}");
    assert!(got.to_ascii_lowercase().contains("content-disposition: attachment; filename=\"ok.txt\""), "{got}");
    assert!(got.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{got}");
    let list = |dir: &str| {
        crate::serve::raw(
            &s.addr,
            format!(
                "GET /api/2.0/mlflow-artifacts/artifacts?path={dir} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    assert!(list("1/r/artifacts").contains(r#"{"files":[{"file_size":4,"is_dir":false,"path":"ok.txt"}]}"#));
    assert!(req("GET", "/1/r/artifacts", "").starts_with("HTTP/1.1 400"), "a directory is not a file");
    assert!(req("GET", "/1/r/artifacts/missing.txt", "").starts_with("HTTP/1.1 404"));
    // A directory with files is deleted as a tree.
    assert!(req("PUT", "/1/r/artifacts/sub/a.txt", "a").starts_with("HTTP/1.1 200"));
    assert!(req("PUT", "/1/r/artifacts/sub/deeper/b.txt", "b").starts_with("HTTP/1.1 200"));
    assert!(list("1/r/artifacts/sub").contains(r#"{"is_dir":true,"path":"deeper"}"#));
    assert!(req("DELETE", "/1/r/artifacts/sub", "").starts_with("HTTP/1.1 200"));
    assert!(req("GET", "/1/r/artifacts/sub/deeper/b.txt", "").starts_with("HTTP/1.1 404"));
    assert!(req("DELETE", "/1/r/artifacts/sub", "").starts_with("HTTP/1.1 404"));
    // Every traversal class, for writes and reads.
    for path in [
        "/../../escape.txt",
        "/1/../../escape.txt",
        "/%2e%2e/%2e%2e/escape.txt",
        "/%252e%252e/%252e%252e/escape.txt",
        "/1/..%2f..%2fescape.txt",
        "/1/a%5c..%5c..%5cescape.txt",
        "/%2fetc/escape.txt",
        "/1/x%23frag",
    ] {
        for method in ["PUT", "GET", "DELETE"] {
            let answer = req(method, path, "pwned");
            assert!(
                answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 404"),
                "{method} {path}: {answer}"
            );
        }
    }
    // An upload whose client dies after 9 MiB of a promised 20 (past one S3 part) stores nothing.
    {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        let head = format!(
            "PUT /api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            20 << 20
        );
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(&vec![7u8; 9 << 20]).unwrap();
        drop(c);
    }
    // The server notices the cut connection asynchronously.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(req("GET", "/1/r/artifacts/cut.bin", "").starts_with("HTTP/1.1 404"));
    assert!(!list("1/r/artifacts").contains("cut.bin"));
}

/// `kiln train --tracking-uri` logs its run to `kiln server`: params, metrics, the bundle and
/// plots as artifacts, byte for byte.
#[test]
fn kiln_train_logs_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite_server(dir.path());
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run(kiln()
        .arg("train")
        .arg(example("iris").join("kiln.yaml"))
        .args(["-S", "cv.folds=0", "-S", "model.C=1.0", "--experiment-name", "iris-kiln"])
        .arg("--out")
        .arg(&out)
        .arg("--tracking-uri")
        .arg(&s.base));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let run_id =
        stdout.lines().find_map(|l| l.strip_prefix("logged run ")).unwrap().split(' ').next().unwrap().to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |path: &str| -> (u16, Vec<u8>) {
        let mut r = agent.get(&s.url(path)).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
    };
    let (status, body) = get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let data = &v["run"]["data"];
    assert_eq!(v["run"]["info"]["status"], "FINISHED");
    let param = |k: &str| data["params"].as_array().unwrap().iter().find(|p| p["key"] == k).map(|p| p["value"].clone());
    assert_eq!(param("model"), Some(serde_json::json!("logistic_regression")), "{data}");
    assert_eq!(param("C"), Some(serde_json::json!("1.0")), "{data}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let logged = data["metrics"].as_array().unwrap().iter().find(|m| m["key"] == "accuracy").unwrap();
    assert_eq!(logged["value"], metrics["accuracy"]);
    assert!(data["metrics"].as_array().unwrap().iter().any(|m| m["key"] == "macro avg.f1-score"), "{data}");
    // The bundle is there, byte for byte, where an MLflow user expects it.
    let exp = v["run"]["info"]["experiment_id"].as_str().unwrap().to_owned();
    for f in ["model/MLmodel", "model/model.json", "metrics.json", "plots/confusion_matrix.png"] {
        let (status, bytes) = get(&format!("/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/{f}"));
        assert_eq!(status, 200, "{f}");
        assert_eq!(bytes, std::fs::read(out.join(f)).unwrap(), "{f}");
    }
}
