//! Evaluation metrics with scikit-learn's semantics.
//!
//! kiln's reports are read side by side with scikit-learn's, so every number here follows the
//! sklearn definition exactly (same zero-division conventions, same tie handling in ROC curves,
//! same degenerate cases in `r2_score`). The functions are pure: callers own all I/O.
//!
//! Conventions shared by the whole module:
//! * classification targets are class indices `0..n_classes` (the label encoder's output);
//! * "zero division" (precision with no predicted samples, recall with no true samples) yields
//!   `0.0`, which is what sklearn returns under its default `zero_division="warn"`;
//! * the basic functions ([`confusion_matrix`], [`roc_curve`], [`mae`], …) treat mismatched
//!   input lengths as a programming error and panic; the report constructors and
//!   [`Scoring`] validate their inputs and return [`MetricsError`] instead, because they sit on
//!   the path from user data to output.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("y_true has {y_true} values but y_pred has {y_pred}")]
    LengthMismatch { y_true: usize, y_pred: usize },
    #[error("positive-class scores have {scores} values but y_true has {y_true}")]
    ScoresLengthMismatch { y_true: usize, scores: usize },
    #[error("there are no samples to evaluate")]
    Empty,
    #[error("class index {label} is out of range for {n_classes} classes")]
    LabelOutOfRange { label: usize, n_classes: usize },
    #[error("unknown scoring {name:?}; expected one of: {}", Scoring::allowed_names())]
    UnknownScoring { name: String },
    #[error("scoring '{scoring}' is for {task} models")]
    WrongTask { scoring: Scoring, task: &'static str },
    #[error("scoring '{scoring}' needs positive-class scores (predict_proba or decision_function)")]
    MissingScores { scoring: Scoring },
    #[error(
        "scoring '{scoring}' is only defined for binary targets (class indices 0 and 1), \
         but class index {label} occurs"
    )]
    NotBinary { scoring: Scoring, label: usize },
    #[error("ROC AUC is undefined when y_true contains only one class")]
    SingleClass,
}

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

/// Precision, recall, F1 and support of one class (or of an average over classes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    /// Serialised as `"f1-score"`, sklearn's key.
    #[serde(rename = "f1-score")]
    pub f1_score: f64,
    pub support: usize,
}

impl ClassMetrics {
    fn to_json(self) -> Value {
        json!({
            "precision": self.precision,
            "recall": self.recall,
            "f1-score": self.f1_score,
            "support": self.support,
        })
    }
}

/// The numbers of sklearn's `classification_report`.
///
/// Every class of `class_names` gets a row, including classes absent from both `y_true` and
/// `y_pred` (they score 0 and count in the macro average). That equals
/// `classification_report(y_true, y_pred, labels=range(n_classes), target_names=class_names)`;
/// without `labels`, sklearn would silently drop classes that a test split happens to miss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub class_names: Vec<String>,
    /// One entry per class, in class-index order.
    pub per_class: Vec<ClassMetrics>,
    pub accuracy: f64,
    pub macro_avg: ClassMetrics,
    pub weighted_avg: ClassMetrics,
}

/// Per-class confusion counts, the common input of every precision/recall-type metric.
struct ClassCounts {
    true_positives: Vec<usize>,
    /// How often each class was predicted (`tp + fp`).
    predicted: Vec<usize>,
    /// How often each class occurs in `y_true` (`tp + fn`), i.e. the support.
    actual: Vec<usize>,
}

impl ClassCounts {
    /// Callers have checked that lengths match and every label is `< n_classes`.
    fn new(y_true: &[usize], y_pred: &[usize], n_classes: usize) -> Self {
        let mut counts =
            Self { true_positives: vec![0; n_classes], predicted: vec![0; n_classes], actual: vec![0; n_classes] };
        for (&t, &p) in y_true.iter().zip(y_pred) {
            counts.actual[t] += 1;
            counts.predicted[p] += 1;
            if t == p {
                counts.true_positives[t] += 1;
            }
        }
        counts
    }

    /// sklearn's per-class formulas. F1 is computed from counts as `2tp / (support + predicted)`,
    /// exactly as sklearn does, rather than from the rounded precision and recall, so that the
    /// results agree to the last bit.
    fn class_metrics(&self, class: usize) -> ClassMetrics {
        let tp = self.true_positives[class] as f64;
        let predicted = self.predicted[class];
        let actual = self.actual[class];
        ClassMetrics {
            precision: divide_or_zero(tp, predicted as f64),
            recall: divide_or_zero(tp, actual as f64),
            f1_score: divide_or_zero(2.0 * tp, (actual + predicted) as f64),
            support: actual,
        }
    }

