//! The `mlflow-artifacts` proxy (`shared/spec/mlflow-compat.md` §4.2) over `kiln-artifacts`:
//! upload (PUT, streamed), download (streamed, served as an attachment), list one level, delete;
//! and the web UI's `/get-artifact?run_id=&path=`. Path confinement lives in `kiln-artifacts`.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use kiln_artifacts::ArtifactError;
use kiln_wire::MlflowError;
use serde::Deserialize;

use crate::{ApiError, json_response};

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        let message = e.to_string();
        ApiError(match e {
            ArtifactError::NotFound(_) => MlflowError::not_found(message),
            _ if e.is_client_error() => MlflowError::invalid(message),
            _ => {
                tracing::error!(error = %message, "artifact store error");
                MlflowError::internal(message)
            }
        })
    }
}

type S = State<Arc<crate::AppState>>;

pub async fn upload(State(s): S, UrlPath(path): UrlPath<String>, req: Request) -> Result<Response, ApiError> {
    s.artifacts.put(&path, req.into_body().into_data_stream()).await?;
    Ok(json_response(StatusCode::OK, "{}".to_owned()))
}

pub async fn download(State(s): S, UrlPath(path): UrlPath<String>) -> Result<Response, ApiError> {
    let d = s.artifacts.get(&path).await?;
    let name = Path::new(&path).file_name().map(|n| n.to_string_lossy().replace('"', "")).unwrap_or_default();
    let mut r = Response::new(Body::from_stream(d.stream));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(guess_type(&name)));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.size));
    // The UI's origin serves user files: never let a browser render them inline or sniff them.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(r)
}

fn guess_type(name: &str) -> &'static str {
    match Path::new(name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("txt" | "log" | "md") => "text/plain",
        Some("json") => "application/json",
        Some("yaml" | "yml") => "text/yaml",
        Some("csv") => "text/csv",
        Some("png") => "image/png",
        Some("html" | "htm") => "text/plain",
        _ => "application/octet-stream",
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    path: Option<String>,
}

pub async fn list(State(s): S, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let entries = s.artifacts.list(q.path.as_deref().unwrap_or_default()).await?;
    let files: Vec<_> = entries
        .into_iter()
        .map(|e| match e.size {
            Some(size) if !e.is_dir => serde_json::json!({"path": e.name, "is_dir": false, "file_size": size}),
            _ => serde_json::json!({"path": e.name, "is_dir": true}),
        })
        .collect();
    let body = if files.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "files": files }) };
    Ok(json_response(StatusCode::OK, body.to_string()))
}

pub async fn delete(State(s): S, UrlPath(path): UrlPath<String>) -> Result<Response, ApiError> {
    s.artifacts.delete(&path).await?;
    Ok(json_response(StatusCode::OK, "{}".to_owned()))
}

#[derive(Deserialize)]
pub struct RunArtifactQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
}

/// The web UI's download route: a run's artifact by run id and path relative to the run's
/// artifact root. Only proxied runs (`mlflow-artifacts:` roots) are served; a run whose
/// artifacts live elsewhere (a client-side `s3://` or `file:` root) is not this server's to read.
pub async fn run_artifact(State(s): S, Query(q): Query<RunArtifactQuery>) -> Result<Response, ApiError> {
    let run_id = crate::run_id(q.run_id.as_deref(), q.run_uuid.as_deref())?;
    let path = crate::required(q.path.as_deref(), "path")?;
    kiln_artifacts::safe_relative(path)?;
    let run = s.store.get_run(run_id).await?;
    let root = &run.info.artifact_uri;
    let Some(rel) = proxied_path(root) else {
        return Err(ApiError(MlflowError::invalid(format!(
            "run '{run_id}' keeps its artifacts at '{root}', which this server does not proxy"
        ))));
    };
    download(State(s), UrlPath(format!("{}/{path}", rel.trim_end_matches('/')))).await
}

#[derive(Deserialize)]
pub struct VersionArtifactQuery {
    name: Option<String>,
    version: Option<String>,
    path: Option<String>,
}

/// The web UI's `model-versions/get-artifact`: a file of a registered version, by path relative
/// to the version's download location (a logged model's directory, or `runs:/<run>/<path>`
/// resolved against the run's root). Only proxied locations are served, as for runs.
pub async fn model_version_artifact(State(s): S, Query(q): Query<VersionArtifactQuery>) -> Result<Response, ApiError> {
    let name = crate::required(q.name.as_deref(), "name")?;
    let version = crate::required(q.version.as_deref(), "version")?;
    let path = crate::required(q.path.as_deref(), "path")?;
    kiln_artifacts::safe_relative(path)?;
    let mut root = s.store.get_model_version_download_uri(name, version).await?;
    if let Some(rest) = root.strip_prefix("runs:/") {
        let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
        if !sub.is_empty() {
            kiln_artifacts::safe_relative(sub)?;
        }
        let run = s.store.get_run(run_id).await?;
        root = format!("{}/{sub}", run.info.artifact_uri.trim_end_matches('/'));
    }
    let Some(rel) = proxied_path(&root) else {
        return Err(ApiError(MlflowError::invalid(format!(
            "model version {name}/{version} keeps its files at '{root}', which this server does not proxy"
        ))));
    };
    download(State(s), UrlPath(format!("{}/{path}", rel.trim_end_matches('/')))).await
}

/// The destination-relative path of an `mlflow-artifacts:` URI (`mlflow-artifacts:/1/abc/artifacts`
/// or `mlflow-artifacts://host:port/1/abc/artifacts`).
fn proxied_path(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(authority_and_path) => &authority_and_path[authority_and_path.find('/')?..],
        None => rest,
    };
    Some(rest.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::proxied_path;

    #[test]
    fn proxied_paths() {
        assert_eq!(proxied_path("mlflow-artifacts:/1/r/artifacts"), Some("1/r/artifacts"));
        assert_eq!(proxied_path("mlflow-artifacts://h:5000/1/r/artifacts"), Some("1/r/artifacts"));
        assert_eq!(proxied_path("s3://b/1/r/artifacts"), None);
        assert_eq!(proxied_path("mlflow-artifacts://host-only"), None);
    }
}
