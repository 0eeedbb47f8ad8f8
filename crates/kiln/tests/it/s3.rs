//! `kiln server` with its artifacts in an S3-compatible bucket: a real S3 server (moto, from
//! PyPI, installed by scripts/python-env.sh into the test venv) on a loopback port. Also two
//! replicas sharing one PostgreSQL database and one bucket.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::serve::test_python;
use crate::server::{artifact_proxy_checks, artifact_request, scenario_with};

/// A moto S3 server on a free loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// `None` when the test venv is missing (skipped, except under CI where that fails).
    pub fn start() -> Option<Self> {
        let python = test_python()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    pub fn create_bucket(&self, name: &str) {
        let r = Self::agent().put(&format!("{}/{name}", self.endpoint)).send_empty().unwrap();
        assert_eq!(r.status().as_u16(), 200, "creating bucket {name}");
    }

    /// Every key in `bucket` (ListObjectsV2, following continuation tokens).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{bucket}?list-type=2", self.endpoint);
            if let Some(t) = &token {
                url.push_str(&format!(
                    "&continuation-token={}",
                    t.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
                ));
            }
            let xml = Self::agent().get(&url).call().unwrap().body_mut().read_to_string().unwrap();
            keys.extend(tags(&xml, "Key"));
            token = tags(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return keys;
            }
        }
    }

    /// What `kiln server` needs to reach this bucket (MLflow's own variable for the endpoint).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("MLFLOW_S3_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The texts of `<name>…</name>` elements (moto's XML has no attributes on these).
fn tags(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open).skip(1).filter_map(|s| s.split_once(&close).map(|(v, _)| v.replace("&amp;", "&"))).collect()
}

#[test]
fn the_official_mlflow_client_with_artifacts_in_s3() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("kiln-it");
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
    scenario_with(&uri, "s3://kiln-it/team/mlruns", &moto.env());
    let keys = moto.keys("kiln-it");
    assert!(keys.iter().all(|k| k.starts_with("team/mlruns/")), "{keys:?}");
    for suffix in ["/artifacts/notes.txt", "/artifacts/big.bin", "/artifacts/tree/b.csv", "/artifacts/MLmodel"] {
        assert!(keys.iter().any(|k| k.ends_with(suffix)), "no key ending in {suffix}: {keys:?}");
    }
    assert!(keys.iter().any(|k| k.contains("/models/m-")), "logged model artifacts: {keys:?}");
}

#[test]
fn artifact_paths_cannot_escape_a_bucket_prefix() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("kiln-esc");
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
    let mut cmd = kiln();
    cmd.args(["server", "--port", "0", "--backend-store-uri", &uri, "--artifacts-destination", "s3://kiln-esc/inner"]);
    cmd.envs(moto.env());
    let s = Server::spawn(&mut cmd);
    artifact_proxy_checks(&s);
    let keys = moto.keys("kiln-esc");
    assert_eq!(keys, vec!["inner/1/r/artifacts/ok.txt".to_owned()], "only the one good upload is stored");
}

/// Two `kiln server` processes started at the same moment on one fresh PostgreSQL database (so
/// both migrate it) and one bucket: what is written through one is read through the other.
#[test]
fn two_replicas_share_postgresql_and_a_bucket() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("kiln-replicas");
    let Some(db) = crate::server::PgDatabase::create() else { return };
    let uri = db.uri();
    let spawn = |uri: String, env: Vec<(&'static str, String)>| {
        std::thread::spawn(move || {
            let mut cmd = kiln();
            cmd.args(["server", "--port", "0", "--backend-store-uri", &uri]);
            cmd.args(["--artifacts-destination", "s3://kiln-replicas/shared"]).envs(env);
            Server::spawn(&mut cmd)
        })
    };
    let (a, b) = (spawn(uri.clone(), moto.env()), spawn(uri, moto.env()));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());

    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let post = |s: &Server, path: &str, body: Value| -> Value {
        let mut r = agent
            .post(&s.url(&format!("/api/2.0/mlflow/{path}")))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let get = |s: &Server, path: &str| -> (u16, String) {
        let mut r = agent.get(&s.url(path)).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };

    // Written through A ...
    let exp =
        post(&a, "experiments/create", json!({"name": "replicated"}))["experiment_id"].as_str().unwrap().to_owned();
    let run = post(&a, "runs/create", json!({"experiment_id": exp, "run_name": "r1"}));
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    let artifact_uri = run["run"]["info"]["artifact_uri"].as_str().unwrap().to_owned();
    let metrics: Vec<Value> =
        (0..500).map(|i| json!({"key": "loss", "value": 1.0 / f64::from(i + 1), "timestamp": 1, "step": i})).collect();
    post(
        &a,
        "runs/log-batch",
        json!({"run_id": run_id, "metrics": metrics, "params": [{"key": "alpha", "value": "0.5"}]}),
    );
    let rel = artifact_uri.strip_prefix("mlflow-artifacts:/").unwrap();
    assert!(artifact_request(&a, "PUT", &format!("/{rel}/report.txt"), "from replica a").starts_with("HTTP/1.1 200"));

    // ... is read through B: the run, its history, a search, the artifact (proxy and UI route).
    let (status, text) = get(&b, &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    assert_eq!(status, 200, "{text}");
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["run"]["data"]["params"], json!([{"key": "alpha", "value": "0.5"}]));
    let (_, text) = get(&b, &format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss"));
    let history: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(history["metrics"].as_array().unwrap().len(), 500);
    let found = post(&b, "runs/search", json!({"experiment_ids": [exp], "filter": "params.alpha = '0.5'"}));
    assert_eq!(found["runs"][0]["info"]["run_id"], run_id.as_str());
    let got = artifact_request(&b, "GET", &format!("/{rel}/report.txt"), "");
    assert!(got.starts_with("HTTP/1.1 200") && got.ends_with("from replica a"), "{got}");
    let (status, body) = get(&b, &format!("/get-artifact?run_id={run_id}&path=report.txt"));
    assert_eq!((status, body.as_str()), (200, "from replica a"));
    assert_eq!(get(&b, &format!("/get-artifact?run_id={run_id}&path=../../x")).0, 400);

    // And the other way round, while both are live.
    post(&b, "runs/set-tag", json!({"run_id": run_id, "key": "reviewed", "value": "yes"}));
    post(&b, "runs/update", json!({"run_id": run_id, "status": "FINISHED", "end_time": 2}));
    let (_, text) = get(&a, &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert!(got["run"]["data"]["tags"].as_array().unwrap().iter().any(|t| t["key"] == "reviewed"), "{got}");
    assert!(moto.keys("kiln-replicas").iter().any(|k| k.ends_with("/artifacts/report.txt")));
    drop((a, b));
}
