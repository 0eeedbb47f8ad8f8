//! Getting a model's files onto local disk: [`fetch`] resolves a [`ModelUri`] (see
//! [`crate::resolve`]) and makes its directory local.
//!
//! - A local path or `file://` URI is used in place.
//! - `mlflow-artifacts:/…` is downloaded through the tracking server's artifact proxy, as the
//!   `mlflow` client does: one `GET /api/2.0/mlflow-artifacts/artifacts?path=` per directory,
//!   one `GET …/artifacts/<path>` per file, streamed to disk. Listed names must be plain file
//!   names (a server cannot make kiln write outside the download), and the tree is bounded.
//! - `s3://…` is not read directly (kiln holds no S3 credentials on the client side); point the
//!   server's `--artifacts-destination` at the bucket and use the proxied URIs.
//!
//! Downloads land in a cache directory (`$KILN_CACHE_DIR/models`, default
//! `~/.cache/kiln/models`), one directory per artifact location and server, named by a hash of
//! both. A download is written into a temporary directory beside it and renamed into place when
//! complete, so a killed process never leaves half a model where a later one would use it, and
//! two processes fetching the same model at once both end with the complete one. A location
//! already in the cache is used as it is: registered versions and run artifacts do not change
//! once written (delete the directory to force a fresh download).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kiln_core::uri::{ArtifactLocation, ModelUri, is_plain_name};
use serde_json::Value;

use crate::resolve::{FetchError, RegisteredVersion, Resolved};
use crate::{ClientError, TrackingClient, url_encode};

/// The environment variable naming kiln's cache directory.
pub const KILN_CACHE_DIR: &str = "KILN_CACHE_DIR";
/// Most files and directories one model download may hold.
const MAX_FILES: usize = 10_000;
/// Deepest directory nesting one model download may have.
const MAX_DEPTH: usize = 32;

/// A model's directory on local disk.
#[derive(Debug, Clone)]
pub struct LocalModel {
    /// The directory holding `MLmodel`.
    pub dir: PathBuf,
    /// Where its files came from.
    pub location: ArtifactLocation,
    /// The registered version a registry URI resolved to.
    pub registered: Option<RegisteredVersion>,
    /// Whether the files were downloaded (or taken from the cache) rather than used in place.
    pub downloaded: bool,
}

/// `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`, else a `kiln` directory
/// in the system's temporary directory.
#[must_use]
pub fn default_cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var(KILN_CACHE_DIR)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("kiln")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("kiln")))
        .unwrap_or_else(|| std::env::temp_dir().join("kiln"))
}

/// Resolves `uri` (through `client` when it needs a tracking server) and makes its files local,
/// downloading into `cache` when they are remote.
///
/// # Errors
/// See [`FetchError`]; a registry or run URI without a client is
/// [`FetchError::NoTrackingServer`].
pub fn fetch(client: Option<&TrackingClient>, uri: &ModelUri, cache: &Path) -> Result<LocalModel, FetchError> {
    let resolved = match (uri, client) {
        (ModelUri::Artifacts(a), _) => Resolved { location: a.clone(), registered: None },
        (_, Some(c)) => c.resolve(uri)?,
        (_, None) => return Err(FetchError::NoTrackingServer { uri: uri.to_string() }),
    };
    materialize(client, resolved, cache)
}

/// Makes the files of an already resolved model local (see [`fetch`]).
///
/// # Errors
/// See [`FetchError`].
pub fn materialize(
    client: Option<&TrackingClient>,
    resolved: Resolved,
    cache: &Path,
) -> Result<LocalModel, FetchError> {
    let Resolved { location, registered } = resolved;
    let (dir, downloaded) = match &location {
        ArtifactLocation::Local(p) => (p.clone(), false),
        ArtifactLocation::Proxied { authority, path } => {
            let own;
            let c = match (authority, client) {
                (Some(a), _) => {
                    own = proxy_client(a, &location)?;
                    &own
                }
                (None, Some(c)) => c,
                (None, None) => return Err(FetchError::NoTrackingServer { uri: location.to_string() }),
            };
            let key = cache_key(&c.base, &location);
            (cached(cache, &key, &location, |dest| download_proxied(c, &location, path, dest))?, true)
        }
        ArtifactLocation::S3 { .. } => {
            return Err(FetchError::S3 {
                location: location.to_string(),
                message: "kiln does not read S3 from the client side; let the tracking server proxy the bucket \
                          (kiln server --artifacts-destination s3://…) and use the mlflow-artifacts:/ URIs it \
                          answers"
                    .to_owned(),
            });
        }
    };
    Ok(LocalModel { dir, location, registered, downloaded })
}

