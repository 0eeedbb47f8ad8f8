//! `kiln.yaml`: the training configuration, its defaults, `-S key=value` overrides and
//! validation.
//!
//! The file is read as YAML, overrides are applied to the tree, and each section is then
//! checked on its own so an error names the section and key (`preprocessing.text: unknown
//! variant \`tfidff\`, expected \`count\` or \`tfidf\``). The raw, as-written structs are
//! turned into a [`Config`] by [`Config::from_yaml`]; only a valid `Config` reaches training.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::estimators::{Hyper, ModelKind};
use crate::metrics::Scoring;

/// Errors in the configuration. Each names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("`{key}`: {message}")]
    Key { key: String, message: String },
    #[error("override `{0}` must look like key=value (for example -S model.C=0.5)")]
    Override(String),
    #[error(transparent)]
    Param(#[from] crate::estimators::ParamError),
}

fn key_err(key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Key { key: key.to_owned(), message: message.to_string() }
}

/// `data:`: where the table is and what each column is for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// CSV file, relative to the config file.
    pub path: PathBuf,
    /// A separate CSV of held-out rows: when set, it is the test set and no split is made.
    #[serde(default)]
    pub test_path: Option<PathBuf>,
    /// The column to predict.
    pub target: String,
    /// Free-text columns, vectorised.
    #[serde(default)]
    pub text: Vec<String>,
    /// Numeric columns.
    #[serde(default)]
    pub numeric: Vec<String>,
    /// Categorical columns, one-hot encoded.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// Columns not used at all. When `text`, `numeric` and `categorical` are all empty, every
    /// other column is used: numeric when every value parses as a number, else categorical.
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// Which vectoriser turns text into features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vectorizer {
    Count,
    Tfidf,
}

/// Row normalisation after TF-IDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormChoice {
    L1,
    L2,
    None,
}

/// A document-frequency bound: a whole number of documents or a fraction of them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum DfBound {
    Count(u64),
    Fraction(f64),
}

fn d_true() -> bool {
    true
}
fn d_english() -> String {
    "english".into()
}
fn d_ngram() -> (usize, usize) {
    (1, 1)
}
fn d_min_df() -> DfBound {
    DfBound::Count(1)
}
fn d_max_df() -> DfBound {
    DfBound::Fraction(1.0)
}
fn d_vectorizer() -> Vectorizer {
    Vectorizer::Tfidf
}
fn d_norm() -> NormChoice {
    NormChoice::L2
}

/// `preprocessing.text:` (scikit-learn's `CountVectorizer`/`TfidfVectorizer` options).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default = "d_true")]
    pub lowercase: bool,
    /// `english` (the shipped list), `none`, or a file with one word per line.
    #[serde(default = "d_english")]
    pub stop_words: String,
    #[serde(default = "d_vectorizer")]
    pub vectorizer: Vectorizer,
    #[serde(default = "d_ngram")]
    pub ngram_range: (usize, usize),
    #[serde(default = "d_min_df")]
    pub min_df: DfBound,
    #[serde(default = "d_max_df")]
    pub max_df: DfBound,
    #[serde(default)]
    pub max_features: Option<usize>,
    #[serde(default)]
    pub binary: bool,
    #[serde(default = "d_true")]
    pub smooth_idf: bool,
    #[serde(default)]
    pub sublinear_tf: bool,
    #[serde(default = "d_norm")]
    pub norm: NormChoice,
}

/// How missing values are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    Mean,
    Median,
    MostFrequent,
    Constant,
    None,
}

/// How numeric columns are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Standard,
    Minmax,
    None,
}

fn d_impute_mean() -> Impute {
    Impute::Mean
}
fn d_impute_mf() -> Impute {
    Impute::MostFrequent
}
fn d_scale() -> Scale {
    Scale::Standard
}
fn d_missing() -> String {
    "missing".into()
}

/// `preprocessing.numeric:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericConfig {
    #[serde(default = "d_impute_mean")]
    pub impute: Impute,
    /// The value `impute: constant` fills in.
    #[serde(default)]
    pub fill_value: f64,
    #[serde(default = "d_scale")]
    pub scale: Scale,
}

/// `preprocessing.categorical:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalConfig {
    #[serde(default = "d_impute_mf")]
    pub impute: Impute,
    /// The category `impute: constant` fills in.
    #[serde(default = "d_missing")]
    pub fill_value: String,
}

