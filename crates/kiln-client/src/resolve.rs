//! Resolving a [`ModelUri`] to the place its files are, through the tracking server's REST API
//! exactly as the `mlflow` client does (wire spec §5.2), so it works against `kiln server` and
//! `mlflow server` alike:
//!
//! | URI | calls |
//! |---|---|
//! | `runs:/<run>/<path>` | `runs/get` → `<artifact_uri>/<path>`; when nothing is there, `logged-models/search` in the run's experiment for a model called `<path>` logged by that run (MLflow 3's `log_model`) |
//! | `models:/<model_id>` | `logged-models/<id>` → its `artifact_uri` |
//! | `models:/<name>/<N>` | `model-versions/get-download-uri` |
//! | `models:/<name>/<stage>`, `/latest` | `registered-models/get-latest-versions` → highest version → `get-download-uri` |
//! | `models:/<name>@<alias>` | `GET registered-models/alias` → version → `get-download-uri` |
//!
//! A download URI may itself be a `runs:/` or `models:/` URI (a server that stores the source
//! verbatim); it is resolved again, a few levels at most.

use kiln_core::uri::{ArtifactLocation, ModelUri, UriError, VersionSelector};
use serde_json::{Value, json};

use crate::{ClientError, TrackingClient, fetch, url_encode};

/// How many `runs:/`/`models:/` hops a download URI may take before it names files.
const MAX_HOPS: usize = 4;

/// A registered model version a URI resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegisteredVersion {
    pub name: String,
    pub version: u64,
}

impl std::fmt::Display for RegisteredVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} version {}", self.name, self.version)
    }
}

/// Where a model URI's files are, and which registered version it named (registry URIs only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub location: ArtifactLocation,
    pub registered: Option<RegisteredVersion>,
}

