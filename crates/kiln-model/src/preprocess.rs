//! Fitted preprocessing steps: text vectorisers, numeric imputation and scaling, one-hot
//! encoding. Fitting happens in `kiln-train`; transforming happens here, so training and
//! inference run the very same code on a row.

use std::sync::OnceLock;

use kiln_core::Table;
// FxHash, not SipHash: vocabulary look-ups are the hot loop of text vectorising, and the keys
// are the model's own terms, not attacker-chosen hash-flooding input.
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

use crate::PredictError;

/// The English stop-word list shipped with kiln (scikit-learn's 318 words).
pub const ENGLISH_STOP_WORDS: &str = include_str!("../assets/english_stop_words.txt");

/// How raw text becomes tokens. Shared by fitting and predicting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokenizer {
    /// Lower-case before tokenizing.
    pub lowercase: bool,
    /// Words dropped after tokenizing, sorted (kept in the bundle so a model never depends on a
    /// file outside it).
    pub stop_words: Vec<String>,
    /// Inclusive n-gram range, e.g. `(1, 2)` for words and word pairs.
    pub ngram_range: (usize, usize),
}

impl Tokenizer {
    /// Terms of one document: non-word characters split words (scikit-learn's
    /// `(?u)\b\w\w+\b`, so one-character words are dropped), stop words removed, then n-grams
    /// joined by a space.
    pub fn terms(&self, text: &str, mut emit: impl FnMut(&str)) {
        let lowered;
        let text = if self.lowercase {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| w.chars().nth(1).is_some())
            .filter(|w| self.stop_words.binary_search_by(|s| s.as_str().cmp(w)).is_err())
            .collect();
        let (lo, hi) = self.ngram_range;
        let mut buf = String::new();
        for n in lo.max(1)..=hi {
            if n == 1 {
                words.iter().for_each(|w| emit(w));
                continue;
            }
            for win in words.windows(n) {
                buf.clear();
                for (k, w) in win.iter().enumerate() {
                    if k > 0 {
                        buf.push(' ');
                    }
                    buf.push_str(w);
                }
                emit(&buf);
            }
        }
    }
}

/// Per-row normalisation of a vectorised document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    L1,
    L2,
}

/// A fitted count or TF-IDF vectoriser for one text column (scikit-learn's `CountVectorizer`
/// and `TfidfVectorizer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextVectorizer {
    pub column: String,
    pub tokenizer: Tokenizer,
    /// Vocabulary sorted alphabetically; a term's feature index is its position.
    pub vocabulary: Vec<String>,
    /// Counts become 0/1.
    pub binary: bool,
    /// `Some(idf)` for TF-IDF, one weight per vocabulary term.
    pub idf: Option<Vec<f64>>,
    /// TF becomes `1 + ln(tf)`.
    pub sublinear_tf: bool,
    pub norm: Option<Norm>,
    #[serde(skip)]
    lookup: OnceLock<HashMap<String, u32>>,
}

impl PartialEq for TextVectorizer {
    fn eq(&self, o: &Self) -> bool {
        self.column == o.column
            && self.tokenizer == o.tokenizer
            && self.vocabulary == o.vocabulary
            && self.binary == o.binary
            && self.idf == o.idf
            && self.sublinear_tf == o.sublinear_tf
            && self.norm == o.norm
    }
}

impl TextVectorizer {
    #[must_use]
    pub fn new(
        column: String,
        tokenizer: Tokenizer,
        vocabulary: Vec<String>,
        binary: bool,
        idf: Option<Vec<f64>>,
        sublinear_tf: bool,
        norm: Option<Norm>,
    ) -> Self {
        Self { column, tokenizer, vocabulary, binary, idf, sublinear_tf, norm, lookup: OnceLock::new() }
    }

    fn lookup(&self) -> &HashMap<String, u32> {
        self.lookup.get_or_init(|| {
            self.vocabulary.iter().enumerate().map(|(i, t)| (t.clone(), u32::try_from(i).unwrap_or(u32::MAX))).collect()
        })
    }