/// `split:`: the held-out test set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    #[serde(default = "d_test_size")]
    pub test_size: f64,
    #[serde(default = "d_true")]
    pub stratify: bool,
    #[serde(default = "d_seed")]
    pub seed: u64,
}

fn d_test_size() -> f64 {
    0.2
}
fn d_seed() -> u64 {
    42
}
fn d_folds() -> usize {
    5
}

/// `cv:`: cross-validation for the grid search.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvConfig {
    #[serde(default = "d_folds")]
    pub folds: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the config file; relative paths are resolved against it.
    pub base_dir: PathBuf,
    pub data: DataConfig,
    pub text: TextConfig,
    pub numeric: NumericConfig,
    pub categorical: CategoricalConfig,
    pub model: ModelKind,
    /// The grid: every combination of the list-valued hyper-parameters.
    pub grid: Vec<Hyper>,
    pub split: SplitConfig,
    pub cv: CvConfig,
    pub scoring: Scoring,
    /// Output directory (relative to the config file's directory).
    pub output: PathBuf,
    pub plots: bool,
}

const TOP_KEYS: &[&str] = &["data", "preprocessing", "model", "split", "cv", "scoring", "output", "plots"];

fn section<T: DeserializeOwned>(root: &Value, path: &str) -> Result<T, ConfigError> {
    let mut v = root;
    for part in path.split('.') {
        v = v.get(part).unwrap_or(&Value::Null);
    }
    let v = if v.is_null() { Value::Object(serde_json::Map::new()) } else { v.clone() };
    serde_json::from_value(v).map_err(|e| key_err(path, e))
}

/// Reads YAML with the 1.2 core schema's booleans: only `true`/`false`, so a column called `y`,
/// `n` or `no` stays a string (YAML 1.1 would make it a boolean).
fn yaml<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, serde_saphyr::options! { strict_booleans: true })
}

/// Parses one `-S` value as YAML (`0.5`, `true`, `[1, 2]`, `tfidf`).
fn parse_scalar(s: &str) -> Value {
    yaml::<Value>(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// Applies `key.path=value` to the YAML tree, creating sections as needed.
///
/// # Errors
/// An override without `=` or with an empty key.
pub fn apply_override(root: &mut Value, spec: &str) -> Result<(), ConfigError> {
    let (key, value) = spec.split_once('=').ok_or_else(|| ConfigError::Override(spec.to_owned()))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Override(spec.to_owned()));
    }
    let mut node = root;
    for part in &parts[..parts.len() - 1] {
        if !node.is_object() {
            *node = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = node else { return Err(ConfigError::Override(spec.to_owned())) };
        node = map.entry((*part).to_owned()).or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = node {
        map.insert(parts[parts.len() - 1].to_owned(), parse_scalar(value.trim()));
    }
    Ok(())
}

/// Expands list-valued hyper-parameters into their cartesian product (first key varies
/// slowest, as scikit-learn's `ParameterGrid` with sorted keys).
fn expand_grid(model: &str, params: &BTreeMap<String, Value>) -> Vec<Hyper> {
    let mut points = vec![BTreeMap::new()];
    for (k, v) in params {
        let values: Vec<Value> = match v {
            Value::Array(items) if !items.is_empty() => items.clone(),
            other => vec![other.clone()],
        };
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |val| {
                    let mut q = p.clone();
                    q.insert(k.clone(), val.clone());
                    q
                })
            })
            .collect();
    }
    points.into_iter().map(|p| Hyper::new(model, p)).collect()
}

