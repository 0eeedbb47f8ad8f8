//! kiln-model: the model bundle and everything needed to predict with it.
//!
//! - [`bundle`]: a model directory — an MLflow-style `MLmodel` file plus `model.json`, the
//!   fitted [`Pipeline`] as versioned, checksummed serde data. Saving is atomic; loading runs no
//!   code (unlike pickle) and rejects truncated, tampered or newer-format bundles.
//! - [`pipeline`]: [`Pipeline`] = input columns → [`preprocess::Step`]s → features →
//!   [`estimator::FittedEstimator`] → [`Predictions`].
//! - [`infer`]: the inference path `kiln predict` and `kiln serve` share: conform input to the
//!   signature, predict, render `{"predictions": …}`.
//! - [`preprocess`]: fitted text vectorisers, imputers, scalers and one-hot encoders.
//! - [`estimator`]: fitted estimators as plain data, with predict.
//! - [`matrix`]: dense and sparse feature matrices.
//!
//! Training lives in `kiln-train`; this crate has no training code, so a scoring server built
//! on it stays small.

pub mod bundle;
pub mod estimator;
pub mod infer;
pub mod matrix;
pub mod pipeline;
pub mod preprocess;

pub use bundle::{Bundle, BundleError};
pub use pipeline::{InputColumn, InputKind, Pipeline, Predictions, Task};

/// Below this many rows, predict works on the calling thread: handing a small batch to rayon's
/// pool (a cross-thread wake-up, several microseconds) costs more than the work, and a server
/// scoring single rows pays it on every request.
pub(crate) const PARALLEL_MIN_ROWS: usize = 512;

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
