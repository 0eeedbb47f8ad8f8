//! Naive Bayes: `MultinomialNB` (counts, sparse-friendly) and `GaussianNB`.

use kiln_model::estimator::{FittedEstimator, GaussianNb, MultinomialNb};
use kiln_model::matrix::{DenseMatrix, Features};
use rayon::prelude::*;

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
        let dense = x.dense();
        let (k, d) = (t.n_classes, dense.n_cols);
        let all: Vec<usize> = (0..dense.n_rows).collect();
        let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (i, &c) in t.y.iter().enumerate() {
            rows_of[c].push(i);
        }
        // The statistics of all rows and of each class are independent passes: run them in
        // parallel.
        let (overall, per_class) = rayon::join(
            || mean_var(&dense, &all),
            || rows_of.par_iter().map(|rows| (!rows.is_empty()).then(|| mean_var(&dense, rows))).collect::<Vec<_>>(),
        );
        // Variances are floored relative to the widest feature so that a feature constant
        // within a class does not give a zero variance (and an infinite likelihood).
        let epsilon = self.var_smoothing * overall.1.iter().copied().fold(0.0_f64, f64::max);
        let mut theta = DenseMatrix::zeros(k, d);
        // An absent class keeps mean 0 and variance 1: its prior of 0 already rules it out,
        // and a positive variance keeps its likelihood finite.
        let mut var = DenseMatrix::from_vec(k, d, vec![1.0; k * d]);
        for (c, stats) in per_class.into_iter().enumerate() {
            let Some((m, v)) = stats else { continue };
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::estimators::ModelKind;
    use crate::estimators::testdata::iris;

    fn build(kind: ModelKind, values: serde_json::Value) -> Box<dyn Estimator> {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_value(values).expect("object");
        kind.build(&Hyper::new(kind.name(), map)).expect("valid params")
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, want {w} (tol {tol})");
        }
    }

    fn dense(rows: &[&[f64]]) -> Features {
        let d = rows.first().map_or(0, |r| r.len());
        Features::Dense(DenseMatrix::from_vec(rows.len(), d, rows.concat()))
    }

    fn counts() -> (Features, Vec<usize>) {
        let x = dense(&[
            &[2.0, 1.0, 0.0, 0.0, 3.0],
            &[0.0, 0.0, 4.0, 1.0, 0.0],
            &[1.0, 3.0, 0.0, 0.0, 2.0],
            &[0.0, 1.0, 5.0, 2.0, 0.0],
            &[3.0, 0.0, 1.0, 0.0, 1.0],
            &[0.0, 0.0, 0.0, 6.0, 2.0],
            &[1.0, 1.0, 1.0, 1.0, 1.0],
        ]);
        (x, vec![0, 1, 0, 1, 2, 2, 0])
    }

    fn multinomial(f: FittedEstimator) -> MultinomialNb {
        match f {
            FittedEstimator::MultinomialNb(m) => m,
            other => panic!("not MultinomialNB: {other:?}"),
        }
    }

    // X = np.array([[2,1,0,0,3],[0,0,4,1,0],[1,3,0,0,2],[0,1,5,2,0],[3,0,1,0,1],[0,0,0,6,2],
    //               [1,1,1,1,1]], float); y = np.array([0,1,0,1,2,2,0])
    // T = np.array([[1,0,2,0,1],[0,3,0,1,0]], float)
    // for kw in [{}, dict(alpha=0.5, fit_prior=False)]:
    //     m = MultinomialNB(**kw).fit(X, y)
    //     m.feature_log_prob_, m.class_log_prior_, m.predict_proba(T)
    #[test]
    fn multinomial_matches_sklearn_on_dense_and_sparse() {
        let cases = [
            (
                json!({}),
                [
                    -1.4816045409242158,
                    -1.299282984130261,
                    -2.3978952727983707,
                    -2.3978952727983707,
                    -1.1451323043030028, //
                    -2.8903717578961645,
                    -2.197224577336219,
                    -0.5877866649021186,
                    -1.504077396776274,
                    -2.8903717578961645, //
                    -1.504077396776274,
                    -2.8903717578961645,
                    -2.197224577336219,
                    -0.9444616088408513,
                    -1.504077396776274,
                ],
                [-0.8472978603872034, -1.252762968495368, -1.252762968495368],
                [
                    0.36460282185399334,
                    0.3874373037475649,
                    0.24795987439844155,
                    0.8815975524864871,
                    0.09715072616493402,
                    0.02125172134857931,
                ],
            ),
            (
                json!({"alpha": 0.5, "fit_prior": false}),
                [
                    -1.4663370687934267,
                    -1.2656663733312756,
                    -2.5649493574615363,
                    -2.5649493574615363,
                    -1.0986122886681096, //
                    -3.4339872044851463,
                    -2.3353749158170363,
                    -0.48954822531870557,
                    -1.4880770554298328,
                    -3.4339872044851463, //
                    -1.4880770554298328,
                    -3.4339872044851463,
                    -2.3353749158170363,
                    -0.8690378470236095,
                    -1.4880770554298328,
                ],
                [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098],
                [
                    0.3438897194765252,
                    0.2953314354974741,
                    0.36077884502600066,
                    0.887527688027164,
                    0.10523399486567368,
                    0.0072383171071627225,
                ],
            ),
        ];
        let (x, y) = counts();
        let t = dense(&[&[1.0, 0.0, 2.0, 0.0, 1.0], &[0.0, 3.0, 0.0, 1.0, 0.0]]);
        for (params, flp, prior, proba) in cases {
            let est = build(ModelKind::MultinomialNb, params);
            let m = multinomial(est.fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
            assert_close(&m.feature_log_prob.data, &flp, 1e-10, "feature_log_prob");
            assert_close(&m.class_log_prior, &prior, 1e-10, "class_log_prior");
            assert_close(&m.predict_proba(&t).data, &proba, 1e-10, "proba");
            assert_close(&m.predict_proba(&t.to_sparse()).data, &proba, 1e-10, "proba of sparse rows");
            let ms = multinomial(est.fit(&x.to_sparse(), &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
            assert_eq!(ms, m);
        }
    }

    #[test]
    fn multinomial_rejects_negative_values_and_zero_alpha_gaps() {
        let (x, y) = counts();
        let mut d = x.to_dense();
        d.row_mut(3)[2] = -1.0;
        let e = build(ModelKind::MultinomialNb, json!({}))
            .fit(&Features::Dense(d).to_sparse(), &Target::Classes { y: &y, n_classes: 3 }, 0)
            .expect_err("negative");
        assert_eq!(
            e.to_string(),
            "MultinomialNB: X has a negative value (-1) in row 3, column 2; MultinomialNB models counts or \
             frequencies, which cannot be negative"
        );
        let e = build(ModelKind::MultinomialNb, json!({"alpha": 0.0}))
            .fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0)
            .expect_err("alpha 0");
        assert!(e.to_string().contains("feature 0 never occurs in class 1 and alpha is 0"), "{e}");
        // force_alpha = false raises alpha to 1e-10 as scikit-learn does, so the fit succeeds.
        let est = build(ModelKind::MultinomialNb, json!({"alpha": 0.0, "force_alpha": false}));
        assert!(est.fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).is_ok());
    }

    #[test]
    fn multinomial_absent_class_is_never_predicted() {
        let (x, y) = counts();
        let y4: Vec<usize> = y.iter().map(|&c| if c == 1 { 3 } else { c }).collect();
        let m = multinomial(
            build(ModelKind::MultinomialNb, json!({}))
                .fit(&x, &Target::Classes { y: &y4, n_classes: 4 }, 0)
                .expect("fit"),
        );
        let p = m.predict_proba(&x);
        assert!((0..7).all(|i| p.get(i, 1) == 0.0));
        // The model still serializes: JSON has no -inf.
        assert!(m.class_log_prior.iter().all(|v| v.is_finite()));
    }

    // df = pd.read_csv("examples/iris/iris.csv")
    // X = df.iloc[:, :4].to_numpy(); y = pd.Categorical(df.species).codes
    // g = GaussianNB().fit(X, y); g.theta_, g.var_, g.predict_proba(X[[0, 50, 70, 100, 133]])
    #[test]
    fn gaussian_matches_sklearn_on_iris() {
        let (x, y) = iris();
        let FittedEstimator::GaussianNb(m) =
            build(ModelKind::GaussianNb, json!({})).fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit")
        else {
            panic!("not GaussianNB");
        };
        let theta = [
            5.005999999999999,
            3.428000000000001,
            1.4620000000000002,
            0.2459999999999999, //
            5.936,
            2.7700000000000005,
            4.26,
            1.3259999999999998, //
            6.587999999999998,
            2.9739999999999998,
            5.552,
            2.026,
        ];
        let var = [
            0.12176400309550259,
            0.14081600309550263,
            0.029556003095502676,
            0.010884003095502673, //
            0.2611040030955028,
            0.09650000309550268,
            0.21640000309550278,
            0.03832400309550265, //
            0.39625600309550263,
            0.10192400309550273,
            0.2984960030955029,
            0.07392400309550265,
        ];
        let proba = [
            1.0,
            1.3578426545097534e-18,
            7.112835116303153e-26, //
            3.213809354266301e-109,
            0.8040376655396819,
            0.19596233446031788, //
            2.591538028250168e-130,
            0.15449408494388256,
            0.8455059150561174, //
            3.2324518072371566e-254,
            6.353810311595854e-11,
            0.9999999999364619, //
            2.6838258262863244e-131,
            0.7126451442155292,
            0.28735485578447095,
        ];
        assert_close(&m.theta.data, &theta, 1e-9, "theta");
        assert_close(&m.var.data, &var, 1e-9, "var");
        assert_close(&m.class_prior, &[1.0 / 3.0; 3], 1e-15, "class_prior");
        assert_close(&m.predict_proba(&x.take_rows(&[0, 50, 70, 100, 133])).data, &proba, 1e-9, "proba");
        let ms =
            build(ModelKind::GaussianNb, json!({})).fit(&x.to_sparse(), &Target::Classes { y: &y, n_classes: 3 }, 0);
        assert_eq!(ms.expect("fit"), FittedEstimator::GaussianNb(m));
    }

    #[test]
    fn bad_params_and_wrong_task() {
        let err = |kind: ModelKind, v: serde_json::Value| {
            let map: BTreeMap<String, serde_json::Value> = serde_json::from_value(v).expect("object");
            kind.build(&Hyper::new(kind.name(), map)).expect_err("invalid").to_string()
        };
        assert_eq!(
            err(ModelKind::MultinomialNb, json!({"alpha": -0.5})),
            "model.alpha of multinomial_nb: expected a number >= 0, got -0.5"
        );
        assert_eq!(
            err(ModelKind::MultinomialNb, json!({"fit_prior": "yes"})),
            "model.fit_prior of multinomial_nb: expected true or false, got \"yes\""
        );
        assert_eq!(
            err(ModelKind::GaussianNb, json!({"var_smoothing": "a lot"})),
            "model.var_smoothing of gaussian_nb: expected a number >= 0, got \"a lot\""
        );
        let (x, _) = counts();
        let values = [1.0; 7];
        for kind in [ModelKind::MultinomialNb, ModelKind::GaussianNb] {
            let e = build(kind, json!({})).fit(&x, &Target::Values(&values), 0).expect_err("wrong task");
            assert!(e.to_string().ends_with("is a classifier and cannot be fitted to a regression target"), "{e}");
            let e =
                build(kind, json!({})).fit(&x, &Target::Classes { y: &[0; 7], n_classes: 3 }, 0).expect_err("1 class");
            assert!(matches!(e, FitError::TooFewClasses { found: 1, .. }), "{e}");
            let empty = Features::Dense(DenseMatrix::zeros(0, 5));
            let e =
                build(kind, json!({})).fit(&empty, &Target::Classes { y: &[], n_classes: 3 }, 0).expect_err("empty");
            assert!(matches!(e, FitError::Empty { .. }), "{e}");
        }
        let constant = dense(&[&[1.0, 2.0], &[1.0, 2.0], &[1.0, 2.0]]);
        let e = build(ModelKind::GaussianNb, json!({}))
            .fit(&constant, &Target::Classes { y: &[0, 1, 1], n_classes: 2 }, 0)
            .expect_err("constant");
        assert!(e.to_string().contains("zero variance"), "{e}");
    }
}
