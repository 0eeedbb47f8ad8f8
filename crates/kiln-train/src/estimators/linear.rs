//! Linear models: `LogisticRegression` (L-BFGS), `LinearSVC` (dual coordinate descent),
//! `LinearRegression` and `Ridge` (normal equations).
//!
//! The solvers are written out here rather than taken from a crate so that a fit is
//! bit-for-bit reproducible and follows scikit-learn's algorithms step by step: the L-BFGS below
//! retraces scipy's L-BFGS-B (same line search, same stopping rules), and the SVM solver is
//! liblinear's `solve_l2r_l1l2_svc`.

use std::collections::VecDeque;
use std::ops::Range;

use kiln_core::rng::Rng;
use kiln_model::estimator::{FittedEstimator, LinearClassifier, LinearRegressor};
use kiln_model::matrix::{DenseMatrix, Features};
use rayon::prelude::*;

use super::{Estimator, FitError, Hyper, ParamError, Target};

pub const LOGISTIC_KEYS: &[&str] = &["C", "fit_intercept", "max_iter", "penalty", "solver", "tol"];
pub const SVC_KEYS: &[&str] = &["C", "fit_intercept", "intercept_scaling", "loss", "max_iter", "penalty", "tol"];
pub const LINEAR_REGRESSION_KEYS: &[&str] = &["fit_intercept"];
pub const RIDGE_KEYS: &[&str] = &["alpha", "fit_intercept"];

/// Score (log-prior or intercept) of a class that has no row in the training data, as happens
/// when a cross-validation fold misses a rare class. scikit-learn would drop the class from
/// `classes_`; kiln keeps one column per class so every fold's model has the same shape, and
/// makes the class unpredictable instead. Finite, because JSON has no infinity.
pub(super) const ABSENT_CLASS_SCORE: f64 = -1e30;

// ---------------------------------------------------------------------------------------------
// Target and input validation shared by every estimator in this file and in `naive_bayes`.

/// A validated classification target.
pub(super) struct Classes<'a> {
    pub y: &'a [usize],
    pub n_classes: usize,
    /// Rows per class.
    pub counts: Vec<usize>,
}

impl Classes<'_> {
    /// The classes that have at least one row, ascending.
    pub fn present(&self) -> Vec<usize> {
        (0..self.n_classes).filter(|&c| self.counts[c] > 0).collect()
    }
}

/// Checks that `target` is a classification target matching `x` with at least two classes.
pub(super) fn classification_target<'a>(
    model: &'static str,
    x: &Features,
    target: &Target<'a>,
) -> Result<Classes<'a>, FitError> {
    let Target::Classes { y, n_classes } = *target else {
        return Err(FitError::WrongTask { model, expected: "classifier", got: "regression" });
    };
    check_rows(model, x, y.len())?;
    let mut counts = vec![0usize; n_classes];
    for (i, &c) in y.iter().enumerate() {
        if c >= n_classes {
            return Err(FitError::Invalid {
                model,
                message: format!("class index {c} of row {i} is not below the number of classes ({n_classes})"),
            });
        }
        counts[c] += 1;
    }
    let found = counts.iter().filter(|&&c| c > 0).count();
    if found < 2 {
        return Err(FitError::TooFewClasses { model, found });
    }
    Ok(Classes { y, n_classes, counts })
}

/// Checks that `target` is a regression target matching `x`.
pub(super) fn regression_target<'a>(
    model: &'static str,
    x: &Features,
    target: &Target<'a>,
) -> Result<&'a [f64], FitError> {
    let Target::Values(y) = *target else {
        return Err(FitError::WrongTask { model, expected: "regressor", got: "classification" });
    };
    check_rows(model, x, y.len())?;
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(FitError::Invalid { model, message: format!("the target of row {i} is NaN or infinite") });
    }
    Ok(y)
}

