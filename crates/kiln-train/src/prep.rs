//! Fitting the preprocessing steps on training rows only.
//!
//! The fitted steps are the [`kiln_model::preprocess`] types, whose transform code is the one
//! batch scoring and serving run: one code path from training to inference.

use std::collections::BTreeMap;

// FxHash: the term table is the hot loop of fitting a vectoriser.
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use kiln_core::Table;
use kiln_model::pipeline::{InputColumn, InputKind};
use kiln_model::preprocess::{
    CategoricalColumn, ENGLISH_STOP_WORDS, Norm, NumericColumn, Step, TextVectorizer, Tokenizer,
};

use crate::TrainError;
use crate::config::{Config, DfBound, Impute, NormChoice, Scale, Vectorizer};

/// Decides each column's role (as configured, or inferred when no roles are given) and
/// converts numeric columns to numbers in place, once, so folds and refits never re-parse.
///
/// # Errors
/// A configured column that is not in the table, or a numeric column with a non-number.
pub fn resolve_inputs(cfg: &Config, table: &mut Table) -> Result<Vec<InputColumn>, TrainError> {
    let d = &cfg.data;
    let mut inputs = Vec::new();
    if d.text.is_empty() && d.numeric.is_empty() && d.categorical.is_empty() {
        for name in table.names().to_vec() {
            if name == d.target || d.ignore.contains(&name) {
                continue;
            }
            let kind = if table.make_numeric(&name).is_ok() { InputKind::Numeric } else { InputKind::Categorical };
            inputs.push(InputColumn { name, kind, optional: true });
        }
    } else {
        for (cols, kind) in
            [(&d.numeric, InputKind::Numeric), (&d.categorical, InputKind::Categorical), (&d.text, InputKind::Text)]
        {
            for c in cols {
                table.column(c)?;
                if kind == InputKind::Numeric {
                    table.make_numeric(c)?;
                }
                inputs.push(InputColumn { name: c.clone(), kind, optional: true });
            }
        }
    }
    for ig in &d.ignore {
        table.column(ig)?;
    }
    if inputs.is_empty() {
        return Err(TrainError::NoFeatures);
    }
    // Whether a missing value is allowed depends on the imputer.
    for c in &mut inputs {
        c.optional = match c.kind {
            InputKind::Numeric => cfg.numeric.impute != Impute::None,
            InputKind::Categorical | InputKind::Text => true,
        };
    }
    Ok(inputs)
}

/// Loads the stop-word list the config names.
///
/// # Errors
/// An unreadable stop-word file.
pub fn stop_words(cfg: &Config) -> Result<Vec<String>, TrainError> {
    let raw = match cfg.text.stop_words.as_str() {
        "english" => ENGLISH_STOP_WORDS.to_owned(),
        "none" | "" => String::new(),
        file => {
            let path = cfg.base_dir.join(file);
            std::fs::read_to_string(&path).map_err(|source| TrainError::StopWords { path, source })?
        }
    };
    let mut words: Vec<String> =
        raw.lines().map(|l| l.trim().to_lowercase()).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    words.sort();
    words.dedup();
    Ok(words)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { f64::midpoint(v[n / 2 - 1], v[n / 2]) }
}

/// The most frequent value; ties go to the smallest, as scikit-learn's `SimpleImputer`.
fn most_frequent_num(v: &[f64]) -> f64 {
    let mut counts: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for &x in v {
        counts.entry(x.to_bits()).or_insert((x, 0)).1 += 1;
    }
    let mut best: Option<(f64, usize)> = None;
    for (x, c) in counts.into_values() {
        best = match best {
            Some((bx, bc)) if bc > c || (bc == c && bx < x) => Some((bx, bc)),
            _ => Some((x, c)),
        };
    }
    best.map_or(0.0, |b| b.0)
}

