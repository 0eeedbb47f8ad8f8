//! Where a served model comes from. A bundle directory today; `runs:/` and `models:/` URIs
//! (resolved through a tracking server) implement the same trait when the registry lands, and a
//! source that follows an alias hands new versions to `AppState::swap`.

use std::path::PathBuf;

use kiln_model::{Bundle, BundleError};

/// Errors getting a model from its source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// A place a model can be loaded from.
pub trait ModelSource: Send + Sync {
    /// How to name the source in logs and errors (a path or a URI).
    fn describe(&self) -> String;

    /// Loads the bundle. Blocking: call it before serving or off the async threads.
    ///
    /// # Errors
    /// The model cannot be found, read or verified.
    fn load(&self) -> Result<Bundle, SourceError>;
}

/// A bundle directory on local disk (what `kiln train` writes).
#[derive(Debug, Clone)]
pub struct LocalDir(pub PathBuf);

impl ModelSource for LocalDir {
    fn describe(&self) -> String {
        format!("`{}`", self.0.display())
    }

    fn load(&self) -> Result<Bundle, SourceError> {
        Ok(kiln_model::bundle::load(&self.0)?)
    }
}
