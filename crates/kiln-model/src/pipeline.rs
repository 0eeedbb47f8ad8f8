//! The fitted pipeline: input columns → [`Step`]s → features → estimator → predictions.

use kiln_core::Table;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::PredictError;
use crate::estimator::{FittedEstimator, RawOutput};
use crate::matrix::{CsrMatrix, DenseMatrix, Features};
use crate::preprocess::{Step, StepInput};

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Labels, sorted as scikit-learn's `classes_` (string order).
    Classification {
        target: String,
        classes: Vec<String>,
    },
    Regression {
        target: String,
    },
}

impl Task {
    #[must_use]
    pub fn target(&self) -> &str {
        match self {
            Self::Classification { target, .. } | Self::Regression { target } => target,
        }
    }
}

/// How a model input column is read, for the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Numeric,
    Categorical,
    Text,
}

/// One input column of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputColumn {
    pub name: String,
    pub kind: InputKind,
    /// Whether a value may be missing (an imputer fills it).
    pub optional: bool,
}

/// A fitted pipeline: everything needed to turn an input table into predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub task: Task,
    pub inputs: Vec<InputColumn>,
    pub steps: Vec<Step>,
    pub estimator: FittedEstimator,
}

/// Predictions for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    Classes {
        /// Index into the task's classes, per row.
        index: Vec<usize>,
        /// One column per class: probabilities when `is_proba`, else decision values
        /// (LinearSVC). Either ranks rows for ROC curves.
        scores: DenseMatrix,
        is_proba: bool,
    },
    Values(Vec<f64>),
}

impl Predictions {
    /// Class probabilities, `n_rows × n_classes`, when the estimator gives them.
    #[must_use]
    pub fn proba(&self) -> Option<&DenseMatrix> {
        match self {
            Self::Classes { scores, is_proba: true, .. } => Some(scores),
            _ => None,
        }
    }
}

impl Pipeline {
    /// Names of the features the estimator sees, in order.
    #[must_use]
    pub fn feature_names(&self) -> Vec<String> {
        self.steps.iter().flat_map(Step::feature_names).collect()
    }

    /// Whether the estimator can give class probabilities.
    #[must_use]
    pub fn has_proba(&self) -> bool {
        matches!(self.task, Task::Classification { .. }) && !matches!(self.estimator, FittedEstimator::LinearSvc(_))
    }

    /// Turns the table's input columns into the estimator's features. Text makes the result
    /// sparse; otherwise it is dense.
    ///
    /// # Errors
    /// A missing column, a value that is not a number, or a missing value without an imputer.
    pub fn transform(&self, table: &Table) -> Result<Features, PredictError> {
        transform_steps(&self.steps, table)
    }

    /// Predicts every row of `table`.
    ///
    /// # Errors
    /// As [`Pipeline::transform`].
    pub fn predict(&self, table: &Table) -> Result<Predictions, PredictError> {
        let x = self.transform(table)?;
        Ok(predict_features(&self.estimator, &x))
    }
}

/// Applies fitted `steps` to `table`: the features an estimator sees. Text makes the result
/// sparse; otherwise it is dense.
///
/// # Errors
/// A missing column, a value that is not a number, or a missing value without an imputer.
pub fn transform_steps(steps: &[Step], table: &Table) -> Result<Features, PredictError> {
    let inputs: Vec<StepInput> = steps.iter().map(|s| s.input(table)).collect::<Result<_, _>>()?;
    let mut bases = Vec::with_capacity(steps.len());
    let mut width = 0usize;
    for s in steps {
        bases.push(u32::try_from(width).map_err(|_| PredictError::TooWide(width))?);
        width += s.width();
    }
    let n = table.n_rows();
    if !steps.iter().any(|s| matches!(s, Step::Text(_))) {
        let mut m = DenseMatrix::zeros(n, width);
        if width > 0 {
            // Blocks of rows in parallel; within a block one step at a time, so each step's
            // inner loop is a tight loop over its own column.
            const BLOCK: usize = 1024;
            let block_fn = |(b, block): (usize, &mut [f64])| {
                for ((s, input), &base) in steps.iter().zip(&inputs).zip(&bases) {
                    s.emit_dense_block(input, b * BLOCK, block, width, base as usize);
                }
            };
            if n <= BLOCK {
                m.data.chunks_mut(width * BLOCK).enumerate().for_each(block_fn);
            } else {
                m.data.par_chunks_mut(width * BLOCK).enumerate().for_each(block_fn);
            }
        }
        return Ok(Features::Dense(m));
    }
    let row_fn = |i| {
        let mut row = Vec::new();
        for ((s, input), &b) in steps.iter().zip(&inputs).zip(&bases) {
            s.emit(input, i, b, &mut row);
        }
        row
    };
    let rows: Vec<Vec<(u32, f64)>> = if n < crate::PARALLEL_MIN_ROWS {
        (0..n).map(row_fn).collect()
    } else {
        (0..n).into_par_iter().with_min_len(64).map(row_fn).collect()
    };
    let mut m = CsrMatrix::empty(width);
    for row in rows {
        m.push_row(row);
    }
    Ok(Features::Sparse(m))
}

/// Predicts already-transformed features with `estimator`.
#[must_use]
pub fn predict_features(estimator: &FittedEstimator, x: &Features) -> Predictions {
    match estimator.raw(x) {
        RawOutput::Proba(p) => Predictions::Classes { index: p.argmax_rows(), scores: p, is_proba: true },
        RawOutput::Decision(d) => Predictions::Classes { index: d.argmax_rows(), scores: d, is_proba: false },
        RawOutput::Values(v) => Predictions::Values(v),
    }
}
