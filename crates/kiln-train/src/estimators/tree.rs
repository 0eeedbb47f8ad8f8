//! CART decision trees and random forests, following scikit-learn 1.9's `BestSplitter` and
//! `DepthFirstTreeBuilder`.
//!
//! Like scikit-learn, features are cast to `f32` before splitting: thresholds are midpoints of
//! two `f32` values computed in `f64`, so a tree fitted here has the same `tree_.threshold`
//! numbers as scikit-learn's for the same data. Nodes are numbered in pre-order (node, left
//! subtree, right subtree), as scikit-learn's depth-first builder does.
//!
//! Speed comes from sorting packed `u64` keys instead of `(f64, index)` pairs: each feature's
//! values are replaced once per fit by their rank among the feature's value groups (distinct
//! values, with values closer than scikit-learn's `FEATURE_THRESHOLD` to the previous one sharing
//! a group), and a node sorts `rank << 32 | row` (radix-sorted when large). Because neighbouring
//! groups are always more than the threshold apart, the split scan decides whether a position
//! may split from the ranks alone; the real values are looked up only for a new best threshold.
//! (scikit-learn compares the values of neighbouring samples in the node instead; the two differ
//! only for chains of values each within 1e-7 of the next, which a group keeps together.) One sample buffer per tree is partitioned in place node after node, like scikit-learn's
//! `samples` array, so building a tree allocates nothing per node.

use std::f64::consts::LN_2;

use kiln_core::rng::Rng;
use kiln_model::estimator::{FittedEstimator, Forest, Tree};
use kiln_model::matrix::{DenseMatrix, Features};
use rayon::prelude::*;
use serde_json::Value;

use super::{Estimator, FitError, Hyper, ParamError, Target};

/// Hyper-parameters of `decision_tree_classifier` and `decision_tree_regressor`.
pub const TREE_KEYS: &[&str] =
    &["criterion", "max_depth", "min_samples_split", "min_samples_leaf", "max_features", "min_impurity_decrease"];

/// Hyper-parameters of `random_forest_classifier` and `random_forest_regressor`.
pub const FOREST_KEYS: &[&str] = &[
    "n_estimators",
    "bootstrap",
    "max_samples",
    "criterion",
    "max_depth",
    "min_samples_split",
    "min_samples_leaf",
    "max_features",
    "min_impurity_decrease",
];

/// scikit-learn's `FEATURE_THRESHOLD`: `f32` values closer than this are one value. The
/// comparison is done in `f32`, as scikit-learn's Cython does.
const FEATURE_THRESHOLD: f32 = 1e-7;

/// scikit-learn's `EPSILON` (`np.finfo('double').eps`), the tolerance for "pure" nodes and
/// for `min_impurity_decrease`.
const EPSILON: f64 = f64::EPSILON;

/// scikit-learn's `TREE_UNDEFINED`, stored as the threshold of leaves.
const UNDEFINED_THRESHOLD: f64 = -2.0;

const NO_PARENT: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Hyper-parameters
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Criterion {
    Gini,
    Entropy,
    SquaredError,
}

/// A sample count given as a number or as a fraction of the training rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Count {
    Absolute(usize),
    Fraction(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MaxFeatures {
    All,
    Sqrt,
    Log2,
    Absolute(usize),
    Fraction(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MaxSamples {
    Absolute(usize),
    Fraction(f64),
}

/// The hyper-parameters shared by single trees and the trees of a forest.
#[derive(Debug, Clone, PartialEq)]
struct TreeOptions {
    criterion: Criterion,
    max_depth: Option<usize>,
    min_samples_split: Count,
    min_samples_leaf: Count,
    max_features: MaxFeatures,
    min_impurity_decrease: f64,
}

/// [`TreeOptions`] resolved against the training data's shape.
#[derive(Debug, Clone, Copy)]
struct Limits {
    criterion: Criterion,
    max_depth: usize,
    min_samples_split: usize,
    min_samples_leaf: usize,
    max_features: usize,
    min_impurity_decrease: f64,
}

impl TreeOptions {
    fn from_hyper(h: &Hyper, classifier: bool, default_max_features: MaxFeatures) -> Result<Self, ParamError> {
        let criterion = if classifier {
            match h.choice("criterion", &["gini", "entropy", "log_loss"], "gini")?.as_str() {
                "gini" => Criterion::Gini,
                // scikit-learn treats `log_loss` and `entropy` as the same criterion.
                _ => Criterion::Entropy,
            }
        } else {
            h.choice("criterion", &["squared_error"], "squared_error")?;
            Criterion::SquaredError
        };
        Ok(Self {
            criterion,
            max_depth: h.opt_usize("max_depth", None, 1)?,
            min_samples_split: count_param(h, "min_samples_split", 2, true)?,
            min_samples_leaf: count_param(h, "min_samples_leaf", 1, false)?,
            max_features: max_features_param(h, default_max_features)?,
            min_impurity_decrease: h.f64(
                "min_impurity_decrease",
                0.0,
                |x| x.is_finite() && x >= 0.0,
                "a number >= 0",
            )?,
        })
    }

    /// scikit-learn's `BaseDecisionTree._fit` arithmetic: fractions are of all training rows
    /// (not of a bootstrap sample), and a split needs room for two leaves.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn resolve(&self, model: &'static str, n_samples: usize, n_features: usize) -> Result<Limits, FitError> {
        let n = n_samples as f64;
        let min_samples_leaf = match self.min_samples_leaf {
            Count::Absolute(k) => k,
            Count::Fraction(f) => (f * n).ceil() as usize,
        };
        let min_samples_split = match self.min_samples_split {
            Count::Absolute(k) => k,
            Count::Fraction(f) => ((f * n).ceil() as usize).max(2),
        }
        .max(2 * min_samples_leaf);
        let d = n_features as f64;
        let max_features = match self.max_features {
            MaxFeatures::All => n_features,
            MaxFeatures::Sqrt => (d.sqrt() as usize).max(1),
            MaxFeatures::Log2 => (d.log2() as usize).max(1),
            MaxFeatures::Absolute(k) => k,
            MaxFeatures::Fraction(f) => ((f * d) as usize).max(1),
        };
        if max_features > n_features {
            return Err(FitError::Invalid {
                model,
                message: format!("max_features={max_features} is more than the {n_features} features of the data"),
            });
        }
        Ok(Limits {
            criterion: self.criterion,
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_split,
            min_samples_leaf,
            max_features,
            min_impurity_decrease: self.min_impurity_decrease,
        })
    }
}

/// A parameter value as scikit-learn tells them apart: `2` (a count) is not `2.0` (a fraction).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Whole(usize),
    Real(f64),
    Other,
}

fn number(v: &Value) -> Number {
    match v {
        Value::Number(n) => match (n.as_u64().and_then(|k| usize::try_from(k).ok()), n.as_f64()) {
            (Some(k), _) => Number::Whole(k),
            (None, Some(f)) if n.is_f64() && f.is_finite() => Number::Real(f),
            _ => Number::Other,
        },
        _ => Number::Other,
    }
}

/// A whole number `>= min` (`2` for splits, `1` for leaves), or a fraction of the rows: in
/// `(0, 1]` for `min_samples_split`, `(0, 1)` for `min_samples_leaf` (scikit-learn's ranges).
fn count_param(h: &Hyper, key: &str, default: usize, split: bool) -> Result<Count, ParamError> {
    let (min, expected) = if split {
        (2, "a whole number >= 2 or a fraction in (0, 1]")
    } else {
        (1, "a whole number >= 1 or a fraction in (0, 1)")
    };
    let Some(v) = h.raw(key) else {
        return Ok(Count::Absolute(default));
    };
    match number(v) {
        Number::Whole(k) if k >= min => Ok(Count::Absolute(k)),
        Number::Real(f) if f > 0.0 && (f < 1.0 || (split && f == 1.0)) => Ok(Count::Fraction(f)),
        _ => Err(h.invalid(key, expected)),
    }
}

fn max_features_param(h: &Hyper, default: MaxFeatures) -> Result<MaxFeatures, ParamError> {
    const KEY: &str = "max_features";
    const EXPECTED: &str = "null, \"sqrt\", \"log2\", a whole number >= 1 or a fraction in (0, 1]";
    let Some(v) = h.raw(KEY) else {
        return Ok(default);
    };
    match (v, number(v)) {
        (Value::Null, _) => Ok(MaxFeatures::All),
        (Value::String(s), _) if s == "sqrt" => Ok(MaxFeatures::Sqrt),
        (Value::String(s), _) if s == "log2" => Ok(MaxFeatures::Log2),
        (_, Number::Whole(k)) if k >= 1 => Ok(MaxFeatures::Absolute(k)),
        (_, Number::Real(f)) if f > 0.0 && f <= 1.0 => Ok(MaxFeatures::Fraction(f)),
        _ => Err(h.invalid(KEY, EXPECTED)),
    }
}

fn max_samples_param(h: &Hyper, bootstrap: bool) -> Result<Option<MaxSamples>, ParamError> {
    const KEY: &str = "max_samples";
    const EXPECTED: &str = "null, a whole number >= 1 or a fraction > 0";
    let parsed = match h.raw(KEY).map(|v| (v, number(v))) {
        None | Some((Value::Null, _)) => None,
        Some((_, Number::Whole(k))) if k >= 1 => Some(MaxSamples::Absolute(k)),
        Some((_, Number::Real(f))) if f > 0.0 => Some(MaxSamples::Fraction(f)),
        Some(_) => return Err(h.invalid(KEY, EXPECTED)),
    };
    if parsed.is_some() && !bootstrap {
        return Err(h.invalid(KEY, "null when bootstrap is false (rows are only sampled with bootstrap)"));
    }
    Ok(parsed)
}

/// A decision tree (`DecisionTreeClassifier` / `DecisionTreeRegressor`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionTreeParams {
    classifier: bool,
    options: TreeOptions,
}

