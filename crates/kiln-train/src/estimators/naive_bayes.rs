//! Naive Bayes: `MultinomialNB` (counts, sparse-friendly) and `GaussianNB`.

use kiln_model::estimator::{FittedEstimator, GaussianNb, MultinomialNb};
use kiln_model::matrix::{DenseMatrix, Features};

use super::linear::{ABSENT_CLASS_SCORE, classification_target};
use super::{Estimator, FitError, Hyper, ParamError, Target};

pub const MULTINOMIAL_KEYS: &[&str] = &["alpha", "fit_prior", "force_alpha"];
pub const GAUSSIAN_KEYS: &[&str] = &["var_smoothing"];

/// scikit-learn raises a smaller `alpha` to this unless `force_alpha` is set.
const MIN_ALPHA: f64 = 1e-10;

#[allow(clippy::cast_precision_loss)]
fn as_f64(n: usize) -> f64 {
    n as f64
}

/// `MultinomialNB`.
#[derive(Debug, Clone, PartialEq)]
pub struct MultinomialNbParams {
    /// Additive (Laplace/Lidstone) smoothing, after `force_alpha` is applied.
    pub alpha: f64,
    pub fit_prior: bool,
}

impl MultinomialNbParams {
    /// # Errors
    /// A value out of range.
    pub fn from_hyper(h: &Hyper) -> Result<Self, ParamError> {
        let alpha = h.f64("alpha", 1.0, |a| a >= 0.0 && a.is_finite(), "a number >= 0")?;
        let force_alpha = h.bool("force_alpha", true)?;
        Ok(Self {
            alpha: if force_alpha { alpha } else { alpha.max(MIN_ALPHA) },
            fit_prior: h.bool("fit_prior", true)?,
        })
    }
}

impl Estimator for MultinomialNbParams {
    fn fit(&self, x: &Features, y: &Target<'_>, _seed: u64) -> Result<FittedEstimator, FitError> {
        const MODEL: &str = "MultinomialNB";
        let t = classification_target(MODEL, x, y)?;
        let (k, d) = (t.n_classes, x.n_cols());
        let mut counts = DenseMatrix::zeros(k, d);
        for (i, &c) in t.y.iter().enumerate() {
            let row = counts.row_mut(c);
            let mut negative = None;
            x.for_each_in_row(i, |j, v| {
                if v < 0.0 {
                    negative.get_or_insert((j, v));
                }
                row[j] += v;
            });
            if let Some((j, v)) = negative {
                return Err(FitError::Invalid {
                    model: MODEL,
                    message: format!(
                        "X has a negative value ({v}) in row {i}, column {j}; MultinomialNB models counts \
                         or frequencies, which cannot be negative"
                    ),
                });
            }
        }
        let mut feature_log_prob = DenseMatrix::zeros(k, d);
        for c in 0..k {
            let out = feature_log_prob.row_mut(c);
            if t.counts[c] == 0 {
                // Never predicted (see ABSENT_CLASS_SCORE); any finite row will do.
                out.fill(-as_f64(d).ln());
                continue;
            }
            let smoothed: Vec<f64> = counts.row(c).iter().map(|n| n + self.alpha).collect();
            let log_total = smoothed.iter().sum::<f64>().ln();
            for (j, (o, s)) in out.iter_mut().zip(&smoothed).enumerate() {
                if *s <= 0.0 {
                    // scikit-learn would store -inf and predict NaN for rows using the feature.
                    return Err(FitError::Invalid {
                        model: MODEL,
                        message: format!(
                            "feature {j} never occurs in class {c} and alpha is 0, which gives it \
                             probability 0; use alpha > 0"
                        ),
                    });
                }
                *o = s.ln() - log_total;
            }
        }
        let n_present = t.counts.iter().filter(|&&n| n > 0).count();
        let n_rows = as_f64(t.y.len());
        let class_log_prior = t
            .counts
            .iter()
            .map(|&n| match (n, self.fit_prior) {
                (0, _) => ABSENT_CLASS_SCORE,
                (n, true) => as_f64(n).ln() - n_rows.ln(),
                (_, false) => -as_f64(n_present).ln(),
            })
            .collect();
        Ok(FittedEstimator::MultinomialNb(MultinomialNb { class_log_prior, feature_log_prob }))
    }
}

/// `GaussianNB`.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianNbParams {
    pub var_smoothing: f64,
}

impl GaussianNbParams {
    /// # Errors
    /// A value out of range.
    pub fn from_hyper(h: &Hyper) -> Result<Self, ParamError> {
        Ok(Self { var_smoothing: h.f64("var_smoothing", 1e-9, |v| v >= 0.0 && v.is_finite(), "a number >= 0")? })
    }
}

/// Per-column mean and population variance of the rows `rows` of `x`, by two passes (as
/// numpy's `var`), which is exact for constant columns where one pass is not.
fn mean_var(x: &DenseMatrix, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let d = x.n_cols;
    let inv = 1.0 / as_f64(rows.len());
    let mut mean = vec![0.0; d];
    for &i in rows {
        mean.iter_mut().zip(x.row(i)).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m *= inv);
    let mut var = vec![0.0; d];
    for &i in rows {
        var.iter_mut().zip(x.row(i).iter().zip(&mean)).for_each(|(s, (v, m))| *s += (v - m) * (v - m));
    }
    var.iter_mut().for_each(|s| *s *= inv);
    (mean, var)
}

impl Estimator for GaussianNbParams {
    fn fit(&self, x: &Features, y: &Target<'_>, _seed: u64) -> Result<FittedEstimator, FitError> {
        const MODEL: &str = "GaussianNB";
        let t = classification_target(MODEL, x, y)?;
        let dense = x.to_dense();
        let (k, d) = (t.n_classes, dense.n_cols);
        let all: Vec<usize> = (0..dense.n_rows).collect();
        // Variances are floored relative to the widest feature so that a feature constant
        // within a class does not give a zero variance (and an infinite likelihood).
        let epsilon = self.var_smoothing * mean_var(&dense, &all).1.iter().copied().fold(0.0_f64, f64::max);
        let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (i, &c) in t.y.iter().enumerate() {
            rows_of[c].push(i);
        }
        let mut theta = DenseMatrix::zeros(k, d);
        // An absent class keeps mean 0 and variance 1: its prior of 0 already rules it out,
        // and a positive variance keeps its likelihood finite.
        let mut var = DenseMatrix::from_vec(k, d, vec![1.0; k * d]);
        for (c, rows) in rows_of.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let (m, v) = mean_var(&dense, rows);
            theta.row_mut(c).copy_from_slice(&m);
            for (j, (out, v)) in var.row_mut(c).iter_mut().zip(v).enumerate() {
                *out = v + epsilon;
                if *out <= 0.0 {
                    return Err(FitError::Invalid {
                        model: MODEL,
                        message: format!(
                            "feature {j} has zero variance in class {c} even after var_smoothing; \
                             every feature is constant or var_smoothing is 0"
                        ),
                    });
                }
            }
        }
        let n = as_f64(dense.n_rows);
        let class_prior = t.counts.iter().map(|&c| as_f64(c) / n).collect();
        Ok(FittedEstimator::GaussianNb(GaussianNb { class_prior, theta, var }))
    }
}