    /// Unweighted mean over `classes` (sklearn's `average="macro"`).
    fn macro_average(&self, classes: &[usize]) -> ClassMetrics {
        let rows: Vec<ClassMetrics> = classes.iter().map(|&c| self.class_metrics(c)).collect();
        let n = rows.len() as f64;
        let mean = |f: fn(&ClassMetrics) -> f64| rows.iter().map(f).sum::<f64>() / n;
        ClassMetrics {
            precision: mean(|m| m.precision),
            recall: mean(|m| m.recall),
            f1_score: mean(|m| m.f1_score),
            support: rows.iter().map(|m| m.support).sum(),
        }
    }

    /// Support-weighted mean over `classes` (sklearn's `average="weighted"`); like sklearn it is
    /// 0 when no class has support.
    fn weighted_average(&self, classes: &[usize]) -> ClassMetrics {
        let rows: Vec<ClassMetrics> = classes.iter().map(|&c| self.class_metrics(c)).collect();
        let total: usize = rows.iter().map(|m| m.support).sum();
        let weighted = |f: fn(&ClassMetrics) -> f64| {
            let sum: f64 = rows.iter().map(|m| f(m) * m.support as f64).sum();
            divide_or_zero(sum, total as f64)
        };
        ClassMetrics {
            precision: weighted(|m| m.precision),
            recall: weighted(|m| m.recall),
            f1_score: weighted(|m| m.f1_score),
            support: total,
        }
    }
}

/// `num / den`, or 0 when `den` is 0: sklearn's default `zero_division` result.
fn divide_or_zero(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// Checks the shared preconditions of the classification entry points.
fn check_labels(y_true: &[usize], y_pred: &[usize], n_classes: usize) -> Result<(), MetricsError> {
    if y_true.len() != y_pred.len() {
        return Err(MetricsError::LengthMismatch { y_true: y_true.len(), y_pred: y_pred.len() });
    }
    if y_true.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some(&label) = y_true.iter().chain(y_pred).find(|&&l| l >= n_classes) {
        return Err(MetricsError::LabelOutOfRange { label, n_classes });
    }
    Ok(())
}

fn accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    let correct = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    correct as f64 / y_true.len() as f64
}

impl ClassificationReport {
    /// Computes the report; `class_names[i]` names class index `i`.
    ///
    /// # Errors
    /// If the lengths differ, there are no samples, or a label is `>= class_names.len()`.
    pub fn new<S: AsRef<str>>(y_true: &[usize], y_pred: &[usize], class_names: &[S]) -> Result<Self, MetricsError> {
        let n_classes = class_names.len();
        check_labels(y_true, y_pred, n_classes)?;
        let counts = ClassCounts::new(y_true, y_pred, n_classes);
        let all: Vec<usize> = (0..n_classes).collect();
        Ok(Self {
            class_names: class_names.iter().map(|s| s.as_ref().to_owned()).collect(),
            per_class: all.iter().map(|&c| counts.class_metrics(c)).collect(),
            accuracy: accuracy(y_true, y_pred),
            macro_avg: counts.macro_average(&all),
            weighted_avg: counts.weighted_average(&all),
        })
    }

    /// The shape of sklearn's `classification_report(..., output_dict=True)`, with integer
    /// supports. serde_json sorts object keys, so the key order differs from sklearn's; a class
    /// literally named "accuracy", "macro avg" or "weighted avg" is overwritten by the summary
    /// entry, exactly as in sklearn.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, m) in self.class_names.iter().zip(&self.per_class) {
            map.insert(name.clone(), m.to_json());
        }
        map.insert("accuracy".to_owned(), json!(self.accuracy));
        map.insert("macro avg".to_owned(), self.macro_avg.to_json());
        map.insert("weighted avg".to_owned(), self.weighted_avg.to_json());
        Value::Object(map)
    }

    /// The text table of sklearn's `classification_report(..., digits=4)`.
    #[must_use]
    pub fn render(&self) -> String {
        self.render_with_digits(4)
    }

    /// The text table of sklearn's `classification_report(..., digits=digits)`, character for
    /// character (this mirrors sklearn's format strings).
    #[must_use]
    pub fn render_with_digits(&self, digits: usize) -> String {
        const LAST_LINE: &str = "weighted avg";
        let name_width = self.class_names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let width = name_width.max(LAST_LINE.len()).max(digits);
        let row = |out: &mut String, name: &str, m: &ClassMetrics| {
            out.push_str(&format!(
                "{name:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}\n",
                m.precision, m.recall, m.f1_score, m.support
            ));
        };

        let mut out =
            format!("{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        for (name, m) in self.class_names.iter().zip(&self.per_class) {
            row(&mut out, name, m);
        }
        out.push('\n');
        out.push_str(&format!(
            "{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}\n",
            "accuracy", "", "", self.accuracy, self.macro_avg.support
        ));
        row(&mut out, "macro avg", &self.macro_avg);
        row(&mut out, LAST_LINE, &self.weighted_avg);
        out
    }
}

impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// sklearn's `confusion_matrix(y_true, y_pred, labels=range(n_classes))`: `m[t][p]` counts the
/// samples of true class `t` predicted as `p`.
///
/// # Panics
/// If the lengths differ or a label is `>= n_classes` (both are programming errors: labels come
/// from the label encoder).
#[must_use]
pub fn confusion_matrix(y_true: &[usize], y_pred: &[usize], n_classes: usize) -> Vec<Vec<usize>> {
    assert_eq!(y_true.len(), y_pred.len(), "confusion_matrix: y_true and y_pred lengths");
    let mut m = vec![vec![0; n_classes]; n_classes];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        assert!(t < n_classes && p < n_classes, "confusion_matrix: label out of range");
        m[t][p] += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------------
// ROC
// ---------------------------------------------------------------------------------------------

/// sklearn's `roc_curve(y_true, scores)` with its default `drop_intermediate=True`: returns
/// `(fpr, tpr, thresholds)`, thresholds decreasing and the first one `+inf` (the point (0, 0)).
///
/// Tied scores form a single threshold, so a tie between a positive and a negative sample is a
/// diagonal segment of the curve, not a step. Collinear intermediate points are dropped as in
/// sklearn; this keeps plots light and does not change the area. When `y_true` has no negatives
/// (positives), every `fpr` (`tpr`) is NaN, as in sklearn. Scores must not be NaN (sklearn
/// rejects them; here they would sort above `+inf`).
///
/// # Panics
/// If `y_true` and `scores` have different lengths.
#[must_use]
pub fn roc_curve(y_true: &[bool], scores: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    assert_eq!(y_true.len(), scores.len(), "roc_curve: y_true and scores lengths");

    // Descending by score. Ties collapse into one threshold below, so their order is irrelevant.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

    // Cumulative (fp, tp) counts at the last sample of each distinct score (sklearn's
    // `_binary_clf_curve`).
    let mut fps: Vec<u64> = Vec::new();
    let mut tps: Vec<u64> = Vec::new();
    let mut thresholds: Vec<f64> = Vec::new();
    let (mut fp, mut tp) = (0_u64, 0_u64);
    for (k, &i) in order.iter().enumerate() {
        if y_true[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        // `!=` rather than total_cmp: -0.0 and 0.0 are one threshold, as in numpy.
        let last_of_tie = order.get(k + 1).is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            fps.push(fp);
            tps.push(tp);
            thresholds.push(scores[i]);
        }
    }

    // Keep only the corners: a point whose neighbours are collinear with it on both axes has a
    // zero second difference in fps and tps.
    if fps.len() > 2 {
        let second_diff = |v: &[u64], j: usize| {
            // v[j-1] - 2 v[j] + v[j+1] in signed arithmetic.
            (v[j - 1] as i128) - 2 * (v[j] as i128) + (v[j + 1] as i128)
        };
        let keep: Vec<usize> = (0..fps.len())
            .filter(|&j| j == 0 || j == fps.len() - 1 || second_diff(&fps, j) != 0 || second_diff(&tps, j) != 0)
            .collect();
        fps = keep.iter().map(|&j| fps[j]).collect();
        tps = keep.iter().map(|&j| tps[j]).collect();
        thresholds = keep.iter().map(|&j| thresholds[j]).collect();
    }

    // Start the curve at (0, 0) with an infinite threshold (sklearn >= 1.3).
    fps.insert(0, 0);
    tps.insert(0, 0);
    thresholds.insert(0, f64::INFINITY);

    let normalise = |v: &[u64]| -> Vec<f64> {
        let total = v.last().copied().unwrap_or(0);
        if total == 0 { vec![f64::NAN; v.len()] } else { v.iter().map(|&x| x as f64 / total as f64).collect() }
    };
    (normalise(&fps), normalise(&tps), thresholds)
}

/// Area under a curve by the trapezoidal rule, numpy's `trapezoid(y, x)` term by term.
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2).zip(y.windows(2)).map(|(dx, dy)| (dx[1] - dx[0]) * (dy[1] + dy[0]) / 2.0).sum()
}

/// sklearn's `roc_auc_score` for a binary target: the trapezoidal area under [`roc_curve`], so
/// ties count one half. Returns NaN when `y_true` lacks positives or negatives (sklearn raises);
/// [`Scoring::RocAuc`] turns that into [`MetricsError::SingleClass`].
///
/// # Panics
/// If `y_true` and `scores` have different lengths.
#[must_use]
pub fn roc_auc(y_true: &[bool], scores: &[f64]) -> f64 {
    let has_pos = y_true.iter().any(|&t| t);
    let has_neg = y_true.iter().any(|&t| !t);
    if !(has_pos && has_neg) {
        return f64::NAN;
    }
    let (fpr, tpr, _) = roc_curve(y_true, scores);
    trapezoid(&fpr, &tpr)
}

// ---------------------------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------------------------

fn check_same_len(y_true: &[f64], y_pred: &[f64], what: &str) {
    assert_eq!(y_true.len(), y_pred.len(), "{what}: y_true and y_pred lengths");
}

