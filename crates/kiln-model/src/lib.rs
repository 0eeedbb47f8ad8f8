//! kiln-model: the model bundle and everything needed to predict with it.
//!
//! - [`bundle`]: a model directory — an MLflow-style `MLmodel` file plus `model.json`, the
//!   fitted [`Pipeline`] as versioned, checksummed serde data. Saving is atomic; loading runs no
//!   code (unlike pickle) and rejects truncated, tampered or newer-format bundles.
//! - [`pipeline`]: [`Pipeline`] = input columns → [`preprocess::Step`]s → features →
//!   [`estimator::FittedEstimator`] → [`Predictions`].
//! - [`preprocess`]: fitted text vectorisers, imputers, scalers and one-hot encoders.
//! - [`estimator`]: fitted estimators as plain data, with predict.
//! - [`matrix`]: dense and sparse feature matrices.
//!
//! Training lives in `kiln-train`; this crate has no training code, so a scoring server built
//! on it stays small.

pub mod bundle;
pub mod estimator;
pub mod matrix;
pub mod pipeline;
pub mod preprocess;

pub use bundle::{Bundle, BundleError};
pub use pipeline::{InputColumn, InputKind, Pipeline, Predictions, Task};

/// Errors turning input rows into predictions.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Table(#[from] kiln_core::TableError),
    #[error("column `{column}`, line {line}: the value is missing and the model has no imputer for it")]
    Missing { column: String, line: u64 },
    #[error("the model would have {0} features, more than kiln supports")]
    TooWide(usize),
}