impl DecisionTreeParams {
    /// Reads the tree's hyper-parameters; defaults are scikit-learn's.
    ///
    /// # Errors
    /// A value of the wrong type or out of range, naming the key.
    pub fn from_hyper(h: &Hyper, classifier: bool) -> Result<Self, ParamError> {
        Ok(Self { classifier, options: TreeOptions::from_hyper(h, classifier, MaxFeatures::All)? })
    }

    fn model(&self) -> &'static str {
        if self.classifier { "DecisionTreeClassifier" } else { "DecisionTreeRegressor" }
    }
}

/// A random forest (`RandomForestClassifier` / `RandomForestRegressor`).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomForestParams {
    classifier: bool,
    n_estimators: usize,
    bootstrap: bool,
    max_samples: Option<MaxSamples>,
    options: TreeOptions,
}

impl RandomForestParams {
    /// Reads the forest's hyper-parameters; defaults are scikit-learn's (`max_features` is
    /// `"sqrt"` for classifiers and `1.0` for regressors).
    ///
    /// # Errors
    /// A value of the wrong type or out of range, naming the key.
    pub fn from_hyper(h: &Hyper, classifier: bool) -> Result<Self, ParamError> {
        let default_max_features = if classifier { MaxFeatures::Sqrt } else { MaxFeatures::Fraction(1.0) };
        let bootstrap = h.bool("bootstrap", true)?;
        Ok(Self {
            classifier,
            n_estimators: h.usize("n_estimators", 100, 1)?,
            bootstrap,
            max_samples: max_samples_param(h, bootstrap)?,
            options: TreeOptions::from_hyper(h, classifier, default_max_features)?,
        })
    }

    fn model(&self) -> &'static str {
        if self.classifier { "RandomForestClassifier" } else { "RandomForestRegressor" }
    }

    /// scikit-learn's `_get_n_samples_bootstrap`.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn n_bootstrap(&self, n_rows: usize) -> usize {
        match self.max_samples {
            None => n_rows,
            Some(MaxSamples::Absolute(k)) => k,
            Some(MaxSamples::Fraction(f)) => ((f * n_rows as f64) as usize).max(1),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Training data
// ---------------------------------------------------------------------------------------------

/// The features, column by column, as ranks into each column's sorted distinct values.
#[derive(Debug)]
struct Columns {
    n_rows: usize,
    n_features: usize,
    /// `ranks[j * n_rows + i]`: rank of row `i`'s value among feature `j`'s distinct values.
    ranks: Vec<u32>,
    /// Per feature and value group (ascending), the smallest and the largest `f32` value in it.
    group_min: Vec<Vec<f32>>,
    group_max: Vec<Vec<f32>>,
}

impl Columns {
    fn new(x: &Features, model: &'static str) -> Result<Self, FitError> {
        let (n_rows, n_features) = (x.n_rows(), x.n_cols());
        if n_rows == 0 {
            return Err(FitError::Empty { model });
        }
        if n_features == 0 {
            return Err(FitError::Invalid { model, message: "the data has no feature columns".to_owned() });
        }
        // Ranks and row indices are packed into the two halves of a u64 sort key.
        if u32::try_from(n_rows).is_err() {
            return Err(FitError::Invalid { model, message: format!("{n_rows} rows are more than a tree supports") });
        }
        let dense = x.dense();
        for i in 0..n_rows {
            for (j, &v) in dense.row(i).iter().enumerate() {
                #[allow(clippy::cast_possible_truncation)]
                let too_big = !(v as f32).is_finite();
                if v.is_nan() {
                    return Err(FitError::Invalid {
                        model,
                        message: format!("feature {j} of row {i} is NaN; impute missing values before fitting"),
                    });
                } else if v.is_infinite() || too_big {
                    return Err(FitError::Invalid {
                        model,
                        message: format!("feature {j} of row {i} is {v}, too large for a tree's 32-bit feature values"),
                    });
                }
            }
        }
        let per_feature: Vec<RankedColumn> = (0..n_features).into_par_iter().map(|j| rank_column(&dense, j)).collect();
        let mut ranks = Vec::with_capacity(n_rows * n_features);
        let (mut group_min, mut group_max) = (Vec::with_capacity(n_features), Vec::with_capacity(n_features));
        for c in per_feature {
            ranks.extend_from_slice(&c.ranks);
            group_min.push(c.min);
            group_max.push(c.max);
        }
        Ok(Self { n_rows, n_features, ranks, group_min, group_max })
    }

    fn ranks(&self, feature: usize) -> &[u32] {
        &self.ranks[feature * self.n_rows..(feature + 1) * self.n_rows]
    }
}

/// One feature as value-group ranks.
struct RankedColumn {
    ranks: Vec<u32>,
    min: Vec<f32>,
    max: Vec<f32>,
}

/// Ranks of column `j` (as `f32`, like scikit-learn's `DTYPE`) among its value groups: sorted
/// values start a new group when more than `FEATURE_THRESHOLD` above the previous value.
#[allow(clippy::cast_possible_truncation)]
fn rank_column(x: &DenseMatrix, j: usize) -> RankedColumn {
    // `+ 0.0` turns -0.0 into 0.0 so the two zeros share one rank.
    let mut order: Vec<(f32, u32)> = (0..x.n_rows).map(|i| (x.get(i, j) as f32 + 0.0, i as u32)).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut ranks = vec![0u32; x.n_rows];
    let (mut min, mut max): (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());
    for &(v, i) in &order {
        match max.last_mut() {
            Some(last) if v <= *last + FEATURE_THRESHOLD => *last = v,
            _ => {
                min.push(v);
                max.push(v);
            }
        }
        ranks[i as usize] = (max.len() - 1) as u32;
    }
    RankedColumn { ranks, min, max }
}

/// The target, checked against the estimator's task.
#[derive(Debug)]
enum Labels<'a> {
    Classes { y: Vec<u32>, n_classes: usize },
    Values(&'a [f64]),
}

impl Labels<'_> {
    fn n_outputs(&self) -> usize {
        match self {
            Self::Classes { n_classes, .. } => *n_classes,
            Self::Values(_) => 1,
        }
    }
}