fn check_rows(model: &'static str, x: &Features, n_targets: usize) -> Result<(), FitError> {
    if x.n_rows() == 0 || n_targets == 0 {
        return Err(FitError::Empty { model });
    }
    if x.n_rows() != n_targets {
        return Err(FitError::Invalid {
            model,
            message: format!("X has {} rows but y has {n_targets} values", x.n_rows()),
        });
    }
    let values = match x {
        Features::Dense(m) => &m.data,
        Features::Sparse(m) => &m.data,
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(FitError::Invalid { model, message: "X contains NaN or infinity".to_owned() });
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn as_f64(n: usize) -> f64 {
    n as f64
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

// ---------------------------------------------------------------------------------------------
// LogisticRegression

/// `LogisticRegression(penalty="l2", solver="lbfgs")`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegressionParams {
    pub c: f64,
    pub fit_intercept: bool,
    pub max_iter: usize,
    pub tol: f64,
}

impl LogisticRegressionParams {
    /// # Errors
    /// A value out of range; `penalty` other than `l2`, `solver` other than `lbfgs`.
    pub fn from_hyper(h: &Hyper) -> Result<Self, ParamError> {
        h.choice("penalty", &["l2"], "l2")?;
        h.choice("solver", &["lbfgs"], "lbfgs")?;
        Ok(Self {
            c: h.f64("C", 1.0, |c| c > 0.0 && c.is_finite(), "a number > 0")?,
            fit_intercept: h.bool("fit_intercept", true)?,
            max_iter: h.usize("max_iter", 100, 1)?,
            tol: h.f64("tol", 1e-4, |t| t >= 0.0 && t.is_finite(), "a number >= 0")?,
        })
    }
}

impl Estimator for LogisticRegressionParams {
    fn fit(&self, x: &Features, y: &Target<'_>, _seed: u64) -> Result<FittedEstimator, FitError> {
        const MODEL: &str = "LogisticRegression";
        let t = classification_target(MODEL, x, y)?;
        let present = t.present();
        let mut position = vec![usize::MAX; t.n_classes];
        for (p, &c) in present.iter().enumerate() {
            position[c] = p;
        }
        let y_present: Vec<usize> = t.y.iter().map(|&c| position[c]).collect();
        let n_out = if present.len() == 2 { 1 } else { present.len() };
        let problem = LogisticLoss {
            x,
            y: &y_present,
            k: n_out,
            d: x.n_cols(),
            fit_intercept: self.fit_intercept,
            // scikit-learn minimizes the mean log-loss plus ||w||² / (2 C n): the same optimum
            // as C · Σ loss + ||w||² / 2, but with gradients of order 1 so that `tol` means the
            // same thing for any number of rows.
            l2: 1.0 / (self.c * as_f64(x.n_rows())),
        };
        let res = lbfgs(|w, g| problem.loss_grad(w, g), vec![0.0; problem.n_params()], self.max_iter, self.tol);
        if !res.converged {
            tracing::warn!(
                "LogisticRegression: L-BFGS stopped after {} iterations without reaching tol = {}; \
                 scale the features or raise max_iter",
                res.n_iter,
                self.tol
            );
        }
        Ok(FittedEstimator::LogisticRegression(problem.to_classifier(&res.x, &present, t.n_classes)))
    }
}

/// Mean logistic loss with an L2 penalty on the coefficients (not the intercepts).
///
/// Parameters are laid out as scikit-learn's flattened multinomial coefficients: the `k`
/// values of feature `j` at `j * k .. (j + 1) * k`, then the `k` intercepts. Keeping a feature's
/// class weights together makes a sparse row touch one cache line per stored value.
struct LogisticLoss<'a> {
    x: &'a Features,
    /// Class positions `0..k` (binary: 0 or 1).
    y: &'a [usize],
    /// Outputs: 1 (binary, sigmoid) or the number of classes (softmax).
    k: usize,
    d: usize,
    fit_intercept: bool,
    l2: f64,
}

impl LogisticLoss<'_> {
    fn n_params(&self) -> usize {
        (self.d + usize::from(self.fit_intercept)) * self.k
    }

    /// The loss at `w`, with its gradient written to `grad`.
    fn loss_grad(&self, w: &[f64], grad: &mut [f64]) -> f64 {
        let n = self.y.len();
        // The chunk size depends on `n` only, and the partial sums are added in chunk order, so
        // the result does not depend on how many threads rayon happens to use. At most 32
        // chunks bounds the memory of the per-chunk gradients.
        let chunk = n.div_ceil(32).max(1024);
        let partials: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| self.chunk_loss_grad(w, c * chunk..((c + 1) * chunk).min(n)))
            .collect();
        grad.fill(0.0);
        let mut loss = 0.0;
        for (l, g) in &partials {
            loss += l;
            grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
        }
        let inv_n = 1.0 / as_f64(n);
        grad.iter_mut().for_each(|g| *g *= inv_n);
        let n_coef = self.d * self.k;
        let mut sq = 0.0;
        for (g, &v) in grad[..n_coef].iter_mut().zip(&w[..n_coef]) {
            *g += self.l2 * v;
            sq += v * v;
        }
        loss * inv_n + 0.5 * self.l2 * sq
    }

    fn chunk_loss_grad(&self, w: &[f64], rows: Range<usize>) -> (f64, Vec<f64>) {
        let (k, d) = (self.k, self.d);
        let mut g = vec![0.0; w.len()];
        if k == 1 {
            // Binary problems (the common text case) get a direct loop: one dot product and one
            // scaled add per row, and a single `exp` shared by the loss and its derivative.
            let b = if self.fit_intercept { w[d] } else { 0.0 };
            let mut loss = 0.0;
            for i in rows {
                let z = b + self.x.row_dot(i, w);
                let t = if self.y[i] == 1 { 1.0 } else { 0.0 };
                let e = (-z.abs()).exp();
                loss += z.max(0.0) + e.ln_1p() - t * z;
                let p = if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                let r = p - t;
                self.x.add_row_scaled(i, r, &mut g);
                if self.fit_intercept {
                    g[d] += r;
                }
            }
            return (loss, g);
        }
        let mut raw = vec![0.0; k];
        let mut loss = 0.0;
        for i in rows {
            if self.fit_intercept {
                raw.copy_from_slice(&w[d * k..]);
            } else {
                raw.fill(0.0);
            }
            self.x.for_each_in_row(i, |j, v| {
                raw.iter_mut().zip(&w[j * k..(j + 1) * k]).for_each(|(r, wc)| *r += v * wc);
            });
            let yi = self.y[i];
            // `raw` becomes the derivative of the row's loss with respect to its raw scores.
            if k == 1 {
                let z = raw[0];
                let t = if yi == 1 { 1.0 } else { 0.0 };
                loss += log1p_exp(z) - t * z;
                raw[0] = expit(z) - t;
            } else {
                let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + raw.iter().map(|r| (r - max).exp()).sum::<f64>().ln();
                loss += lse - raw[yi];
                for (c, r) in raw.iter_mut().enumerate() {
                    *r = (*r - lse).exp() - if c == yi { 1.0 } else { 0.0 };
                }
            }
            self.x.for_each_in_row(i, |j, v| {
                g[j * k..(j + 1) * k].iter_mut().zip(&raw).for_each(|(gc, r)| *gc += v * r);
            });
            if self.fit_intercept {
                g[d * k..].iter_mut().zip(&raw).for_each(|(gc, r)| *gc += r);
            }
        }
        (loss, g)
    }

    /// The fitted model from the optimum `w`, with one row per class of the full problem.
    fn to_classifier(&self, w: &[f64], present: &[usize], n_classes: usize) -> LinearClassifier {
        let (k, d) = (self.k, self.d);
        let coef_of = |j: usize, c: usize| w[j * k + c];
        let intercept_of = |c: usize| {
            if self.fit_intercept { w[d * k + c] } else { 0.0 }
        };
        if n_classes == 2 {
            return LinearClassifier {
                coef: DenseMatrix::from_vec(1, d, (0..d).map(|j| coef_of(j, 0)).collect()),
                intercept: vec![intercept_of(0)],
                n_classes: 2,
                multinomial: false,
            };
        }
        let mut coef = DenseMatrix::zeros(n_classes, d);
        let mut intercept = vec![ABSENT_CLASS_SCORE; n_classes];
        if k == 1 {
            // Two classes present out of more: a softmax over (-z/2, z/2) is the sigmoid of z,
            // so the binary model becomes two rows of a multinomial one.
            for (sign, &c) in [-0.5, 0.5].iter().zip(present) {
                coef.row_mut(c).iter_mut().enumerate().for_each(|(j, v)| *v = sign * coef_of(j, 0));
                intercept[c] = sign * intercept_of(0);
            }
        } else {
            for (p, &c) in present.iter().enumerate() {
                coef.row_mut(c).iter_mut().enumerate().for_each(|(j, v)| *v = coef_of(j, p));
                intercept[c] = intercept_of(p);
            }
        }
        LinearClassifier { coef, intercept, n_classes, multinomial: true }
    }
}

/// `ln(1 + e^z)` without overflow.
fn log1p_exp(z: f64) -> f64 {
    if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() }
}

