//! Fitted estimators as plain data, and their predict functions.
//!
//! Every field is a number or a vector of numbers: loading a model deserializes data and runs no
//! code. The fitting code lives in `kiln-train`; this crate only predicts, so a scoring server
//! never compiles training code. Layouts follow scikit-learn's fitted attributes (`coef_`,
//! `intercept_`, `feature_log_prob_`, `tree_.threshold`, …) so numbers can be compared 1:1.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::matrix::{DenseMatrix, Features};

/// A fitted estimator of any kind kiln trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FittedEstimator {
    MultinomialNb(MultinomialNb),
    GaussianNb(GaussianNb),
    LogisticRegression(LinearClassifier),
    LinearSvc(LinearClassifier),
    DecisionTreeClassifier(Tree),
    DecisionTreeRegressor(Tree),
    RandomForestClassifier(Forest),
    RandomForestRegressor(Forest),
    LinearRegression(LinearRegressor),
    Ridge(LinearRegressor),
}

/// What an estimator's raw output means.
#[derive(Debug, Clone, PartialEq)]
pub enum RawOutput {
    /// Class probabilities, `n_rows × n_classes`.
    Proba(DenseMatrix),
    /// Class decision values without a probability meaning (LinearSVC), `n_rows × n_classes`.
    Decision(DenseMatrix),
    /// Regression values.
    Values(Vec<f64>),
}

impl FittedEstimator {
    /// The estimator's name as scikit-learn spells it (for reports).
    #[must_use]
    pub fn sklearn_name(&self) -> &'static str {
        match self {
            Self::MultinomialNb(_) => "MultinomialNB",
            Self::GaussianNb(_) => "GaussianNB",
            Self::LogisticRegression(_) => "LogisticRegression",
            Self::LinearSvc(_) => "LinearSVC",
            Self::DecisionTreeClassifier(_) => "DecisionTreeClassifier",
            Self::DecisionTreeRegressor(_) => "DecisionTreeRegressor",
            Self::RandomForestClassifier(_) => "RandomForestClassifier",
            Self::RandomForestRegressor(_) => "RandomForestRegressor",
            Self::LinearRegression(_) => "LinearRegression",
            Self::Ridge(_) => "Ridge",
        }
    }

    /// Number of input features the estimator was fitted on.
    #[must_use]
    pub fn n_features(&self) -> usize {
        match self {
            Self::MultinomialNb(m) => m.feature_log_prob.n_cols,
            Self::GaussianNb(m) => m.theta.n_cols,
            Self::LogisticRegression(m) | Self::LinearSvc(m) => m.coef.n_cols,
            Self::DecisionTreeClassifier(t) | Self::DecisionTreeRegressor(t) => t.n_features,
            Self::RandomForestClassifier(f) | Self::RandomForestRegressor(f) => f.n_features,
            Self::LinearRegression(m) | Self::Ridge(m) => m.coef.len(),
        }
    }

    /// Raw output for every row of `x`.
    #[must_use]
    pub fn raw(&self, x: &Features) -> RawOutput {
        match self {
            Self::MultinomialNb(m) => RawOutput::Proba(m.predict_proba(x)),
            Self::GaussianNb(m) => RawOutput::Proba(m.predict_proba(x)),
            Self::LogisticRegression(m) => RawOutput::Proba(m.predict_proba(x)),
            Self::LinearSvc(m) => RawOutput::Decision(m.decision_matrix(x)),
            Self::DecisionTreeClassifier(t) => RawOutput::Proba(t.predict_matrix(x)),
            Self::RandomForestClassifier(f) => RawOutput::Proba(f.predict_matrix(x)),
            Self::DecisionTreeRegressor(t) => RawOutput::Values(t.predict_matrix(x).data),
            Self::RandomForestRegressor(f) => RawOutput::Values(f.predict_matrix(x).data),
            Self::LinearRegression(m) | Self::Ridge(m) => RawOutput::Values(m.predict(x)),
        }
    }

    /// Per-feature importance for plots: impurity decrease for trees, the largest absolute
    /// coefficient across classes for linear models, for multinomial naive Bayes the spread of
    /// the per-class log-probabilities (for two classes: how strongly a term points to the
    /// second class, signed), `None` for Gaussian naive Bayes.
    #[must_use]
    pub fn feature_importance(&self) -> Option<Vec<f64>> {
        match self {
            Self::DecisionTreeClassifier(t) | Self::DecisionTreeRegressor(t) => Some(t.feature_importances.clone()),
            Self::RandomForestClassifier(f) | Self::RandomForestRegressor(f) => Some(f.feature_importances()),
            Self::LogisticRegression(m) | Self::LinearSvc(m) => Some(
                (0..m.coef.n_cols)
                    .map(|j| (0..m.coef.n_rows).map(|k| m.coef.get(k, j)).fold(0.0_f64, |a, b| a.max(b.abs())))
                    .collect(),
            ),
            Self::LinearRegression(m) | Self::Ridge(m) => Some(m.coef.iter().map(|c| c.abs()).collect()),
            Self::MultinomialNb(m) => {
                let f = &m.feature_log_prob;
                Some(
                    (0..f.n_cols)
                        .map(|j| {
                            if f.n_rows == 2 {
                                f.get(1, j) - f.get(0, j)
                            } else {
                                let col = (0..f.n_rows).map(|k| f.get(k, j));
                                col.clone().fold(f64::NEG_INFINITY, f64::max) - col.fold(f64::INFINITY, f64::min)
                            }
                        })
                        .collect(),
                )
            }
            Self::GaussianNb(_) => None,
        }
    }
}

fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Rows of `x` mapped in parallel to `width` outputs each.
fn map_rows(x: &Features, width: usize, f: impl Fn(usize, &mut [f64]) + Sync) -> DenseMatrix {
    let mut out = DenseMatrix::zeros(x.n_rows(), width);
    if width == 0 {
        return out;
    }
    if x.n_rows() < crate::PARALLEL_MIN_ROWS {
        out.data.chunks_mut(width).enumerate().for_each(|(i, row)| f(i, row));
    } else {
        out.data.par_chunks_mut(width).enumerate().with_min_len(256).for_each(|(i, row)| f(i, row));
    }
    out
}

/// Multinomial naive Bayes (scikit-learn's `MultinomialNB`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultinomialNb {
    /// `class_log_prior_`, one per class.
    pub class_log_prior: Vec<f64>,
    /// `feature_log_prob_`, `n_classes × n_features`.
    pub feature_log_prob: DenseMatrix,
}

impl MultinomialNb {
    /// Joint log-likelihood `X · feature_log_prob_ᵀ + class_log_prior_`.
    #[must_use]
    pub fn joint_log_likelihood(&self, x: &Features) -> DenseMatrix {
        let k = self.class_log_prior.len();
        map_rows(x, k, |i, row| {
            row.copy_from_slice(&self.class_log_prior);
            x.for_each_in_row(i, |j, v| {
                for (c, r) in row.iter_mut().enumerate() {
                    *r += v * self.feature_log_prob.get(c, j);
                }
            });
        })
    }

    #[must_use]
    pub fn predict_proba(&self, x: &Features) -> DenseMatrix {
        let mut m = self.joint_log_likelihood(x);
        let k = m.n_cols;
        if k > 0 {
            m.data.chunks_mut(k).for_each(softmax_in_place);
        }
        m
    }
}

/// Gaussian naive Bayes (scikit-learn's `GaussianNB`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaussianNb {
    /// `class_prior_`.
    pub class_prior: Vec<f64>,
    /// `theta_`: per-class means, `n_classes × n_features`.
    pub theta: DenseMatrix,
    /// `var_`: per-class variances (with `epsilon_` added), `n_classes × n_features`.
    pub var: DenseMatrix,
}

impl GaussianNb {
    #[must_use]
    pub fn predict_proba(&self, x: &Features) -> DenseMatrix {
        let k = self.class_prior.len();
        let d = self.theta.n_cols;
        // Constant part per class: log prior - 0.5 * sum(log(2π var)).
        let consts: Vec<f64> = (0..k)
            .map(|c| {
                self.class_prior[c].ln()
                    - 0.5 * (0..d).map(|j| (2.0 * std::f64::consts::PI * self.var.get(c, j)).ln()).sum::<f64>()
            })
            .collect();
        let dense = x.dense();
        let mut m = map_rows(x, k, |i, row| {
            let xi = dense.row(i);
            for (c, r) in row.iter_mut().enumerate() {
                let mut s = 0.0;
                for (j, &v) in xi.iter().enumerate() {
                    let diff = v - self.theta.get(c, j);
                    s += diff * diff / self.var.get(c, j);
                }
                *r = consts[c] - 0.5 * s;
            }
        });
        if k > 0 {
            m.data.chunks_mut(k).for_each(softmax_in_place);
        }
        m
    }
}