fn check_target<'a>(
    model: &'static str,
    classifier: bool,
    y: &Target<'a>,
    n_rows: usize,
) -> Result<Labels<'a>, FitError> {
    if y.len() != n_rows {
        return Err(FitError::Invalid { model, message: format!("X has {n_rows} rows but y has {} values", y.len()) });
    }
    match (classifier, y) {
        (true, Target::Classes { y, n_classes }) => {
            let n_classes = *n_classes;
            if u32::try_from(n_classes).is_err() {
                return Err(FitError::Invalid { model, message: format!("{n_classes} classes are too many") });
            }
            let mut seen = vec![false; n_classes];
            let mut labels = Vec::with_capacity(y.len());
            for (i, &c) in y.iter().enumerate() {
                let Some(s) = seen.get_mut(c) else {
                    return Err(FitError::Invalid {
                        model,
                        message: format!("class index {c} of row {i} is not below the number of classes {n_classes}"),
                    });
                };
                *s = true;
                #[allow(clippy::cast_possible_truncation)]
                labels.push(c as u32);
            }
            let found = seen.iter().filter(|s| **s).count();
            if found < 2 {
                return Err(FitError::TooFewClasses { model, found });
            }
            Ok(Labels::Classes { y: labels, n_classes })
        }
        (false, Target::Values(v)) => {
            if let Some(i) = v.iter().position(|t| !t.is_finite()) {
                return Err(FitError::Invalid { model, message: format!("target of row {i} is {}", v[i]) });
            }
            Ok(Labels::Values(v))
        }
        (true, Target::Values(_)) => Err(FitError::WrongTask { model, expected: "classifier", got: "regression" }),
        (false, Target::Classes { .. }) => {
            Err(FitError::WrongTask { model, expected: "regressor", got: "classification" })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building one tree
// ---------------------------------------------------------------------------------------------

/// A node waiting on the depth-first stack (scikit-learn's `StackRecord`).
#[derive(Debug, Clone, Copy)]
struct Record {
    start: usize,
    end: usize,
    depth: usize,
    parent: u32,
    is_left: bool,
    impurity: f64,
    n_constant: usize,
}

/// The best split found so far in a node.
#[derive(Debug, Clone, Copy)]
struct Best {
    proxy: f64,
    feature: usize,
    /// Rank of the largest value going left.
    rank: u32,
    threshold: f64,
    /// Number of node samples going left.
    n_left: usize,
}

impl Best {
    fn none() -> Self {
        Self { proxy: f64::NEG_INFINITY, feature: 0, rank: 0, threshold: 0.0, n_left: 0 }
    }

    /// Records the split between value groups `prev` and `next`: the threshold lies between
    /// the largest value of `prev` and the smallest of `next`.
    #[allow(clippy::too_many_arguments)]
    fn set(&mut self, proxy: f64, feature: usize, prev: usize, next: usize, groups: (&[f32], &[f32]), n_left: usize) {
        let (a, b) = (f64::from(groups.1[prev]), f64::from(groups.0[next]));
        // Halves are summed (scikit-learn's way) so huge values cannot overflow. The midpoint of
        // two f32 values is exact in f64; the guard (older scikit-learn's) only protects the
        // invariant that `b` goes right should that ever change.
        let mut threshold = a / 2.0 + b / 2.0;
        if threshold == b {
            threshold = a;
        }
        #[allow(clippy::cast_possible_truncation)]
        let rank = prev as u32;
        *self = Self { proxy, feature, rank, threshold, n_left };
    }
}

/// A chosen split with what the builder needs for the children and the importances.
#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    threshold: f64,
    mid: usize,
    impurity_left: f64,
    impurity_right: f64,
    weight_left: f64,
    weight_right: f64,
    improvement: f64,
}

/// The nodes of a tree under construction.
#[derive(Debug, Default)]
struct Nodes {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    value: Vec<f64>,
}

struct TreeBuilder<'a> {
    cols: &'a Columns,
    labels: &'a Labels<'a>,
    limits: Limits,
    /// Per row: how many times it is in the training sample (bootstrap counts, or 1).
    weights: &'a [f64],
    rng: Rng,
    /// Rows with a positive weight, partitioned in place so each node owns a contiguous range.
    samples: Vec<u32>,
    /// Sort keys `rank << 32 | row` of the node being split, and a second buffer for the radix
    /// sort.
    keys: Vec<u64>,
    radix_buffer: Vec<u64>,
    /// scikit-learn's `features` / `constant_features` arrays for sampling features without
    /// replacement while remembering which are constant in the current branch.
    features: Vec<usize>,
    constant_features: Vec<usize>,
    /// Node totals (class weights, or the weighted sum of y) and a scratch buffer of the same size.
    node_sum: Vec<f64>,
    left_sum: Vec<f64>,
    /// Classification with small whole-number weights: per row `class << 16 | weight`, which
    /// the sort keys carry in place of the row so the split scan reads no other array.
    class_weight: Option<Vec<u32>>,
}

/// `class << 16 | weight` for every row, when every class and weight fits in 16 bits.
fn pack_class_weights(labels: &Labels<'_>, weights: &[f64]) -> Option<Vec<u32>> {
    let Labels::Classes { y, n_classes } = labels else { return None };
    if *n_classes > 0xFFFF || !weights.iter().all(|&w| w.fract() == 0.0 && (0.0..=65535.0).contains(&w)) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(y.iter().zip(weights).map(|(&c, &w)| (c << 16) | w as u32).collect())
}

impl<'a> TreeBuilder<'a> {
    fn new(cols: &'a Columns, labels: &'a Labels<'a>, limits: Limits, weights: &'a [f64], rng: Rng) -> Self {
        #[allow(clippy::cast_possible_truncation)]
        let samples: Vec<u32> = (0..cols.n_rows).filter(|&i| weights[i] > 0.0).map(|i| i as u32).collect();
        let n_outputs = labels.n_outputs();
        Self {
            cols,
            labels,
            limits,
            weights,
            rng,
            keys: vec![0; samples.len()],
            radix_buffer: vec![0; samples.len()],
            samples,
            features: (0..cols.n_features).collect(),
            constant_features: vec![0; cols.n_features],
            node_sum: vec![0.0; n_outputs],
            left_sum: vec![0.0; n_outputs],
            class_weight: pack_class_weights(labels, weights),
        }
    }