/// Mean absolute error (sklearn's `mean_absolute_error`). NaN for empty input.
///
/// # Panics
/// If the lengths differ.
#[must_use]
pub fn mae(y_true: &[f64], y_pred: &[f64]) -> f64 {
    check_same_len(y_true, y_pred, "mae");
    let sum: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (p - t).abs()).sum();
    sum / y_true.len() as f64
}

/// Mean squared error (sklearn's `mean_squared_error`). NaN for empty input.
///
/// # Panics
/// If the lengths differ.
#[must_use]
pub fn mse(y_true: &[f64], y_pred: &[f64]) -> f64 {
    check_same_len(y_true, y_pred, "mse");
    let sum: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (t - p) * (t - p)).sum();
    sum / y_true.len() as f64
}

/// Root mean squared error (sklearn's `root_mean_squared_error`). NaN for empty input.
///
/// # Panics
/// If the lengths differ.
#[must_use]
pub fn rmse(y_true: &[f64], y_pred: &[f64]) -> f64 {
    mse(y_true, y_pred).sqrt()
}

/// Coefficient of determination (sklearn's `r2_score`, `force_finite=True`).
///
/// A constant `y_true` has no variance to explain: like sklearn the score is then 1.0 for a
/// perfect prediction and 0.0 otherwise, instead of NaN/-inf. With fewer than two samples R² is
/// not well-defined and the result is NaN (sklearn warns and returns NaN).
///
/// # Panics
/// If the lengths differ.
#[must_use]
pub fn r2(y_true: &[f64], y_pred: &[f64]) -> f64 {
    check_same_len(y_true, y_pred, "r2");
    if y_true.len() < 2 {
        return f64::NAN;
    }
    let mean = y_true.iter().sum::<f64>() / y_true.len() as f64;
    let residual: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (t - p) * (t - p)).sum();
    let total: f64 = y_true.iter().map(|t| (t - mean) * (t - mean)).sum();
    if total == 0.0 { if residual == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - residual / total }
}

/// The regression metrics kiln reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionReport {
    pub mae: f64,
    pub mse: f64,
    pub rmse: f64,
    pub r2: f64,
}

impl RegressionReport {
    /// # Errors
    /// If the lengths differ or there are no samples.
    pub fn new(y_true: &[f64], y_pred: &[f64]) -> Result<Self, MetricsError> {
        if y_true.len() != y_pred.len() {
            return Err(MetricsError::LengthMismatch { y_true: y_true.len(), y_pred: y_pred.len() });
        }
        if y_true.is_empty() {
            return Err(MetricsError::Empty);
        }
        let mse = mse(y_true, y_pred);
        Ok(Self { mae: mae(y_true, y_pred), mse, rmse: mse.sqrt(), r2: r2(y_true, y_pred) })
    }

    /// `{"mae": …, "mse": …, "rmse": …, "r2": …}` (a NaN R² becomes `null`).
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({ "mae": self.mae, "mse": self.mse, "rmse": self.rmse, "r2": self.r2 })
    }

    /// A small aligned table, one metric per line.
    #[must_use]
    pub fn render(&self) -> String {
        format!(
            "mae   {:>14.4}\nmse   {:>14.4}\nrmse  {:>14.4}\nr2    {:>14.4}\n",
            self.mae, self.mse, self.rmse, self.r2
        )
    }
}

impl fmt::Display for RegressionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

// ---------------------------------------------------------------------------------------------
// Scoring by name (grid search)
// ---------------------------------------------------------------------------------------------

/// A model-selection score, named as sklearn's scorer strings. Greater is better, hence the
/// negated error metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scoring {
    Accuracy,
    F1Macro,
    F1Weighted,
    /// Binary F1 of the positive class, class index 1 (sklearn's `pos_label=1`).
    F1,
    PrecisionMacro,
    RecallMacro,
    /// Binary ROC AUC from the positive class's scores.
    RocAuc,
    R2,
    NegMeanAbsoluteError,
    NegMeanSquaredError,
    NegRootMeanSquaredError,
}

impl Scoring {
    /// Every scoring, in documentation order.
    pub const ALL: [Self; 11] = [
        Self::Accuracy,
        Self::F1Macro,
        Self::F1Weighted,
        Self::F1,
        Self::PrecisionMacro,
        Self::RecallMacro,
        Self::RocAuc,
        Self::R2,
        Self::NegMeanAbsoluteError,
        Self::NegMeanSquaredError,
        Self::NegRootMeanSquaredError,
    ];

