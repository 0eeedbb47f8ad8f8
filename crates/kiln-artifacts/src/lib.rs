//! Where the tracking server keeps proxied artifacts (`mlflow-artifacts:/…`): a local directory
//! or, with the `s3` feature, an S3-compatible bucket through `object_store`.
//!
//! Every operation takes a client-supplied path relative to the destination and confines it
//! first. MLflow has had a long run of traversal CVEs here (CVE-2023-1177, -2356, -6831,
//! CVE-2024-1560 double decoding, CVE-2024-1483/-3848 `#` fragments, …); each class is refused
//! before storage is touched: `..` and `.` segments, absolute paths, backslashes, NUL and other
//! control characters, `#`, segments that decode to `.`/`..` or contain a separator when
//! percent-decoded a second time, and, on disk, any symlink on the way (a link planted in the
//! store cannot lead out of it).
//!
//! Uploads are streamed and never held whole in memory: on disk into a temp file renamed into
//! place, on S3 as one PUT when the body is under one part or a multipart upload otherwise, so
//! a reader never sees half an object and a killed server leaves no half-written one.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

mod local;
#[cfg(feature = "s3")]
mod s3;

/// What went wrong with one artifact operation. The first five are the client's doing (4xx).
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("Invalid artifact path: '{0}'")]
    InvalidPath(String),
    #[error("Artifact '{0}' does not exist")]
    NotFound(String),
    #[error("'{0}' is a directory; list it with GET /artifacts?path=")]
    IsDirectory(String),
    #[error("{0}")]
    Refused(&'static str),
    #[error("the upload of '{path}' was interrupted: {message}")]
    Interrupted { path: String, message: String },
    #[error("cannot {what} '{path}': {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(feature = "s3")]
    #[error("cannot {what} '{path}' in the bucket: {source}")]
    Remote {
        what: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
}

impl ArtifactError {
    /// Whether the client caused it (a 4xx), as opposed to the store failing (a 5xx).
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Io { .. }) && !self.is_remote()
    }

    fn is_remote(&self) -> bool {
        #[cfg(feature = "s3")]
        if matches!(self, Self::Remote { .. }) {
            return true;
        }
        false
    }
}

/// Why a destination cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("artifacts destination `{0}`: unsupported scheme (use a directory, file:///abs/dir or s3://bucket/prefix)")]
    Scheme(String),
    #[error("artifacts destination `{0}`: this kiln was built without S3 support (cargo feature `s3`)")]
    NoS3(String),
    #[error("artifacts destination `{dest}`: cannot create or open the directory")]
    Dir {
        dest: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(feature = "s3")]
    #[error("artifacts destination `{dest}`: {message}")]
    S3 { dest: String, message: String },
}

/// One entry of a one-level listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name relative to the listed directory (MLflow's `path` field).
    pub name: String,
    pub is_dir: bool,
    /// Bytes; files only.
    pub size: Option<u64>,
}

/// A download: its size and the bytes, streamed.
pub struct Download {
    pub size: u64,
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

/// The artifact store of one server.
#[derive(Debug)]
pub struct ArtifactStore {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(local::Dir),
    #[cfg(feature = "s3")]
    S3(s3::Bucket),
}

impl ArtifactStore {
    /// Opens `dest`: a directory path or `file:///abs/dir` (created if missing), or
    /// `s3://bucket[/prefix]` (credentials, region and endpoint from the usual `AWS_*` variables;
    /// `MLFLOW_S3_ENDPOINT_URL` is honoured too, as MLflow users set it for MinIO and the like).
    ///
    /// # Errors
    /// An unknown scheme, S3 without the `s3` feature, a directory that cannot be made.
    pub fn open(dest: &str) -> Result<Self, OpenError> {
        if let Some(rest) = dest.strip_prefix("s3://") {
            #[cfg(feature = "s3")]
            return Ok(Self { backend: Backend::S3(s3::Bucket::open(dest, rest)?) });
            #[cfg(not(feature = "s3"))]
            {
                let _ = rest;
                return Err(OpenError::NoS3(dest.to_owned()));
            }
        }
        let dir = dest.strip_prefix("file://").unwrap_or(dest);
        if dir.contains("://") {
            return Err(OpenError::Scheme(dest.to_owned()));
        }
        Ok(Self {
            backend: Backend::Local(
                local::Dir::open(dir).map_err(|source| OpenError::Dir { dest: dest.to_owned(), source })?,
            ),
        })
    }

    /// Stores `body` at `path`, replacing what was there.
    ///
    /// # Errors
    /// An invalid path, a directory in the way (on disk), a body that failed mid-way, I/O.
    pub async fn put<S, E>(&self, path: &str, body: S) -> Result<(), ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let rel = safe_relative(path)?;
        if rel.as_os_str().is_empty() {
            return Err(ArtifactError::Refused("an artifact upload needs a file path"));
        }
        let body = body.map(|r| r.map_err(|e| e.to_string()));
        match &self.backend {
            Backend::Local(d) => d.put(path, &rel, body).await,
            #[cfg(feature = "s3")]
            Backend::S3(b) => b.put(path, &rel, body).await,
        }
    }