impl Config {
    /// Reads `path`, applies `overrides` and validates.
    ///
    /// # Errors
    /// Unreadable file, invalid YAML, or any invalid key (named in the error).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
        Self::from_yaml(&text, path, base, overrides)
    }

    /// Parses YAML text (named `path` in errors) with `base_dir` for relative paths.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_yaml(text: &str, path: &Path, base_dir: PathBuf, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut root: Value = if text.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            yaml(text).map_err(|e| ConfigError::Yaml { path: path.to_owned(), message: e.to_string() })?
        };
        if !root.is_object() {
            return Err(ConfigError::Yaml { path: path.to_owned(), message: "the top level must be a mapping".into() });
        }
        for o in overrides {
            apply_override(&mut root, o)?;
        }
        if let Value::Object(map) = &root {
            for k in map.keys() {
                if !TOP_KEYS.contains(&k.as_str()) {
                    return Err(key_err(k, format!("unknown key; expected one of {}", TOP_KEYS.join(", "))));
                }
            }
        }
        if root.get("data").is_none_or(Value::is_null) {
            return Err(key_err("data", "missing; it needs at least `path` and `target`"));
        }
        let data: DataConfig = section(&root, "data")?;
        let text_cfg: TextConfig = section(&root, "preprocessing.text")?;
        let numeric: NumericConfig = section(&root, "preprocessing.numeric")?;
        let categorical: CategoricalConfig = section(&root, "preprocessing.categorical")?;
        if let Some(Value::Object(p)) = root.get("preprocessing") {
            for k in p.keys() {
                if !["text", "numeric", "categorical"].contains(&k.as_str()) {
                    return Err(key_err(
                        &format!("preprocessing.{k}"),
                        "unknown key; expected one of text, numeric, categorical",
                    ));
                }
            }
        }
        let split: SplitConfig = section(&root, "split")?;
        let cv: CvConfig = section(&root, "cv")?;

        let model_val = root.get("model").cloned().unwrap_or(Value::Null);
        let allowed = ModelKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
        let Value::Object(mut model_map) = model_val else {
            return Err(key_err("model", format!("missing; set model.type to one of {allowed}")));
        };
        let ty = match model_map.remove("type") {
            Some(Value::String(s)) => s,
            _ => return Err(key_err("model.type", format!("missing; expected one of {allowed}"))),
        };
        let model = ModelKind::parse(&ty)
            .ok_or_else(|| key_err("model.type", format!("unknown model `{ty}`; expected one of {allowed}")))?;
        let params: BTreeMap<String, Value> = model_map.into_iter().collect();
        let grid = expand_grid(model.name(), &params);
        // Validate every grid point now, so a typo fails before any data is read.
        for h in &grid {
            model.build(h)?;
        }

        let scoring = match root.get("scoring") {
            None | Some(Value::Null) => {
                if model.is_classifier() {
                    Scoring::Accuracy
                } else {
                    Scoring::R2
                }
            }
            Some(Value::String(s)) => Scoring::parse(s).map_err(|e| key_err("scoring", e))?,
            Some(other) => return Err(key_err("scoring", format!("expected a scorer name, got {other}"))),
        };
        if scoring.is_classification() != model.is_classifier() {
            let kind = if model.is_classifier() { "classifier" } else { "regressor" };
            return Err(key_err(
                "scoring",
                format!("`{}` does not apply to a {kind} ({})", scoring.as_str(), model.name()),
            ));
        }
        let output = match root.get("output") {
            None | Some(Value::Null) => PathBuf::from("out"),
            Some(Value::String(s)) if !s.is_empty() => PathBuf::from(s),
            Some(other) => return Err(key_err("output", format!("expected a directory path, got {other}"))),
        };
        let plots = match root.get("plots") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(key_err("plots", format!("expected true or false, got {other}"))),
        };

        let cfg = Self {
            base_dir,
            data,
            text: text_cfg,
            numeric,
            categorical,
            model,
            grid,
            split,
            cv,
            scoring,
            output,
            plots,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !(self.split.test_size > 0.0 && self.split.test_size < 1.0) {
            return Err(key_err(
                "split.test_size",
                format!("expected a fraction between 0 and 1 (exclusive), got {}", self.split.test_size),
            ));
        }
        if self.cv.folds == 1 {
            return Err(key_err("cv.folds", "expected 0 (no cross-validation) or at least 2, got 1"));
        }
        if self.cv.folds == 0 && self.grid.len() > 1 {
            return Err(key_err(
                "cv.folds",
                format!(
                    "0 turns cross-validation off, but model has a grid of {} points to choose from; \
                     set cv.folds to 2 or more, or give each hyper-parameter one value",
                    self.grid.len()
                ),
            ));
        }
        let (lo, hi) = self.text.ngram_range;
        if lo == 0 || hi < lo {
            return Err(key_err(
                "preprocessing.text.ngram_range",
                format!("expected [min, max] with 1 <= min <= max, got [{lo}, {hi}]"),
            ));
        }
        for (key, b) in [("min_df", self.text.min_df), ("max_df", self.text.max_df)] {
            if let DfBound::Fraction(f) = b
                && !(0.0..=1.0).contains(&f)
            {
                return Err(key_err(
                    &format!("preprocessing.text.{key}"),
                    format!("expected a whole number of documents or a fraction in [0, 1], got {f}"),
                ));
            }
        }
        if self.categorical.impute != Impute::MostFrequent
            && self.categorical.impute != Impute::Constant
            && self.categorical.impute != Impute::None
        {
            return Err(key_err("preprocessing.categorical.impute", "expected one of most_frequent, constant, none"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in self.data.text.iter().chain(&self.data.numeric).chain(&self.data.categorical) {
            if c == &self.data.target {
                return Err(key_err("data", format!("the target `{c}` is also listed as a feature")));
            }
            if !seen.insert(c) {
                return Err(key_err("data", format!("column `{c}` has more than one role")));
            }
        }
        Ok(())
    }

    /// The data file, resolved against the config's directory.
    #[must_use]
    pub fn data_path(&self) -> PathBuf {
        self.base_dir.join(&self.data.path)
    }

    /// The held-out test file, if any, resolved against the config's directory.
    #[must_use]
    pub fn test_path(&self) -> Option<PathBuf> {
        self.data.test_path.as_ref().map(|p| self.base_dir.join(p))
    }

    /// The output directory, resolved against the config's directory.
    #[must_use]
    pub fn output_dir(&self) -> PathBuf {
        self.base_dir.join(&self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
        let o: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
        Config::from_yaml(yaml, Path::new("kiln.yaml"), PathBuf::from("."), &o)
    }

    const BASE: &str =
        "data: {path: d.csv, target: label, text: [text]}\nmodel: {type: multinomial_nb, alpha: [0.1, 1.0]}\n";

    #[test]
    fn defaults_and_grid() {
        let c = parse(BASE, &[]).unwrap();
        assert_eq!(c.grid.len(), 2);
        assert_eq!(c.text.vectorizer, Vectorizer::Tfidf);
        assert_eq!(c.split.test_size, 0.2);
        assert_eq!(c.cv.folds, 5);
        assert_eq!(c.scoring, Scoring::Accuracy);
    }

    #[test]
    fn yes_no_and_y_stay_strings() {
        let c =
            parse("data: {path: d.csv, target: y, text: [no]}\nmodel: {type: multinomial_nb}\n", &["data.ignore=[on]"])
                .unwrap();
        assert_eq!((c.data.target.as_str(), c.data.text[0].as_str(), c.data.ignore[0].as_str()), ("y", "no", "on"));
    }

    #[test]
    fn overrides_replace_values() {
        let c =
            parse(BASE, &["model.alpha=0.5", "split.test_size=0.4", "preprocessing.text.ngram_range=[1, 2]"]).unwrap();
        assert_eq!(c.grid.len(), 1);
        assert_eq!(c.grid[0].values["alpha"], serde_json::json!(0.5));
        assert_eq!(c.split.test_size, 0.4);
        assert_eq!(c.text.ngram_range, (1, 2));
    }

    #[test]
    fn errors_name_the_key_and_allowed_values() {
        let e = parse(BASE, &["preprocessing.text.vectorizer=tfidff"]).unwrap_err().to_string();
        assert!(e.starts_with("`preprocessing.text`: unknown variant `tfidff`, expected `count` or `tfidf`"), "{e}");
        let e = parse(BASE, &["model.type=forest"]).unwrap_err().to_string();
        assert!(e.contains("`model.type`: unknown model `forest`; expected one of multinomial_nb"), "{e}");
        let e = parse(BASE, &["split.test_size=1.5"]).unwrap_err().to_string();
        assert!(e.contains("split.test_size"), "{e}");
        let e = parse(BASE, &["modle.C=1"]).unwrap_err().to_string();
        assert!(e.contains("`modle`: unknown key"), "{e}");
        let e = parse(BASE, &["data.colums=[a]"]).unwrap_err().to_string();
        assert!(e.contains("`data`: unknown field `colums`"), "{e}");
        let e = parse(BASE, &["scoring=r2"]).unwrap_err().to_string();
        assert!(e.contains("does not apply to a classifier"), "{e}");
        assert!(matches!(parse(BASE, &["nonsense"]), Err(ConfigError::Override(_))));
    }
}