    /// sklearn's scorer name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1Macro => "f1_macro",
            Self::F1Weighted => "f1_weighted",
            Self::F1 => "f1",
            Self::PrecisionMacro => "precision_macro",
            Self::RecallMacro => "recall_macro",
            Self::RocAuc => "roc_auc",
            Self::R2 => "r2",
            Self::NegMeanAbsoluteError => "neg_mean_absolute_error",
            Self::NegMeanSquaredError => "neg_mean_squared_error",
            Self::NegRootMeanSquaredError => "neg_root_mean_squared_error",
        }
    }

    /// Parses an sklearn scorer name (exact, lower-case, as sklearn requires).
    ///
    /// # Errors
    /// [`MetricsError::UnknownScoring`], whose message lists the accepted names.
    pub fn parse(name: &str) -> Result<Self, MetricsError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| MetricsError::UnknownScoring { name: name.to_owned() })
    }

    /// The accepted names, comma-separated (for error messages and help texts).
    #[must_use]
    pub fn allowed_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Whether this scoring evaluates a classifier (else a regressor).
    #[must_use]
    pub const fn is_classification(self) -> bool {
        !matches!(
            self,
            Self::R2 | Self::NegMeanAbsoluteError | Self::NegMeanSquaredError | Self::NegRootMeanSquaredError
        )
    }

    /// Whether this scoring needs continuous positive-class scores rather than hard predictions.
    #[must_use]
    pub const fn needs_scores(self) -> bool {
        matches!(self, Self::RocAuc)
    }

    /// Scores a classifier, greater is better, as sklearn's scorer of the same name would.
    ///
    /// Like sklearn's scorers (which call e.g. `f1_score(y_true, y_pred, average="macro")`
    /// without `labels`), macro and weighted averages run over the classes present in `y_true`
    /// or `y_pred`, so a cross-validation fold missing a class is scored as sklearn scores it.
    /// `positive_scores` (probability or decision value of class 1 per sample) is required by
    /// [`Scoring::RocAuc`] and ignored otherwise.
    ///
    /// # Errors
    /// Length mismatch or no samples; a regression scoring; `F1`/`RocAuc` with a class index
    /// above 1; `RocAuc` without scores or with a single class in `y_true`.
    pub fn score_classification(
        self,
        y_true: &[usize],
        y_pred: &[usize],
        positive_scores: Option<&[f64]>,
    ) -> Result<f64, MetricsError> {
        if !self.is_classification() {
            return Err(MetricsError::WrongTask { scoring: self, task: "regression" });
        }
        // Labels are arbitrary indices here, so size the counts to cover them all.
        let n_classes = y_true.iter().chain(y_pred).max().map_or(0, |&m| m + 1);
        check_labels(y_true, y_pred, n_classes)?;
        let counts = ClassCounts::new(y_true, y_pred, n_classes);
        let present: Vec<usize> = (0..n_classes).filter(|&c| counts.actual[c] + counts.predicted[c] > 0).collect();
        let binary = |scoring: Self| match y_true.iter().chain(y_pred).find(|&&l| l > 1) {
            Some(&label) => Err(MetricsError::NotBinary { scoring, label }),
            None => Ok(()),
        };

        Ok(match self {
            Self::Accuracy => accuracy(y_true, y_pred),
            Self::F1Macro => counts.macro_average(&present).f1_score,
            Self::F1Weighted => counts.weighted_average(&present).f1_score,
            Self::PrecisionMacro => counts.macro_average(&present).precision,
            Self::RecallMacro => counts.macro_average(&present).recall,
            Self::F1 => {
                binary(self)?;
                if n_classes < 2 {
                    // Class 1 never occurs: no true positives, F1 is 0 (zero division).
                    0.0
                } else {
                    counts.class_metrics(1).f1_score
                }
            }
            Self::RocAuc => {
                let scores = positive_scores.ok_or(MetricsError::MissingScores { scoring: self })?;
                if scores.len() != y_true.len() {
                    return Err(MetricsError::ScoresLengthMismatch { y_true: y_true.len(), scores: scores.len() });
                }
                // Only y_true decides binarity for AUC; y_pred is not used.
                if let Some(&label) = y_true.iter().find(|&&l| l > 1) {
                    return Err(MetricsError::NotBinary { scoring: self, label });
                }
                let positive: Vec<bool> = y_true.iter().map(|&l| l == 1).collect();
                let auc = roc_auc(&positive, scores);
                if auc.is_nan() {
                    return Err(MetricsError::SingleClass);
                }
                auc
            }
            Self::R2 | Self::NegMeanAbsoluteError | Self::NegMeanSquaredError | Self::NegRootMeanSquaredError => {
                unreachable!("regression scorings were rejected above")
            }
        })
    }

    /// Scores a regressor, greater is better (errors are negated, as in sklearn).
    ///
    /// # Errors
    /// Length mismatch, no samples, or a classification scoring.
    pub fn score_regression(self, y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricsError> {
        if self.is_classification() {
            return Err(MetricsError::WrongTask { scoring: self, task: "classification" });
        }
        if y_true.len() != y_pred.len() {
            return Err(MetricsError::LengthMismatch { y_true: y_true.len(), y_pred: y_pred.len() });
        }
        if y_true.is_empty() {
            return Err(MetricsError::Empty);
        }
        Ok(match self {
            Self::R2 => r2(y_true, y_pred),
            Self::NegMeanAbsoluteError => -mae(y_true, y_pred),
            Self::NegMeanSquaredError => -mse(y_true, y_pred),
            Self::NegRootMeanSquaredError => -rmse(y_true, y_pred),
            Self::Accuracy
            | Self::F1Macro
            | Self::F1Weighted
            | Self::F1
            | Self::PrecisionMacro
            | Self::RecallMacro
            | Self::RocAuc => unreachable!("classification scorings were rejected above"),
        })
    }
}

