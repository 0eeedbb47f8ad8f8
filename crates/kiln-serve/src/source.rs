//! Where a served model comes from: a bundle directory ([`LocalDir`]) or a model URI resolved
//! through a tracking server ([`UriSource`]: `runs:/`, `models:/`, `mlflow-artifacts:/`, …).
//! A source whose model can change (a `models:/` alias, stage or `latest`) says so with
//! [`ModelSource::follows`]; the [`crate::watch`] thread then asks it which version it names now
//! and loads new ones with [`ModelSource::load_version`]. `kiln predict` opens its model through
//! the same [`open`], so both commands accept the same URIs.

use std::path::PathBuf;
use std::sync::Arc;

use kiln_client::{FetchError, RegisteredVersion, TrackingClient};
use kiln_core::uri::{ArtifactLocation, ModelUri, UriError};
use kiln_model::{Bundle, BundleError};

/// Errors getting a model from its source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Uri(#[from] UriError),
    #[error("tracking URI `{uri}`")]
    Tracking {
        uri: String,
        #[source]
        source: kiln_client::ClientError,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl SourceError {
    /// Whether trying again later may succeed (the tracking server did not answer), rather than
    /// an answer or a file that will stay the same.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Fetch(e) if e.is_transient())
    }
}

/// Where a loaded model came from, for `/version`, `/metrics` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// What the server was started with (`-m`): a path or a URI.
    pub source: String,
    /// The registered model version a `models:/` URI resolved to.
    pub registered: Option<RegisteredVersion>,
    /// Where the files came from (an artifact URI or a path).
    pub location: String,
}

/// A bundle and where it came from.
#[derive(Debug)]
pub struct Fetched {
    pub bundle: Bundle,
    pub origin: Origin,
}

/// A place a model can be loaded from.
pub trait ModelSource: Send + Sync {
    /// How to name the source in logs and errors (a path or a URI).
    fn describe(&self) -> String;

    /// Loads the bundle. Blocking: call it before serving or off the async threads.
    ///
    /// # Errors
    /// The model cannot be found, resolved, downloaded, read or verified.
    fn load(&self) -> Result<Fetched, SourceError>;

    /// Whether the model it names can change while serving (a registry alias, stage or `latest`).
    fn follows(&self) -> bool {
        false
    }

    /// The registered version the source names now (one request to the tracking server), or
    /// `None` for a source that names no registered version.
    ///
    /// # Errors
    /// The tracking server cannot be reached or refuses.
    fn current_version(&self) -> Result<Option<RegisteredVersion>, SourceError> {
        Ok(None)
    }

    /// Loads `version` (one [`current_version`](Self::current_version) answered). Sources that
    /// follow nothing load what they always load.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    fn load_version(&self, version: &RegisteredVersion) -> Result<Fetched, SourceError> {
        let _ = version;
        self.load()
    }

    /// Drops a downloaded copy that failed after loading (its smoke prediction), so that the
    /// next try downloads it again. Nothing for sources read in place.
    fn forget(&self, bundle_dir: &std::path::Path) {
        let _ = bundle_dir;
    }
}

/// A bundle directory on local disk (what `kiln train` writes).
#[derive(Debug, Clone)]
pub struct LocalDir(pub PathBuf);

impl ModelSource for LocalDir {
    fn describe(&self) -> String {
        format!("`{}`", self.0.display())
    }

    fn load(&self) -> Result<Fetched, SourceError> {
        let bundle = kiln_model::bundle::load(&self.0)?;
        let shown = self.0.display().to_string();
        Ok(Fetched { bundle, origin: Origin { source: shown.clone(), registered: None, location: shown } })
    }
}

/// A model URI, resolved through a tracking server where it needs one and downloaded into a
/// cache directory when its files are remote.
pub struct UriSource {
    uri: ModelUri,
    client: Option<TrackingClient>,
    cache: PathBuf,
}

impl UriSource {
    /// # Errors
    /// A tracking URI that is not `http://`.
    pub fn new(uri: ModelUri, tracking_uri: Option<&str>, cache: PathBuf) -> Result<Self, SourceError> {
        let client = tracking_uri
            .map(|t| TrackingClient::new(t).map_err(|source| SourceError::Tracking { uri: t.to_owned(), source }))
            .transpose()?;
        Ok(Self { uri, client, cache })
    }

    fn load_from(&self, local: kiln_client::LocalModel) -> Result<Fetched, SourceError> {
        let bundle = match kiln_model::bundle::load(&local.dir) {
            Ok(b) => b,
            Err(e) => {
                // A downloaded copy that does not load is dropped, so that a retry (after the
                // files were fixed at the same location) downloads them again.
                if local.downloaded && local.dir.starts_with(&self.cache) {
                    let _ = std::fs::remove_dir_all(&local.dir);
                }
                return Err(e.into());
            }
        };
        Ok(Fetched {
            bundle,
            origin: Origin {
                source: self.uri.to_string(),
                registered: local.registered,
                location: local.location.to_string(),
            },
        })
    }
}