fn fit_numeric(cfg: &Config, name: &str, values: &[f64]) -> Result<NumericColumn, TrainError> {
    let present: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if present.is_empty() {
        return Err(TrainError::AllMissing(name.to_owned()));
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    let fill = match cfg.numeric.impute {
        Impute::Mean => Some(mean),
        Impute::Median => Some(median(&mut present.clone())),
        Impute::MostFrequent => Some(most_frequent_num(&present)),
        Impute::Constant => Some(cfg.numeric.fill_value),
        Impute::None => None,
    };
    // Scaling statistics are taken after imputation, as in a scikit-learn Pipeline of
    // SimpleImputer then StandardScaler.
    let filled: Vec<f64> =
        values.iter().map(|&x| if x.is_nan() { fill.unwrap_or(x) } else { x }).filter(|x| !x.is_nan()).collect();
    #[allow(clippy::cast_precision_loss)]
    let n = filled.len() as f64;
    let (offset, scale) = match cfg.numeric.scale {
        Scale::None => (0.0, 1.0),
        Scale::Standard => {
            let m = filled.iter().sum::<f64>() / n;
            let var = filled.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
            let sd = var.sqrt();
            (m, if sd > 0.0 { sd } else { 1.0 })
        }
        Scale::Minmax => {
            let lo = filled.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = filled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, if hi > lo { hi - lo } else { 1.0 })
        }
    };
    Ok(NumericColumn { column: name.to_owned(), fill, offset, scale })
}

fn fit_categorical(cfg: &Config, name: &str, values: &[Option<String>]) -> CategoricalColumn {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values.iter().flatten() {
        *counts.entry(v.as_str()).or_insert(0) += 1;
    }
    let fill = match cfg.categorical.impute {
        // BTreeMap order makes ties go to the smallest string, as scikit-learn does.
        Impute::MostFrequent => counts.iter().fold(None::<(&str, usize)>, |b, (k, &c)| match b {
            Some((_, bc)) if bc >= c => b,
            _ => Some((k, c)),
        }),
        _ => None,
    }
    .map(|(k, _)| k.to_owned())
    .or_else(|| (cfg.categorical.impute == Impute::Constant).then(|| cfg.categorical.fill_value.clone()));
    let mut cats: Vec<String> = counts.keys().map(|k| (*k).to_owned()).collect();
    if let Some(f) = &fill
        && values.iter().any(Option::is_none)
        && !cats.contains(f)
    {
        cats.push(f.clone());
        cats.sort();
    }
    CategoricalColumn { column: name.to_owned(), fill, categories: cats }
}

/// A document-frequency bound in documents (scikit-learn compares `df` with `max_df * n`
/// unrounded when the bound is a fraction).
#[allow(clippy::cast_precision_loss)]
fn df_limit(b: DfBound, n_docs: usize) -> f64 {
    match b {
        DfBound::Count(c) => c as f64,
        DfBound::Fraction(f) => f * n_docs as f64,
    }
}

/// Document frequency and total count of every term in `docs`.
fn count_terms(tokenizer: &Tokenizer, docs: &[Option<String>]) -> HashMap<String, (usize, usize)> {
    // Term ids instead of strings in the hot loop: a String is allocated once per distinct
    // term, not once per occurrence.
    let mut ids: HashMap<String, usize> = HashMap::default();
    let mut stats: Vec<(usize, usize, usize)> = Vec::new(); // (doc freq, total count, last doc seen)
    for (doc_no, doc) in docs.iter().enumerate() {
        tokenizer.terms(doc.as_deref().unwrap_or(""), |term| {
            let id = match ids.get(term) {
                Some(&id) => id,
                None => {
                    ids.insert(term.to_owned(), stats.len());
                    stats.push((0, 0, usize::MAX));
                    stats.len() - 1
                }
            };
            let e = &mut stats[id];
            e.1 += 1;
            if e.2 != doc_no {
                e.2 = doc_no;
                e.0 += 1;
            }
        });
    }
    ids.into_iter().map(|(term, id)| (term, (stats[id].0, stats[id].1))).collect()
}