    /// The sparse row of one document: (feature index, value) sorted by index.
    #[must_use]
    pub fn transform_one(&self, text: &str) -> Vec<(u32, f64)> {
        let lookup = self.lookup();
        // Sorting the ids and counting runs is cheaper than a hash map per document.
        let mut hits: Vec<u32> = Vec::new();
        self.tokenizer.terms(text, |t| {
            if let Some(&j) = lookup.get(t) {
                hits.push(j);
            }
        });
        hits.sort_unstable();
        let mut row: Vec<(u32, f64)> = Vec::with_capacity(hits.len());
        for j in hits {
            match row.last_mut() {
                Some((last, n)) if *last == j => *n += 1.0,
                _ => row.push((j, 1.0)),
            }
        }
        for (j, v) in &mut row {
            if self.binary {
                *v = 1.0;
            } else if self.sublinear_tf {
                *v = 1.0 + v.ln();
            }
            if let Some(idf) = &self.idf {
                *v *= idf[*j as usize];
            }
        }
        match self.norm {
            Some(Norm::L2) => {
                let n = row.iter().map(|e| e.1 * e.1).sum::<f64>().sqrt();
                if n > 0.0 {
                    row.iter_mut().for_each(|e| e.1 /= n);
                }
            }
            Some(Norm::L1) => {
                let n = row.iter().map(|e| e.1.abs()).sum::<f64>();
                if n > 0.0 {
                    row.iter_mut().for_each(|e| e.1 /= n);
                }
            }
            None => {}
        }
        row
    }
}

/// A fitted numeric column: fill missing values, then `(x - offset) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    pub column: String,
    /// The imputed value for missing entries; `None` means a missing value is an error.
    pub fill: Option<f64>,
    pub offset: f64,
    pub scale: f64,
}

/// A fitted categorical column: fill missing values, then one-hot over the categories seen in
/// training. An unseen category encodes as all zeros (scikit-learn's
/// `handle_unknown="ignore"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    pub column: String,
    /// The imputed category for missing entries; `None` encodes a missing value as all zeros.
    pub fill: Option<String>,
    /// Categories in sorted order; feature `k` is `column == categories[k]`.
    pub categories: Vec<String>,
}

/// One fitted step of the feature pipeline; steps' outputs are concatenated in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Text(TextVectorizer),
    Numeric(NumericColumn),
    Categorical(CategoricalColumn),
}

impl Step {
    /// The input column this step reads.
    #[must_use]
    pub fn column(&self) -> &str {
        match self {
            Self::Text(t) => &t.column,
            Self::Numeric(n) => &n.column,
            Self::Categorical(c) => &c.column,
        }
    }

    /// Number of output features.
    #[must_use]
    pub fn width(&self) -> usize {
        match self {
            Self::Text(t) => t.vocabulary.len(),
            Self::Numeric(_) => 1,
            Self::Categorical(c) => c.categories.len(),
        }
    }

    /// Names of the output features (`column`, `column=category`, `column:term`).
    #[must_use]
    pub fn feature_names(&self) -> Vec<String> {
        match self {
            Self::Text(t) => t.vocabulary.iter().map(|w| format!("{}:{w}", t.column)).collect(),
            Self::Numeric(n) => vec![n.column.clone()],
            Self::Categorical(c) => c.categories.iter().map(|k| format!("{}={k}", c.column)).collect(),
        }
    }
}

/// The input of a step for a whole table, converted once (borrowed when the table already
/// holds numbers).
pub(crate) enum StepInput<'t> {
    Text(Vec<Option<String>>),
    Numeric(std::borrow::Cow<'t, [f64]>),
}

