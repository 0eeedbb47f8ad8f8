//! The one inference path of `kiln predict` and `kiln serve`: input rows are conformed to the
//! model's signature ([`conform`]: columns picked, typed and checked, each problem named), then
//! predicted ([`Pipeline::predict`]), then rendered as MLflow's `predictions` JSON
//! ([`write_predictions`]). Both commands call these same functions, so the same input gives the
//! same output bytes from either.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use kiln_core::{Column, Table};

use crate::pipeline::{InputKind, Pipeline, Predictions, Task};

/// How rows are named in error messages: a CSV's line number, or a JSON batch's row index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowNaming {
    /// `Table::line` is the source line of a CSV file.
    CsvLine,
    /// Rows are numbered from 0 in the order they were sent.
    Index,
}

/// Where a problem is: one row of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef {
    naming: RowNaming,
    /// The CSV line or the 0-based row index.
    pub number: u64,
}

impl fmt::Display for RowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.naming {
            RowNaming::CsvLine => write!(f, "line {}", self.number),
            RowNaming::Index => write!(f, "row {}", self.number),
        }
    }
}

/// Input that does not match the model's signature.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("missing input column{}: {}; the model takes: {}", plural(.missing.len()), quoted(.missing), quoted(.expected))]
    MissingColumns { missing: Vec<String>, expected: Vec<String> },
    #[error("column `{column}`, {row}: expected a number, got `{value}`")]
    NotANumber { column: String, row: RowRef, value: String },
    #[error("column `{column}`, {row}: the value is missing (null, empty or NaN) and the model has no imputer for it")]
    Missing { column: String, row: RowRef },
    #[error("the input has no rows")]
    Empty,
    #[error("{0}")]
    Table(String),
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Input rows in the model's shape: exactly its input columns, in its order, numeric columns as
/// numbers and text/categorical columns as strings.
#[derive(Debug, Clone)]
pub struct Conformed {
    pub table: Table,
    /// Rows that cannot be scored, with their first problem, in row order. Their cells hold
    /// placeholders; drop them (`Table::take`) or refuse the input.
    pub row_errors: Vec<(usize, InputError)>,
    /// Columns of the input that the model does not use (MLflow drops them with a warning).
    pub dropped: Vec<String>,
}

/// Conforms `table` to `pipeline`'s inputs. Text that parses as a number is accepted for a
/// numeric column and numbers are accepted for a string column (formatted as a CSV writer
/// would), so CSV and JSON input go through the same checks.
///
/// # Errors
/// Missing columns (every row would fail alike), or a table without rows.
pub fn conform(pipeline: &Pipeline, table: &Table, naming: RowNaming) -> Result<Conformed, InputError> {
    let cols = pipeline.inputs.iter().map(|c| table.column(&c.name).ok().map(Cow::Borrowed)).collect();
    conform_columns(pipeline, table.names(), table.lines().to_vec(), cols, naming)
}

/// As [`conform`], consuming the table: columns already of the right kind are moved, not
/// copied (a server's request table is not needed afterwards).
///
/// # Errors
/// As [`conform`].
pub fn conform_owned(pipeline: &Pipeline, table: Table, naming: RowNaming) -> Result<Conformed, InputError> {
    let (names, columns, lines) = table.into_parts();
    let mut slots: Vec<Option<Column>> = columns.into_iter().map(Some).collect();
    let cols = pipeline
        .inputs
        .iter()
        .map(|c| names.iter().position(|n| *n == c.name).and_then(|i| slots[i].take()).map(Cow::Owned))
        .collect();
    conform_columns(pipeline, &names, lines, cols, naming)
}