/// A linear classifier: logistic regression or a linear SVM.
///
/// Binary problems store one row of coefficients (the positive class, as scikit-learn does);
/// multiclass problems store one row per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearClassifier {
    /// `coef_`, `1 × n_features` (binary) or `n_classes × n_features`.
    pub coef: DenseMatrix,
    /// `intercept_`, one per row of `coef`.
    pub intercept: Vec<f64>,
    /// Number of classes (2 when `coef` has one row).
    pub n_classes: usize,
    /// Multiclass logistic regression: `true` for softmax (multinomial), `false` for
    /// one-vs-rest (normalized sigmoids). Ignored for SVMs and binary problems.
    #[serde(default)]
    pub multinomial: bool,
}

impl LinearClassifier {
    /// `decision_function`: `n_rows × coef.n_rows`.
    #[must_use]
    pub fn decision_function(&self, x: &Features) -> DenseMatrix {
        let k = self.coef.n_rows;
        map_rows(x, k, |i, row| {
            row.copy_from_slice(&self.intercept);
            x.for_each_in_row(i, |j, v| {
                for (c, r) in row.iter_mut().enumerate() {
                    *r += v * self.coef.get(c, j);
                }
            });
        })
    }

    /// Decision values with one column per class (binary: `[-d, d]`), so arg-max predicts.
    #[must_use]
    pub fn decision_matrix(&self, x: &Features) -> DenseMatrix {
        let d = self.decision_function(x);
        if self.coef.n_rows == 1 {
            let data = d.data.iter().flat_map(|&v| [-v, v]).collect();
            DenseMatrix::from_vec(d.n_rows, 2, data)
        } else {
            d
        }
    }

    /// Logistic probabilities (sigmoid for binary, softmax or normalized one-vs-rest otherwise).
    #[must_use]
    pub fn predict_proba(&self, x: &Features) -> DenseMatrix {
        let mut d = self.decision_function(x);
        if self.coef.n_rows == 1 {
            let data = d
                .data
                .iter()
                .flat_map(|&z| {
                    let p = 1.0 / (1.0 + (-z).exp());
                    [1.0 - p, p]
                })
                .collect();
            return DenseMatrix::from_vec(d.n_rows, 2, data);
        }
        let k = d.n_cols;
        if self.multinomial {
            d.data.chunks_mut(k).for_each(softmax_in_place);
        } else {
            for row in d.data.chunks_mut(k) {
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = 1.0 / (1.0 + (-*v).exp());
                    sum += *v;
                }
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        d
    }
}

/// A binary decision tree in struct-of-arrays form (scikit-learn's `tree_`).
///
/// Node `i` is a leaf when `left[i] == LEAF`; otherwise rows with
/// `x[feature[i]] <= threshold[i]` go to `left[i]`, the others to `right[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub n_features: usize,
    /// Outputs per node: the number of classes (class fractions) or 1 (the mean) for regression.
    pub n_outputs: usize,
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    /// `n_nodes × n_outputs` node values.
    pub value: Vec<f64>,
    /// Normalized impurity-decrease importances (`feature_importances_`).
    pub feature_importances: Vec<f64>,
}

impl Tree {
    /// Marks a leaf in [`Tree::left`].
    pub const LEAF: u32 = u32::MAX;

    /// Index of the leaf `row` falls into.
    #[must_use]
    pub fn leaf_of(&self, row: &[f64]) -> usize {
        let mut n = 0usize;
        while self.left[n] != Self::LEAF {
            n = if row[self.feature[n] as usize] <= self.threshold[n] {
                self.left[n] as usize
            } else {
                self.right[n] as usize
            };
        }
        n
    }

    /// The leaf values of `row`.
    #[must_use]
    pub fn leaf_value(&self, row: &[f64]) -> &[f64] {
        let n = self.leaf_of(row);
        &self.value[n * self.n_outputs..(n + 1) * self.n_outputs]
    }