fn proxy_client(authority: &str, location: &ArtifactLocation) -> Result<TrackingClient, FetchError> {
    TrackingClient::new(&format!("http://{authority}"))
        .map_err(|source| FetchError::Unreachable { uri: location.to_string(), source })
}

/// Whether `at` holds any file (an empty or missing directory does not).
pub(crate) fn has_files(client: &TrackingClient, at: &ArtifactLocation) -> Result<bool, FetchError> {
    match at {
        ArtifactLocation::Local(p) => Ok(p.is_file() || fs::read_dir(p).is_ok_and(|mut d| d.next().is_some())),
        ArtifactLocation::Proxied { authority: None, path } => Ok(!list(client, at, path)?.is_empty()),
        ArtifactLocation::Proxied { authority: Some(a), path } => {
            Ok(!list(&proxy_client(a, at)?, at, path)?.is_empty())
        }
        // Not read from here; the download says so.
        ArtifactLocation::S3 { .. } => Ok(true),
    }
}

/// The cache directory name of `location` as served by `base`: a hash, because locations are
/// long and hold characters file names cannot.
fn cache_key(base: &str, location: &ArtifactLocation) -> String {
    let h = blake3::hash(format!("{base}\n{location}").as_bytes());
    h.to_hex()[..32].to_owned()
}

/// `cache/models/key`, filled by `fill` into a temporary directory and renamed into place when
/// complete; an existing one is used as it is.
fn cached(
    cache: &Path,
    key: &str,
    location: &ArtifactLocation,
    fill: impl FnOnce(&Path) -> Result<(), FetchError>,
) -> Result<PathBuf, FetchError> {
    let root = cache.join("models");
    let dest = root.join(key);
    if dest.is_dir() {
        tracing::debug!(%location, dir = %dest.display(), "model files already in the cache");
        return Ok(dest);
    }
    let write_err = |path: &Path, source| FetchError::Write {
        location: location.to_string(),
        path: path.display().to_string(),
        source,
    };
    fs::create_dir_all(&root).map_err(|e| write_err(&root, e))?;
    remove_abandoned(&root);
    let tmp = tempfile::Builder::new().prefix(".download-").tempdir_in(&root).map_err(|e| write_err(&root, e))?;
    fill(tmp.path())?;
    let staged = tmp.keep();
    match fs::rename(&staged, &dest) {
        Ok(()) => {
            tracing::info!(%location, dir = %dest.display(), "model downloaded");
            Ok(dest)
        }
        // Another process finished the same download first: theirs is complete too.
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(&staged);
            Ok(dest)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staged);
            Err(write_err(&dest, e))
        }
    }
}

/// Removes temporary download directories a killed process left behind (older than an hour,
/// so a download still running in another process is left alone). Best effort.
fn remove_abandoned(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(3600)));
        if old && e.file_name().to_string_lossy().starts_with(".download-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// One entry of the proxy's one-level listing.
struct Listed {
    name: String,
    is_dir: bool,
}

fn artifacts_url(client: &TrackingClient) -> String {
    format!("{}/api/2.0/mlflow-artifacts/artifacts", client.base)
}

fn unreachable(location: &ArtifactLocation, method: &'static str, url: &str, e: &dyn std::fmt::Display) -> FetchError {
    FetchError::Unreachable {
        uri: location.to_string(),
        source: ClientError::Http { method, url: url.to_owned(), message: e.to_string() },
    }
}

/// `GET …/artifacts?path=<path>`: one level under `path` (MLflow answers `{}` for a missing
/// directory and for a file).
fn list(client: &TrackingClient, location: &ArtifactLocation, path: &str) -> Result<Vec<Listed>, FetchError> {
    let url = format!("{}?path={}", artifacts_url(client), url_encode(path));
    let mut resp = client.agent.get(&url).call().map_err(|e| unreachable(location, "GET", &url, &e))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(|e| unreachable(location, "GET", &url, &e))?;
    if status != 200 {
        return Err(FetchError::from_client(
            &location.to_string(),
            ClientError::Status { method: "GET", url, status, body: text },
        ));
    }
    let v: Value = serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text })
        .map_err(|e| unreachable(location, "GET", &url, &format!("not JSON: {e}")))?;
    let files = v["files"].as_array().map(Vec::as_slice).unwrap_or_default();
    files
        .iter()
        .map(|f| {
            let name = f["path"].as_str().unwrap_or_default();
            if !is_plain_name(name) {
                return Err(FetchError::UnsafeName { location: location.to_string(), name: name.to_owned() });
            }
            Ok(Listed { name: name.to_owned(), is_dir: f["is_dir"].as_bool().unwrap_or(false) })
        })
        .collect()
}

