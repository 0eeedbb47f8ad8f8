//! Scoring predictions against true labels: the test-set report, `metrics.json` and the
//! confusion-matrix and ROC plots. [`score`] is what `kiln train` reports on its test rows and
//! [`evaluate`] (`kiln evaluate`, an evaluate stage of a pipeline) reports on any labelled CSV,
//! so both write the same JSON shape.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kiln_core::csv::CsvError;
use kiln_core::fs::WriteError;
use kiln_model::infer::{self, InputError, RowNaming};
use kiln_model::{BundleError, PredictError, Predictions, Task};
use serde_json::{Value, json};

use crate::metrics::{self, ClassificationReport, MetricsError, RegressionReport};
use crate::plots::{self, PlotError};

/// The true labels, encoded as the model encodes them.
#[derive(Debug, Clone, Copy)]
pub enum Truth<'a> {
    /// Class indices into `classes`.
    Classes {
        y: &'a [usize],
        classes: &'a [String],
    },
    Values(&'a [f64]),
}

/// A report on predictions.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The report as text (classification report, or regression metrics).
    pub report: String,
    /// `metrics.json`'s document: per class and averaged precision/recall/f1-score/support,
    /// accuracy, `roc_auc` for two classes, `confusion_matrix`; or r2/mae/mse/rmse.
    pub metrics: Value,
    /// The plots drawn, in drawing order.
    pub files: Vec<PathBuf>,
}

/// Errors scoring predictions.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A classifier's classes against numbers, or the other way round.
    #[error("the predictions and the labels are of different kinds")]
    Mismatch,
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Scores `pred` against `truth`; with `plot_dir` (which must exist) a classifier's confusion
/// matrix, and ROC curve for two classes, are drawn there.
///
/// # Errors
/// The kinds differ, the lengths differ, or a plot cannot be drawn.
pub fn score(pred: &Predictions, truth: Truth<'_>, plot_dir: Option<&Path>) -> Result<Scored, ScoreError> {
    let mut files = Vec::new();
    let (report, metrics) = match (pred, truth) {
        (Predictions::Classes { index, scores, .. }, Truth::Classes { y, classes }) => {
            let rep = ClassificationReport::new(y, index, classes)?;
            let mut j = rep.to_json();
            let mut text = rep.render();
            if classes.len() == 2 && y.contains(&0) && y.contains(&1) {
                let truth: Vec<bool> = y.iter().map(|&c| c == 1).collect();
                let pos: Vec<f64> = (0..scores.n_rows).map(|i| scores.get(i, 1)).collect();
                let auc = metrics::roc_auc(&truth, &pos);
                j["roc_auc"] = json!(auc);
                let _ = writeln!(text, "\nROC AUC ({}): {auc:.4}", classes[1]);
                if let Some(dir) = plot_dir {
                    let (fpr, tpr, _) = metrics::roc_curve(&truth, &pos);
                    let p = dir.join("roc_curve.png");
                    plots::roc_curve_png(&p, &fpr, &tpr, auc)?;
                    files.push(p);
                }
            }
            let cm = metrics::confusion_matrix(y, index, classes.len());
            if let Some(dir) = plot_dir {
                let p = dir.join("confusion_matrix.png");
                plots::confusion_matrix_png(&p, &cm, classes)?;
                files.push(p);
            }
            j["confusion_matrix"] = json!(cm);
            (text, j)
        }
        (Predictions::Values(p), Truth::Values(y)) => {
            let rep = RegressionReport::new(y, p)?;
            (rep.render(), rep.to_json())
        }
        _ => return Err(ScoreError::Mismatch),
    };
    Ok(Scored { report, metrics, files })
}