impl Step {
    /// Reads and checks this step's column from `table`.
    pub(crate) fn input<'t>(&self, table: &'t Table) -> Result<StepInput<'t>, PredictError> {
        let col = self.column();
        match self {
            Self::Numeric(n) => {
                let v = match table.column(col)? {
                    kiln_core::Column::Numeric(v) => std::borrow::Cow::Borrowed(v.as_slice()),
                    kiln_core::Column::Text(_) => std::borrow::Cow::Owned(table.numeric(col)?),
                };
                if n.fill.is_none()
                    && let Some(i) = v.iter().position(|x| x.is_nan())
                {
                    return Err(PredictError::Missing { column: col.to_owned(), line: table.line(i) });
                }
                Ok(StepInput::Numeric(v))
            }
            Self::Text(_) | Self::Categorical(_) => Ok(StepInput::Text(table.text(col)?)),
        }
    }

    /// Writes this step's features of rows `first..` into `block` (consecutive dense rows of
    /// `width` values, zeroed), at column offset `base`.
    pub(crate) fn emit_dense_block(
        &self,
        input: &StepInput<'_>,
        first: usize,
        block: &mut [f64],
        width: usize,
        base: usize,
    ) {
        if let (Self::Numeric(n), StepInput::Numeric(v)) = (self, input) {
            let fill = n.fill.unwrap_or(f64::NAN);
            for (row, &x) in block.chunks_mut(width).zip(&v[first..]) {
                let x = if x.is_nan() { fill } else { x };
                row[base] = (x - n.offset) / n.scale;
            }
            return;
        }
        let w = self.width();
        for (r, row) in block.chunks_mut(width).enumerate() {
            self.emit_dense(input, first + r, &mut row[base..base + w]);
        }
    }

    /// Writes row `i`'s features into `out` (this step's slice of a zeroed dense row).
    pub(crate) fn emit_dense(&self, input: &StepInput<'_>, i: usize, out: &mut [f64]) {
        match (self, input) {
            (Self::Numeric(n), StepInput::Numeric(v)) => {
                let x = if v[i].is_nan() { n.fill.unwrap_or(f64::NAN) } else { v[i] };
                out[0] = (x - n.offset) / n.scale;
            }
            _ => {
                let mut row = Vec::new();
                self.emit(input, i, 0, &mut row);
                for (j, v) in row {
                    out[j as usize] = v;
                }
            }
        }
    }

    /// Appends row `i`'s features, offset by `base`, to `out` (zeros are skipped).
    pub(crate) fn emit(&self, input: &StepInput<'_>, i: usize, base: u32, out: &mut Vec<(u32, f64)>) {
        match (self, input) {
            (Self::Text(t), StepInput::Text(v)) => {
                let text = v[i].as_deref().unwrap_or("");
                out.extend(t.transform_one(text).into_iter().map(|(j, x)| (base + j, x)));
            }
            (Self::Numeric(n), StepInput::Numeric(v)) => {
                let x = if v[i].is_nan() { n.fill.unwrap_or(f64::NAN) } else { v[i] };
                let y = (x - n.offset) / n.scale;
                if y != 0.0 {
                    out.push((base, y));
                }
            }
            (Self::Categorical(c), StepInput::Text(v)) => {
                let value = v[i].as_deref().or(c.fill.as_deref());
                if let Some(value) = value
                    && let Ok(k) = c.categories.binary_search_by(|s| s.as_str().cmp(value))
                {
                    out.push((base + u32::try_from(k).unwrap_or(u32::MAX), 1.0));
                }
            }
            // `input` always comes from `self.input`, so the kinds match.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(ngram: (usize, usize), stop: &[&str]) -> Tokenizer {
        Tokenizer { lowercase: true, stop_words: stop.iter().map(|s| (*s).to_owned()).collect(), ngram_range: ngram }
    }

    #[test]
    fn tokens_follow_sklearn_pattern() {
        let mut got = vec![];
        tok((1, 2), &["the"]).terms("WIN the £1000 prize!! a b_c", |t| got.push(t.to_owned()));
        assert_eq!(got, vec!["win", "1000", "prize", "b_c", "win 1000", "1000 prize", "prize b_c"]);
    }

    #[test]
    fn tfidf_row_is_l2_normalised() {
        let v = TextVectorizer::new(
            "text".into(),
            tok((1, 1), &[]),
            vec!["free".into(), "win".into()],
            false,
            Some(vec![1.0, 2.0]),
            false,
            Some(Norm::L2),
        );
        let row = v.transform_one("win free win unknown");
        // counts free=1, win=2; weighted 1, 4; l2 norm sqrt(17).
        let n = 17f64.sqrt();
        assert_eq!(row, vec![(0, 1.0 / n), (1, 4.0 / n)]);
    }

    #[test]
    fn stop_word_list_is_sorted_for_binary_search() {
        let words: Vec<&str> = ENGLISH_STOP_WORDS.lines().collect();
        assert_eq!(words.len(), 318);
        assert!(words.windows(2).all(|w| w[0] < w[1]));
    }
}