impl fmt::Display for Scoring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scoring {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12
    }

    fn assert_all_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, *w) || (g.is_infinite() && g == w), "{got:?} vs {want:?}");
        }
    }

    // Fixture of the classification tests: class 2 ("other") is never predicted, so its
    // precision is a zero division.
    const Y_TRUE: [usize; 10] = [0, 0, 0, 1, 1, 1, 1, 2, 2, 0];
    const Y_PRED: [usize; 10] = [0, 1, 0, 1, 1, 0, 1, 0, 1, 0];
    const NAMES: [&str; 3] = ["ham", "spam", "other"];

    // Expected values from scikit-learn 1.9.1:
    //   from sklearn.metrics import classification_report
    //   y_true = [0, 0, 0, 1, 1, 1, 1, 2, 2, 0]
    //   y_pred = [0, 1, 0, 1, 1, 0, 1, 0, 1, 0]
    //   names = ["ham", "spam", "other"]
    //   classification_report(y_true, y_pred, labels=[0, 1, 2], target_names=names, digits=4)
    //   classification_report(y_true, y_pred, labels=[0, 1, 2], target_names=names,
    //                         output_dict=True)
    #[test]
    fn classification_report_matches_sklearn() {
        let report = ClassificationReport::new(&Y_TRUE, &Y_PRED, &NAMES).unwrap();
        let expected_text = "              precision    recall  f1-score   support\n\n         ham     0.6000    0.7500    0.6667         4\n        spam     0.6000    0.7500    0.6667         4\n       other     0.0000    0.0000    0.0000         2\n\n    accuracy                         0.6000        10\n   macro avg     0.4000    0.5000    0.4444        10\nweighted avg     0.4800    0.6000    0.5333        10\n";
        assert_eq!(report.render(), expected_text);
        assert_eq!(report.to_string(), expected_text);

        let json = report.to_json();
        let expected: Value = serde_json::from_str(
            r#"{"ham": {"precision": 0.6, "recall": 0.75, "f1-score": 0.6666666666666666, "support": 4},
                "spam": {"precision": 0.6, "recall": 0.75, "f1-score": 0.6666666666666666, "support": 4},
                "other": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 2},
                "accuracy": 0.6,
                "macro avg": {"precision": 0.39999999999999997, "recall": 0.5, "f1-score": 0.4444444444444444, "support": 10},
                "weighted avg": {"precision": 0.48, "recall": 0.6, "f1-score": 0.5333333333333333, "support": 10}}"#,
        )
        .unwrap();
        // Exact equality: the formulas and summation order are sklearn's.
        assert_eq!(json, expected);
        assert!(json["ham"]["support"].is_u64());
    }

    #[test]
    fn classification_report_rejects_bad_input() {
        assert_eq!(
            ClassificationReport::new(&[0, 1], &[0], &NAMES),
            Err(MetricsError::LengthMismatch { y_true: 2, y_pred: 1 })
        );
        assert_eq!(
            ClassificationReport::new(&[0, 3], &[0, 1], &NAMES),
            Err(MetricsError::LabelOutOfRange { label: 3, n_classes: 3 })
        );
        assert_eq!(ClassificationReport::new(&[], &[], &NAMES), Err(MetricsError::Empty));
    }

    #[test]
    fn render_widens_for_long_names() {
        let report = ClassificationReport::new(&[0, 1], &[0, 1], &["a", "a rather long class"]).unwrap();
        let text = report.render_with_digits(2);
        let lines: Vec<&str> = text.lines().collect();
        // sklearn: width = max(len(name)) = 19, then two spaces, then 9-wide columns.
        assert_eq!(lines[0], format!("{:>19}  precision    recall  f1-score   support", ""));
        assert_eq!(lines[3], "a rather long class       1.00      1.00      1.00         1");
    }

    // sklearn: confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist()
    //   == [[3, 1, 0], [1, 3, 0], [1, 1, 0]]
    #[test]
    fn confusion_matrix_matches_sklearn() {
        assert_eq!(confusion_matrix(&Y_TRUE, &Y_PRED, 3), vec![vec![3, 1, 0], vec![1, 3, 0], vec![1, 1, 0]]);
    }

    // sklearn 1.9.1:
    //   from sklearn.metrics import roc_curve, roc_auc_score
    //   yr = [True, False, True, True, False, False, True, False, True, False]
    //   s = [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.2, 0.1, 0.1]
    //   roc_curve(yr, s)  # fpr [0.0, 0.0, 0.2, 0.2, 0.6, 0.8, 1.0]
    //                     # tpr [0.0, 0.2, 0.4, 0.6, 0.8, 0.8, 1.0]
    //                     # thresholds [inf, 0.9, 0.8, 0.7, 0.5, 0.2, 0.1]
    //   roc_auc_score(yr, s)  # 0.6799999999999999
    #[test]
    fn roc_with_ties_matches_sklearn() {
        let y = [true, false, true, true, false, false, true, false, true, false];
        let s = [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.2, 0.1, 0.1];
        let (fpr, tpr, thr) = roc_curve(&y, &s);
        assert_all_close(&fpr, &[0.0, 0.0, 0.2, 0.2, 0.6, 0.8, 1.0]);
        assert_all_close(&tpr, &[0.0, 0.2, 0.4, 0.6, 0.8, 0.8, 1.0]);
        assert_all_close(&thr, &[f64::INFINITY, 0.9, 0.8, 0.7, 0.5, 0.2, 0.1]);
        assert!(close(roc_auc(&y, &s), 0.6799999999999999));
    }

    // sklearn 1.9.1 (drop_intermediate removes the collinear points at 0.7 and 0.6):
    //   y = [1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0]
    //   s = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.3, 0.2]
    //   fpr, tpr, thr = roc_curve(y, s); roc_auc_score(y, s)  # 0.7000000000000001
    #[test]
    fn roc_drops_intermediate_points_like_sklearn() {
        let y: Vec<bool> = [1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0].iter().map(|&v| v == 1).collect();
        let s = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.3, 0.2];
        let (fpr, tpr, thr) = roc_curve(&y, &s);
        assert_all_close(
            &fpr,
            &[
                0.0,
                0.0,
                0.0,
                0.14285714285714285,
                0.14285714285714285,
                0.5714285714285714,
                0.5714285714285714,
                0.7142857142857143,
                0.8571428571428571,
                1.0,
            ],
        );
        assert_all_close(&tpr, &[0.0, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0]);
        assert_all_close(&thr, &[f64::INFINITY, 0.95, 0.9, 0.85, 0.8, 0.55, 0.5, 0.4, 0.3, 0.2]);
        assert!(close(roc_auc(&y, &s), 0.7000000000000001));
    }

    #[test]
    fn roc_auc_single_class_is_nan() {
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_nan());
        let (fpr, tpr, _) = roc_curve(&[true, true], &[0.1, 0.2]);
        assert!(fpr.iter().all(|v| v.is_nan()));
        assert_eq!(tpr, vec![0.0, 0.5, 1.0]);
    }

    // sklearn 1.9.1:
    //   from sklearn.metrics import (mean_absolute_error, mean_squared_error,
    //                                root_mean_squared_error, r2_score)
    //   t = [3.0, -0.5, 2.0, 7.0, 4.2]; p = [2.5, 0.0, 2.0, 8.0, 3.9]
    //   mean_absolute_error(t, p)      # 0.4600000000000001
    //   mean_squared_error(t, p)       # 0.318
    //   root_mean_squared_error(t, p)  # 0.5639148871948674
    //   r2_score(t, p)                 # 0.9480256276150627
    //   r2_score([2.0, 2.0, 2.0], [2.0, 2.0, 2.0])  # 1.0
    //   r2_score([2.0, 2.0, 2.0], [2.0, 2.0, 2.5])  # 0.0
    #[test]
    #[allow(clippy::approx_constant, reason = "0.318 is sklearn's MSE here, not 1/π")]
    fn regression_metrics_match_sklearn() {
        let t = [3.0, -0.5, 2.0, 7.0, 4.2];
        let p = [2.5, 0.0, 2.0, 8.0, 3.9];
        assert!(close(mae(&t, &p), 0.4600000000000001));
        assert!(close(mse(&t, &p), 0.318));
        assert!(close(rmse(&t, &p), 0.5639148871948674));
        assert!(close(r2(&t, &p), 0.9480256276150627));
        assert!(close(r2(&[2.0; 3], &[2.0; 3]), 1.0));
        assert!(close(r2(&[2.0; 3], &[2.0, 2.0, 2.5]), 0.0));
        assert!(r2(&[1.0], &[1.0]).is_nan());

        let report = RegressionReport::new(&t, &p).unwrap();
        assert!(close(report.rmse, 0.5639148871948674));
        let json = report.to_json();
        assert!(close(json["r2"].as_f64().unwrap(), 0.9480256276150627));
        assert_eq!(json.as_object().unwrap().len(), 4);
        assert!(report.render().starts_with("mae           0.4600\n"));
        assert_eq!(RegressionReport::new(&[], &[]), Err(MetricsError::Empty));
    }

    #[test]
    fn scoring_names_round_trip() {
        for s in Scoring::ALL {
            assert_eq!(Scoring::parse(s.as_str()), Ok(s));
            assert_eq!(s.to_string().parse::<Scoring>(), Ok(s));
        }
        let err = Scoring::parse("F1-macro").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"F1-macro\""), "{msg}");
        assert!(msg.contains("accuracy, f1_macro, f1_weighted, f1,"), "{msg}");
        assert!(msg.contains("neg_root_mean_squared_error"), "{msg}");
        assert!(Scoring::RocAuc.needs_scores() && !Scoring::F1.needs_scores());
        assert!(Scoring::F1.is_classification() && !Scoring::R2.is_classification());
    }

    // sklearn 1.9.1 (same Y_TRUE/Y_PRED as above):
    //   f1_score(y_true, y_pred, average="macro")        # 0.4444444444444444
    //   f1_score(y_true, y_pred, average="weighted")     # 0.5333333333333333
    //   precision_score(y_true, y_pred, average="macro") # 0.39999999999999997
    //   recall_score(y_true, y_pred, average="macro")    # 0.5
    //   accuracy_score(y_true, y_pred)                   # 0.6
    //   f1_score([0, 0, 3, 3, 1], [0, 3, 3, 1, 1], average="macro")  # 0.611111111111111
    //   f1_score([0, 1, 1, 0, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1, 1, 0])  # 0.6666666666666666
    #[test]
    fn classification_scorings_match_sklearn() {
        let score = |s: Scoring| s.score_classification(&Y_TRUE, &Y_PRED, None).unwrap();
        assert!(close(score(Scoring::F1Macro), 0.4444444444444444));
        assert!(close(score(Scoring::F1Weighted), 0.5333333333333333));
        assert!(close(score(Scoring::PrecisionMacro), 0.39999999999999997));
        assert!(close(score(Scoring::RecallMacro), 0.5));
        assert!(close(score(Scoring::Accuracy), 0.6));
        // Class 2 occurs in neither array: like sklearn's scorer it is left out of the average.
        let absent = Scoring::F1Macro.score_classification(&[0, 0, 3, 3, 1], &[0, 3, 3, 1, 1], None);
        assert!(close(absent.unwrap(), 0.611111111111111));
        let f1 = Scoring::F1.score_classification(&[0, 1, 1, 0, 1, 0, 1, 1], &[0, 1, 0, 0, 1, 1, 1, 0], None);
        assert!(close(f1.unwrap(), 0.6666666666666666));
        assert_eq!(
            Scoring::F1.score_classification(&Y_TRUE, &Y_PRED, None),
            Err(MetricsError::NotBinary { scoring: Scoring::F1, label: 2 })
        );
        assert_eq!(Scoring::F1.score_classification(&[0, 0], &[0, 0], None), Ok(0.0));
    }

    #[test]
    fn roc_auc_scoring() {
        let y = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0];
        let s = [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.2, 0.1, 0.1];
        let pred = [1; 10];
        let auc = Scoring::RocAuc.score_classification(&y, &pred, Some(&s)).unwrap();
        assert!(close(auc, 0.6799999999999999));
        assert_eq!(
            Scoring::RocAuc.score_classification(&y, &pred, None),
            Err(MetricsError::MissingScores { scoring: Scoring::RocAuc })
        );
        assert_eq!(
            Scoring::RocAuc.score_classification(&[1, 1], &[1, 1], Some(&[0.2, 0.3])),
            Err(MetricsError::SingleClass)
        );
        assert_eq!(
            Scoring::RocAuc.score_classification(&[1, 0], &[1, 1], Some(&[0.2])),
            Err(MetricsError::ScoresLengthMismatch { y_true: 2, scores: 1 })
        );
    }

    #[test]
    #[allow(clippy::approx_constant, reason = "0.318 is sklearn's MSE here, not 1/π")]
    fn regression_scorings_are_negated_errors() {
        let t = [3.0, -0.5, 2.0, 7.0, 4.2];
        let p = [2.5, 0.0, 2.0, 8.0, 3.9];
        let score = |s: Scoring| s.score_regression(&t, &p).unwrap();
        assert!(close(score(Scoring::R2), 0.9480256276150627));
        assert!(close(score(Scoring::NegMeanAbsoluteError), -0.4600000000000001));
        assert!(close(score(Scoring::NegMeanSquaredError), -0.318));
        assert!(close(score(Scoring::NegRootMeanSquaredError), -0.5639148871948674));
        assert_eq!(
            Scoring::Accuracy.score_regression(&t, &p),
            Err(MetricsError::WrongTask { scoring: Scoring::Accuracy, task: "classification" })
        );
        assert_eq!(
            Scoring::R2.score_classification(&[0], &[0], None),
            Err(MetricsError::WrongTask { scoring: Scoring::R2, task: "regression" })
        );
    }
}