/// `cols` holds the input's column for each of the pipeline's inputs, in their order.
fn conform_columns(
    pipeline: &Pipeline,
    names: &[String],
    lines: Vec<u64>,
    cols: Vec<Option<Cow<'_, Column>>>,
    naming: RowNaming,
) -> Result<Conformed, InputError> {
    // No rows first: an empty JSON list has no columns either, and "no rows" is the real problem.
    let n = lines.len();
    if n == 0 {
        return Err(InputError::Empty);
    }
    let expected: Vec<String> = pipeline.inputs.iter().map(|c| c.name.clone()).collect();
    let missing: Vec<String> =
        expected.iter().zip(&cols).filter(|(_, c)| c.is_none()).map(|(n, _)| n.clone()).collect();
    if !missing.is_empty() {
        return Err(InputError::MissingColumns { missing, expected });
    }
    let row = |i: usize| RowRef { naming, number: lines[i] };
    let mut first: Vec<Option<InputError>> = vec![None; n];
    let mut columns = Vec::with_capacity(pipeline.inputs.len());
    for (input, col) in pipeline.inputs.iter().zip(cols) {
        let Some(col) = col else { continue };
        let name = &input.name;
        let mut flag = |i: usize, e: InputError| {
            if first[i].is_none() {
                first[i] = Some(e);
            }
        };
        let out = match (input.kind, &*col) {
            (InputKind::Numeric, Column::Numeric(v)) => {
                if !input.optional {
                    for (i, x) in v.iter().enumerate() {
                        if x.is_nan() {
                            flag(i, InputError::Missing { column: name.clone(), row: row(i) });
                        }
                    }
                }
                col.into_owned()
            }
            (InputKind::Numeric, Column::Text(v)) => Column::Numeric(
                v.iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let x = match s.as_deref() {
                            None => f64::NAN,
                            Some(s) => kiln_core::table::parse_number(s).unwrap_or_else(|| {
                                flag(
                                    i,
                                    InputError::NotANumber { column: name.clone(), row: row(i), value: s.to_owned() },
                                );
                                0.0
                            }),
                        };
                        if x.is_nan() && !input.optional {
                            flag(i, InputError::Missing { column: name.clone(), row: row(i) });
                        }
                        x
                    })
                    .collect(),
            ),
            // Text and categories accept anything; a missing value is an empty text or an
            // unseen category, as in training.
            (InputKind::Text | InputKind::Categorical, Column::Text(_)) => col.into_owned(),
            (InputKind::Text | InputKind::Categorical, c @ Column::Numeric(v)) => {
                Column::Text((0..v.len()).map(|i| c.display(i)).collect())
            }
        };
        columns.push(out);
    }
    let dropped = names.iter().filter(|n| !expected.contains(n)).cloned().collect();
    let table = Table::with_lines(expected, columns, lines).map_err(|e| InputError::Table(e.to_string()))?;
    let row_errors = first.into_iter().enumerate().filter_map(|(i, e)| e.map(|e| (i, e))).collect();
    Ok(Conformed { table, row_errors, dropped })
}

/// What `predictions` holds per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// The predicted label (classification) or value (regression), as `predict()`.
    Predict,
    /// One probability per class, in the order of the bundle's classes, as `predict_proba()`.
    Proba,
}

/// Appends the JSON items for `rows` of `preds` to `out`, comma-separated, without brackets, so
/// a caller can stream chunks into one array. Labels are JSON strings (the signature's output
/// type), values and probabilities shortest round-trip numbers, a non-finite value `null`.
///
/// # Panics
/// Never for predictions made by `pipeline`; `rows` must lie within them.
pub fn write_predictions(
    pipeline: &Pipeline,
    preds: &Predictions,
    rows: Range<usize>,
    kind: OutputKind,
    out: &mut Vec<u8>,
) -> Result<(), OutputError> {
    let classes: &[String] = match &pipeline.task {
        Task::Classification { classes, .. } => classes,
        Task::Regression { .. } => &[],
    };
    let mut sep = false;
    let mut comma = |out: &mut Vec<u8>| {
        if sep {
            out.push(b',');
        }
        sep = true;
    };
    match (kind, preds) {
        (OutputKind::Predict, Predictions::Classes { index, .. }) => {
            for &k in &index[rows] {
                comma(out);
                write_json(out, classes.get(k).map_or("", String::as_str));
            }
        }
        (OutputKind::Predict, Predictions::Values(v)) => {
            for &x in &v[rows] {
                comma(out);
                write_json(out, &x);
            }
        }
        (OutputKind::Proba, p) => {
            let Some(m) = p.proba() else {
                return Err(OutputError::NoProba(pipeline.estimator.sklearn_name().to_owned()));
            };
            for i in rows {
                comma(out);
                out.push(b'[');
                for (j, x) in m.row(i).iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_json(out, x);
                }
                out.push(b']');
            }
        }
    }
    Ok(())
}

/// Writes one value as JSON. Serialising a `str` or an `f64` into a `Vec` cannot fail.
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(out, v);
}

/// A requested output the model cannot give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("{0} gives no class probabilities")]
    NoProba(String),
}

/// The whole `{"predictions": [...]}` document for `preds` (what MLflow's scoring server answers
/// and `mlflow models predict` writes).
///
/// # Errors
/// [`OutputError::NoProba`] for probabilities from a model without them.
pub fn predictions_document(
    pipeline: &Pipeline,
    preds: &Predictions,
    kind: OutputKind,
) -> Result<Vec<u8>, OutputError> {
    let n = match preds {
        Predictions::Classes { index, .. } => index.len(),
        Predictions::Values(v) => v.len(),
    };
    let mut out = Vec::with_capacity(16 + n * 8);
    out.extend_from_slice(PREDICTIONS_OPEN);
    write_predictions(pipeline, preds, 0..n, kind, &mut out)?;
    out.extend_from_slice(PREDICTIONS_CLOSE);
    Ok(out)
}

