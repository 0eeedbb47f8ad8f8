//! The `mlflow-artifacts` proxy (`shared/spec/mlflow-compat.md` §4.2) on a local directory:
//! upload (PUT, streamed to a temp file and renamed into place), download (streamed, served as
//! an attachment), list one level, delete.
//!
//! Paths are confined to the destination. MLflow has had a long run of traversal CVEs here
//! (CVE-2023-1177, -2356, -6831, CVE-2024-1560 double decoding, …); each class is refused with a
//! 400 before the filesystem is touched: `..` and `.` segments, absolute paths, backslashes, NUL,
//! segments that decode to `.`/`..` when percent-decoded a second time, and any symlink on the
//! way (a link planted in the store cannot lead out of it).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use kiln_wire::MlflowError;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::{ApiError, json_response};

/// Where artifacts live on the server.
#[derive(Debug)]
pub struct ArtifactStore {
    root: PathBuf,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(MlflowError::invalid(message))
}

fn io(e: &std::io::Error, what: &str) -> ApiError {
    tracing::error!(error = %e, what, "artifact store I/O error");
    ApiError(MlflowError::internal(format!("cannot {what}: {e}")))
}

/// One percent-decoding pass (for the double-decoding check only).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a client-supplied relative path (already percent-decoded once by the router).
///
/// # Errors
/// Any of the traversal classes in the module docs.
pub fn safe_relative(path: &str) -> Result<PathBuf, ApiError> {
    let refuse = || bad(format!("Invalid artifact path: '{path}'"));
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') || path.contains('#') {
        return Err(refuse());
    }
    let mut out = PathBuf::new();
    for seg in path.split('/') {
        if seg.is_empty() {
            continue;
        }
        let twice = percent_decode(seg);
        if matches!(seg, "." | "..")
            || matches!(twice.as_str(), "." | "..")
            || twice.contains('/')
            || twice.contains('\\')
        {
            return Err(refuse());
        }
        out.push(seg);
    }
    // Belt and braces: only normal components may remain.
    if out.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(refuse());
    }
    Ok(out)
}

impl ArtifactStore {
    /// A store rooted at `dest` (a directory path or `file:///abs/dir`), created if missing.
    ///
    /// # Errors
    /// An S3 or other remote destination (not supported yet), or a directory that cannot be made.
    pub fn open(dest: &str) -> Result<Self, std::io::Error> {
        let dir = dest.strip_prefix("file://").unwrap_or(dest);
        if dir.contains("://") {
            return Err(std::io::Error::other(format!(
                "artifacts destination `{dest}`: only local directories are supported so far"
            )));
        }
        std::fs::create_dir_all(dir)?;
        Ok(Self { root: std::fs::canonicalize(dir)? })
    }

    /// The on-disk path for `rel`, refusing symlinks anywhere along it.
    fn resolve(&self, rel: &str) -> Result<PathBuf, ApiError> {
        let rel = safe_relative(rel)?;
        let mut p = self.root.clone();
        for c in rel.components() {
            p.push(c);
            if let Ok(m) = std::fs::symlink_metadata(&p)
                && m.file_type().is_symlink()
            {
                return Err(bad(format!("Invalid artifact path: '{}' (a symbolic link)", rel.display())));
            }
        }
        Ok(p)
    }
}

type S = State<Arc<crate::AppState>>;

pub async fn upload(State(s): S, UrlPath(path): UrlPath<String>, req: Request) -> Result<Response, ApiError> {
    let target = s.artifacts.resolve(&path)?;
    if target == s.artifacts.root {
        return Err(bad("an artifact upload needs a file path"));
    }
    let dir = target.parent().unwrap_or(&s.artifacts.root).to_owned();
    tokio::fs::create_dir_all(&dir).await.map_err(|e| io(&e, "create the artifact directory"))?;
    // Streamed into a temp file beside the target, then renamed: a reader never sees half a
    // file, and a killed server leaves only a temp file behind.
    let tmp = dir.join(format!(".kiln-upload-{}", uuid_like()));
    let result = async {
        let mut f = tokio::fs::File::create(&tmp).await.map_err(|e| io(&e, "write the artifact"))?;
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| bad(format!("the upload was interrupted: {e}")))?;
            if let Some(data) = frame.data_ref() {
                f.write_all(data).await.map_err(|e| io(&e, "write the artifact"))?;
            }
        }
        f.flush().await.map_err(|e| io(&e, "write the artifact"))?;
        if tokio::fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
            return Err(bad(format!("'{path}' is a directory")));
        }
        tokio::fs::rename(&tmp, &target).await.map_err(|e| io(&e, "store the artifact"))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result?;
    Ok(json_response(StatusCode::OK, "{}".to_owned()))
}

fn uuid_like() -> String {
    format!("{:x}{:x}", std::process::id(), crate::nanos())
}

pub async fn download(State(s): S, UrlPath(path): UrlPath<String>) -> Result<Response, ApiError> {
    let target = s.artifacts.resolve(&path)?;
    let meta = tokio::fs::metadata(&target)
        .await
        .map_err(|_| ApiError(MlflowError::not_found(format!("Artifact '{path}' does not exist"))))?;
    if meta.is_dir() {
        return Err(bad(format!("'{path}' is a directory; list it with GET /artifacts?path=")));
    }
    let f = tokio::fs::File::open(&target).await.map_err(|e| io(&e, "read the artifact"))?;
    let name = target.file_name().map(|n| n.to_string_lossy().replace('"', "")).unwrap_or_default();
    let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(f)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(guess_type(&name)));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
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
    let rel = q.path.unwrap_or_default();
    let dir = s.artifacts.resolve(&rel)?;
    let Ok(mut rd) = tokio::fs::read_dir(&dir).await else {
        return Ok(json_response(StatusCode::OK, "{}".to_owned()));
    };
    let mut files = Vec::new();
    while let Ok(Some(e)) = rd.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".kiln-upload-") {
            continue;
        }
        let Ok(m) = tokio::fs::symlink_metadata(e.path()).await else { continue };
        if m.file_type().is_symlink() {
            continue;
        }
        files.push(if m.is_dir() {
            serde_json::json!({"path": name, "is_dir": true})
        } else {
            serde_json::json!({"path": name, "is_dir": false, "file_size": m.len()})
        });
    }
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let body = if files.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "files": files }) };
    Ok(json_response(StatusCode::OK, body.to_string()))
}

pub async fn delete(State(s): S, UrlPath(path): UrlPath<String>) -> Result<Response, ApiError> {
    let target = s.artifacts.resolve(&path)?;
    if target == s.artifacts.root {
        return Err(bad("refusing to delete the whole artifact store"));
    }
    match tokio::fs::symlink_metadata(&target).await {
        Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&target).await.map_err(|e| io(&e, "delete the artifacts"))?,
        Ok(_) => tokio::fs::remove_file(&target).await.map_err(|e| io(&e, "delete the artifact"))?,
        Err(_) => return Err(ApiError(MlflowError::not_found(format!("Artifact '{path}' does not exist")))),
    }
    Ok(json_response(StatusCode::OK, "{}".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_classes_are_refused() {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "a/./b",
            "..",
            "a\\..\\b",
            "%2e%2e/x",
            "%2E%2E/x",
            "a/%2e%2e/b",
            "a%2f..%2fb",
            "x#frag",
            "a\0b",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        for ok in ["0/abc/artifacts/model/MLmodel", "a b/c.txt", "a//b.txt", "", "100%.txt"] {
            assert!(safe_relative(ok).is_ok(), "{ok}");
        }
    }
}