/// The logistic sigmoid without overflow.
fn expit(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

// ---------------------------------------------------------------------------------------------
// L-BFGS

struct LbfgsResult {
    x: Vec<f64>,
    n_iter: usize,
    converged: bool,
}

/// Minimizes `fg` (value, gradient written to its second argument) from `x0`.
///
/// This is scipy's L-BFGS-B without bounds, as scikit-learn calls it (`maxcor` 10, `maxls` 50,
/// `ftol` 64 ε, `gtol` = `tol`): without bounds its compact-form step is exactly the two-loop
/// recursion's `-H g` with `H₀ = (sᵀy / yᵀy) I`, its line search is Moré–Thuente's `dcsrch`
/// (ported below), and the tests, memory updates and restarts are L-BFGS-B's. Retracing it
/// matters because scikit-learn often stops at `max_iter` before converging (iris does), and
/// only the same iterates give the same unconverged coefficients.
fn lbfgs(fg: impl Fn(&[f64], &mut [f64]) -> f64, x0: Vec<f64>, max_iter: usize, gtol: f64) -> LbfgsResult {
    const MEMORY: usize = 10;
    const MAX_LINE_SEARCH: usize = 50;
    const STEP_MAX: f64 = 1e10;
    let ftol = 64.0 * f64::EPSILON;
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut f = fg(&x, &mut g);
    if inf_norm(&g) <= gtol {
        return LbfgsResult { x, n_iter: 0, converged: true };
    }
    // (s, y, 1 / sᵀy), oldest first.
    let mut memory: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(MEMORY + 1);
    let mut gamma = 1.0;
    let mut n_iter = 0;
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    loop {
        let d = lbfgs_direction(&g, &memory, gamma);
        let gd = dot(&g, &d);
        // Rounding can make the quasi-Newton direction point uphill, and a line search can
        // fail; L-BFGS-B then forgets its memory and retries along -g, and gives up only when
        // -g itself fails.
        let restart = |memory: &mut VecDeque<_>, gamma: &mut f64| {
            if memory.is_empty() {
                return false;
            }
            memory.clear();
            *gamma = 1.0;
            true
        };
        if gd >= 0.0 || gd.is_nan() {
            if restart(&mut memory, &mut gamma) {
                continue;
            }
            return LbfgsResult { x, n_iter, converged: false };
        }
        let mut stp = if n_iter == 0 { (1.0 / dot(&d, &d).sqrt()).min(STEP_MAX) } else { 1.0 };
        let mut search = Dcsrch::start(stp, f, gd, STEP_MAX);
        let mut accepted = None;
        for _ in 0..MAX_LINE_SEARCH {
            x_new.iter_mut().zip(x.iter().zip(&d)).for_each(|(xn, (xi, di))| *xn = xi + stp * di);
            let f_new = fg(&x_new, &mut g_new);
            let gd_new = dot(&g_new, &d);
            match search.next(stp, f_new, gd_new) {
                Step::Evaluate(s) => stp = s,
                Step::Accept => {
                    accepted = Some((f_new, gd_new));
                    break;
                }
                Step::Fail => break,
            }
        }
        let Some((f_new, gd_new)) = accepted else {
            if restart(&mut memory, &mut gamma) {
                continue;
            }
            return LbfgsResult { x, n_iter, converged: false };
        };
        n_iter += 1;
        let s: Vec<f64> = d.iter().map(|di| stp * di).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        let f_old = f;
        f = f_new;
        if inf_norm(&g) <= gtol || f_old - f <= ftol * f_old.abs().max(f.abs()).max(1.0) {
            return LbfgsResult { x, n_iter, converged: true };
        }
        if n_iter >= max_iter {
            return LbfgsResult { x, n_iter, converged: false };
        }
        // A pair with too little curvature would make H indefinite; L-BFGS-B skips it.
        let sy = (gd_new - gd) * stp;
        if sy > f64::EPSILON * (-gd * stp) {
            gamma = sy / dot(&y, &y);
            memory.push_back((s, y, 1.0 / sy));
            if memory.len() > MEMORY {
                memory.pop_front();
            }
        }
    }
}

/// `-H g` by the two-loop recursion.
fn lbfgs_direction(g: &[f64], memory: &VecDeque<(Vec<f64>, Vec<f64>, f64)>, gamma: f64) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(memory.len());
    for (s, y, rho) in memory.iter().rev() {
        let a = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
        alphas.push(a);
    }
    q.iter_mut().for_each(|qi| *qi *= gamma);
    for ((s, y, rho), a) in memory.iter().zip(alphas.iter().rev()) {
        let b = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
    }
    q.iter_mut().for_each(|qi| *qi = -*qi);
    q
}

enum Step {
    /// Evaluate the function at this step and call again.
    Evaluate(f64),
    /// The last evaluated step is the new iterate.
    Accept,
    Fail,
}

/// Moré–Thuente line search (MINPACK-2 `dcsrch`), as L-BFGS-B calls it: sufficient decrease
/// 1e-3, curvature 0.9, interval tolerance 0.1, steps in `[0, stpmax]`.
struct Dcsrch {
    brackt: bool,
    stage: u8,
    ginit: f64,
    gtest: f64,
    finit: f64,
    stpmax: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
    width: f64,
    width1: f64,
}

impl Dcsrch {
    const FTOL: f64 = 1e-3;
    const GTOL: f64 = 0.9;
    const XTOL: f64 = 0.1;
    const STPMIN: f64 = 0.0;

    /// `dcsrch` with task `START`: `f` and `g` are the value and slope at step 0; the first
    /// step to evaluate is `stp`.
    fn start(stp: f64, f: f64, g: f64, stpmax: f64) -> Self {
        let width = stpmax - Self::STPMIN;
        Self {
            brackt: false,
            stage: 1,
            ginit: g,
            gtest: Self::FTOL * g,
            finit: f,
            stpmax,
            stx: 0.0,
            fx: f,
            gx: g,
            sty: 0.0,
            fy: f,
            gy: g,
            stmin: 0.0,
            stmax: stp + 4.0 * stp,
            width,
            width1: width / 0.5,
        }
    }

    /// Given the value `f` and slope `g` at `stp`: the next step, or the end of the search.
    fn next(&mut self, stp: f64, f: f64, g: f64) -> Step {
        let ftest = self.finit + stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }
        // dcsrch's warnings (rounding errors, interval too small, step at a bound) end the
        // search like convergence does; L-BFGS-B takes the step either way.
        let warn = (self.brackt
            && (stp <= self.stmin || stp >= self.stmax || self.stmax - self.stmin <= Self::XTOL * self.stmax))
            || (stp == self.stpmax && f <= ftest && g <= self.gtest)
            || (stp == Self::STPMIN && (f > ftest || g >= self.gtest));
        let converged = f <= ftest && g.abs() <= Self::GTOL * -self.ginit;
        if warn || converged {
            return Step::Accept;
        }
        let mut stp = stp;
        let mut next = StepState {
            stx: self.stx,
            fx: self.fx,
            dx: self.gx,
            sty: self.sty,
            fy: self.fy,
            dy: self.gy,
            brackt: self.brackt,
        };
        if self.stage == 1 && f <= self.fx && f > ftest {
            // Until a step satisfies the sufficient-decrease test, work on the modified
            // function ψ(α) = f(α) - f(0) - ftol α f'(0), as Moré and Thuente prescribe.
            let gt = self.gtest;
            next.fx -= next.stx * gt;
            next.fy -= next.sty * gt;
            next.dx -= gt;
            next.dy -= gt;
            stp = dcstep(&mut next, stp, f - stp * gt, g - gt, self.stmin, self.stmax);
            next.fx += next.stx * gt;
            next.fy += next.sty * gt;
            next.dx += gt;
            next.dy += gt;
        } else {
            stp = dcstep(&mut next, stp, f, g, self.stmin, self.stmax);
        }
        self.stx = next.stx;
        self.fx = next.fx;
        self.gx = next.dx;
        self.sty = next.sty;
        self.fy = next.fy;
        self.gy = next.dy;
        self.brackt = next.brackt;
        if self.brackt {
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                stp = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = stp + 1.1 * (stp - self.stx);
            self.stmax = stp + 4.0 * (stp - self.stx);
        }
        stp = stp.clamp(Self::STPMIN, self.stpmax);
        if self.brackt && (stp <= self.stmin || stp >= self.stmax || self.stmax - self.stmin <= Self::XTOL * self.stmax)
        {
            stp = self.stx;
        }
        if stp.is_finite() { Step::Evaluate(stp) } else { Step::Fail }
    }
}

/// The interval of `dcstep`: `stx` is the best step so far, `sty` the other end.
struct StepState {
    stx: f64,
    fx: f64,
    dx: f64,
    sty: f64,
    fy: f64,
    dy: f64,
    brackt: bool,
}

/// `np.sign`: 0 for 0 (unlike `f64::signum`).
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        v
    }
}

