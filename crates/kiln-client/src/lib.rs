//! kiln-client: what kiln's own commands need from a tracking server, over its REST API (never
//! its database), exactly as the `mlflow` client does: find or create an experiment, create and
//! finish a run, log params/metrics/tags in batches within MLflow's limits, upload artifacts
//! through the `mlflow-artifacts` proxy. Works against `kiln server` and `mlflow server`.
//!
//! - [`resolve`]: `runs:/` and `models:/` URIs to the place their files are, as the `mlflow`
//!   client resolves them (the version an alias or stage names now: [`TrackingClient::version_of`]).
//! - [`fetch`]: a model URI's files on local disk (used in place, or downloaded through the
//!   artifact proxy into a cache, atomically).
//!
//! Blocking (ureq): training is synchronous and logs a handful of requests at its end; serving
//! resolves its model before it listens and polls from a thread of its own.

pub mod fetch;
pub mod registry;
pub mod resolve;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_wire::{KeyValue, Metric};
use serde_json::{Value, json};

pub use fetch::{LocalModel, default_cache_dir, fetch};
pub use resolve::{FetchError, RegisteredVersion, Resolved};

/// Errors talking to the tracking server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tracking URI `{0}`: only http:// URIs of a tracking server are supported")]
    Scheme(String),
    #[error("{method} {url}: {message}")]
    Http { method: &'static str, url: String, message: String },
    #[error("{method} {url} answered {status}: {body}")]
    Status { method: &'static str, url: String, status: u16, body: String },
    #[error("artifact URI `{0}` is not served through the tracking server (mlflow-artifacts:/…)")]
    ArtifactScheme(String),
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A run being logged.
#[derive(Debug, Clone)]
pub struct RunHandle {
    pub run_id: String,
    pub experiment_id: String,
    pub artifact_uri: String,
}

/// A tracking server at `base` (`http://host:port`).
pub struct TrackingClient {
    base: String,
    agent: ureq::Agent,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl TrackingClient {
    /// # Errors
    /// A URI that is not `http://`.
    pub fn new(uri: &str) -> Result<Self, ClientError> {
        if !uri.starts_with("http://") {
            return Err(ClientError::Scheme(uri.to_owned()));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .into();
        Ok(Self { base: uri.trim_end_matches('/').to_owned(), agent })
    }

    /// One REST call: GET carries its message in the query string, every other method a JSON
    /// body (DELETE too, as MLflow's client sends it).
    fn call(&self, method: &'static str, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let http = |e: ureq::Error| ClientError::Http { method, url: url.clone(), message: e.to_string() };
        let json = body.map(Value::to_string).unwrap_or_default();
        let sent = match method {
            "GET" => self.agent.get(&url).call(),
            "PATCH" => self.agent.patch(&url).header("Content-Type", "application/json").send(json),
            "DELETE" => self.agent.delete(&url).force_send_body().header("Content-Type", "application/json").send(json),
            _ => self.agent.post(&url).header("Content-Type", "application/json").send(json),
        };
        let mut resp = sent.map_err(http)?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(http)?;
        if status != 200 {
            return Err(ClientError::Status { method, url, status, body: text });
        }
        serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text }).map_err(|e| ClientError::Http {
            method,
            url,
            message: format!("not JSON: {e}"),
        })
    }

    /// The id of the experiment called `name`, created if missing.
    ///
    /// # Errors
    /// The server cannot be reached or refuses.
    pub fn experiment_id(&self, name: &str) -> Result<String, ClientError> {
        let q: String = url_encode(name);
        match self.call("GET", &format!("experiments/get-by-name?experiment_name={q}"), None) {
            Ok(v) => Ok(v["experiment"]["experiment_id"].as_str().unwrap_or("0").to_owned()),
            Err(ClientError::Status { status: 404, .. }) => {
                let v = self.call("POST", "experiments/create", Some(&json!({ "name": name })))?;
                Ok(v["experiment_id"].as_str().unwrap_or("0").to_owned())
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a run.
    ///
    /// # Errors
    /// The server refuses.
    pub fn create_run(&self, experiment_id: &str, run_name: &str, tags: &[KeyValue]) -> Result<RunHandle, ClientError> {
        let user = std::env::var("USER").unwrap_or_default();
        let v = self.call(
            "POST",
            "runs/create",
            Some(&json!({"experiment_id": experiment_id, "run_name": run_name, "user_id": user,
                "start_time": now_ms(), "tags": tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>()})),
        )?;
        let info = &v["run"]["info"];
        Ok(RunHandle {
            run_id: info["run_id"].as_str().unwrap_or_default().to_owned(),
            experiment_id: experiment_id.to_owned(),
            artifact_uri: info["artifact_uri"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Logs metrics, params and tags, split into requests within MLflow's batch limits.
    ///
    /// # Errors
    /// The server refuses a batch.
    pub fn log_batch(
        &self,
        run: &RunHandle,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<(), ClientError> {
        let kv = |items: &[KeyValue]| items.iter().map(|p| json!({"key": p.key, "value": p.value})).collect::<Vec<_>>();
        for chunk in metrics.chunks(1000) {
            let ms: Vec<Value> = chunk
                .iter()
                .map(|m| json!({"key": m.key, "value": serde_json::to_value(m).map(|v| v["value"].clone()).unwrap_or(Value::Null), "timestamp": m.timestamp, "step": m.step}))
                .collect();
            self.call("POST", "runs/log-batch", Some(&json!({"run_id": run.run_id, "metrics": ms})))?;
        }
        for chunk in params.chunks(100) {
            self.call("POST", "runs/log-batch", Some(&json!({"run_id": run.run_id, "params": kv(chunk)})))?;
        }
        for chunk in tags.chunks(100) {
            self.call("POST", "runs/log-batch", Some(&json!({"run_id": run.run_id, "tags": kv(chunk)})))?;
        }
        Ok(())
    }

    /// Uploads `file` as the run artifact `rel` (e.g. `model/MLmodel`), streamed.
    ///
    /// # Errors
    /// An artifact URI the server does not proxy, an unreadable file, a refused upload.
    pub fn upload_artifact(&self, run: &RunHandle, rel: &str, file: &Path) -> Result<(), ClientError> {
        let path = run
            .artifact_uri
            .strip_prefix("mlflow-artifacts:")
            .map(|p| p.trim_start_matches('/'))
            .ok_or_else(|| ClientError::ArtifactScheme(run.artifact_uri.clone()))?;
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}/{}", self.base, rel.trim_start_matches('/'));
        let f = std::fs::File::open(file)
            .map_err(|source| ClientError::Read { path: file.display().to_string(), source })?;
        let mut resp = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .send(ureq::SendBody::from_owned_reader(f))
            .map_err(|e| ClientError::Http { method: "PUT", url: url.clone(), message: e.to_string() })?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(ClientError::Status { method: "PUT", url, status, body });
        }
        Ok(())
    }

    /// Ends the run with `status` (`FINISHED`, `FAILED`).
    ///
    /// # Errors
    /// The server refuses.
    pub fn end_run(&self, run: &RunHandle, status: &str) -> Result<(), ClientError> {
        self.call("POST", "runs/update", Some(&json!({"run_id": run.run_id, "status": status, "end_time": now_ms()})))?;
        Ok(())
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every numeric leaf of a JSON document as a metric, keys joined with `.` (MLflow's metric
/// names allow spaces, dots and dashes: `macro avg.f1-score`).
#[must_use]
pub fn flatten_metrics(doc: &Value, timestamp: i64) -> Vec<Metric> {
    fn walk(prefix: &str, v: &Value, ts: i64, out: &mut Vec<Metric>) {
        match v {
            Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    out.push(Metric { key: prefix.to_owned(), value: x, timestamp: ts, ..Metric::default() });
                }
            }
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, ts, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", doc, timestamp, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_flatten_to_dotted_keys() {
        let m = flatten_metrics(
            &json!({"accuracy": 0.9, "macro avg": {"f1-score": 0.8}, "confusion_matrix": [[1, 2]], "cv": {"folds": 5}}),
            7,
        );
        let keys: Vec<&str> = m.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["accuracy", "cv.folds", "macro avg.f1-score"]);
    }

    #[test]
    fn only_http() {
        assert!(TrackingClient::new("sqlite:///x.db").is_err());
        assert_eq!(url_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
