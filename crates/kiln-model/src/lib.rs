//! kiln-model: the model bundle and everything needed to predict with it.
//!
//! - [`matrix`]: dense and sparse feature matrices ([`matrix::Features`]).
//! - [`estimator`]: fitted estimators as plain serde data, with predict.
pub mod estimator;
pub mod matrix;