/// MINPACK-2 `dcstep`: updates the interval with the trial step `stp` (value `fp`, slope
/// `dp`) and returns the next trial step from cubic and quadratic interpolation.
fn dcstep(st: &mut StepState, stp: f64, fp: f64, dp: f64, stpmin: f64, stpmax: f64) -> f64 {
    let (stx, fx, dx, sty, fy, dy) = (st.stx, st.fx, st.dx, st.sty, st.fy, st.dy);
    let sgnd = sign(dp) * sign(dx);
    let stpf;
    if fp > fx {
        // Higher value: the minimum is bracketed.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
        if stp < stx {
            gamma = -gamma;
        }
        let p = (gamma - dx) + theta;
        let q = ((gamma - dx) + gamma) + dp;
        let stpc = stx + (p / q) * (stp - stx);
        let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
        stpf = if (stpc - stx).abs() <= (stpq - stx).abs() { stpc } else { stpc + (stpq - stpc) / 2.0 };
        st.brackt = true;
    } else if sgnd < 0.0 {
        // Slopes of opposite sign: bracketed.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
        if stp > stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + dx;
        let stpc = stp + (p / q) * (stx - stp);
        let stpq = stp + (dp / (dp - dx)) * (stx - stp);
        stpf = if (stpc - stp).abs() > (stpq - stp).abs() { stpc } else { stpq };
        st.brackt = true;
    } else if dp.abs() < dx.abs() {
        // Same sign, decreasing slope magnitude.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).max(0.0).sqrt();
        if stp > stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            stp + r * (stx - stp)
        } else if stp > stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = stp + (dp / (dp - dx)) * (stx - stp);
        if st.brackt {
            let f = if (stpc - stp).abs() < (stpq - stp).abs() { stpc } else { stpq };
            stpf = if stp > stx { f.min(stp + 0.66 * (sty - stp)) } else { f.max(stp + 0.66 * (sty - stp)) };
        } else {
            let f = if (stpc - stp).abs() > (stpq - stp).abs() { stpc } else { stpq };
            stpf = f.clamp(stpmin, stpmax);
        }
    } else if st.brackt {
        // Same sign, slope not decreasing: minimize the cubic through stp and sty.
        let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
        let s = theta.abs().max(dy.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dy / s) * (dp / s)).sqrt();
        if stp > sty {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + dy;
        stpf = stp + (p / q) * (sty - stp);
    } else if stp > stx {
        stpf = stpmax;
    } else {
        stpf = stpmin;
    }
    if fp > fx {
        st.sty = stp;
        st.fy = fp;
        st.dy = dp;
    } else {
        if sgnd < 0.0 {
            st.sty = stx;
            st.fy = fx;
            st.dy = dx;
        }
        st.stx = stp;
        st.fx = fp;
        st.dx = dp;
    }
    stpf
}

// ---------------------------------------------------------------------------------------------
// LinearSVC

/// `LinearSVC(penalty="l2")`, solved in the dual as liblinear does.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSvcParams {
    pub c: f64,
    /// `loss="squared_hinge"` (the default) rather than `"hinge"`.
    pub squared_hinge: bool,
    pub max_iter: usize,
    pub tol: f64,
    pub fit_intercept: bool,
    pub intercept_scaling: f64,
}

impl LinearSvcParams {
    /// # Errors
    /// A value out of range; `penalty` other than `l2`.
    pub fn from_hyper(h: &Hyper) -> Result<Self, ParamError> {
        h.choice("penalty", &["l2"], "l2")?;
        Ok(Self {
            c: h.f64("C", 1.0, |c| c > 0.0 && c.is_finite(), "a number > 0")?,
            squared_hinge: h.choice("loss", &["squared_hinge", "hinge"], "squared_hinge")? == "squared_hinge",
            max_iter: h.usize("max_iter", 1000, 1)?,
            tol: h.f64("tol", 1e-4, |t| t > 0.0 && t.is_finite(), "a number > 0")?,
            fit_intercept: h.bool("fit_intercept", true)?,
            intercept_scaling: h.f64("intercept_scaling", 1.0, |s| s > 0.0 && s.is_finite(), "a number > 0")?,
        })
    }
}

impl Estimator for LinearSvcParams {
    fn fit(&self, x: &Features, y: &Target<'_>, seed: u64) -> Result<FittedEstimator, FitError> {
        const MODEL: &str = "LinearSVC";
        let t = classification_target(MODEL, x, y)?;
        // liblinear appends a constant feature for the intercept; its weight is penalized like
        // the others, which is why `intercept_scaling` changes the fit.
        let bias = if self.fit_intercept { self.intercept_scaling } else { 0.0 };
        let sq_norms: Vec<f64> = (0..x.n_rows())
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| {
                let mut s = bias * bias;
                x.for_each_in_row(i, |_, v| s += v * v);
                s
            })
            .collect();
        let problem = DualCd { svc: self, x, sq_norms: &sq_norms, bias };
        let solutions: Vec<(Vec<f64>, f64, bool)> = if t.n_classes == 2 {
            vec![problem.solve(|i| t.y[i] == 1, Rng::new(seed))]
        } else {
            // One-vs-rest problems are independent, so they run in parallel, each with its own
            // random stream (liblinear shares one, which would serialize them). A class absent
            // from the rows is an all-negative problem: its scores end up below the others'.
            (0..t.n_classes)
                .into_par_iter()
                .map(|c| problem.solve(|i| t.y[i] == c, Rng::derive(seed, c as u64)))
                .collect()
        };
        if solutions.iter().any(|s| !s.2) {
            tracing::warn!(
                "LinearSVC: coordinate descent did not converge in {} iterations; scale the features \
                 or raise max_iter",
                self.max_iter
            );
        }
        let d = x.n_cols();
        let mut coef = DenseMatrix::zeros(solutions.len(), d);
        for (r, (w, _, _)) in solutions.iter().enumerate() {
            coef.row_mut(r).copy_from_slice(w);
        }
        let intercept = solutions.iter().map(|s| s.1 * bias).collect();
        Ok(FittedEstimator::LinearSvc(LinearClassifier { coef, intercept, n_classes: t.n_classes, multinomial: false }))
    }
}

/// liblinear's dual coordinate descent for L2-regularized (squared) hinge loss (Hsieh et al.
/// 2008, `solve_l2r_l1l2_svc`), with its shrinking heuristic.
struct DualCd<'a> {
    svc: &'a LinearSvcParams,
    x: &'a Features,
    /// `‖xᵢ‖²`, bias feature included.
    sq_norms: &'a [f64],
    /// Value of the appended intercept feature (0 without an intercept).
    bias: f64,
}