/// Fits a vectoriser (scikit-learn's vocabulary rules: `max_df`/`min_df` prune by document
/// frequency, `max_features` keeps the most frequent terms by corpus count, the vocabulary is
/// sorted, IDF is `ln((1+n)/(1+df)) + 1` when smoothed).
fn fit_text(
    cfg: &Config,
    name: &str,
    values: &[Option<String>],
    stop: &[String],
) -> Result<TextVectorizer, TrainError> {
    let t = &cfg.text;
    let tokenizer = Tokenizer { lowercase: t.lowercase, stop_words: stop.to_vec(), ngram_range: t.ngram_range };
    // Documents are counted in parallel chunks, then the chunk tables are merged (integer sums,
    // so the result does not depend on the chunking).
    let chunk = values.len().div_ceil(rayon::current_num_threads() * 4).max(256);
    let tables: Vec<HashMap<String, (usize, usize)>> =
        values.par_chunks(chunk).map(|docs| count_terms(&tokenizer, docs)).collect();
    let mut tables = tables.into_iter();
    let mut df = tables.next().unwrap_or_default();
    for t in tables {
        for (term, (d, c)) in t {
            let e = df.entry(term).or_insert((0, 0));
            e.0 += d;
            e.1 += c;
        }
    }
    let n_docs = values.len();
    let (min_df, max_df) = (df_limit(t.min_df, n_docs), df_limit(t.max_df, n_docs));
    #[allow(clippy::cast_precision_loss)]
    let mut terms: Vec<(String, usize, usize)> = df
        .into_iter()
        .filter(|(_, (d, _))| *d as f64 >= min_df && *d as f64 <= max_df)
        .map(|(k, (d, c))| (k, d, c))
        .collect();
    if let Some(maxf) = t.max_features
        && terms.len() > maxf
    {
        // Highest corpus count first; ties by term so the choice is deterministic.
        terms.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        terms.truncate(maxf);
    }
    terms.sort_by(|a, b| a.0.cmp(&b.0));
    if terms.is_empty() {
        return Err(TrainError::EmptyVocabulary(name.to_owned()));
    }
    #[allow(clippy::cast_precision_loss)]
    let idf = (t.vectorizer == Vectorizer::Tfidf).then(|| {
        let n = n_docs as f64;
        terms
            .iter()
            .map(|(_, d, _)| {
                let d = *d as f64;
                if t.smooth_idf { ((1.0 + n) / (1.0 + d)).ln() + 1.0 } else { (n / d).ln() + 1.0 }
            })
            .collect()
    });
    let norm = match (t.vectorizer, t.norm) {
        (Vectorizer::Count, _) | (_, NormChoice::None) => None,
        (Vectorizer::Tfidf, NormChoice::L2) => Some(Norm::L2),
        (Vectorizer::Tfidf, NormChoice::L1) => Some(Norm::L1),
    };
    let sublinear = t.vectorizer == Vectorizer::Tfidf && t.sublinear_tf;
    Ok(TextVectorizer::new(
        name.to_owned(),
        tokenizer,
        terms.into_iter().map(|t| t.0).collect(),
        t.binary,
        idf,
        sublinear,
        norm,
    ))
}

