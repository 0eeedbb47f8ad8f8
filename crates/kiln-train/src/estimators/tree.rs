//! PLACEHOLDER: a helper is writing this module (DecisionTree, RandomForest).
use super::{Estimator, FitError, Hyper, ParamError, Target};
use kiln_model::{estimator::FittedEstimator, matrix::Features};
pub const TREE_KEYS: &[&str] = &[];
pub const FOREST_KEYS: &[&str] = &[];
#[derive(Debug)] pub struct DecisionTreeParams;
#[derive(Debug)] pub struct RandomForestParams;
impl DecisionTreeParams { pub fn from_hyper(_h: &Hyper, _c: bool) -> Result<Self, ParamError> { Ok(Self) } }
impl RandomForestParams { pub fn from_hyper(_h: &Hyper, _c: bool) -> Result<Self, ParamError> { Ok(Self) } }
impl Estimator for DecisionTreeParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
impl Estimator for RandomForestParams { fn fit(&self, _x: &Features, _y: &Target<'_>, _s: u64) -> Result<FittedEstimator, FitError> { Err(FitError::Empty { model: "x" }) } }