    /// `n_rows × n_outputs` leaf values.
    #[must_use]
    pub fn predict_matrix(&self, x: &Features) -> DenseMatrix {
        let dense = x.dense();
        map_rows(x, self.n_outputs, |i, row| row.copy_from_slice(self.leaf_value(dense.row(i))))
    }

    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.left.len()
    }
}

/// A random forest: the mean of its trees' outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub n_features: usize,
    pub n_outputs: usize,
    pub trees: Vec<Tree>,
}

impl Forest {
    #[must_use]
    pub fn predict_matrix(&self, x: &Features) -> DenseMatrix {
        let dense = x.dense();
        #[allow(clippy::cast_precision_loss)]
        let n_trees = self.trees.len().max(1) as f64;
        let k = self.n_outputs;
        let mut out = DenseMatrix::zeros(x.n_rows(), k);
        if k == 0 {
            return out;
        }
        // Tree by tree over a block of rows, so one tree's nodes stay in cache while the block
        // walks it (row by row, every tree would be fetched again for each row).
        const BLOCK: usize = 256;
        let block_fn = |(b, block): (usize, &mut [f64])| {
            let first = b * BLOCK;
            for t in &self.trees {
                for (r, acc) in block.chunks_mut(k).enumerate() {
                    for (a, v) in acc.iter_mut().zip(t.leaf_value(dense.row(first + r))) {
                        *a += v;
                    }
                }
            }
            block.iter_mut().for_each(|a| *a /= n_trees);
        };
        if x.n_rows() <= BLOCK {
            out.data.chunks_mut(BLOCK * k).enumerate().for_each(block_fn);
        } else {
            out.data.par_chunks_mut(BLOCK * k).enumerate().for_each(block_fn);
        }
        out
    }

    /// Mean of the trees' importances, renormalized (scikit-learn's `feature_importances_`).
    #[must_use]
    pub fn feature_importances(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.n_features];
        for t in &self.trees {
            for (o, v) in out.iter_mut().zip(&t.feature_importances) {
                *o += v;
            }
        }
        let sum: f64 = out.iter().sum();
        if sum > 0.0 {
            out.iter_mut().for_each(|v| *v /= sum);
        }
        out
    }
}

/// A linear regressor (`LinearRegression`, `Ridge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearRegressor {
    pub coef: Vec<f64>,
    pub intercept: f64,
}

impl LinearRegressor {
    #[must_use]
    pub fn predict(&self, x: &Features) -> Vec<f64> {
        let f = |i| x.row_dot(i, &self.coef) + self.intercept;
        if x.n_rows() < crate::PARALLEL_MIN_ROWS {
            (0..x.n_rows()).map(f).collect()
        } else {
            (0..x.n_rows()).into_par_iter().with_min_len(256).map(f).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_logistic_proba_is_sigmoid() {
        let m = LinearClassifier {
            coef: DenseMatrix::from_vec(1, 2, vec![1.0, -1.0]),
            intercept: vec![0.5],
            n_classes: 2,
            multinomial: false,
        };
        let x = Features::Dense(DenseMatrix::from_vec(1, 2, vec![2.0, 1.0]));
        let p = m.predict_proba(&x);
        let z: f64 = 2.0 - 1.0 + 0.5;
        assert!((p.get(0, 1) - 1.0 / (1.0 + (-z).exp())).abs() < 1e-15);
        assert!((p.get(0, 0) + p.get(0, 1) - 1.0).abs() < 1e-15);
        assert_eq!(m.decision_matrix(&x).argmax_rows(), vec![1]);
    }

    #[test]
    fn tree_walks_left_on_less_or_equal() {
        let t = Tree {
            n_features: 1,
            n_outputs: 1,
            feature: vec![0, 0, 0],
            threshold: vec![1.5, 0.0, 0.0],
            left: vec![1, Tree::LEAF, Tree::LEAF],
            right: vec![2, 0, 0],
            value: vec![0.0, 10.0, 20.0],
            feature_importances: vec![1.0],
        };
        let x = Features::Dense(DenseMatrix::from_vec(3, 1, vec![1.0, 1.5, 2.0]));
        assert_eq!(t.predict_matrix(&x).data, vec![10.0, 10.0, 20.0]);
    }
}