/// Fits one step per input column on `table` (the training rows).
///
/// # Errors
/// A numeric column with a non-number or only missing values, or a text column whose
/// vocabulary ends up empty.
pub fn fit_steps(
    cfg: &Config,
    inputs: &[InputColumn],
    table: &Table,
    stop: &[String],
) -> Result<Vec<Step>, TrainError> {
    inputs
        .iter()
        .map(|c| {
            Ok(match c.kind {
                InputKind::Numeric => Step::Numeric(fit_numeric(cfg, &c.name, &table.numeric(&c.name)?)?),
                InputKind::Categorical => Step::Categorical(fit_categorical(cfg, &c.name, &table.text(&c.name)?)),
                InputKind::Text => Step::Text(fit_text(cfg, &c.name, &table.text(&c.name)?, stop)?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn cfg(extra: &[&str]) -> Config {
        let yaml = "data: {path: d.csv, target: y, text: [t]}\nmodel: {type: logistic_regression}\n";
        let o: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        Config::from_yaml(yaml, Path::new("k.yaml"), PathBuf::from("."), &o).unwrap()
    }

    fn docs() -> Vec<Option<String>> {
        [
            "Free entry in 2 a wkly comp to win FA Cup final",
            "win a free prize now",
            "see you at lunch, the lunch is free",
            "ok",
        ]
        .into_iter()
        .map(|s| Some(s.to_owned()))
        .collect()
    }

    /// ```python
    /// v = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(docs)
    /// sorted(v.vocabulary_), v.idf_, v.transform(["free free lunch win"]).toarray()
    /// # ['free', 'win'] [1.2231435513142097, 1.5108256237659907] [[0.807868390616, 0.589362930157]]
    /// ```
    #[test]
    fn tfidf_matches_sklearn() {
        let c = cfg(&[
            "preprocessing.text.ngram_range=[1,2]",
            "preprocessing.text.min_df=2",
            "preprocessing.text.sublinear_tf=true",
        ]);
        let v = fit_text(&c, "t", &docs(), &[]).unwrap();
        assert_eq!(v.vocabulary, ["free", "win"]);
        let idf = v.idf.clone().unwrap();
        assert!((idf[0] - 1.223_143_551_314_209_7).abs() < 1e-15 && (idf[1] - 1.510_825_623_765_990_7).abs() < 1e-15);
        let row = v.transform_one("free free lunch win");
        assert!(
            (row[0].1 - 0.807_868_390_616).abs() < 1e-11 && (row[1].1 - 0.589_362_930_157).abs() < 1e-11,
            "{row:?}"
        );
    }

    #[test]
    fn max_df_max_features_and_stop_words() {
        // "free" is in 3 of 4 documents: max_df 0.5 drops it.
        let v = fit_text(&cfg(&["preprocessing.text.max_df=0.5"]), "t", &docs(), &[]).unwrap();
        assert!(!v.vocabulary.contains(&"free".to_owned()));
        let v = fit_text(&cfg(&["preprocessing.text.max_features=2"]), "t", &docs(), &[]).unwrap();
        assert_eq!(v.vocabulary, ["free", "lunch"]);
        let stop = stop_words(&cfg(&[])).unwrap();
        let v = fit_text(&cfg(&[]), "t", &docs(), &stop).unwrap();
        assert!(!v.vocabulary.contains(&"the".to_owned()) && v.vocabulary.contains(&"lunch".to_owned()));
        let err = fit_text(&cfg(&["preprocessing.text.min_df=10"]), "t", &docs(), &[]).unwrap_err();
        assert!(err.to_string().contains("vocabulary is empty"), "{err}");
    }

    #[test]
    fn numeric_imputation_and_scaling() {
        let v = [1.0, f64::NAN, 3.0, 3.0];
        let n = fit_numeric(&cfg(&["preprocessing.numeric.impute=median"]), "x", &v).unwrap();
        assert_eq!(n.fill, Some(3.0));
        let n =
            fit_numeric(&cfg(&["preprocessing.numeric.impute=mean", "preprocessing.numeric.scale=minmax"]), "x", &v)
                .unwrap();
        assert!((n.fill.unwrap() - 7.0 / 3.0).abs() < 1e-15);
        assert_eq!((n.offset, n.scale), (1.0, 2.0));
        let n = fit_numeric(&cfg(&["preprocessing.numeric.impute=most_frequent"]), "x", &v).unwrap();
        assert_eq!(n.fill, Some(3.0));
        assert!(fit_numeric(&cfg(&[]), "x", &[f64::NAN]).is_err());
    }

    #[test]
    fn categorical_fill_and_categories() {
        let v = vec![Some("b".to_owned()), None, Some("a".to_owned()), Some("b".to_owned())];
        let c = fit_categorical(&cfg(&[]), "c", &v);
        assert_eq!((c.fill.as_deref(), c.categories.clone()), (Some("b"), vec!["a".to_owned(), "b".to_owned()]));
        let c = fit_categorical(&cfg(&["preprocessing.categorical.impute=constant"]), "c", &v);
        assert_eq!(c.categories, ["a", "b", "missing"]);
    }
}