    /// Weighted class counts (or the weighted sum of y) of `rows` into `sum`; returns the total
    /// weight and, for regression, the weighted sum of squares.
    fn accumulate(&self, rows: &[u32], sum: &mut [f64]) -> (f64, f64) {
        sum.fill(0.0);
        let mut weight = 0.0;
        let mut sq = 0.0;
        match self.labels {
            Labels::Classes { y, .. } => {
                for &r in rows {
                    let w = self.weights[r as usize];
                    sum[y[r as usize] as usize] += w;
                    weight += w;
                }
            }
            Labels::Values(y) => {
                let mut s = 0.0;
                for &r in rows {
                    let w = self.weights[r as usize];
                    let v = y[r as usize];
                    s += w * v;
                    sq += w * v * v;
                    weight += w;
                }
                sum[0] = s;
            }
        }
        (weight, sq)
    }

    fn build(mut self) -> Tree {
        let n_outputs = self.labels.n_outputs();
        let mut nodes = Nodes::default();
        let mut importances = vec![0.0; self.cols.n_features];
        let mut root_weight = 0.0;
        let mut stack = vec![Record {
            start: 0,
            end: self.samples.len(),
            depth: 0,
            parent: NO_PARENT,
            is_left: false,
            impurity: f64::INFINITY,
            n_constant: 0,
        }];
        let mut node_sum = std::mem::take(&mut self.node_sum);
        while let Some(rec) = stack.pop() {
            let n_node = rec.end - rec.start;
            let (weight, sq_sum) = self.accumulate(&self.samples[rec.start..rec.end], &mut node_sum);
            let impurity = if nodes.left.is_empty() {
                root_weight = weight;
                impurity_of(self.limits.criterion, &node_sum, weight, sq_sum)
            } else {
                rec.impurity
            };
            let l = &self.limits;
            let mut split = None;
            let mut n_constant = rec.n_constant;
            if !(rec.depth >= l.max_depth
                || n_node < l.min_samples_split
                || n_node < 2 * l.min_samples_leaf
                || impurity <= EPSILON)
            {
                let (s, nc) = self.split_node(&rec, &node_sum, weight, sq_sum, impurity, root_weight);
                n_constant = nc;
                split = s.filter(|s| s.improvement + EPSILON >= self.limits.min_impurity_decrease);
            }

            #[allow(clippy::cast_possible_truncation)]
            let id = nodes.left.len() as u32;
            if rec.parent != NO_PARENT {
                let p = rec.parent as usize;
                if rec.is_left {
                    nodes.left[p] = id;
                } else {
                    nodes.right[p] = id;
                }
            }
            // Class fractions or the mean, for internal nodes too (as scikit-learn stores them).
            nodes.value.extend(node_sum.iter().map(|s| s / weight));
            nodes.left.push(Tree::LEAF);
            nodes.right.push(Tree::LEAF);
            match split {
                None => {
                    nodes.feature.push(0);
                    nodes.threshold.push(UNDEFINED_THRESHOLD);
                }
                Some(s) => {
                    #[allow(clippy::cast_possible_truncation)]
                    nodes.feature.push(s.feature as u32);
                    nodes.threshold.push(s.threshold);
                    importances[s.feature] +=
                        weight * impurity - s.weight_left * s.impurity_left - s.weight_right * s.impurity_right;
                    let child = |start, end, is_left, impurity| Record {
                        start,
                        end,
                        depth: rec.depth + 1,
                        parent: id,
                        is_left,
                        impurity,
                        n_constant,
                    };
                    // Right first so the left subtree is popped (numbered) first: pre-order.
                    stack.push(child(s.mid, rec.end, false, s.impurity_right));
                    stack.push(child(rec.start, s.mid, true, s.impurity_left));
                }
            }
        }

        importances.iter_mut().for_each(|v| *v /= root_weight);
        let total: f64 = importances.iter().sum();
        if total > 0.0 {
            importances.iter_mut().for_each(|v| *v /= total);
        }
        Tree {
            n_features: self.cols.n_features,
            n_outputs,
            feature: nodes.feature,
            threshold: nodes.threshold,
            left: nodes.left,
            right: nodes.right,
            value: nodes.value,
            feature_importances: importances,
        }
    }

    /// scikit-learn's `node_split_best`: draws features without replacement until
    /// `max_features` non-constant ones were evaluated, keeps the split with the best proxy
    /// improvement, and partitions the node's samples by it. Also returns the number of features
    /// known to be constant for the children.
    fn split_node(
        &mut self,
        rec: &Record,
        node_sum: &[f64],
        weight: f64,
        sq_sum: f64,
        impurity: f64,
        root_weight: f64,
    ) -> (Option<Split>, usize) {
        let (start, end) = (rec.start, rec.end);
        let n = end - start;
        let n_features = self.cols.n_features;
        let max_features = self.limits.max_features;
        let n_known_constants = rec.n_constant;
        let mut n_total_constants = n_known_constants;
        let mut n_found_constants = 0;
        let mut n_drawn_constants = 0;
        let mut n_visited = 0;
        let mut f_i = n_features;
        let mut best = Best::none();

        while f_i > n_total_constants
            && (n_visited < max_features || n_visited <= n_found_constants + n_drawn_constants)
        {
            n_visited += 1;
            let low = n_drawn_constants;
            let mut f_j = low + self.rng.below(f_i - n_found_constants - low);
            if f_j < n_known_constants {
                self.features.swap(n_drawn_constants, f_j);
                n_drawn_constants += 1;
                continue;
            }
            f_j += n_found_constants;
            let feature = self.features[f_j];

            let ranks = self.cols.ranks(feature);
            let keys = &mut self.keys[..n];
            let (mut lo, mut hi) = (u32::MAX, 0u32);
            let low = self.class_weight.as_deref();
            for (k, &s) in keys.iter_mut().zip(&self.samples[start..end]) {
                let r = ranks[s as usize];
                lo = lo.min(r);
                hi = hi.max(r);
                let payload = low.map_or(s, |cw| cw[s as usize]);
                *k = (u64::from(r) << 32) | u64::from(payload);
            }
            // One value group: constant in this node (neighbouring groups are always more than
            // FEATURE_THRESHOLD apart).
            if hi == lo {
                self.features.swap(f_j, n_total_constants);
                n_found_constants += 1;
                n_total_constants += 1;
                continue;
            }
            f_i -= 1;
            self.features.swap(f_i, f_j);

            sort_by_rank(keys, &mut self.radix_buffer[..n], lo, hi);
            let scan = Scan {
                keys,
                groups: (&self.cols.group_min[feature], &self.cols.group_max[feature]),
                weights: self.weights,
                min_leaf: self.limits.min_samples_leaf,
                feature,
                packed: self.class_weight.is_some(),
            };
            match (self.labels, self.limits.criterion) {
                (Labels::Classes { y, .. }, Criterion::Gini) => {
                    scan.gini(y, node_sum, weight, &mut self.left_sum, &mut best);
                }
                (Labels::Classes { y, .. }, _) => scan.entropy(y, node_sum, weight, &mut self.left_sum, &mut best),
                (Labels::Values(y), _) => scan.squared_error(y, node_sum[0], weight, &mut best),
            }
        }

        // Keep the known constants in their original order for siblings, and hand the newly
        // found ones down to the children.
        self.features[..n_known_constants].copy_from_slice(&self.constant_features[..n_known_constants]);
        self.constant_features[n_known_constants..n_total_constants]
            .copy_from_slice(&self.features[n_known_constants..n_total_constants]);

        if best.proxy == f64::NEG_INFINITY {
            return (None, n_total_constants);
        }

        let ranks = self.cols.ranks(best.feature);
        let samples = &mut self.samples[start..end];
        let (mut i, mut j) = (0, n);
        while i < j {
            if ranks[samples[i] as usize] <= best.rank {
                i += 1;
            } else {
                j -= 1;
                samples.swap(i, j);
            }
        }
        debug_assert_eq!(i, best.n_left);

        let mut left_sum = std::mem::take(&mut self.left_sum);
        let (weight_left, sq_left) = self.accumulate(&self.samples[start..start + i], &mut left_sum);
        let weight_right = weight - weight_left;
        let criterion = self.limits.criterion;
        let impurity_left = impurity_of(criterion, &left_sum, weight_left, sq_left);
        // Right totals by subtraction, as scikit-learn's criteria do (exact for class counts).
        left_sum.iter_mut().zip(node_sum).for_each(|(l, t)| *l = t - *l);
        let impurity_right = impurity_of(criterion, &left_sum, weight_right, sq_sum - sq_left);
        self.left_sum = left_sum;
        let improvement = (weight / root_weight)
            * (impurity - weight_right / weight * impurity_right - weight_left / weight * impurity_left);
        let split = Split {
            feature: best.feature,
            threshold: best.threshold,
            mid: start + i,
            impurity_left,
            impurity_right,
            weight_left,
            weight_right,
            improvement,
        };
        (Some(split), n_total_constants)
    }
}