impl DualCd<'_> {
    /// Solves the binary problem with `positive(i)` rows as +1: `(w, bias weight, converged)`.
    fn solve(&self, positive: impl Fn(usize) -> bool, mut rng: Rng) -> (Vec<f64>, f64, bool) {
        let n = self.x.n_rows();
        let c = self.svc.c;
        // Squared hinge: an unbounded α with 1/(2C) on the diagonal; hinge: 0 ≤ α ≤ C.
        let (diag, upper) = if self.svc.squared_hinge { (0.5 / c, f64::INFINITY) } else { (0.0, c) };
        let y: Vec<f64> = (0..n).map(|i| if positive(i) { 1.0 } else { -1.0 }).collect();
        let qd: Vec<f64> = self.sq_norms.iter().map(|q| q + diag).collect();
        let mut alpha = vec![0.0; n];
        let mut w = vec![0.0; self.x.n_cols()];
        let mut wb = 0.0;
        let mut index: Vec<usize> = (0..n).collect();
        let mut active = n;
        let (mut pg_max_old, mut pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut iter = 0;
        while iter < self.svc.max_iter {
            let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
            for i in 0..active {
                let j = i + rng.below(active - i);
                index.swap(i, j);
            }
            let mut s = 0;
            while s < active {
                let i = index[s];
                let yi = y[i];
                let g = yi * (self.x.row_dot(i, &w) + wb * self.bias) - 1.0 + alpha[i] * diag;
                let mut pg = 0.0;
                // Shrinking: a variable at a bound whose gradient pushes further out, by more
                // than the last epoch's violations, is likely to stay there; drop it until the
                // final check below.
                if alpha[i] == 0.0 {
                    if g > pg_max_old {
                        active -= 1;
                        index.swap(s, active);
                        continue;
                    }
                    if g < 0.0 {
                        pg = g;
                    }
                } else if alpha[i] == upper {
                    if g < pg_min_old {
                        active -= 1;
                        index.swap(s, active);
                        continue;
                    }
                    if g > 0.0 {
                        pg = g;
                    }
                } else {
                    pg = g;
                }
                pg_max = pg_max.max(pg);
                pg_min = pg_min.min(pg);
                if pg.abs() > 1e-12 {
                    let old = alpha[i];
                    alpha[i] = (old - g / qd[i]).max(0.0).min(upper);
                    let delta = (alpha[i] - old) * yi;
                    self.x.for_each_in_row(i, |j, v| w[j] += delta * v);
                    wb += delta * self.bias;
                }
                s += 1;
            }
            iter += 1;
            if pg_max - pg_min <= self.svc.tol {
                if active == n {
                    return (w, wb, true);
                }
                // Converged on the shrunk set: check once more on every variable.
                active = n;
                pg_max_old = f64::INFINITY;
                pg_min_old = f64::NEG_INFINITY;
                continue;
            }
            pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
            pg_min_old = if pg_min >= 0.0 { f64::NEG_INFINITY } else { pg_min };
        }
        (w, wb, false)
    }
}

// ---------------------------------------------------------------------------------------------
// LinearRegression and Ridge

/// `LinearRegression` (`alpha` 0) or `Ridge`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRegressionParams {
    pub ridge: bool,
    pub alpha: f64,
    pub fit_intercept: bool,
}

impl LinearRegressionParams {
    /// # Errors
    /// A value out of range.
    pub fn from_hyper(h: &Hyper, ridge: bool) -> Result<Self, ParamError> {
        let alpha = if ridge { h.f64("alpha", 1.0, |a| a >= 0.0 && a.is_finite(), "a number >= 0")? } else { 0.0 };
        Ok(Self { ridge, alpha, fit_intercept: h.bool("fit_intercept", true)? })
    }
}

impl Estimator for LinearRegressionParams {
    fn fit(&self, x: &Features, y: &Target<'_>, _seed: u64) -> Result<FittedEstimator, FitError> {
        let model = if self.ridge { "Ridge" } else { "LinearRegression" };
        let y = regression_target(model, x, y)?;
        let dense = x.dense();
        let (n, d) = (dense.n_rows, dense.n_cols);
        let inv_n = 1.0 / as_f64(n);
        // Centering X and y and solving without an intercept gives the same coefficients as
        // an unpenalized intercept column, and keeps the intercept out of Ridge's penalty.
        let x_mean: Vec<f64> = if self.fit_intercept {
            (0..d).map(|j| (0..n).map(|i| dense.get(i, j)).sum::<f64>() * inv_n).collect()
        } else {
            vec![0.0; d]
        };
        let y_mean = if self.fit_intercept { y.iter().sum::<f64>() * inv_n } else { 0.0 };
        // Column-major, so that every entry of XᵀX is a contiguous dot product.
        let columns: Vec<Vec<f64>> =
            (0..d).into_par_iter().map(|j| (0..n).map(|i| dense.get(i, j) - x_mean[j]).collect()).collect();
        let yc: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
        let upper: Vec<Vec<f64>> =
            (0..d).into_par_iter().map(|a| (a..d).map(|b| dot(&columns[a], &columns[b])).collect()).collect();
        let mut gram = vec![0.0; d * d];
        for (a, row) in upper.iter().enumerate() {
            for (off, &v) in row.iter().enumerate() {
                gram[a * d + a + off] = v;
                gram[(a + off) * d + a] = v;
            }
        }
        let xty: Vec<f64> = columns.par_iter().map(|col| dot(col, &yc)).collect();
        let coef = solve_normal_equations(&gram, &xty, self.alpha, d, n.max(d));
        let intercept = if self.fit_intercept { y_mean - dot(&x_mean, &coef) } else { 0.0 };
        let m = LinearRegressor { coef, intercept };
        Ok(if self.ridge { FittedEstimator::Ridge(m) } else { FittedEstimator::LinearRegression(m) })
    }
}

/// Solves `(G + alpha I) w = b` for the `d × d` Gram matrix `G = XᵀX` of an `n × d` problem
/// (`size` = max(n, d) sets the rank tolerance).
///
/// Cholesky on the matrix scaled to a unit diagonal: scaling costs nothing and keeps features
/// of very different units (age in years next to a ratio) from looking singular. When a pivot
/// falls below `size · ε` the columns are linearly dependent to working precision (one-hot
/// columns plus an intercept, a duplicated feature), there is no unique solution, and the
/// fallback is the pseudo-inverse from a symmetric eigendecomposition: the minimum-norm
/// solution, which is what scikit-learn's `lstsq` returns for `LinearRegression`.
fn solve_normal_equations(gram: &[f64], b: &[f64], alpha: f64, d: usize, size: usize) -> Vec<f64> {
    let mut a = gram.to_vec();
    for j in 0..d {
        a[j * d + j] += alpha;
    }
    // A column whose centered values are all zero has no information: its coefficient is 0
    // (as in the minimum-norm solution), and it is left out so it does not break Cholesky.
    let keep: Vec<usize> = (0..d).filter(|&j| a[j * d + j] > 0.0).collect();
    let scale: Vec<f64> = keep.iter().map(|&j| 1.0 / a[j * d + j].sqrt()).collect();
    let m = keep.len();
    let mut scaled = vec![0.0; m * m];
    for (p, &jp) in keep.iter().enumerate() {
        for (q, &jq) in keep.iter().enumerate() {
            scaled[p * m + q] = a[jp * d + jq] * scale[p] * scale[q];
        }
    }
    let rhs: Vec<f64> = keep.iter().zip(&scale).map(|(&j, s)| b[j] * s).collect();
    let mut w = vec![0.0; d];
    if let Some(v) = cholesky_solve(&mut scaled, &rhs, m, as_f64(size) * f64::EPSILON) {
        for ((&j, s), vj) in keep.iter().zip(&scale).zip(v) {
            w[j] = vj * s;
        }
        return w;
    }
    let (values, vectors) = symmetric_eigen(a, d);
    let cutoff = values.iter().copied().fold(0.0_f64, f64::max) * as_f64(size) * f64::EPSILON;
    for (k, &lambda) in values.iter().enumerate() {
        if lambda > cutoff {
            let proj = (0..d).map(|i| vectors[i * d + k] * b[i]).sum::<f64>() / lambda;
            for (i, wi) in w.iter_mut().enumerate() {
                *wi += proj * vectors[i * d + k];
            }
        }
    }
    w
}

