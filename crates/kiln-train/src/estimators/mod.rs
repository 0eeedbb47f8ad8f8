//! Estimators: hyper-parameters (validated) and `fit`, producing the plain-data fitted models
//! of [`kiln_model::estimator`].
//!
//! Names and defaults follow scikit-learn, so a user's `LogisticRegression(C=0.5)` is
//! `model: {type: logistic_regression, C: 0.5}` in `kiln.yaml`. Each estimator reads its
//! hyper-parameters from a [`Hyper`] (one point of a grid) through typed getters whose errors
//! name the key and the allowed values.

use std::collections::BTreeMap;
use std::fmt;

use kiln_model::estimator::FittedEstimator;
use kiln_model::matrix::Features;
use serde_json::Value;

pub mod linear;
pub mod naive_bayes;
#[cfg(test)]
mod testdata;
pub mod tree;

/// The training target handed to [`Estimator::fit`].
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Class indices `0..n_classes` (classes sorted as scikit-learn's `classes_`).
    Classes { y: &'a [usize], n_classes: usize },
    /// Regression values.
    Values(&'a [f64]),
}

impl Target<'_> {
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Classes { y, .. } => y.len(),
            Self::Values(v) => v.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Errors of `fit`.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("{model}: the training set is empty")]
    Empty { model: &'static str },
    #[error("{model}: needs at least 2 classes in the training data, found {found}")]
    TooFewClasses { model: &'static str, found: usize },
    #[error("{model} is a {expected} and cannot be fitted to a {got} target")]
    WrongTask { model: &'static str, expected: &'static str, got: &'static str },
    #[error("{model}: {message}")]
    Invalid { model: &'static str, message: String },
}

/// A fittable estimator with validated hyper-parameters.
pub trait Estimator: Send + Sync + fmt::Debug {
    /// Fits on `x` (one row per sample) and `y`, deterministically for a given `seed`.
    ///
    /// # Errors
    /// A target of the wrong kind, too few classes, or data the algorithm cannot use.
    fn fit(&self, x: &Features, y: &Target<'_>, seed: u64) -> Result<FittedEstimator, FitError>;
}

/// A hyper-parameter value that is missing, mistyped or out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("model.{key} of {model}: expected {expected}, got {got}")]
pub struct ParamError {
    pub model: String,
    pub key: String,
    pub expected: String,
    pub got: String,
}

/// One point of a hyper-parameter grid: key → value, as written in `kiln.yaml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hyper {
    pub model: String,
    pub values: BTreeMap<String, Value>,
}

impl Hyper {
    #[must_use]
    pub fn new(model: &str, values: BTreeMap<String, Value>) -> Self {
        Self { model: model.to_owned(), values }
    }

    fn err(&self, key: &str, expected: &str, got: &Value) -> ParamError {
        ParamError {
            model: self.model.clone(),
            key: key.to_owned(),
            expected: expected.to_owned(),
            got: got.to_string(),
        }
    }

    /// The raw value of `key`, if set.
    #[must_use]
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A number; `valid` checks its range and `expected` describes that range for the error.
    ///
    /// # Errors
    /// Not a number, or out of range.
    pub fn f64(&self, key: &str, default: f64, valid: fn(f64) -> bool, expected: &str) -> Result<f64, ParamError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if valid(x) => Ok(x),
                _ => Err(self.err(key, expected, v)),
            },
        }
    }

    /// A whole number `>= min`.
    ///
    /// # Errors
    /// Not a whole number, or below `min`.
    pub fn usize(&self, key: &str, default: usize, min: usize) -> Result<usize, ParamError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => match v.as_u64().and_then(|x| usize::try_from(x).ok()) {
                Some(x) if x >= min => Ok(x),
                _ => Err(self.err(key, &format!("a whole number >= {min}"), v)),
            },
        }
    }

    /// A whole number `>= min`, or `null` for "no limit".
    ///
    /// # Errors
    /// Neither `null` nor a whole number `>= min`.
    pub fn opt_usize(&self, key: &str, default: Option<usize>, min: usize) -> Result<Option<usize>, ParamError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().and_then(|x| usize::try_from(x).ok()) {
                Some(x) if x >= min => Ok(Some(x)),
                _ => Err(self.err(key, &format!("null or a whole number >= {min}"), v)),
            },
        }
    }

    /// `true` or `false`.
    ///
    /// # Errors
    /// Not a boolean.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ParamError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(key, "true or false", v)),
        }
    }

    /// One of `allowed` (strings).
    ///
    /// # Errors
    /// Not one of `allowed`.
    pub fn choice(&self, key: &str, allowed: &[&str], default: &str) -> Result<String, ParamError> {
        match self.values.get(key) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
            Some(v) => Err(self.err(key, &format!("one of {}", allowed.join(", ")), v)),
        }
    }

    /// An error for `key` with a custom description (for parameters of mixed type).
    #[must_use]
    pub fn invalid(&self, key: &str, expected: &str) -> ParamError {
        let got = self.values.get(key).cloned().unwrap_or(Value::Null);
        self.err(key, expected, &got)
    }
}