/// Downloads the tree under the proxy path `root` into `dest`.
fn download_proxied(
    client: &TrackingClient,
    location: &ArtifactLocation,
    root: &str,
    dest: &Path,
) -> Result<(), FetchError> {
    let too_large =
        || FetchError::TooLarge { location: location.to_string(), max_files: MAX_FILES, max_depth: MAX_DEPTH };
    let mut pending = vec![(root.to_owned(), dest.to_path_buf(), 0usize)];
    let mut count = 0usize;
    while let Some((remote, local, depth)) = pending.pop() {
        let entries = list(client, location, &remote)?;
        if depth == 0 && entries.is_empty() {
            return Err(FetchError::Empty { location: location.to_string() });
        }
        for e in entries {
            count += 1;
            if count > MAX_FILES {
                return Err(too_large());
            }
            let r = if remote.is_empty() { e.name.clone() } else { format!("{remote}/{}", e.name) };
            let l = local.join(&e.name);
            if e.is_dir {
                if depth + 1 > MAX_DEPTH {
                    return Err(too_large());
                }
                fs::create_dir(&l).map_err(|source| FetchError::Write {
                    location: location.to_string(),
                    path: l.display().to_string(),
                    source,
                })?;
                pending.push((r, l, depth + 1));
            } else {
                download_file(client, location, &r, &l)?;
            }
        }
    }
    Ok(())
}

/// `GET …/artifacts/<path>`, streamed into `to`.
fn download_file(
    client: &TrackingClient,
    location: &ArtifactLocation,
    path: &str,
    to: &Path,
) -> Result<(), FetchError> {
    let encoded: Vec<String> = path.split('/').map(url_encode).collect();
    let url = format!("{}/{}", artifacts_url(client), encoded.join("/"));
    let mut resp = client.agent.get(&url).call().map_err(|e| unreachable(location, "GET", &url, &e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        return Err(FetchError::from_client(
            &location.to_string(),
            ClientError::Status { method: "GET", url, status, body },
        ));
    }
    let write_err =
        |source| FetchError::Write { location: location.to_string(), path: to.display().to_string(), source };
    let mut file = fs::File::create(to).map_err(write_err)?;
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreachable(location, "GET", &url, &e)),
        };
        file.write_all(&buf[..n]).map_err(write_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_differ_by_server_and_location() {
        let a = ArtifactLocation::parse("mlflow-artifacts:/1/r/artifacts/model").unwrap();
        let b = ArtifactLocation::parse("mlflow-artifacts:/1/r/artifacts/model2").unwrap();
        let k = cache_key("http://h:1", &a);
        assert_eq!(k.len(), 32);
        assert_eq!(k, cache_key("http://h:1", &a));
        assert_ne!(k, cache_key("http://h:2", &a));
        assert_ne!(k, cache_key("http://h:1", &b));
    }

    #[test]
    fn a_failed_download_leaves_nothing_and_a_complete_one_is_reused() {
        let d = tempfile::tempdir().unwrap();
        let loc = ArtifactLocation::Local("/x".into());
        let err = cached(d.path(), "k", &loc, |dir| {
            fs::write(dir.join("half"), b"x").unwrap();
            Err(FetchError::Empty { location: "x".into() })
        });
        assert!(err.is_err());
        assert_eq!(fs::read_dir(d.path().join("models")).unwrap().count(), 0);
        let dir = cached(d.path(), "k", &loc, |dir| {
            fs::write(dir.join("MLmodel"), b"x").map_err(|source| FetchError::Write {
                location: String::new(),
                path: String::new(),
                source,
            })
        })
        .unwrap();
        assert!(dir.join("MLmodel").is_file());
        // A second fetch does not download again.
        let again = cached(d.path(), "k", &loc, |_| panic!("downloaded twice")).unwrap();
        assert_eq!(again, dir);
    }

    #[test]
    fn registry_uris_need_a_server() {
        let d = tempfile::tempdir().unwrap();
        let uri = ModelUri::parse("models:/spam@champion").unwrap();
        let err = fetch(None, &uri, d.path()).unwrap_err();
        assert!(matches!(err, FetchError::NoTrackingServer { .. }), "{err}");
        assert!(err.to_string().contains("--tracking-uri"), "{err}");
        let local = fetch(None, &ModelUri::parse("some/dir").unwrap(), d.path()).unwrap();
        assert_eq!(local.dir, PathBuf::from("some/dir"));
        assert!(!local.downloaded);
        let s3 = fetch(None, &ModelUri::parse("s3://b/m").unwrap(), d.path()).unwrap_err();
        assert!(s3.to_string().contains("artifacts-destination"), "{s3}");
    }
}