/// The bytes around the items of a predictions document.
pub const PREDICTIONS_OPEN: &[u8] = b"{\"predictions\":[";
pub const PREDICTIONS_CLOSE: &[u8] = b"]}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::FittedEstimator;
    use crate::pipeline::InputColumn;
    use crate::preprocess::{NumericColumn, Step};

    fn regression(optional: bool) -> Pipeline {
        Pipeline {
            task: Task::Regression { target: "y".into() },
            inputs: vec![
                InputColumn { name: "a".into(), kind: InputKind::Numeric, optional },
                InputColumn { name: "c".into(), kind: InputKind::Categorical, optional: true },
            ],
            steps: vec![Step::Numeric(NumericColumn {
                column: "a".into(),
                fill: optional.then_some(0.0),
                offset: 0.0,
                scale: 1.0,
            })],
            estimator: FittedEstimator::LinearRegression(crate::estimator::LinearRegressor {
                coef: vec![2.0],
                intercept: 1.0,
            }),
        }
    }

    fn text_table(cols: &[(&str, &[Option<&str>])]) -> Table {
        Table::new(
            cols.iter().map(|(n, _)| (*n).to_owned()).collect(),
            cols.iter().map(|(_, v)| Column::Text(v.iter().map(|s| s.map(str::to_owned)).collect())).collect(),
        )
        .unwrap()
    }

    #[test]
    fn conform_selects_orders_types_and_names_problems() {
        let p = regression(false);
        let t = text_table(&[
            ("extra", &[Some("x"), Some("y"), Some("z")]),
            ("c", &[Some("u"), None, Some("w")]),
            ("a", &[Some("1.5"), Some("oops"), None]),
        ]);
        let c = conform(&p, &t, RowNaming::CsvLine).unwrap();
        assert_eq!(c.table.names(), ["a", "c"]);
        assert_eq!(c.dropped, ["extra"]);
        assert!(matches!(c.table.columns()[0], Column::Numeric(_)));
        assert_eq!(c.row_errors.len(), 2);
        assert_eq!(c.row_errors[0].0, 1);
        assert_eq!(c.row_errors[0].1.to_string(), "column `a`, line 3: expected a number, got `oops`");
        assert_eq!(
            c.row_errors[1].1.to_string(),
            "column `a`, line 4: the value is missing (null, empty or NaN) and the model has no imputer for it"
        );
        // With an imputer a missing value is fine.
        let c = conform(&regression(true), &t, RowNaming::Index).unwrap();
        assert_eq!(c.row_errors.len(), 1);
        assert_eq!(c.row_errors[0].1.to_string(), "column `a`, row 3: expected a number, got `oops`");
    }

    #[test]
    fn conform_refuses_missing_columns_and_empty_input() {
        let p = regression(false);
        let e = conform(&p, &text_table(&[("b", &[Some("1")])]), RowNaming::Index).unwrap_err();
        assert_eq!(e.to_string(), "missing input columns: `a`, `c`; the model takes: `a`, `c`");
        let e = conform(&p, &text_table(&[("a", &[]), ("c", &[])]), RowNaming::Index).unwrap_err();
        assert_eq!(e, InputError::Empty);
        let e = conform(&p, &text_table(&[]), RowNaming::Index).unwrap_err();
        assert_eq!(e, InputError::Empty);
    }

    #[test]
    fn predictions_render_as_mlflow_json() {
        let p = regression(false);
        let t = Table::new(
            vec!["a".into(), "c".into()],
            vec![Column::Numeric(vec![0.1, 2.0]), Column::Numeric(vec![1.0, f64::NAN])],
        )
        .unwrap();
        let c = conform(&p, &t, RowNaming::Index).unwrap();
        assert_eq!(c.table.column("c").unwrap(), &Column::Text(vec![Some("1".into()), None]));
        let preds = p.predict(&c.table).unwrap();
        let doc = predictions_document(&p, &preds, OutputKind::Predict).unwrap();
        assert_eq!(String::from_utf8(doc).unwrap(), r#"{"predictions":[1.2,5.0]}"#);
        let e = predictions_document(&p, &preds, OutputKind::Proba).unwrap_err();
        assert_eq!(e.to_string(), "LinearRegression gives no class probabilities");
    }
}