/// Solves `a x = b` for a symmetric `m × m` matrix with unit-scale diagonal, overwriting `a`
/// with its Cholesky factor; `None` when a pivot is `<= tol` (numerically singular).
fn cholesky_solve(a: &mut [f64], b: &[f64], m: usize, tol: f64) -> Option<Vec<f64>> {
    for j in 0..m {
        let pivot = a[j * m + j] - (0..j).map(|k| a[j * m + k] * a[j * m + k]).sum::<f64>();
        if pivot.is_nan() || pivot <= tol {
            return None;
        }
        let l_jj = pivot.sqrt();
        a[j * m + j] = l_jj;
        for i in j + 1..m {
            let s = a[i * m + j] - (0..j).map(|k| a[i * m + k] * a[j * m + k]).sum::<f64>();
            a[i * m + j] = s / l_jj;
        }
    }
    let mut z = b.to_vec();
    for i in 0..m {
        let s = z[i] - (0..i).map(|k| a[i * m + k] * z[k]).sum::<f64>();
        z[i] = s / a[i * m + i];
    }
    for i in (0..m).rev() {
        let s = z[i] - (i + 1..m).map(|k| a[k * m + i] * z[k]).sum::<f64>();
        z[i] = s / a[i * m + i];
    }
    Some(z)
}