    /// Opens the file at `path` for streaming.
    ///
    /// # Errors
    /// An invalid path, no such file, a directory, I/O.
    pub async fn get(&self, path: &str) -> Result<Download, ArtifactError> {
        let rel = safe_relative(path)?;
        match &self.backend {
            Backend::Local(d) => d.get(path, &rel).await,
            #[cfg(feature = "s3")]
            Backend::S3(b) => b.get(path, &rel).await,
        }
    }

    /// Lists one level under `path` (the root when empty), sorted by name; a missing directory
    /// or a file lists as empty (MLflow answers `{}` for both).
    ///
    /// # Errors
    /// An invalid path, I/O.
    pub async fn list(&self, path: &str) -> Result<Vec<Entry>, ArtifactError> {
        let rel = safe_relative(path)?;
        let mut entries = match &self.backend {
            Backend::Local(d) => d.list(&rel).await?,
            #[cfg(feature = "s3")]
            Backend::S3(b) => b.list(path, &rel).await?,
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Deletes the file or the whole tree at `path`.
    ///
    /// # Errors
    /// An invalid path, the root, nothing there, I/O.
    pub async fn delete(&self, path: &str) -> Result<(), ArtifactError> {
        let rel = safe_relative(path)?;
        if rel.as_os_str().is_empty() {
            return Err(ArtifactError::Refused("refusing to delete the whole artifact store"));
        }
        match &self.backend {
            Backend::Local(d) => d.delete(path, &rel).await,
            #[cfg(feature = "s3")]
            Backend::S3(b) => b.delete(path, &rel).await,
        }
    }
}

/// Checks a client-supplied relative path (already percent-decoded once by the router) and
/// returns it as normal components only; empty segments (`a//b`) are dropped.
///
/// # Errors
/// Any of the traversal classes in the crate docs.
pub fn safe_relative(path: &str) -> Result<PathBuf, ArtifactError> {
    let refuse = || ArtifactError::InvalidPath(path.to_owned());
    if path.starts_with('/') || path.contains('\\') || path.contains('#') || path.chars().any(char::is_control) {
        return Err(refuse());
    }
    let mut out = PathBuf::new();
    for seg in path.split('/') {
        if seg.is_empty() {
            continue;
        }
        let twice = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        if matches!(seg, "." | "..")
            || matches!(twice.as_ref(), "." | "..")
            || twice.contains('/')
            || twice.contains('\\')
        {
            return Err(refuse());
        }
        out.push(seg);
    }
    // Belt and braces: only normal components may remain.
    if Path::new(&out).components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(refuse());
    }
    Ok(out)
}

/// The segments of a checked relative path, as `/`-joined text (object keys, messages).
fn key_of(rel: &Path) -> String {
    let mut s = String::new();
    for c in rel.components() {
        if !s.is_empty() {
            s.push('/');
        }
        s.push_str(&c.as_os_str().to_string_lossy());
    }
    s
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
            "a\nb",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        for ok in ["0/abc/artifacts/model/MLmodel", "a b/c.txt", "a//b.txt", "", "100%.txt", "x%"] {
            assert!(safe_relative(ok).is_ok(), "{ok}");
        }
        assert_eq!(key_of(&safe_relative("a//b/c.txt").unwrap_or_default()), "a/b/c.txt");
    }

    #[tokio::test]
    async fn local_round_trip_and_refusals() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = ArtifactStore::open(&tmp.path().join("art").to_string_lossy()).unwrap_or_else(|e| panic!("{e}"));
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("ab")), Ok(Bytes::from("c"))]);
        store.put("1/r/artifacts/x.txt", body).await.unwrap_or_else(|e| panic!("{e}"));
        let d = store.get("1/r/artifacts/x.txt").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.size, 3);
        let got: Vec<Bytes> = d.stream.map(|b| b.unwrap_or_default()).collect().await;
        assert_eq!(got.concat(), b"abc");
        let l = store.list("1/r").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l, vec![Entry { name: "artifacts".into(), is_dir: true, size: None }]);
        assert!(matches!(store.get("1/r").await, Err(ArtifactError::IsDirectory(_))));
        assert!(matches!(store.get("1/nope").await, Err(ArtifactError::NotFound(_))));
        assert!(matches!(store.delete("").await, Err(ArtifactError::Refused(_))));
        // A failed body leaves nothing behind, not even a temp file.
        let broken = futures_util::stream::iter([Ok(Bytes::from("x")), Err(std::io::Error::other("reset"))]);
        assert!(matches!(store.put("1/r/artifacts/y.txt", broken).await, Err(ArtifactError::Interrupted { .. })));
        let l = store.list("1/r/artifacts").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l, vec![Entry { name: "x.txt".into(), is_dir: false, size: Some(3) }]);
        store.delete("1/r").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(store.list("1").await.unwrap_or_else(|e| panic!("{e}")).is_empty());
        assert!(matches!(store.delete("1/r").await, Err(ArtifactError::NotFound(_))));
    }
}