impl ModelSource for UriSource {
    fn describe(&self) -> String {
        format!("`{}`", self.uri)
    }

    fn load(&self) -> Result<Fetched, SourceError> {
        let local = kiln_client::fetch(self.client.as_ref(), &self.uri, &self.cache)?;
        self.load_from(local)
    }

    fn follows(&self) -> bool {
        self.uri.moves() && self.client.is_some()
    }

    fn current_version(&self) -> Result<Option<RegisteredVersion>, SourceError> {
        match (&self.uri, &self.client) {
            (ModelUri::Registered { name, selector }, Some(c)) => {
                let version = c.version_of(name, selector)?;
                Ok(Some(RegisteredVersion { name: name.clone(), version }))
            }
            _ => Ok(None),
        }
    }

    fn forget(&self, bundle_dir: &std::path::Path) {
        if bundle_dir.starts_with(&self.cache) {
            let _ = std::fs::remove_dir_all(bundle_dir);
        }
    }

    fn load_version(&self, version: &RegisteredVersion) -> Result<Fetched, SourceError> {
        let Some(c) = &self.client else { return self.load() };
        let resolved = c.resolve_version(&version.name, version.version)?;
        let local = kiln_client::fetch::materialize(Some(c), resolved, &self.cache)?;
        self.load_from(local)
    }
}

/// The source for `-m MODEL`: a plain path is a [`LocalDir`] (no tracking server involved),
/// anything else a [`UriSource`] downloading into `cache`.
///
/// # Errors
/// A malformed URI, or a URI that needs a tracking server when none is given.
pub fn open(model: &str, tracking_uri: Option<&str>, cache: PathBuf) -> Result<Arc<dyn ModelSource>, SourceError> {
    let uri = ModelUri::parse(model)?;
    if let ModelUri::Artifacts(ArtifactLocation::Local(p)) = &uri {
        return Ok(Arc::new(LocalDir(p.clone())));
    }
    if uri.needs_tracking_server() && tracking_uri.is_none() {
        return Err(FetchError::NoTrackingServer { uri: uri.to_string() }.into());
    }
    Ok(Arc::new(UriSource::new(uri, tracking_uri, cache)?))
}

/// The model's default name under `/v2/models/{name}`: a registered model's name, a logged
/// model's id, else the last path segment (`model` for `runs:/…/model`, the directory's name).
#[must_use]
pub fn default_name(model: &str) -> String {
    let last = |p: &str| p.rsplit('/').find(|s| !s.is_empty()).map(str::to_owned);
    let name = match ModelUri::parse(model) {
        Ok(ModelUri::Registered { name, .. }) => Some(name),
        Ok(ModelUri::LoggedModel { model_id }) => Some(model_id),
        Ok(ModelUri::Run { run_id, path }) => last(&path).or(Some(run_id)),
        Ok(ModelUri::Artifacts(ArtifactLocation::Local(p))) => {
            std::path::absolute(&p).ok().and_then(|a| a.file_name().map(|n| n.to_string_lossy().into_owned()))
        }
        Ok(ModelUri::Artifacts(ArtifactLocation::Proxied { path, .. })) => last(&path),
        Ok(ModelUri::Artifacts(ArtifactLocation::S3 { prefix, bucket })) => last(&prefix).or(Some(bucket)),
        Err(_) => None,
    };
    name.unwrap_or_else(|| "model".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sources() {
        assert_eq!(default_name("models:/spam@champion"), "spam");
        assert_eq!(default_name("models:/spam/3"), "spam");
        assert_eq!(default_name("runs:/abc/model"), "model");
        assert_eq!(default_name("runs:/abc"), "abc");
        assert_eq!(default_name("models:/m-123"), "m-123");
        assert_eq!(default_name("out/iris/model"), "model");
        assert_eq!(default_name("mlflow-artifacts:/1/r/artifacts/clf"), "clf");

        let cache = std::env::temp_dir();
        assert!(!open("out/model", None, cache.clone()).unwrap().follows());
        let err = open("models:/spam@champion", None, cache.clone()).err().unwrap();
        assert!(err.to_string().contains("--tracking-uri"), "{err}");
        assert!(matches!(open("models:/spam/prod", None, cache.clone()), Err(SourceError::Uri(_))));
        let follows = |m: &str| open(m, Some("http://127.0.0.1:9"), cache.clone()).unwrap().follows();
        assert!(follows("models:/spam@champion"));
        assert!(follows("models:/spam/Production"));
        assert!(follows("models:/spam/latest"));
        assert!(!follows("models:/spam/3"));
        assert!(!follows("runs:/abc/model"));
        assert!(matches!(open("models:/x/1", Some("sqlite:///x.db"), cache), Err(SourceError::Tracking { .. })));
    }
}
