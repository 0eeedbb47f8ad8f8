//! kiln-cache: DVC-compatible data versioning (`shared/spec/pipelines.md` §4–6). Hashes files
//! and directories exactly as DVC 3 does, keeps the content-addressed cache in DVC's layout,
//! reads and writes `.dvc` files, and implements `init`, `add`, `status` and `checkout` on them,
//! so a repository works with kiln and `dvc` alike.

use std::path::{Path, PathBuf};

pub mod dvcfile;
pub mod hash;
pub mod md5;
pub mod odb;
pub mod repo;
pub mod state;

pub use repo::{Change, Repo};

/// Errors of data versioning, each naming the path or object concerned.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("`{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{0}` is not valid UTF-8; DVC's listings and files are text")]
    NotUtf8(PathBuf),
    #[error("`{0}` is not an md5 hash")]
    BadHash(String),
    #[error("the cache has no object {0}")]
    Missing(String),
    #[error(
        "cache object {md5} at `{path}` does not match its hash: refused (remove it and fetch or add the data again)"
    )]
    Corrupt { md5: String, path: PathBuf },
    #[error("the data received for object {md5} hashes to {got}: refused, nothing stored in the cache")]
    Mismatch { md5: String, got: String },
    #[error("`{path}` changed while it was being added")]
    Changed { path: PathBuf },
    #[error("invalid .dvc file `{path}`: {message}")]
    DvcFile { path: PathBuf, message: String },
    #[error("`{0}` is not inside a DVC repository (no .dvc directory above it); run `kiln init`")]
    NotARepo(PathBuf),
    #[error("`{0}` already has a .dvc directory")]
    AlreadyInitialized(PathBuf),
    #[error("`{0}` is outside the repository or inside .dvc/.git")]
    Outside(PathBuf),
    #[error("output `{0}` is already tracked by git; `git rm -r --cached` it first")]
    TrackedByGit(PathBuf),
    #[error(
        "`{0}` was modified and its content is not in the cache: checking out would lose it (add it, or use --force)"
    )]
    WouldLose(PathBuf),
}

/// Writes `data` to `path` through a temp file in the same directory and a rename, so a killed
/// process leaves the old file or the new one, never half of one (kiln-core's one writer).
///
/// # Errors
/// The directory or file cannot be written.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), CacheError> {
    kiln_core::fs::write_atomic(path, data).map_err(|e| CacheError::Io { path: e.path, source: e.source })
}
