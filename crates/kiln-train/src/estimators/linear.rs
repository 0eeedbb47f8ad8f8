//! PLACEHOLDER: a helper is writing this module (LogisticRegression, LinearSVC, LinearRegression, Ridge).
use super::{Estimator, FitError, Hyper, ParamError, Target};
use kiln_model::{estimator::FittedEstimator, matrix::Features};
pub const LOGISTIC_KEYS: &[&str] = &[];
pub const SVC_KEYS: &[&str] = &[];
pub const LINEAR_REGRESSION_KEYS: &[&str] = &[];
pub const RIDGE_KEYS: &[&str] = &[];
#[derive(Debug)] pub struct LogisticRegressionParams;
#[derive(Debug)] pub struct LinearSvcParams;
#[derive(Debug)] pub struct LinearRegressionParams;
impl LogisticRegressionParams { pub fn from_hyper(_h: &Hyper) -> Result<Self, ParamError> { Ok(Self) } }
impl LinearSvcParams { pub fn from_hyper(_h: &Hyper) -> Result<Self, ParamError> { Ok(Self) } }
impl LinearRegressionParams { pub fn from_hyper(_h: &Hyper, _ridge: bool) -> Result<Self, ParamError> { Ok(Self) } }
impl Estimator for LogisticRegressionParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
impl Estimator for LinearSvcParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
impl Estimator for LinearRegressionParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
