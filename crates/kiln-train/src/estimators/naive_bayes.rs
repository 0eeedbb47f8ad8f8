//! PLACEHOLDER: a helper is writing this module (MultinomialNB, GaussianNB).
use super::{Estimator, FitError, Hyper, ParamError, Target};
use kiln_model::{estimator::FittedEstimator, matrix::Features};
pub const MULTINOMIAL_KEYS: &[&str] = &[];
pub const GAUSSIAN_KEYS: &[&str] = &[];
#[derive(Debug)] pub struct MultinomialNbParams;
#[derive(Debug)] pub struct GaussianNbParams;
impl MultinomialNbParams { pub fn from_hyper(_h: &Hyper) -> Result<Self, ParamError> { Ok(Self) } }
impl GaussianNbParams { pub fn from_hyper(_h: &Hyper) -> Result<Self, ParamError> { Ok(Self) } }
impl Estimator for MultinomialNbParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
impl Estimator for GaussianNbParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