/// The estimators kiln can train, by their `kiln.yaml` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    MultinomialNb,
    GaussianNb,
    LogisticRegression,
    LinearSvc,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    LinearRegression,
    Ridge,
}

impl ModelKind {
    /// Every kind, in the order `--help` and errors list them.
    pub const ALL: [Self; 10] = [
        Self::MultinomialNb,
        Self::GaussianNb,
        Self::LogisticRegression,
        Self::LinearSvc,
        Self::DecisionTreeClassifier,
        Self::DecisionTreeRegressor,
        Self::RandomForestClassifier,
        Self::RandomForestRegressor,
        Self::LinearRegression,
        Self::Ridge,
    ];

    /// The `kiln.yaml` name (`model.type`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::MultinomialNb => "multinomial_nb",
            Self::GaussianNb => "gaussian_nb",
            Self::LogisticRegression => "logistic_regression",
            Self::LinearSvc => "linear_svc",
            Self::DecisionTreeClassifier => "decision_tree_classifier",
            Self::DecisionTreeRegressor => "decision_tree_regressor",
            Self::RandomForestClassifier => "random_forest_classifier",
            Self::RandomForestRegressor => "random_forest_regressor",
            Self::LinearRegression => "linear_regression",
            Self::Ridge => "ridge",
        }
    }

    /// Parses a `model.type`; scikit-learn's class names (`LogisticRegression`) are accepted too.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let norm: String = s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
        Self::ALL.into_iter().find(|k| k.name().replace('_', "") == norm)
    }

    #[must_use]
    pub fn is_classifier(self) -> bool {
        !matches!(
            self,
            Self::DecisionTreeRegressor | Self::RandomForestRegressor | Self::LinearRegression | Self::Ridge
        )
    }

    /// The hyper-parameter keys this estimator accepts.
    #[must_use]
    pub fn param_keys(self) -> &'static [&'static str] {
        match self {
            Self::MultinomialNb => naive_bayes::MULTINOMIAL_KEYS,
            Self::GaussianNb => naive_bayes::GAUSSIAN_KEYS,
            Self::LogisticRegression => linear::LOGISTIC_KEYS,
            Self::LinearSvc => linear::SVC_KEYS,
            Self::LinearRegression => linear::LINEAR_REGRESSION_KEYS,
            Self::Ridge => linear::RIDGE_KEYS,
            Self::DecisionTreeClassifier | Self::DecisionTreeRegressor => tree::TREE_KEYS,
            Self::RandomForestClassifier | Self::RandomForestRegressor => tree::FOREST_KEYS,
        }
    }

    /// Builds the estimator for one grid point.
    ///
    /// # Errors
    /// An unknown key or an invalid value, naming the key and what is allowed.
    pub fn build(self, h: &Hyper) -> Result<Box<dyn Estimator>, ParamError> {
        for key in h.values.keys() {
            if !self.param_keys().contains(&key.as_str()) {
                return Err(ParamError {
                    model: h.model.clone(),
                    key: key.clone(),
                    expected: format!("a parameter of {} (one of: {})", self.name(), self.param_keys().join(", ")),
                    got: "an unknown key".to_owned(),
                });
            }
        }
        Ok(match self {
            Self::MultinomialNb => Box::new(naive_bayes::MultinomialNbParams::from_hyper(h)?),
            Self::GaussianNb => Box::new(naive_bayes::GaussianNbParams::from_hyper(h)?),
            Self::LogisticRegression => Box::new(linear::LogisticRegressionParams::from_hyper(h)?),
            Self::LinearSvc => Box::new(linear::LinearSvcParams::from_hyper(h)?),
            Self::LinearRegression => Box::new(linear::LinearRegressionParams::from_hyper(h, false)?),
            Self::Ridge => Box::new(linear::LinearRegressionParams::from_hyper(h, true)?),
            Self::DecisionTreeClassifier => Box::new(tree::DecisionTreeParams::from_hyper(h, true)?),
            Self::DecisionTreeRegressor => Box::new(tree::DecisionTreeParams::from_hyper(h, false)?),
            Self::RandomForestClassifier => Box::new(tree::RandomForestParams::from_hyper(h, true)?),
            Self::RandomForestRegressor => Box::new(tree::RandomForestParams::from_hyper(h, false)?),
        })
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