/// Below this many keys a comparison sort beats the radix sort's fixed costs.
const RADIX_MIN: usize = 256;

/// Sorts `keys` by their rank (high half), all ranks in `lo..=hi`.
///
/// Sorting dominates the fit, and ranks are small integers, so large nodes use an LSD radix
/// sort on `rank - lo` (at most 11 bits a pass, so the counts stay in L1). The order of equal
/// ranks does not matter: splits are only evaluated between different values.
fn sort_by_rank(keys: &mut [u64], buffer: &mut [u64], lo: u32, hi: u32) {
    const MAX_DIGIT: u32 = 11;
    if keys.len() < RADIX_MIN {
        keys.sort_unstable();
        return;
    }
    let bits = 32 - (hi - lo).leading_zeros();
    let passes = bits.div_ceil(MAX_DIGIT);
    let digit = bits.div_ceil(passes);
    let mask = (1usize << digit) - 1;
    let bucket = |k: u64, shift: u32| ((((k >> 32) as u32 - lo) >> shift) as usize) & mask;
    let mut counts = [0usize; 1 << MAX_DIGIT];
    let (mut src, mut dst) = (keys, buffer);
    for pass in 0..passes {
        let shift = pass * digit;
        let counts = &mut counts[..=mask];
        counts.fill(0);
        for &k in src.iter() {
            counts[bucket(k, shift)] += 1;
        }
        let mut offset = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = offset;
            offset += n;
        }
        for &k in src.iter() {
            let b = bucket(k, shift);
            dst[counts[b]] = k;
            counts[b] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    // After an odd number of passes the sorted keys are in the buffer.
    if passes % 2 == 1 {
        dst.copy_from_slice(src);
    }
}

/// scikit-learn's `node_impurity` / `children_impurity` formulas.
fn impurity_of(criterion: Criterion, sum: &[f64], weight: f64, sq_sum: f64) -> f64 {
    match criterion {
        Criterion::Gini => 1.0 - sum.iter().map(|c| c * c).sum::<f64>() / (weight * weight),
        Criterion::Entropy => {
            let mut h = 0.0;
            for &c in sum {
                if c > 0.0 {
                    let p = c / weight;
                    h -= p * (p.ln() / LN_2);
                }
            }
            h
        }
        Criterion::SquaredError => {
            let mean = sum[0] / weight;
            sq_sum / weight - mean * mean
        }
    }
}

/// One feature's sorted keys in a node, scanned left to right for the best split.
struct Scan<'k> {
    keys: &'k [u64],
    /// The feature's group minima and maxima, for thresholds.
    groups: (&'k [f32], &'k [f32]),
    weights: &'k [f64],
    min_leaf: usize,
    feature: usize,
    /// The keys' low half is `class << 16 | weight` rather than the row.
    packed: bool,
}

