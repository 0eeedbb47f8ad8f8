//! kiln-remote: DVC-compatible remotes (`shared/spec/pipelines.md` §11).
//!
//! * [`config`]: the `['remote "name"']` sections of `.dvc/config` and `.dvc/config.local`
//!   (read, and edited line by line as `dvc remote add|remove|default|modify` would), resolved
//!   into a [`config::RemoteSpec`].
//! * [`Remote`]: one opened remote, a local directory or (cargo feature `s3`) an S3-compatible
//!   bucket, holding objects exactly in DVC 3's cache layout (`<url>/files/md5/ab/cdef…`).
//! * [`outputs`]: the outputs whose objects move: every cached output of the workspace's `.dvc`
//!   files and `dvc.lock`, or those the targets name.
//! * [`transfer`]: `push`, `fetch` and `pull` (fetch, then checkout). Transfers run in
//!   parallel, only for objects the other side lacks (so a rerun after a kill completes the
//!   rest), and every object is checked against its md5 on the way: a corrupt local object is
//!   not pushed, a corrupt download never enters the cache.

use std::path::{Path, PathBuf};

pub mod config;
pub mod outputs;
mod remote;
pub mod transfer;

pub use config::RemoteSpec;
pub use remote::Remote;
pub use transfer::{Summary, fetch, pull, push};

/// Errors of remotes, each naming the remote, object or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Cache(#[from] kiln_cache::CacheError),
    #[error(transparent)]
    Pipeline(#[from] kiln_pipeline::PipelineError),
    #[error("`{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no remote specified in {}: set a default one with `kiln remote default NAME` (or `kiln remote add -d NAME URL`), or pass `-r NAME`",
        config.display()
    )]
    NoRemote { config: PathBuf },
    #[error("remote '{name}' doesn't exist in {} (known: {known})", config.display())]
    UnknownRemote { name: String, config: PathBuf, known: String },
    #[error("remote '{name}' already exists in {}; use --force to overwrite it", config.display())]
    RemoteExists { name: String, config: PathBuf },
    #[error("remote '{name}' has no `url` in {}", config.display())]
    NoUrl { name: String, config: PathBuf },
    #[error("remote '{name}': unsupported URL `{url}` (kiln speaks to local directories and s3://bucket/prefix)")]
    UnsupportedUrl { name: String, url: String },
    #[error("remote '{name}': option `{key}` is not one DVC knows for this remote (known: {known})")]
    UnknownOption { name: String, key: String, known: String },
    #[error("remote '{name}': {message}")]
    Setup { name: String, message: String },
    #[error("target `{0}` is neither a .dvc file, an output nor a stage of dvc.yaml")]
    UnknownTarget(String),
    #[error("object {md5} ({name}) is not on remote '{remote}'")]
    NotOnRemote { md5: String, name: String, remote: String },
    #[error("object {md5} ({name}) from remote '{remote}' is corrupt")]
    Corrupt {
        md5: String,
        name: String,
        remote: String,
        #[source]
        source: Box<kiln_cache::CacheError>,
    },
    #[cfg(feature = "s3")]
    #[error("remote '{remote}': cannot {op} `{key}`")]
    Store {
        remote: String,
        op: &'static str,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("the transfer pool could not start")]
    Pool(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl RemoteError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }
}

/// The remote key of object `md5` (a `.dir` listing keeps its suffix): `files/md5/ab/cdef…`,
/// DVC 3's layout. Anything that is not an md5 is refused, so a crafted `.dvc` file cannot
/// name a path outside the remote.
///
/// # Errors
/// `md5` is not 32 hex digits (with an optional `.dir`).
pub fn object_key(md5: &str) -> Result<String, kiln_cache::CacheError> {
    let hexpart = md5.strip_suffix(".dir").unwrap_or(md5);
    if hexpart.len() != 32 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(kiln_cache::CacheError::BadHash(md5.to_owned()));
    }
    Ok(format!("files/md5/{}/{}", &md5[..2], &md5[2..]))
}

/// DVC's default for network transfers is four per core; past a few dozen a single machine
/// gains nothing (and a local remote is bound by the disk).
#[must_use]
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (4 * cores).clamp(4, 32)
}

/// `a/./b/../c` as `a/c`, without touching the filesystem: a remote's directory may not exist
/// yet, and lock paths may be written relative to a `wdir`.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dvc3_layout_and_refuse_non_hashes() {
        assert_eq!(
            object_key("b1946ac92492d2347c6235b4d2611184").unwrap(),
            "files/md5/b1/946ac92492d2347c6235b4d2611184"
        );
        assert_eq!(
            object_key("2a0f3f5e358b7f8ff3d4fa660d0617ef.dir").unwrap(),
            "files/md5/2a/0f3f5e358b7f8ff3d4fa660d0617ef.dir"
        );
        assert!(object_key("../../../../etc/passwd0000000000").is_err());
        assert!(object_key("b1946ac92492d2347c6235b4d261118").is_err());
    }
}
