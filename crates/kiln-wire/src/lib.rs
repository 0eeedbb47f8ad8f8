//! kiln-wire: MLflow's REST wire format, as the official client sends and expects it
//! (`shared/spec/mlflow-compat.md`, mlflow 3.17.2): the entities ([`Experiment`], [`Run`], …)
//! serialised proto3-style (fields holding defaults are omitted, never `null`), and the one table
//! of `error_code` → HTTP status ([`ErrorCode`]). The server, the store and kiln's own clients
//! agree on these definitions.

use serde::{Deserialize, Serialize};

/// MLflow's `error_code` values kiln answers with, and their HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    EndpointNotFound,
    BadRequest,
    NotImplemented,
    InternalError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The JSON name, e.g. `RESOURCE_DOES_NOT_EXIST`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            Self::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            Self::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            Self::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Self::BadRequest => "BAD_REQUEST",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
        }
    }

    /// The HTTP status MLflow pairs with the code. Only genuine server faults are 5xx: the
    /// client retries those for minutes, so a 5xx for bad input looks like a hang.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidParameterValue | Self::ResourceAlreadyExists | Self::BadRequest => 400,
            Self::ResourceDoesNotExist | Self::EndpointNotFound => 404,
            Self::NotImplemented => 501,
            Self::InternalError => 500,
            Self::TemporarilyUnavailable => 503,
        }
    }
}

/// An MLflow error: `{"error_code": …, "message": …}` with the code's status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MlflowError {
    pub code: ErrorCode,
    pub message: String,
}

impl MlflowError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }

    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> String {
        serde_json::json!({"error_code": self.code.name(), "message": self.message}).to_string()
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A key/value tag (experiment, run and input tags share the shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_location: String,
    pub lifecycle_stage: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_update_time: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

/// Run metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_name: String,
    pub experiment_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// One metric point. `value` is written as MLflow does: a number, or `"NaN"` / `"Infinity"` /
/// `"-Infinity"` for the values JSON cannot hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    #[serde(with = "special_double")]
    pub value: f64,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step: i64,
    /// MLflow 3: the logged model this point is also recorded for (`log_metric(model_id=…)`),
    /// and the dataset it was computed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
}

/// One point of a metric's history; its key is the one the history was asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// `metrics/get-history`'s answer written straight from the points: byte for byte what serde
/// writes for `{"metrics": [Metric, …], "next_page_token": …}` (tested), without a `Metric`
/// and its key string per point, and with the key and field names escaped once instead of
/// once per point (a 100,000-point history is 8.5 MB of JSON).
///
/// # Errors
/// Never for these types; serde_json's errors are passed on.
pub fn history_json(
    key: &str,
    points: &[MetricPoint],
    next_page_token: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    /// The value as `Metric` serializes it.
    struct Value(f64);
    impl Serialize for Value {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            special_double::serialize(&self.0, s)
        }
    }
    let mut out = Vec::with_capacity(64 + points.len() * (80 + key.len()));
    out.push(b'{');
    if !points.is_empty() {
        let mut head = b"{\"key\":".to_vec();
        serde_json::to_writer(&mut head, key)?;
        head.extend_from_slice(b",\"value\":");
        out.extend_from_slice(b"\"metrics\":[");
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&head);
            serde_json::to_writer(&mut out, &Value(p.value))?;
            out.extend_from_slice(b",\"timestamp\":");
            serde_json::to_writer(&mut out, &p.timestamp)?;
            if p.step != 0 {
                out.extend_from_slice(b",\"step\":");
                serde_json::to_writer(&mut out, &p.step)?;
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(token) = next_page_token {
        if !points.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"next_page_token\":");
        serde_json::to_writer(&mut out, token)?;
    }
    out.push(b'}');
    Ok(out)
}

/// A run's params, tags and latest metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    /// `{}` until datasets and models are logged as inputs.
    #[serde(default)]
    pub inputs: serde_json::Value,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub outputs: serde_json::Value,
}

/// Whether a search returns active, deleted or all entities (`view_type`, `run_view_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

/// A registered model's alias and the version it names (on the registered model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub alias: String,
    pub version: String,
}

/// A version of a registered model (`shared/spec/mlflow-compat.md` §5). `version` is a string
/// on the wire; `current_stage` is the literal `"None"` when unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub creation_timestamp: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_updated_timestamp: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    #[serde(default)]
    pub current_stage: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_link: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_id: String,
}

/// A registered model: its newest version per stage, tags and aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub creation_timestamp: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_updated_timestamp: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
}

/// `f64` in proto3 JSON: NaN and infinities as strings, and accepted as strings on input.
pub mod special_double {
    use serde::{Deserialize, Deserializer, Serializer};

    /// # Errors
    /// Never; the serializer's own errors are passed on.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if *v == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(*v)
        }
    }

    /// # Errors
    /// A value that is neither a number nor one of the three special strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            F(f64),
            S(String),
        }
        match N::deserialize(d)? {
            N::F(v) => Ok(v),
            N::S(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(|_| serde::de::Error::custom(format!("`{other}` is not a number"))),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `history_json` writes what serde writes for the same points as `Metric`s.
    #[test]
    fn history_json_is_what_serde_writes() {
        #[derive(Serialize)]
        struct History<'a> {
            #[serde(skip_serializing_if = "<[Metric]>::is_empty")]
            metrics: &'a [Metric],
            #[serde(skip_serializing_if = "Option::is_none")]
            next_page_token: Option<&'a str>,
        }
        let values =
            [0.1, -0.0, 0.0, 1e-300, 5e-324, f64::MAX, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0, -2.5e22];
        let points: Vec<MetricPoint> = values
            .iter()
            .enumerate()
            .map(|(i, v)| MetricPoint { value: *v, timestamp: 1_733_000_000_000 - i as i64, step: i as i64 - 3 })
            .collect();
        for key in ["loss", "a \"quoted\" key/é\n"] {
            for token in [None, Some("7b226f6666736574223a327d")] {
                for n in [0, 1, points.len()] {
                    let metrics: Vec<Metric> = points[..n]
                        .iter()
                        .map(|p| Metric {
                            key: key.into(),
                            value: p.value,
                            timestamp: p.timestamp,
                            step: p.step,
                            ..Metric::default()
                        })
                        .collect();
                    let want = serde_json::to_vec(&History { metrics: &metrics, next_page_token: token }).unwrap();
                    assert_eq!(
                        String::from_utf8(history_json(key, &points[..n], token).unwrap()).unwrap(),
                        String::from_utf8(want).unwrap()
                    );
                }
            }
        }
    }
}