/// Eigenvalues and eigenvectors (columns of the row-major result) of a symmetric `d × d`
/// matrix by cyclic Jacobi rotations: slow for large `d`, but simple, and only used on
/// singular problems.
fn symmetric_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|p| (0..d).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * d + q].powi(2))
            .sum();
        if off <= f64::EPSILON * f64::EPSILON * total {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + theta.hypot(1.0));
                let c = 1.0 / t.hypot(1.0);
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kiln_model::matrix::CsrMatrix;
    use serde_json::json;

    use super::*;
    use crate::estimators::ModelKind;
    use crate::estimators::testdata::{diabetes, iris};

    fn hyper(model: &str, values: serde_json::Value) -> Hyper {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_value(values).expect("object");
        Hyper::new(model, map)
    }

    fn build(kind: ModelKind, values: serde_json::Value) -> Box<dyn Estimator> {
        kind.build(&hyper(kind.name(), values)).expect("valid params")
    }

    fn classifier(f: FittedEstimator) -> LinearClassifier {
        match f {
            FittedEstimator::LogisticRegression(m) | FittedEstimator::LinearSvc(m) => m,
            other => panic!("not a linear classifier: {other:?}"),
        }
    }

    fn regressor(f: FittedEstimator) -> LinearRegressor {
        match f {
            FittedEstimator::LinearRegression(m) | FittedEstimator::Ridge(m) => m,
            other => panic!("not a linear regressor: {other:?}"),
        }
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, want {w} (tol {tol})");
        }
    }

    fn accuracy(pred: &[usize], y: &[usize]) -> f64 {
        as_f64(pred.iter().zip(y).filter(|(p, t)| p == t).count()) / as_f64(y.len())
    }

    // import numpy as np, pandas as pd
    // from sklearn.linear_model import LogisticRegression
    // df = pd.read_csv("examples/iris/iris.csv")
    // X = df.iloc[:, :4].to_numpy(); y = pd.Categorical(df.species).codes
    // m = LogisticRegression().fit(X, y)   # sklearn 1.9.1; stops at max_iter=100 unconverged
    // m.coef_, m.intercept_, m.score(X, y)
    const IRIS_LR_COEF: [f64; 12] = [
        -0.4184456286916816,
        0.9663768777943086,
        -2.5206183635290604,
        -1.0841594056452075, //
        0.5297919959501407,
        -0.314416407494849,
        -0.19993272477734728,
        -0.9473436268527732, //
        -0.11134636725844733,
        -0.6519604702994625,
        2.720551088306387,
        2.031503032497978,
    ];
    const IRIS_LR_INTERCEPT: [f64; 3] = [9.838539379043635, 2.2220159572554072, -12.060555336298684];

    #[test]
    fn logistic_multinomial_iris_matches_sklearn() {
        let (x, y) = iris();
        let fitted =
            build(ModelKind::LogisticRegression, json!({})).fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0);
        let m = classifier(fitted.expect("fit"));
        assert!(m.multinomial);
        assert_eq!(m.n_classes, 3);
        // Both stop unconverged at max_iter = 100, on the same L-BFGS-B path: the objective
        // agrees to 1e-16 at the first iteration, but rounding differences grow along the
        // ill-conditioned path (1e-8 by iteration 60), so after 100 the iterates agree to ~5e-3.
        assert_close(&m.coef.data, &IRIS_LR_COEF, 1e-2, "coef");
        assert_close(&m.intercept, &IRIS_LR_INTERCEPT, 1e-2, "intercept");
        let sk = LinearClassifier {
            coef: DenseMatrix::from_vec(3, 4, IRIS_LR_COEF.to_vec()),
            intercept: IRIS_LR_INTERCEPT.to_vec(),
            n_classes: 3,
            multinomial: true,
        };
        let pred = m.predict_proba(&x).argmax_rows();
        assert_eq!(pred, sk.predict_proba(&x).argmax_rows());
        assert!((accuracy(&pred, &y) - 0.9733333333333334).abs() < 1e-12);
    }

    #[test]
    fn logistic_converged_iris_matches_sklearn_closely() {
        // The exact optimum of scikit-learn's objective, far tighter than any `tol`:
        // from scipy import optimize
        // from sklearn.linear_model._linear_loss import LinearModelLoss
        // from sklearn._loss.loss import HalfMultinomialLoss
        // loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=3), fit_intercept=True)
        // r = optimize.minimize(loss.loss_gradient, np.zeros(15), method="L-BFGS-B", jac=True,
        //     args=(X, y.astype(float), None, 1 / 150, 1),
        //     options=dict(maxiter=10000, maxls=50, gtol=1e-13, ftol=0))  # max|grad| 1.4e-9
        // r.x.reshape(3, -1, order="F")
        // (LogisticRegression(tol=1e-10, max_iter=1000) stops on ftol within 4e-6 of it.)
        let want_coef = [
            -0.42351009400719464,
            0.9673506366348579,
            -2.5171522988518134,
            -1.0793368413263214, //
            0.5344616135596751,
            -0.32158782025019766,
            -0.20639217573614388,
            -0.9442983045966945, //
            -0.1109515195524814,
            -0.6457628163846655,
            2.723544474587943,
            2.0236351459230155,
        ];
        let want_intercept = [9.849568784891149, 2.2372051847520784, -12.086773969642735];
        let (x, y) = iris();
        let est = build(ModelKind::LogisticRegression, json!({"tol": 1e-10, "max_iter": 1000}));
        let m = classifier(est.fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
        assert_close(&m.coef.data, &want_coef, 1e-5, "coef");
        assert_close(&m.intercept, &want_intercept, 1e-5, "intercept");
        // The same fit from CSR input: same values in the same order, so the same bits.
        let ms = classifier(est.fit(&x.to_sparse(), &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
        assert_eq!(ms, m);
    }

    #[test]
    fn logistic_binary_iris_matches_sklearn() {
        // mask = y > 0; m = LogisticRegression().fit(X[mask], y[mask])   # n_iter_ = 32
        // m.coef_, m.intercept_, m.predict_proba(X[[50, 70, 133]])
        let (x, y) = iris();
        let rows: Vec<usize> = (50..150).collect();
        let xb = x.take_rows(&rows);
        let yb: Vec<usize> = rows.iter().map(|&i| y[i] - 1).collect();
        let fitted = build(ModelKind::LogisticRegression, json!({}));
        let m = classifier(fitted.fit(&xb, &Target::Classes { y: &yb, n_classes: 2 }, 0).expect("fit"));
        assert_eq!((m.coef.n_rows, m.n_classes, m.multinomial), (1, 2, false));
        let want = [-0.3962930252100101, -0.5122078975395303, 2.9301968318974483, 2.413800880455584];
        assert_close(&m.coef.data, &want, 1e-3, "coef");
        assert_close(&m.intercept, &[-14.414022864123822], 1e-3, "intercept");
        let p = m.predict_proba(&x.take_rows(&[50, 70, 133]));
        let want_p = [
            0.8423599264584053,
            0.15764007354159468, //
            0.4953577851595814,
            0.5046422148404186, //
            0.4452567956253126,
            0.5547432043746874,
        ];
        assert_close(&p.data, &want_p, 1e-4, "proba");
        assert!((accuracy(&m.predict_proba(&xb).argmax_rows(), &yb) - 0.96).abs() < 1e-12);
    }

    #[test]
    fn logistic_with_an_absent_class_never_predicts_it() {
        let (x, y) = iris();
        let yy: Vec<usize> = y.iter().map(|&c| if c == 2 { 3 } else { c }).collect();
        let est = build(ModelKind::LogisticRegression, json!({}));
        let m = classifier(est.fit(&x, &Target::Classes { y: &yy, n_classes: 4 }, 0).expect("fit"));
        assert_eq!((m.coef.n_rows, m.intercept[2]), (4, ABSENT_CLASS_SCORE));
        let p = m.predict_proba(&x);
        assert!((0..150).all(|i| p.get(i, 2) == 0.0 && (p.row(i).iter().sum::<f64>() - 1.0).abs() < 1e-12));
        // Two of four classes present: a binary fit, stored as a softmax over 4 rows.
        let yy: Vec<usize> = y[50..].iter().map(|&c| c + 1).collect();
        let xb = x.take_rows(&(50..150).collect::<Vec<_>>());
        let m4 = classifier(est.fit(&xb, &Target::Classes { y: &yy, n_classes: 4 }, 0).expect("fit"));
        let yb: Vec<usize> = y[50..].iter().map(|&c| c - 1).collect();
        let m2 = classifier(est.fit(&xb, &Target::Classes { y: &yb, n_classes: 2 }, 0).expect("fit"));
        let (p4, p2) = (m4.predict_proba(&xb), m2.predict_proba(&xb));
        for i in 0..100 {
            assert!((p4.get(i, 3) - p2.get(i, 1)).abs() < 1e-12 && p4.get(i, 0) == 0.0);
        }
    }

    #[test]
    fn linear_svc_iris_matches_sklearn() {
        // m = LinearSVC(dual=True, random_state=0).fit(X, y)  # hits max_iter=1000, like kiln
        // m.coef_, m.intercept_, m.score(X, y)
        let want_coef = [
            0.18424595197107027,
            0.45122993671729655,
            -0.8079417679948063,
            -0.45070906134044086, //
            0.06115098932699645,
            -0.9023368260208237,
            0.4022653948198686,
            -0.953481948761408, //
            -0.8506965207134236,
            -0.986608528339734,
            1.380937627779815,
            1.8653390240658132,
        ];
        let want_intercept = [0.1095640811904938, 1.6767946546657675, -1.7098064226675205];
        let (x, y) = iris();
        let est = build(ModelKind::LinearSvc, json!({}));
        let m = classifier(est.fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
        assert_eq!((m.coef.n_rows, m.multinomial), (3, false));
        assert_close(&m.coef.data, &want_coef, 2e-2, "coef");
        assert_close(&m.intercept, &want_intercept, 2e-2, "intercept");
        assert!((accuracy(&m.decision_matrix(&x).argmax_rows(), &y) - 0.9666666666666667).abs() < 1e-12);
        // Deterministic for a seed, and the same from CSR.
        let ms = classifier(est.fit(&x.to_sparse(), &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
        assert_eq!(ms, m);
    }

    #[test]
    fn linear_svc_binary_and_hinge() {
        // m = LinearSVC(dual=True, random_state=0).fit(X[mask], y[mask])   # mask = y > 0
        // -> coef [[-0.8507, -0.9867, 1.3810, 1.8654]], intercept [-1.7098], score 0.97
        let (x, y) = iris();
        let xb = x.take_rows(&(50..150).collect::<Vec<_>>());
        let yb: Vec<usize> = y[50..].iter().map(|&c| c - 1).collect();
        let est = build(ModelKind::LinearSvc, json!({}));
        let m = classifier(est.fit(&xb, &Target::Classes { y: &yb, n_classes: 2 }, 7).expect("fit"));
        assert_eq!(m.coef.n_rows, 1);
        let want = [-0.850664795290869, -0.9867211503649942, 1.38099553606725, 1.865431596818485];
        assert_close(&m.coef.data, &want, 2e-2, "coef");
        assert_close(&m.intercept, &[-1.7097569852672276], 2e-2, "intercept");
        assert!((accuracy(&m.decision_matrix(&xb).argmax_rows(), &yb) - 0.97).abs() < 1e-12);
        // m = LinearSVC(dual=True, loss="hinge", random_state=0).fit(X, y); m.score(X, y) -> 0.9467
        let est = build(ModelKind::LinearSvc, json!({"loss": "hinge"}));
        let m = classifier(est.fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).expect("fit"));
        assert!(accuracy(&m.decision_matrix(&x).argmax_rows(), &y) >= 0.9);
    }

    #[test]
    fn linear_regression_and_ridge_match_sklearn() {
        // db = pd.read_csv("examples/diabetes/diabetes.csv")
        // X = db.iloc[:, :10].to_numpy(); y = db.target.to_numpy()
        // for m in [LinearRegression(), Ridge(), Ridge(alpha=10.0, fit_intercept=False)]:
        //     m.fit(X, y); m.coef_, m.intercept_
        let cases = [
            (
                ModelKind::LinearRegression,
                json!({}),
                [
                    -0.0363612242236198,
                    -22.859648090498386,
                    5.602962091923707,
                    1.1168079933181891,
                    -1.0899963340632208,
                    0.7464504555142053,
                    0.3720047150891326,
                    6.533831935990338,
                    68.48312496478829,
                    0.2801169893214963,
                ],
                -334.5671385187868,
            ),
            (
                ModelKind::Ridge,
                json!({}),
                [
                    -0.03285239685543177,
                    -22.607045432279943,
                    5.6404052343656526,
                    1.1189975700485106,
                    -0.9146734842698865,
                    0.5849098252881734,
                    0.17788523837880751,
                    6.250441778661595,
                    63.179080873617174,
                    0.2877669028997868,
                ],
                -316.0771186042882,
            ),
            (
                ModelKind::Ridge,
                json!({"alpha": 10.0, "fit_intercept": false}),
                [
                    0.014485733629441971,
                    -23.389894238234497,
                    5.415314710010233,
                    1.0042106288270396,
                    1.3213683375818335,
                    -1.3506608511080593,
                    -3.060534516709856,
                    -5.062908999023785,
                    3.557382275373118,
                    0.11888342541834718,
                ],
                0.0,
            ),
        ];
        let (x, y) = diabetes();
        for (kind, params, coef, intercept) in cases {
            let m = regressor(build(kind, params.clone()).fit(&x, &Target::Values(&y), 0).expect("fit"));
            assert_close(&m.coef, &coef, 1e-6, &format!("{kind} {params} coef"));
            assert_close(&[m.intercept], &[intercept], 1e-6, &format!("{kind} {params} intercept"));
            let ms = regressor(build(kind, params).fit(&x.to_sparse(), &Target::Values(&y), 0).expect("fit"));
            assert_eq!(ms, m);
        }
    }

    #[test]
    fn linear_regression_on_collinear_columns_is_minimum_norm() {
        // X2 = np.column_stack([X, X[:, 2]]); LinearRegression().fit(X2, y)  # lstsq: min-norm
        let (x, y) = diabetes();
        let d = x.to_dense();
        let mut data = Vec::new();
        for i in 0..d.n_rows {
            data.extend_from_slice(d.row(i));
            data.push(d.get(i, 2));
        }
        let x2 = Features::Dense(DenseMatrix::from_vec(d.n_rows, 11, data));
        let m = regressor(build(ModelKind::LinearRegression, json!({})).fit(&x2, &Target::Values(&y), 0).expect("fit"));
        let want = [
            -0.036361224223624936,
            -22.859648090498325,
            2.801481045961804,
            1.1168079933181856,
            -1.089996334063244,
            0.7464504555142266,
            0.37200471508915123,
            6.533831935990333,
            68.48312496478835,
            0.28011698932150697,
            2.8014810459619053,
        ];
        assert_close(&m.coef, &want, 1e-6, "coef");
        assert_close(&[m.intercept], &[-334.5671385187867], 1e-6, "intercept");
    }

    #[test]
    fn constant_column_gets_zero_coefficient() {
        let x = Features::Dense(DenseMatrix::from_vec(4, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0, 4.0, 5.0]));
        let y = [3.0, 5.0, 7.0, 9.0];
        let m = regressor(build(ModelKind::LinearRegression, json!({})).fit(&x, &Target::Values(&y), 0).expect("fit"));
        assert_close(&m.coef, &[2.0, 0.0], 1e-12, "coef");
        assert_close(&[m.intercept], &[1.0], 1e-12, "intercept");
    }

    #[test]
    fn bad_params_name_the_key_and_the_range() {
        let err = |kind: ModelKind, v: serde_json::Value| {
            kind.build(&hyper(kind.name(), v)).expect_err("invalid").to_string()
        };
        assert_eq!(
            err(ModelKind::LogisticRegression, json!({"C": 0})),
            "model.C of logistic_regression: expected a number > 0, got 0"
        );
        assert_eq!(
            err(ModelKind::LogisticRegression, json!({"penalty": "l1"})),
            "model.penalty of logistic_regression: expected one of l2, got \"l1\""
        );
        assert_eq!(
            err(ModelKind::LogisticRegression, json!({"max_iter": 0})),
            "model.max_iter of logistic_regression: expected a whole number >= 1, got 0"
        );
        assert_eq!(
            err(ModelKind::LinearSvc, json!({"loss": "log"})),
            "model.loss of linear_svc: expected one of squared_hinge, hinge, got \"log\""
        );
        assert_eq!(
            err(ModelKind::Ridge, json!({"alpha": -1.0})),
            "model.alpha of ridge: expected a number >= 0, got -1.0"
        );
        assert!(err(ModelKind::LinearRegression, json!({"alpha": 1.0})).contains("unknown key"));
    }

    #[test]
    fn wrong_task_and_degenerate_targets() {
        let (x, y) = iris();
        let values: Vec<f64> = y.iter().map(|&c| as_f64(c)).collect();
        for kind in [ModelKind::LogisticRegression, ModelKind::LinearSvc] {
            let e = build(kind, json!({})).fit(&x, &Target::Values(&values), 0).expect_err("wrong task");
            assert!(e.to_string().ends_with("is a classifier and cannot be fitted to a regression target"), "{e}");
            let one = vec![1usize; 150];
            let e = build(kind, json!({})).fit(&x, &Target::Classes { y: &one, n_classes: 3 }, 0).expect_err("1 class");
            assert!(matches!(e, FitError::TooFewClasses { found: 1, .. }), "{e}");
        }
        let e =
            build(ModelKind::Ridge, json!({})).fit(&x, &Target::Classes { y: &y, n_classes: 3 }, 0).expect_err("task");
        assert_eq!(e.to_string(), "Ridge is a regressor and cannot be fitted to a classification target");
        let empty = Features::Dense(DenseMatrix::zeros(0, 4));
        let e = build(ModelKind::LinearRegression, json!({})).fit(&empty, &Target::Values(&[]), 0).expect_err("empty");
        assert_eq!(e.to_string(), "LinearRegression: the training set is empty");
        let e =
            build(ModelKind::LinearRegression, json!({})).fit(&x, &Target::Values(&values[..10]), 0).expect_err("rows");
        assert_eq!(e.to_string(), "LinearRegression: X has 150 rows but y has 10 values");
    }

    /// A bag-of-words-like problem: `n` rows, `d` columns, ~15 counts per row, `k` classes.
    fn synthetic_text(n: usize, d: usize, k: usize, seed: u64) -> (Features, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut x = CsrMatrix::empty(d);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.below(k);
            let mut cols: Vec<u32> = (0..15)
                .map(|t| {
                    // Each class prefers its own block of words.
                    let j = if t % 3 == 0 { c * (d / k) + rng.below(d / k) } else { rng.below(d) };
                    u32::try_from(j).expect("column")
                })
                .collect();
            cols.sort_unstable();
            cols.dedup();
            x.push_row(cols.into_iter().map(|j| (j, 1.0)));
            y.push(c);
        }
        (Features::Sparse(x), y)
    }

    /// `cargo test --release -p kiln-train --lib linear::tests::logistic_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, not a check"]
    fn logistic_timing_sparse_16000_x_8000() {
        for k in [2, 5] {
            let (x, y) = synthetic_text(16_000, 8_000, k, 1);
            let est = build(ModelKind::LogisticRegression, json!({}));
            let start = std::time::Instant::now();
            let m = classifier(est.fit(&x, &Target::Classes { y: &y, n_classes: k }, 0).expect("fit"));
            let secs = start.elapsed().as_secs_f64();
            let acc = accuracy(&m.predict_proba(&x).argmax_rows(), &y);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("LogisticRegression {k} classes: {secs:.3} s, train accuracy {acc:.3}");
            }
            let est = build(ModelKind::LinearSvc, json!({}));
            let start = std::time::Instant::now();
            let m = classifier(est.fit(&x, &Target::Classes { y: &y, n_classes: k }, 0).expect("fit"));
            let secs = start.elapsed().as_secs_f64();
            let acc = accuracy(&m.decision_matrix(&x).argmax_rows(), &y);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("LinearSVC {k} classes: {secs:.3} s, train accuracy {acc:.3}");
            }
        }
    }
}