impl Scan<'_> {
    /// Class and weight of the sample at sorted position `p`.
    #[inline]
    fn class_weight(&self, y: &[u32], p: usize) -> (usize, f64) {
        let low = self.keys[p] & 0xFFFF_FFFF;
        if self.packed {
            ((low >> 16) as usize, (low & 0xFFFF) as f64)
        } else {
            let row = low as usize;
            (y[row] as usize, self.weights[row])
        }
    }

    /// Whether a split may go between sorted positions `p - 1` and `p`: a new value (by more
    /// than `FEATURE_THRESHOLD`) and at least `min_samples_leaf` samples on each side.
    /// Returns the ranks of the two values.
    #[inline]
    fn boundary(&self, p: usize) -> Option<(usize, usize)> {
        let prev = (self.keys[p - 1] >> 32) as usize;
        let next = (self.keys[p] >> 32) as usize;
        if next == prev || p < self.min_leaf || self.keys.len() - p < self.min_leaf {
            return None;
        }
        Some((prev, next))
    }

    #[inline]
    fn row(&self, p: usize) -> usize {
        (self.keys[p] & 0xFFFF_FFFF) as usize
    }

    /// Gini's proxy `Σ l_c² / w_l + Σ r_c² / w_r`, with both sums of squares updated in O(1)
    /// per sample. With integer (bootstrap count) weights every quantity is an exact integer.
    fn gini(&self, y: &[u32], totals: &[f64], weight: f64, left: &mut [f64], best: &mut Best) {
        left.fill(0.0);
        let mut sq_left = 0.0;
        let mut sq_right: f64 = totals.iter().map(|c| c * c).sum();
        let (mut w_left, mut w_right) = (0.0, weight);
        for p in 1..self.keys.len() {
            let (c, w) = self.class_weight(y, p - 1);
            let cl = left[c];
            let cr = totals[c] - cl;
            sq_left += w * (2.0 * cl + w);
            sq_right += w * (w - 2.0 * cr);
            left[c] = cl + w;
            w_left += w;
            w_right -= w;
            if let Some((prev, next)) = self.boundary(p) {
                let proxy = sq_left / w_left + sq_right / w_right;
                if proxy > best.proxy {
                    best.set(proxy, self.feature, prev, next, self.groups, p);
                }
            }
        }
    }

    /// Entropy's proxy `-(w_l H_l + w_r H_r)` (in nats: scaling does not change the argmax).
    fn entropy(&self, y: &[u32], totals: &[f64], weight: f64, left: &mut [f64], best: &mut Best) {
        left.fill(0.0);
        let mut w_left = 0.0;
        for p in 1..self.keys.len() {
            let (c, w) = self.class_weight(y, p - 1);
            left[c] += w;
            w_left += w;
            if let Some((prev, next)) = self.boundary(p) {
                let w_right = weight - w_left;
                let mut proxy = 0.0;
                for (&l, &t) in left.iter().zip(totals) {
                    let r = t - l;
                    if l > 0.0 {
                        proxy += l * (l / w_left).ln();
                    }
                    if r > 0.0 {
                        proxy += r * (r / w_right).ln();
                    }
                }
                if proxy > best.proxy {
                    best.set(proxy, self.feature, prev, next, self.groups, p);
                }
            }
        }
    }

    /// Squared error's proxy `s_l² / w_l + s_r² / w_r`.
    fn squared_error(&self, y: &[f64], total: f64, weight: f64, best: &mut Best) {
        let (mut s_left, mut w_left) = (0.0, 0.0);
        for p in 1..self.keys.len() {
            let row = self.row(p - 1);
            let w = self.weights[row];
            s_left += w * y[row];
            w_left += w;
            if let Some((prev, next)) = self.boundary(p) {
                let s_right = total - s_left;
                let proxy = s_left * s_left / w_left + s_right * s_right / (weight - w_left);
                if proxy > best.proxy {
                    best.set(proxy, self.feature, prev, next, self.groups, p);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Estimators
// ---------------------------------------------------------------------------------------------

/// What both estimators check and build before growing trees: the target, the ranked columns
/// and the resolved limits.
fn checked_input<'a>(
    model: &'static str,
    classifier: bool,
    options: &TreeOptions,
    x: &Features,
    y: &Target<'a>,
) -> Result<(Labels<'a>, Columns, Limits), FitError> {
    if x.n_rows() == 0 {
        return Err(FitError::Empty { model });
    }
    let labels = check_target(model, classifier, y, x.n_rows())?;
    let cols = Columns::new(x, model)?;
    let limits = options.resolve(model, cols.n_rows, cols.n_features)?;
    Ok((labels, cols, limits))
}

impl Estimator for DecisionTreeParams {
    fn fit(&self, x: &Features, y: &Target<'_>, seed: u64) -> Result<FittedEstimator, FitError> {
        let (labels, cols, limits) = checked_input(self.model(), self.classifier, &self.options, x, y)?;
        let weights = vec![1.0; cols.n_rows];
        let tree = TreeBuilder::new(&cols, &labels, limits, &weights, Rng::new(seed)).build();
        Ok(if self.classifier {
            FittedEstimator::DecisionTreeClassifier(tree)
        } else {
            FittedEstimator::DecisionTreeRegressor(tree)
        })
    }
}

impl Estimator for RandomForestParams {
    fn fit(&self, x: &Features, y: &Target<'_>, seed: u64) -> Result<FittedEstimator, FitError> {
        let (labels, cols, limits) = checked_input(self.model(), self.classifier, &self.options, x, y)?;
        let n_rows = cols.n_rows;
        let n_draws = self.n_bootstrap(n_rows);
        let trees: Vec<Tree> = (0..self.n_estimators)
            .into_par_iter()
            .map(|t| {
                // Each tree owns a stream derived from its index, so the forest does not depend
                // on which thread builds which tree.
                let mut rng = Rng::derive(seed, t as u64);
                let weights = if self.bootstrap {
                    // Drawn rows become integer weights (scikit-learn's `bincount` of the
                    // indices): a row drawn twice counts twice in impurities and leaf values.
                    let mut w = vec![0.0; n_rows];
                    for _ in 0..n_draws {
                        w[rng.below(n_rows)] += 1.0;
                    }
                    w
                } else {
                    vec![1.0; n_rows]
                };
                TreeBuilder::new(&cols, &labels, limits, &weights, rng).build()
            })
            .collect();
        let forest = Forest { n_features: cols.n_features, n_outputs: labels.n_outputs(), trees };
        Ok(if self.classifier {
            FittedEstimator::RandomForestClassifier(forest)
        } else {
            FittedEstimator::RandomForestRegressor(forest)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use kiln_model::matrix::CsrMatrix;
    use serde_json::json;

    use super::*;

    use crate::estimators::testdata::{dense_rows as dense, diabetes_rows as diabetes, iris_rows as iris};

    fn hyper(model: &str, values: &[(&str, Value)]) -> Hyper {
        Hyper::new(model, values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>())
    }

    fn tree_params(classifier: bool, values: &[(&str, Value)]) -> DecisionTreeParams {
        DecisionTreeParams::from_hyper(&hyper("decision_tree", values), classifier).unwrap()
    }

    fn forest_params(classifier: bool, values: &[(&str, Value)]) -> RandomForestParams {
        RandomForestParams::from_hyper(&hyper("random_forest", values), classifier).unwrap()
    }

    fn classes(y: &[usize]) -> Target<'_> {
        Target::Classes { y, n_classes: 3 }
    }

    fn as_tree(m: &FittedEstimator) -> &Tree {
        match m {
            FittedEstimator::DecisionTreeClassifier(t) | FittedEstimator::DecisionTreeRegressor(t) => t,
            other => panic!("not a tree: {other:?}"),
        }
    }

    fn as_forest(m: &FittedEstimator) -> &Forest {
        match m {
            FittedEstimator::RandomForestClassifier(f) | FittedEstimator::RandomForestRegressor(f) => f,
            other => panic!("not a forest: {other:?}"),
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn accuracy(m: &FittedEstimator, x: &Features, y: &[usize]) -> f64 {
        let kiln_model::estimator::RawOutput::Proba(p) = m.raw(x) else { panic!("no probabilities") };
        let hits = p.argmax_rows().iter().zip(y).filter(|(a, b)| a == b).count();
        hits as f64 / y.len() as f64
    }

    #[allow(clippy::cast_precision_loss)]
    fn r2(m: &FittedEstimator, x: &Features, y: &[f64]) -> f64 {
        let kiln_model::estimator::RawOutput::Values(p) = m.raw(x) else { panic!("no values") };
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let ss_res: f64 = p.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
        let ss_tot: f64 = y.iter().map(|b| (b - mean) * (b - mean)).sum();
        1.0 - ss_res / ss_tot
    }

    fn split_rows<T: Clone>(rows: &[Vec<f64>], y: &[T], every: usize) -> (Features, Vec<T>, Features, Vec<T>) {
        let (mut xa, mut ya, mut xb, mut yb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (r, t)) in rows.iter().zip(y).enumerate() {
            if i % every == 0 {
                xb.push(r.clone());
                yb.push(t.clone());
            } else {
                xa.push(r.clone());
                ya.push(t.clone());
            }
        }
        (dense(&xa), ya, dense(&xb), yb)
    }

    // scikit-learn 1.9.1:
    //   iris = pd.read_csv("iris.csv"); X = iris.iloc[:, :4].to_numpy()
    //   y = np.unique(iris.species, return_inverse=True)[1]
    //   t = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    //   t.tree_.feature, t.tree_.threshold, t.tree_.value, t.score(X, y)
    // gives features [3, -2, 3, -2, -2], thresholds [0.800000011920929, -2, 1.75, -2, -2],
    // values [1/3,1/3,1/3], [1,0,0], [0,.5,.5], [0,.9074074074074074,.09259259259259259],
    // [0,.021739130434782608,.9782608695652174] and accuracy 0.96. The root split ties with
    // petal length <= 2.449999988079071 (random_state=4 picks that one).
    #[test]
    fn iris_depth_2_matches_sklearn() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let m = tree_params(true, &[("max_depth", json!(2))]).fit(&x, &classes(&y), 0).unwrap();
        let t = as_tree(&m);
        assert_eq!(t.n_nodes(), 5);
        assert_eq!(t.n_outputs, 3);
        let root = (t.feature[0], t.threshold[0]);
        assert!(root == (3, 0.800000011920929) || root == (2, 2.449999988079071), "root split {root:?}");
        assert_eq!(t.left[0], 1);
        assert_eq!(t.right[0], 2);
        assert_eq!((t.feature[2], t.threshold[2]), (3, 1.75));
        assert_eq!((t.left[2], t.right[2]), (3, 4));
        assert_eq!(t.left[1], Tree::LEAF);
        let expected = [
            [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.5, 0.5],
            [0.0, 0.9074074074074074, 0.09259259259259259],
            [0.0, 0.021739130434782608, 0.9782608695652174],
        ];
        for (got, want) in t.value.iter().zip(expected.iter().flatten()) {
            assert!((got - want).abs() < 1e-15, "{:?}", t.value);
        }
        assert!((accuracy(&m, &x, &y) - 0.96).abs() < 1e-12);
        assert!((t.feature_importances.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    // scikit-learn 1.9.1: DecisionTreeClassifier(random_state=0).fit(X, y).score(X, y) == 1.0
    #[test]
    fn iris_full_depth_fits_the_training_set() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let m = tree_params(true, &[]).fit(&x, &classes(&y), 0).unwrap();
        assert!((accuracy(&m, &x, &y) - 1.0).abs() < 1e-15);
    }

    // scikit-learn 1.9.1:
    //   DecisionTreeClassifier(criterion="entropy", max_depth=3, random_state=0).fit(X, y)
    // has accuracy 0.9733333333333334 and thresholds [0.8000000119, -2, 1.75, 4.95000005, ...].
    #[test]
    fn iris_entropy_depth_3_matches_sklearn() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let m = tree_params(true, &[("criterion", json!("entropy")), ("max_depth", json!(3))])
            .fit(&x, &classes(&y), 0)
            .unwrap();
        assert!((accuracy(&m, &x, &y) - 0.9733333333333334).abs() < 1e-12);
        let t = as_tree(&m);
        assert_eq!((t.feature[2], t.threshold[2]), (3, 1.75));
    }

    // scikit-learn 1.9.1:
    //   DecisionTreeClassifier(min_samples_leaf=5, random_state=0).fit(X, y): accuracy
    //   0.9733333333333334, 11 nodes.
    #[test]
    fn min_samples_leaf_is_respected() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let m = tree_params(true, &[("min_samples_leaf", json!(5))]).fit(&x, &classes(&y), 0).unwrap();
        let t = as_tree(&m);
        let mut per_leaf = vec![0usize; t.n_nodes()];
        for r in &rows {
            per_leaf[t.leaf_of(r)] += 1;
        }
        for (node, &count) in per_leaf.iter().enumerate() {
            if t.left[node] == Tree::LEAF {
                assert!(count >= 5, "leaf {node} holds {count} rows");
            }
        }
        assert!((accuracy(&m, &x, &y) - 0.9733333333333334).abs() < 1e-12);
        assert_eq!(t.n_nodes(), 11);
    }

    // scikit-learn 1.9.1:
    //   d = pd.read_csv("diabetes.csv"); X = d.iloc[:, :10].to_numpy(); y = d.target
    //   r = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    //   r.score(X, y), r.tree_.feature, r.tree_.threshold, r.tree_.value, r.feature_importances_
    #[test]
    fn diabetes_depth_3_matches_sklearn() {
        let (rows, y) = diabetes();
        let x = dense(&rows);
        let m = tree_params(false, &[("max_depth", json!(3))]).fit(&x, &Target::Values(&y), 0).unwrap();
        let t = as_tree(&m);
        assert!((r2(&m, &x, &y) - 0.5006720154703376).abs() < 1e-9);
        let features: Vec<u32> = (0..t.n_nodes()).filter(|&i| t.left[i] != Tree::LEAF).map(|i| t.feature[i]).collect();
        assert_eq!(features, [8, 2, 6, 0, 2, 2, 2]);
        let thresholds: Vec<f64> =
            (0..t.n_nodes()).filter(|&i| t.left[i] != Tree::LEAF).map(|i| t.threshold[i]).collect();
        assert_eq!(thresholds, [4.600149869918823, 26.949999809265137, 55.5, 26.5, 27.75, 24.34999942779541, 32.75]);
        let values = [
            152.13348416289594,
            109.9862385321101,
            96.30994152046783,
            108.80459770114942,
            83.36904761904762,
            159.74468085106383,
            274.0,
            154.66666666666666,
            193.15178571428572,
            162.68103448275863,
            137.6904761904762,
            176.86486486486487,
            225.87962962962962,
            208.57142857142858,
            268.8709677419355,
        ];
        assert_eq!(t.value.len(), values.len());
        for (got, want) in t.value.iter().zip(values) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        let importances = [
            0.02078003835653888,
            0.0,
            0.37584937246690475,
            0.0,
            0.0,
            0.0,
            0.021069918051207757,
            0.0,
            0.5823006711253487,
            0.0,
        ];
        for (got, want) in t.feature_importances.iter().zip(importances) {
            assert!((got - want).abs() < 1e-9, "{:?}", t.feature_importances);
        }
    }

    // scikit-learn 1.9.1:
    //   test = np.arange(150) % 3 == 0
    //   [RandomForestClassifier(random_state=s).fit(X[~test], y[~test]).score(X[test], y[test])
    //    for s in range(5)] == [0.96, 0.96, 0.96, 0.94, 0.96]
    #[test]
    fn forest_iris_accuracy_close_to_sklearn() {
        let (rows, y) = iris();
        let (xa, ya, xb, yb) = split_rows(&rows, &y, 3);
        let m = forest_params(true, &[]).fit(&xa, &classes(&ya), 0).unwrap();
        let f = as_forest(&m);
        assert_eq!(f.trees.len(), 100);
        let acc = accuracy(&m, &xb, &yb);
        assert!((acc - 0.96).abs() <= 0.05, "test accuracy {acc}");
        assert!((f.feature_importances().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    // scikit-learn 1.9.1:
    //   test = np.arange(442) % 4 == 0
    //   [RandomForestRegressor(random_state=s).fit(X[~test], y[~test]).score(X[test], y[test])
    //    for s in range(5)] == [0.398, 0.413, 0.411, 0.436, 0.387] (mean 0.409)
    #[test]
    fn forest_diabetes_r2_close_to_sklearn() {
        let (rows, y) = diabetes();
        let (xa, ya, xb, yb) = split_rows(&rows, &y, 4);
        let m = forest_params(false, &[]).fit(&xa, &Target::Values(&ya), 0).unwrap();
        let score = r2(&m, &xb, &yb);
        assert!((score - 0.409).abs() <= 0.05, "test R² {score}");
    }

    #[test]
    fn forest_is_deterministic_per_seed() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let p = forest_params(true, &[("n_estimators", json!(20))]);
        let a = p.fit(&x, &classes(&y), 7).unwrap();
        let b = p.fit(&x, &classes(&y), 7).unwrap();
        let c = p.fit(&x, &classes(&y), 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn importances_sum_to_one_or_are_zero() {
        let (rows, y) = diabetes();
        let x = dense(&rows);
        let m = forest_params(false, &[("n_estimators", json!(5)), ("max_depth", json!(4))])
            .fit(&x, &Target::Values(&y), 1)
            .unwrap();
        for t in &as_forest(&m).trees {
            assert!((t.feature_importances.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let imp = m.feature_importance().unwrap();
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);

        // A single leaf (a split needs 1000 rows): no importance at all.
        let leaf = tree_params(false, &[("min_samples_split", json!(1000))]).fit(&x, &Target::Values(&y), 0).unwrap();
        let t = as_tree(&leaf);
        assert_eq!(t.n_nodes(), 1);
        assert!(t.feature_importances.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn radix_sort_orders_by_rank() {
        let mut rng = Rng::new(5);
        for (n, range) in [(100, 50u32), (1000, 3), (5000, 70_000), (3000, 1 << 23)] {
            let lo = 1000;
            #[allow(clippy::cast_possible_truncation)]
            let mut keys: Vec<u64> =
                (0..n).map(|i| (u64::from(lo + rng.below(range as usize) as u32) << 32) | i as u64).collect();
            let hi = keys.iter().map(|k| (k >> 32) as u32).max().unwrap();
            let mut expected: Vec<u64> = keys.clone();
            expected.sort_unstable_by_key(|k| (k >> 32, k & 0xFFFF_FFFF));
            let mut buffer = vec![0; n];
            sort_by_rank(&mut keys, &mut buffer, lo, hi);
            let ranks: Vec<u64> = keys.iter().map(|k| k >> 32).collect();
            assert_eq!(ranks, expected.iter().map(|k| k >> 32).collect::<Vec<_>>(), "n={n} range={range}");
            keys.sort_unstable();
            assert_eq!(keys, expected, "a permutation");
        }
    }

    #[test]
    fn sparse_input_gives_the_same_tree() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let mut s = CsrMatrix::empty(4);
        for r in &rows {
            #[allow(clippy::cast_possible_truncation)]
            s.push_row(r.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, v)| (j as u32, *v)));
        }
        let p = tree_params(true, &[]);
        assert_eq!(p.fit(&x, &classes(&y), 3).unwrap(), p.fit(&Features::Sparse(s), &classes(&y), 3).unwrap());
    }

    #[test]
    fn bad_params_name_the_key() {
        let cases: [(bool, &str, Value); 11] = [
            (true, "criterion", json!("squared_error")),
            (false, "criterion", json!("gini")),
            (true, "max_depth", json!(0)),
            (true, "min_samples_split", json!(1)),
            (true, "min_samples_split", json!(1.5)),
            (true, "min_samples_leaf", json!(1.0)),
            (true, "max_features", json!("auto")),
            (true, "max_features", json!(0)),
            (true, "max_features", json!(1.5)),
            (true, "min_impurity_decrease", json!(-0.1)),
            (true, "max_depth", json!("deep")),
        ];
        for (classifier, key, value) in cases {
            let e = DecisionTreeParams::from_hyper(&hyper("decision_tree", &[(key, value.clone())]), classifier)
                .unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.to_string().contains(key), "{e}");
        }
        let forest_cases: [(&[(&str, Value)], &str); 4] = [
            (&[("n_estimators", json!(0))], "n_estimators"),
            (&[("bootstrap", json!("yes"))], "bootstrap"),
            (&[("max_samples", json!(-1))], "max_samples"),
            (&[("bootstrap", json!(false)), ("max_samples", json!(10))], "max_samples"),
        ];
        for (values, key) in forest_cases {
            let e = RandomForestParams::from_hyper(&hyper("random_forest", values), true).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        // Accepted spellings.
        for v in [json!(null), json!("sqrt"), json!("log2"), json!(2), json!(0.5)] {
            tree_params(true, &[("max_features", v)]);
        }
        forest_params(true, &[("max_samples", json!(0.5)), ("criterion", json!("log_loss"))]);
    }

    #[test]
    fn fit_errors() {
        let (rows, y) = iris();
        let x = dense(&rows);
        let p = tree_params(true, &[]);
        let empty = Features::Dense(DenseMatrix::zeros(0, 4));
        assert!(matches!(p.fit(&empty, &classes(&[]), 0), Err(FitError::Empty { .. })));
        let one = vec![1usize; rows.len()];
        assert!(matches!(p.fit(&x, &classes(&one), 0), Err(FitError::TooFewClasses { found: 1, .. })));
        let values = vec![0.0; rows.len()];
        assert!(matches!(p.fit(&x, &Target::Values(&values), 0), Err(FitError::WrongTask { .. })));
        let r = tree_params(false, &[]);
        assert!(matches!(r.fit(&x, &classes(&y), 0), Err(FitError::WrongTask { .. })));

        let mut with_nan = rows.clone();
        with_nan[5][2] = f64::NAN;
        let e = p.fit(&dense(&with_nan), &classes(&y), 0).unwrap_err();
        assert!(e.to_string().contains("NaN") && e.to_string().contains("row 5"), "{e}");

        let too_many = tree_params(true, &[("max_features", json!(5))]);
        let e = too_many.fit(&x, &classes(&y), 0).unwrap_err();
        assert!(e.to_string().contains("max_features"), "{e}");
    }

    /// User + system CPU time of this process (Linux; 0 elsewhere), to compare runs on a busy
    /// machine where wall time says little.
    fn process_cpu_seconds() -> f64 {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return 0.0;
        };
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let Some(rest) = stat.rsplit(')').next() else {
            return 0.0;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Run with `cargo test --release -p kiln-train --lib tree::tests::forest_speed_80k --
    /// --ignored --nocapture`: 100 trees on 80,000 × 20 (scikit-learn: ~100-150 s on 2 cores).
    #[test]
    #[ignore = "benchmark; run in release"]
    fn forest_speed_80k() {
        let (n, d) = (80_000, 20);
        let mut rng = Rng::new(42);
        let mut data = Vec::with_capacity(n * d);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..d).map(|_| rng.next_f64() * 2.0 - 1.0).collect();
            let score = row[0] + 0.8 * row[1] * row[2] - 0.5 * row[3] + 0.6 * (rng.next_f64() - 0.5);
            y.push(usize::from(score > 0.0));
            data.extend_from_slice(&row);
        }
        let x = Features::Dense(DenseMatrix::from_vec(n, d, data));
        let (started, cpu_before) = (Instant::now(), process_cpu_seconds());
        let m = forest_params(true, &[]).fit(&x, &Target::Classes { y: &y, n_classes: 2 }, 0).unwrap();
        let secs = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu_before;
        let nodes: usize = as_forest(&m).trees.iter().map(Tree::n_nodes).sum();
        println!("forest_speed_80k: 100 trees on {n} x {d} in {secs:.2} s wall, {cpu:.2} s CPU ({nodes} nodes)");
        assert!((accuracy(&m, &x, &y) - 1.0).abs() < 0.05);
    }
}
