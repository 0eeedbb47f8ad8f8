//! kiln-train: from a `kiln.yaml` and a CSV to a fitted, evaluated model bundle.
//!
//! - [`config`]: `kiln.yaml`, defaults, `-S` overrides, validation ([`config::Config`]).
//! - [`prep`]: fitting the preprocessing steps on training rows only.
//! - [`estimators`]: hyper-parameters and `fit` for each estimator ([`estimators::ModelKind`]).
//! - [`select`]: stratified train/test split and k-fold indices.
//! - [`csvprep`]: `kiln csv clean|split`, pipeline stages that copy CSV rows (the split is [`select`]'s).
//! - [`train`]: the whole run: split, grid search, refit, evaluate, write ([`train::train`]).
//! - [`evaluate`]: scoring predictions against labels (report, `metrics.json`, confusion and ROC
//!   plots), for `kiln train`'s test rows and for `kiln evaluate`.
//! - [`metrics`] and [`plots`]: scikit-learn-compatible metrics and PNG plots.
//! - [`charts`]: general line, point, heat-map and bar charts for pipeline plots (`kiln plots show`).
pub mod charts;
pub mod config;
pub mod csvprep;
pub mod estimators;
pub mod evaluate;
pub mod metrics;
pub mod plots;
pub mod prep;
pub mod select;
pub mod train;

use std::path::PathBuf;

/// Errors of a training run. Each names what and where.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Csv(#[from] kiln_core::csv::CsvError),
    #[error(transparent)]
    Table(#[from] kiln_core::TableError),
    #[error("target column `{column}`, line {line}: the value is missing")]
    TargetMissing { column: String, line: u64 },
    #[error("target column `{column}`, line {line}: class `{value}` does not occur in the training data")]
    UnknownTestClass { column: String, line: u64, value: String },
    #[error("target column `{column}` has only one class (`{class}`); a classifier needs at least two")]
    OneClass { column: String, class: String },
    #[error(
        "too few rows: {train} for training and {test} for testing (need at least {needed} training rows and 1 test row)"
    )]
    TooFewRows { train: usize, test: usize, needed: usize },
    #[error("no feature columns: list them under data.text, data.numeric or data.categorical")]
    NoFeatures,
    #[error("numeric column `{0}` has no values in the training rows")]
    AllMissing(String),
    #[error("text column `{0}`: the vocabulary is empty after stop words and min_df/max_df; loosen them")]
    EmptyVocabulary(String),
    #[error("cannot read the stop-word file `{path}`")]
    StopWords {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Param(#[from] estimators::ParamError),
    #[error(transparent)]
    Fit(#[from] estimators::FitError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error(transparent)]
    Plot(#[from] plots::PlotError),
    #[error(transparent)]
    Predict(#[from] kiln_model::PredictError),
    #[error(transparent)]
    Bundle(#[from] kiln_model::BundleError),
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize: {0}")]
    Serialize(String),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<kiln_core::fs::WriteError> for TrainError {
    fn from(e: kiln_core::fs::WriteError) -> Self {
        Self::Write { path: e.path, source: e.source }
    }
}

impl From<evaluate::ScoreError> for TrainError {
    fn from(e: evaluate::ScoreError) -> Self {
        match e {
            evaluate::ScoreError::Mismatch => Self::Internal("prediction and target kinds differ"),
            evaluate::ScoreError::Metrics(e) => Self::Metrics(e),
            evaluate::ScoreError::Plot(e) => Self::Plot(e),
        }
    }
}