/// Errors of `kiln evaluate`, naming the file and, for a bad row, its line and column.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("cannot load the model `{path}`")]
    Load {
        path: PathBuf,
        #[source]
        source: BundleError,
    },
    #[error(transparent)]
    Read(#[from] CsvError),
    #[error("cannot score `{path}`")]
    Input {
        path: PathBuf,
        #[source]
        source: InputError,
    },
    #[error("cannot score `{path}`")]
    Predict {
        path: PathBuf,
        #[source]
        source: PredictError,
    },
    #[error("`{path}`: {source}")]
    Table {
        path: PathBuf,
        #[source]
        source: kiln_core::TableError,
    },
    #[error("{}, line {line}: `{column}` is empty", path.display())]
    TargetMissing { path: PathBuf, line: u64, column: String },
    #[error("{}, line {line}: `{column}` is empty or not a number", path.display())]
    TargetNotANumber { path: PathBuf, line: u64, column: String },
    #[error("{}, line {line}: class `{value}` of `{column}` is not one the model knows ({})", path.display(), known.join(", "))]
    UnknownClass { path: PathBuf, line: u64, column: String, value: String, known: Vec<String> },
    #[error("the model's task and its predictions differ")]
    Mismatch,
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("cannot create `{path}`")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

impl From<ScoreError> for EvaluateError {
    fn from(e: ScoreError) -> Self {
        match e {
            ScoreError::Mismatch => Self::Mismatch,
            ScoreError::Metrics(e) => Self::Metrics(e),
            ScoreError::Plot(e) => Self::Plot(e),
        }
    }
}

/// Loads the bundle in `model_dir`, scores the labelled CSV `input` and writes the metrics to
/// `metrics_path` (atomically, in `kiln train`'s `metrics.json` shape); with `plot_dir` the plots
/// of [`score`] are drawn there.
///
/// # Errors
/// The model or the CSV cannot be read, a row cannot be scored or has a bad label, or an output
/// cannot be written.
pub fn evaluate(
    model_dir: &Path,
    input: &Path,
    metrics_path: &Path,
    plot_dir: Option<&Path>,
) -> Result<Scored, EvaluateError> {
    let bundle = kiln_model::bundle::load(model_dir)
        .map_err(|source| EvaluateError::Load { path: model_dir.to_owned(), source })?;
    let p = &bundle.pipeline;
    let table = kiln_core::csv::read_path(input)?;
    let input_err = |source| EvaluateError::Input { path: input.to_owned(), source };
    let conformed = infer::conform(p, &table, RowNaming::CsvLine).map_err(input_err)?;
    if let Some((_, e)) = conformed.row_errors.into_iter().next() {
        return Err(input_err(e));
    }
    let pred =
        p.predict(&conformed.table).map_err(|source| EvaluateError::Predict { path: input.to_owned(), source })?;
    let target = p.task.target();
    let table_err = |source| EvaluateError::Table { path: input.to_owned(), source };
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).map_err(|source| EvaluateError::CreateDir { path: dir.to_owned(), source })?;
    }
    let scored = match (&p.task, &pred) {
        (Task::Classification { classes, .. }, Predictions::Classes { .. }) => {
            let mut y = Vec::with_capacity(table.n_rows());
            for (i, v) in table.text(target).map_err(table_err)?.into_iter().enumerate() {
                let line = table.line(i);
                let Some(v) = v else {
                    return Err(EvaluateError::TargetMissing {
                        path: input.to_owned(),
                        line,
                        column: target.to_owned(),
                    });
                };
                let Some(k) = classes.iter().position(|c| *c == v) else {
                    return Err(EvaluateError::UnknownClass {
                        path: input.to_owned(),
                        line,
                        column: target.to_owned(),
                        value: v,
                        known: classes.clone(),
                    });
                };
                y.push(k);
            }
            score(&pred, Truth::Classes { y: &y, classes }, plot_dir)?
        }
        (Task::Regression { .. }, Predictions::Values(_)) => {
            let y = table.numeric(target).map_err(table_err)?;
            if let Some(i) = y.iter().position(|x| x.is_nan()) {
                return Err(EvaluateError::TargetNotANumber {
                    path: input.to_owned(),
                    line: table.line(i),
                    column: target.to_owned(),
                });
            }
            score(&pred, Truth::Values(&y), plot_dir)?
        }
        _ => return Err(EvaluateError::Mismatch),
    };
    let mut bytes = serde_json::to_vec_pretty(&scored.metrics).map_err(|e| EvaluateError::Serialize(e.to_string()))?;
    bytes.push(b'\n');
    kiln_core::fs::write_atomic(metrics_path, &bytes)?;
    Ok(scored)
}