/// Errors resolving a URI or downloading what it names. Each names the URI or location.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{uri}` is resolved through a tracking server: pass --tracking-uri URL or set MLFLOW_TRACKING_URI")]
    NoTrackingServer { uri: String },
    #[error("`{uri}`: the tracking server answered {status} {code}: {message}")]
    Refused { uri: String, status: u16, code: String, message: String },
    #[error("`{uri}`: cannot reach the tracking server")]
    Unreachable {
        uri: String,
        #[source]
        source: ClientError,
    },
    #[error("`{uri}`: the tracking server's answer to {call} has no `{field}`")]
    BadAnswer { uri: String, call: &'static str, field: &'static str },
    #[error("`{uri}`: registered model `{name}` has no version{stage}")]
    NoVersion { uri: String, name: String, stage: String },
    #[error(
        "`{uri}`: no logged model `{model_id}`; a registered model needs a version, a stage, `latest` or `@alias` (models:/<name>/1, models:/<name>@champion)"
    )]
    NotALoggedModel { uri: String, model_id: String },
    #[error("`{uri}`: the tracking server named the location `{location}`, which kiln cannot read")]
    Location {
        uri: String,
        location: String,
        #[source]
        source: UriError,
    },
    #[error("`{uri}` resolves through more than {MAX_HOPS} runs:/ or models:/ URIs")]
    TooManyHops { uri: String },
    #[error("nothing at `{location}`: no files there")]
    Empty { location: String },
    #[error("`{location}`: the server listed `{name}`, which is not a plain file name (refused)")]
    UnsafeName { location: String, name: String },
    #[error("`{location}` has more than {max_files} files or is nested deeper than {max_depth} directories")]
    TooLarge { location: String, max_files: usize, max_depth: usize },
    #[error("cannot write `{path}` (downloading `{location}`)")]
    Write {
        location: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{location}`: {message}")]
    S3 { location: String, message: String },
}

impl FetchError {
    /// From a failed call made for `uri`: a refusal carries MLflow's `error_code` and message.
    pub(crate) fn from_client(uri: &str, e: ClientError) -> Self {
        match e {
            ClientError::Status { status, body, .. } if (400..500).contains(&status) => {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let code = v["error_code"].as_str().unwrap_or("").to_owned();
                let message = v["message"].as_str().map_or_else(|| body.clone(), str::to_owned);
                Self::Refused { uri: uri.to_owned(), status, code, message }
            }
            other => Self::Unreachable { uri: uri.to_owned(), source: other },
        }
    }

    /// Whether the failure is the server's or the network's (worth retrying later) rather than
    /// an answer that will stay the same.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

fn field<'a>(v: &'a Value, uri: &str, call: &'static str, field: &'static str) -> Result<&'a str, FetchError> {
    v.as_str().ok_or_else(|| FetchError::BadAnswer { uri: uri.to_owned(), call, field })
}

/// A version number as MLflow sends it: a string of digits (or, from a lenient server, a number).
fn version_number(v: &Value) -> Option<u64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64())
}

impl TrackingClient {
    fn get_json(&self, uri: &str, path: &str) -> Result<Value, FetchError> {
        self.call("GET", path, None).map_err(|e| FetchError::from_client(uri, e))
    }

    fn post_json(&self, uri: &str, path: &str, body: &Value) -> Result<Value, FetchError> {
        self.call("POST", path, Some(body)).map_err(|e| FetchError::from_client(uri, e))
    }

    /// The version a moving selector (alias, stage, `latest`) names now; a pinned version is
    /// itself. One request: what `kiln serve` polls.
    ///
    /// # Errors
    /// The server is unreachable, refuses (unknown model or alias), or has no such version.
    pub fn version_of(&self, name: &str, selector: &VersionSelector) -> Result<u64, FetchError> {
        let uri = ModelUri::Registered { name: name.to_owned(), selector: selector.clone() }.to_string();
        match selector {
            VersionSelector::Version(v) => Ok(*v),
            VersionSelector::Alias(alias) => {
                let v = self.get_json(
                    &uri,
                    &format!("registered-models/alias?name={}&alias={}", url_encode(name), url_encode(alias)),
                )?;
                version_number(&v["model_version"]["version"]).ok_or(FetchError::BadAnswer {
                    uri,
                    call: "registered-models/alias",
                    field: "model_version.version",
                })
            }
            VersionSelector::Stage(_) | VersionSelector::Latest => {
                let stages: Vec<&str> = match selector {
                    VersionSelector::Stage(s) => vec![s.as_str()],
                    _ => Vec::new(),
                };
                let v = self.post_json(
                    &uri,
                    "registered-models/get-latest-versions",
                    &json!({"name": name, "stages": stages}),
                )?;
                let versions = v["model_versions"].as_array().map(Vec::as_slice).unwrap_or_default();
                versions.iter().filter_map(|mv| version_number(&mv["version"])).max().ok_or_else(|| {
                    FetchError::NoVersion {
                        uri,
                        name: name.to_owned(),
                        stage: match selector {
                            VersionSelector::Stage(s) => format!(" in stage {s}"),
                            _ => String::new(),
                        },
                    }
                })
            }
        }
    }

    /// `model-versions/get-download-uri`: where version `version` of `name` keeps its files.
    ///
    /// # Errors
    /// The server is unreachable or refuses (unknown model or version).
    pub fn download_uri(&self, name: &str, version: u64) -> Result<String, FetchError> {
        let uri =
            ModelUri::Registered { name: name.to_owned(), selector: VersionSelector::Version(version) }.to_string();
        let v = self
            .get_json(&uri, &format!("model-versions/get-download-uri?name={}&version={version}", url_encode(name)))?;
        Ok(field(&v["artifact_uri"], &uri, "model-versions/get-download-uri", "artifact_uri")?.to_owned())
    }

    /// Resolves `uri` to the place its files are. An [`ArtifactLocation`] is its own answer.
    ///
    /// # Errors
    /// See [`FetchError`].
    pub fn resolve(&self, uri: &ModelUri) -> Result<Resolved, FetchError> {
        self.resolve_hops(uri, &uri.to_string(), 0)
    }

    /// Resolves the registered version `version` of `name` (what `kiln serve` does once a poll
    /// found a new version).
    ///
    /// # Errors
    /// See [`FetchError`].
    pub fn resolve_version(&self, name: &str, version: u64) -> Result<Resolved, FetchError> {
        self.resolve(&ModelUri::Registered { name: name.to_owned(), selector: VersionSelector::Version(version) })
    }

    fn resolve_hops(&self, uri: &ModelUri, original: &str, hops: usize) -> Result<Resolved, FetchError> {
        if hops > MAX_HOPS {
            return Err(FetchError::TooManyHops { uri: original.to_owned() });
        }
        // A location the server names: files, or another model URI to follow.
        let follow = |s: &str, registered: Option<RegisteredVersion>| -> Result<Resolved, FetchError> {
            let next = ModelUri::parse(s).map_err(|source| FetchError::Location {
                uri: original.to_owned(),
                location: s.to_owned(),
                source,
            })?;
            let r = self.resolve_hops(&next, original, hops + 1)?;
            Ok(Resolved { location: r.location, registered: registered.or(r.registered) })
        };
        match uri {
            ModelUri::Artifacts(a) => Ok(Resolved { location: a.clone(), registered: None }),
            ModelUri::Registered { name, selector } => {
                let version = self.version_of(name, selector)?;
                let download = self.download_uri(name, version)?;
                follow(&download, Some(RegisteredVersion { name: name.clone(), version }))
            }
            ModelUri::LoggedModel { model_id } => {
                let v = match self.get_json(original, &format!("logged-models/{}", url_encode(model_id))) {
                    Err(FetchError::Refused { status: 404, .. }) => {
                        return Err(FetchError::NotALoggedModel {
                            uri: original.to_owned(),
                            model_id: model_id.clone(),
                        });
                    }
                    other => other?,
                };
                let at = field(&v["model"]["info"]["artifact_uri"], original, "logged-models/get", "artifact_uri")?;
                follow(at, None)
            }
            ModelUri::Run { run_id, path } => {
                let v = self.get_json(original, &format!("runs/get?run_id={}", url_encode(run_id)))?;
                let info = &v["run"]["info"];
                let root = field(&info["artifact_uri"], original, "runs/get", "run.info.artifact_uri")?;
                let root = ArtifactLocation::parse(root).map_err(|source| FetchError::Location {
                    uri: original.to_owned(),
                    location: root.to_owned(),
                    source,
                })?;
                let at = root.join(path).map_err(|source| FetchError::Location {
                    uri: original.to_owned(),
                    location: format!("{root}/{path}"),
                    source,
                })?;
                if path.is_empty() || fetch::has_files(self, &at)? {
                    return Ok(Resolved { location: at, registered: None });
                }
                // MLflow 3's `log_model(name=…)` keeps the files with a logged model, not the run.
                let experiment = info["experiment_id"].as_str().unwrap_or("0");
                match self.logged_model_of_run(original, experiment, run_id, path)? {
                    Some(model_uri) => follow(&model_uri, None),
                    None => Ok(Resolved { location: at, registered: None }),
                }
            }
        }
    }

    /// The `artifact_uri` of the logged model called `name` that run `run_id` logged, as MLflow's
    /// `RunsArtifactRepository` finds it (search by name in the experiment, match the run).
    fn logged_model_of_run(
        &self,
        uri: &str,
        experiment_id: &str,
        run_id: &str,
        name: &str,
    ) -> Result<Option<String>, FetchError> {
        // The filter quotes the name; one with a quote cannot be a logged model's name we can
        // look up this way (MLflow does not escape it either).
        if name.contains('\'') {
            return Ok(None);
        }
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let mut body = json!({"experiment_ids": [experiment_id], "filter": format!("name = '{name}'")});
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let v = self.post_json(uri, "logged-models/search", &body)?;
            let models = v["models"].as_array().map(Vec::as_slice).unwrap_or_default();
            if let Some(m) = models.iter().find(|m| m["info"]["source_run_id"].as_str() == Some(run_id)) {
                return Ok(m["info"]["artifact_uri"].as_str().map(str::to_owned));
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}
