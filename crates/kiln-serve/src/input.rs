//! Request bodies → input [`Table`]s: MLflow's four JSON layouts, CSV, `/predict` records and
//! Open Inference Protocol tensors. Only the model's input columns are kept (others are named in
//! the log and dropped, as MLflow does); their values are checked against the signature later,
//! by `kiln_model::infer::conform`, the same check `kiln predict` runs.

use kiln_core::{Column, Table};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The columns of a JSON batch, built row by row.
pub struct TableBuilder<'a> {
    /// The model's input names: the only columns kept.
    wanted: &'a [String],
    names: Vec<String>,
    cells: Vec<Cells>,
    rows: usize,
    /// Names sent that the model does not take.
    pub extra: Vec<String>,
}

enum Cells {
    Num(Vec<f64>),
    Text(Vec<Option<String>>),
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON cell, as far as a table cares: read straight from the body for `dataframe_split`
/// (no `Value` tree), or borrowed from a `Value` for the other layouts.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<S> {
    Null,
    Num(f64),
    Str(S),
    /// A boolean, array or object (its kind, for the error).
    Other(&'static str),
}

impl<'v> From<&'v Value> for Cell<&'v str> {
    fn from(v: &'v Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Number(n) => n.as_f64().map_or(Self::Null, Self::Num),
            Value::String(s) => Self::Str(s),
            other => Self::Other(kind_of(other)),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Cell<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cell<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a cell value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Cell::Other("a boolean"))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cell::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cell::Str(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Cell::Other("an array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(Cell::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'a> TableBuilder<'a> {
    pub fn new(wanted: &'a [String]) -> Self {
        Self { wanted, names: Vec::new(), cells: Vec::new(), rows: 0, extra: Vec::new() }
    }

    /// The column for `name`, created (null up to now) on first sight; `None` for a column the
    /// model does not take.
    fn column(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(i);
        }
        if !self.wanted.iter().any(|w| w == name) {
            if !self.extra.iter().any(|e| e == name) {
                self.extra.push(name.to_owned());
            }
            return None;
        }
        self.names.push(name.to_owned());
        self.cells.push(Cells::Num(vec![f64::NAN; self.rows]));
        Some(self.names.len() - 1)
    }

    /// Sets `name` in the current row (opened by [`TableBuilder::start_row`]).
    ///
    /// # Errors
    /// A boolean, array or object: no model column holds those.
    pub fn set(&mut self, name: &str, v: &Value) -> Result<(), ApiError> {
        let slot = self.column(name);
        self.set_slot(slot, name, Cell::from(v))
    }

    /// Sets the column `slot` (from [`TableBuilder::column`]; `None`: a column the model does
    /// not take) in the current row.
    fn set_slot<S: AsRef<str> + Into<String>>(
        &mut self,
        slot: Option<usize>,
        name: &str,
        v: Cell<S>,
    ) -> Result<(), ApiError> {
        let Some(c) = slot else { return Ok(()) };
        let row = self.rows - 1;
        let cells = &mut self.cells[c];
        match (v, &mut *cells) {
            (Cell::Null, _) => {}
            (Cell::Num(x), Cells::Num(vals)) => vals[row] = x,
            (Cell::Num(x), Cells::Text(vals)) => vals[row] = Some(kiln_core::table::format_number(x)),
            (Cell::Str(s), Cells::Text(vals)) => vals[row] = Some(s.into()),
            (Cell::Str(s), Cells::Num(vals)) => {
                // A string in a column so far numeric: keep the numbers as text; the signature
                // check decides later whether the column must be numeric.
                let mut text: Vec<Option<String>> =
                    vals.iter().map(|x| (!x.is_nan()).then(|| kiln_core::table::format_number(*x))).collect();
                text[row] = Some(s.into());
                *cells = Cells::Text(text);
            }
            (Cell::Other(kind), _) => {
                return Err(ApiError::invalid_input(format!(
                    "column `{name}`, row {row}: expected a number or a string, got {kind}"
                )));
            }
        }
        Ok(())
    }

    /// Opens a new row: every column null until set.
    pub fn start_row(&mut self) {
        self.rows += 1;
        for c in &mut self.cells {
            match c {
                Cells::Num(v) => v.push(f64::NAN),
                Cells::Text(v) => v.push(None),
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The table, rows numbered from 0.
    ///
    /// # Errors
    /// Never in practice: the builder keeps columns equal in length and names unique.
    pub fn finish(self) -> Result<Table, ApiError> {
        let columns = self
            .cells
            .into_iter()
            .map(|c| match c {
                Cells::Num(v) => Column::Numeric(v),
                Cells::Text(v) => Column::Text(v),
            })
            .collect();
        Table::with_lines(self.names, columns, (0..self.rows as u64).collect())
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// A parsed scoring request: its rows and MLflow's `params`.
pub struct Parsed {
    pub table: Table,
    pub params: Option<Map<String, Value>>,
    pub extra: Vec<String>,
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// The top level of an `/invocations` JSON body. `dataframe_split` — what MLflow's client sends —
/// is read straight into cells; the other layouts are shaped too freely for that and go through
/// a `Value`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    dataframe_split: Option<Split>,
    dataframe_records: Option<Value>,
    instances: Option<Value>,
    inputs: Option<Value>,
    params: Option<Value>,
}

#[derive(serde::Deserialize)]
struct Split {
    columns: Vec<String>,
    data: Vec<SplitRow>,
    #[serde(default, rename = "index")]
    _index: Option<serde::de::IgnoredAny>,
}

/// A row of `dataframe_split.data`: a list of cells, or (pandas allows it) one bare cell.
enum SplitRow {
    Cells(Vec<Cell<String>>),
    One(Cell<String>),
}

impl<'de> serde::Deserialize<'de> for SplitRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SplitRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row (a list of values)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut cells = Vec::with_capacity(a.size_hint().unwrap_or(8));
                while let Some(c) = a.next_element()? {
                    cells.push(c);
                }
                Ok(SplitRow::Cells(cells))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(SplitRow::One(Cell::Null))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(SplitRow::One(Cell::Other("a boolean")))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SplitRow::One(Cell::Num(v as f64)))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(SplitRow::One(Cell::Num(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(SplitRow::One(Cell::Num(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SplitRow::One(Cell::Str(v.to_owned())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(SplitRow::One(Cell::Other("an object")))
            }
        }
        d.deserialize_any(V)
    }
}

const FORMATS: [&str; 4] = ["dataframe_split", "dataframe_records", "instances", "inputs"];

fn formats() -> String {
    FORMATS.map(|f| format!("`{f}`")).join(", ")
}

/// An `application/json` body of `POST /invocations`: exactly one of `dataframe_split`,
/// `dataframe_records`, `instances`, `inputs`, plus optional `params`.
///
/// # Errors
/// Invalid JSON, zero or several formats, a wrong shape; each message says which.
pub fn invocations_json(body: &[u8], wanted: &[String], max_rows: usize) -> Result<Parsed, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{') {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object with one of the keys {}",
            formats()
        )));
    }
    let doc: Body = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::bad_request(format!("the body does not have the expected shape: {e}")),
            _ => ApiError::bad_request(format!("the body is not valid JSON: {e}")),
        }
    })?;
    let params = match doc.params {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(ApiError::bad_request(format!("`params` must be an object, got {}", kind_of(&other))));
        }
    };
    let present =
        [doc.dataframe_split.is_some(), doc.dataframe_records.is_some(), doc.instances.is_some(), doc.inputs.is_some()];
    let found: Vec<&str> = FORMATS.iter().zip(present).filter(|(_, p)| *p).map(|(f, _)| *f).collect();
    if found.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "the body must have exactly one of {}; it has {}",
            formats(),
            if found.is_empty() { "none".to_owned() } else { found.join(" and ") }
        )));
    }
    let mut b = TableBuilder::new(wanted);
    if let Some(split) = doc.dataframe_split {
        dataframe_split(&mut b, split, max_rows)?;
    } else if let Some(v) = doc.dataframe_records {
        rows(&mut b, "dataframe_records", v, max_rows, false)?;
    } else if let Some(v) = doc.instances {
        rows(&mut b, "instances", v, max_rows, true)?;
    } else if let Some(v) = doc.inputs {
        match v {
            Value::Object(cols) => columnar(&mut b, cols, max_rows)?,
            other => rows(&mut b, "inputs", other, max_rows, true)?,
        }
    }
    let extra = std::mem::take(&mut b.extra);
    Ok(Parsed { table: b.finish()?, params, extra })
}

fn check_rows(n: usize, max_rows: usize) -> Result<(), ApiError> {
    if n > max_rows {
        return Err(ApiError::too_large(format!(
            "{n} rows in one request, more than the limit of {max_rows} (kiln serve --max-batch-size)"
        )));
    }
    Ok(())
}

fn dataframe_split(b: &mut TableBuilder<'_>, split: Split, max_rows: usize) -> Result<(), ApiError> {
    let Split { columns, data, .. } = split;
    check_rows(data.len(), max_rows)?;
    // Each column's slot is found once, not once per cell.
    let slots: Vec<Option<usize>> = columns.iter().map(|c| b.column(c)).collect();
    for (i, row) in data.into_iter().enumerate() {
        b.start_row();
        match row {
            SplitRow::Cells(cells) if cells.len() == columns.len() => {
                for ((name, &slot), v) in columns.iter().zip(&slots).zip(cells) {
                    b.set_slot(slot, name, v)?;
                }
            }
            SplitRow::Cells(cells) => {
                return Err(ApiError::bad_request(format!(
                    "`dataframe_split.data` row {i} has {} values for {} columns",
                    cells.len(),
                    columns.len()
                )));
            }
            SplitRow::One(v) if columns.len() == 1 => b.set_slot(slots[0], &columns[0], v)?,
            SplitRow::One(_) => {
                return Err(ApiError::bad_request(format!(
                    "`dataframe_split.data` row {i} must be a list of {} values",
                    columns.len()
                )));
            }
        }
    }
    Ok(())
}

/// A list of rows: objects (records), or — for `instances`/`inputs` — lists of values in the
/// model's input order, or bare values for a one-input model.
fn rows(b: &mut TableBuilder<'_>, key: &str, value: Value, max_rows: usize, positional: bool) -> Result<(), ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::bad_request(format!("`{key}` must be a list of rows, got {}", kind_of(&value))));
    };
    check_rows(items.len(), max_rows)?;
    let wanted = b.wanted;
    for (i, item) in items.iter().enumerate() {
        b.start_row();
        match item {
            Value::Object(rec) => {
                for (k, v) in rec {
                    b.set(k, v)?;
                }
            }
            Value::Array(cells) if positional && cells.len() == wanted.len() => {
                for (name, v) in wanted.iter().zip(cells) {
                    b.set(name, v)?;
                }
            }
            Value::Array(cells) if positional => {
                return Err(ApiError::invalid_input(format!(
                    "`{key}` row {i} has {} values; the model takes {} inputs in this order: {}",
                    cells.len(),
                    wanted.len(),
                    wanted.join(", ")
                )));
            }
            scalar if positional && wanted.len() == 1 && !matches!(scalar, Value::Array(_)) => {
                b.set(&wanted[0], scalar)?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "`{key}` row {i} must be an object of column values, got {}",
                    kind_of(other)
                )));
            }
        }
    }
    Ok(())
}

/// `inputs` as columns: `{"col": [values…], …}`.
fn columnar(b: &mut TableBuilder<'_>, cols: Map<String, Value>, max_rows: usize) -> Result<(), ApiError> {
    let mut n = None;
    let mut lists = Vec::with_capacity(cols.len());
    for (name, v) in cols {
        let values = match v {
            Value::Array(values) => values,
            scalar => vec![scalar],
        };
        match n {
            None => n = Some(values.len()),
            Some(m) if m != values.len() => {
                return Err(ApiError::bad_request(format!(
                    "`inputs` columns differ in length: `{name}` has {} values, an earlier one {m}",
                    values.len()
                )));
            }
            Some(_) => {}
        }
        lists.push((name, values));
    }
    let n = n.unwrap_or(0);
    check_rows(n, max_rows)?;
    for i in 0..n {
        b.start_row();
        for (name, values) in &lists {
            b.set(name, &values[i])?;
        }
    }
    Ok(())
}

/// A `text/csv` body: a header row, then rows (pandas' `to_csv(index=False)`).
///
/// # Errors
/// Not UTF-8, ragged rows, an empty body, too many rows.
pub fn csv(body: &[u8], max_rows: usize) -> Result<Table, ApiError> {
    let t = kiln_core::csv::read_from(body, "the CSV body").map_err(|e| ApiError::bad_request(e.to_string()))?;
    check_rows(t.n_rows(), max_rows)?;
    Ok(t)
}

/// A `POST /predict` body: one record (an object) or a list of them. `{"text": …}` feeds a model
/// whose only input is text, whatever that input is called.
///
/// # Errors
/// Invalid JSON or a body that is neither an object nor a list of objects.
pub fn predict_body(
    body: &[u8],
    wanted: &[String],
    single_text: bool,
    max_rows: usize,
) -> Result<(Table, bool, Vec<String>), ApiError> {
    let value = parse_json(body)?;
    let mut b = TableBuilder::new(wanted);
    let one = |b: &mut TableBuilder<'_>, i: usize, v: &Value| -> Result<(), ApiError> {
        let Value::Object(rec) = v else {
            return Err(ApiError::bad_request(format!(
                "record {i} must be a JSON object of column values, got {}",
                kind_of(v)
            )));
        };
        b.start_row();
        for (k, v) in rec {
            let k = if single_text && k == "text" && rec.len() == 1 { wanted[0].as_str() } else { k.as_str() };
            b.set(k, v)?;
        }
        Ok(())
    };
    let list = match &value {
        Value::Array(items) => {
            check_rows(items.len(), max_rows)?;
            for (i, v) in items.iter().enumerate() {
                one(&mut b, i, v)?;
            }
            true
        }
        v => {
            one(&mut b, 0, v)?;
            false
        }
    };
    let extra = std::mem::take(&mut b.extra);
    Ok((b.finish()?, list, extra))
}

/// One input tensor of an Open Inference Protocol request.
#[derive(Debug, serde::Deserialize)]
pub struct V2Tensor {
    pub name: String,
    #[serde(default)]
    pub shape: Vec<i64>,
    pub datatype: String,
    pub data: Value,
}

/// Open Inference Protocol inputs, one tensor per model column (shape `[n]` or `[n, 1]`), as
/// MLServer's pandas codec sends them.
///
/// # Errors
/// A tensor whose data does not match its shape, or tensors of different lengths.
pub fn v2_inputs(tensors: &[V2Tensor], wanted: &[String], max_rows: usize) -> Result<(Table, Vec<String>), ApiError> {
    let mut b = TableBuilder::new(wanted);
    let mut cols: Vec<(&str, Vec<&Value>)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        let mut flat = Vec::new();
        flatten(&t.data, &mut flat);
        let n: i64 = t.shape.iter().product();
        if t.shape.is_empty() || t.shape.iter().any(|&d| d < 0) || usize::try_from(n).ok() != Some(flat.len()) {
            return Err(ApiError::bad_request(format!(
                "input `{}`: shape {:?} does not match its {} data values",
                t.name,
                t.shape,
                flat.len()
            ))
            .v2());
        }
        if t.shape.len() > 1 && t.shape[1..].iter().any(|&d| d != 1) {
            return Err(ApiError::bad_request(format!(
                "input `{}`: shape {:?}; each input is one column, shape [n] or [n, 1]",
                t.name, t.shape
            ))
            .v2());
        }
        cols.push((&t.name, flat));
    }
    let n = cols.first().map_or(0, |c| c.1.len());
    if let Some((name, c)) = cols.iter().find(|c| c.1.len() != n) {
        return Err(ApiError::bad_request(format!("input `{name}` has {} rows, the first input {n}", c.len())).v2());
    }
    check_rows(n, max_rows).map_err(ApiError::v2)?;
    for i in 0..n {
        b.start_row();
        for (name, values) in &cols {
            b.set(name, values[i]).map_err(ApiError::v2)?;
        }
    }
    let extra = std::mem::take(&mut b.extra);
    Ok((b.finish()?, extra))
}

fn flatten<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Vec<String> {
        vec!["a".into(), "t".into()]
    }

    fn parse(body: &str) -> Result<Parsed, ApiError> {
        invocations_json(body.as_bytes(), &wanted(), 100)
    }

    #[test]
    fn every_mlflow_layout_gives_the_same_table() {
        let bodies = [
            r#"{"dataframe_split": {"columns": ["t", "a", "x"], "data": [["hi", 1, 0], ["yo", 2.5, 0]]}}"#,
            r#"{"dataframe_records": [{"a": 1, "t": "hi", "x": 0}, {"t": "yo", "a": 2.5}]}"#,
            r#"{"instances": [{"a": 1, "t": "hi"}, {"t": "yo", "a": 2.5}]}"#,
            r#"{"instances": [[1, "hi"], [2.5, "yo"]]}"#,
            r#"{"inputs": {"a": [1, 2.5], "t": ["hi", "yo"]}}"#,
            r#"{"inputs": [[1, "hi"], [2.5, "yo"]], "params": {"predict_method": "predict"}}"#,
        ];
        for body in bodies {
            let p = parse(body).unwrap_or_else(|e| panic!("{body}: {e:?}"));
            assert_eq!(p.table.numeric("a").unwrap(), [1.0, 2.5], "{body}");
            assert_eq!(p.table.text("t").unwrap(), [Some("hi".to_owned()), Some("yo".to_owned())], "{body}");
        }
        assert_eq!(parse(bodies[0]).unwrap().extra, ["x"]);
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let cases = [
            ("[1]", "must be a JSON object"),
            ("{", "not valid JSON"),
            ("{}", "exactly one of"),
            (r#"{"instances": [], "inputs": []}"#, "it has instances and inputs"),
            (r#"{"instance": []}"#, "unknown field `instance`"),
            (r#"{"dataframe_split": {"columns": [1], "data": []}}"#, "expected a string"),
            (r#"{"dataframe_split": {"columns": ["a"], "data": [[{"x": 1}]]}}"#, "got an object"),
            (r#"{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}"#, "row 0 has 2 values for 1 columns"),
            (
                r#"{"dataframe_records": [{"a": true}]}"#,
                "column `a`, row 0: expected a number or a string, got a boolean",
            ),
            (r#"{"dataframe_records": [[1]]}"#, "row 0 must be an object"),
            (r#"{"instances": [[1]]}"#, "has 1 values; the model takes 2 inputs"),
            (r#"{"inputs": {"a": [1, 2], "t": ["x"]}}"#, "differ in length"),
            (r#"{"inputs": [1], "params": 3}"#, "`params` must be an object"),
        ];
        for (body, want) in cases {
            let e = parse(body).err().unwrap_or_else(|| panic!("{body} was accepted"));
            assert!(e.message.contains(want), "{body}: {}", e.message);
            assert_eq!(e.status, 400);
        }
        let many = format!(r#"{{"instances": [{}]}}"#, vec!["[1, \"x\"]"; 101].join(","));
        assert_eq!(parse(&many).err().unwrap().status, 413);
    }

    #[test]
    fn a_string_in_a_numeric_column_keeps_earlier_numbers() {
        let p = parse(r#"{"dataframe_records": [{"a": 1}, {"a": "x"}, {"a": null}]}"#).unwrap();
        assert_eq!(p.table.text("a").unwrap(), [Some("1".to_owned()), Some("x".to_owned()), None]);
    }

    #[test]
    fn predict_body_takes_a_record_a_list_or_text() {
        let w = vec!["message".to_owned()];
        let (t, list, _) = predict_body(br#"{"text": "hello"}"#, &w, true, 10).unwrap();
        assert!(!list);
        assert_eq!(t.text("message").unwrap(), [Some("hello".to_owned())]);
        let (t, list, _) = predict_body(br#"[{"message": "a"}, {"message": "b"}]"#, &w, true, 10).unwrap();
        assert!(list);
        assert_eq!(t.n_rows(), 2);
        assert!(predict_body(b"3", &w, true, 10).is_err());
    }

    #[test]
    fn v2_tensors_are_columns() {
        let tensors: Vec<V2Tensor> = serde_json::from_str(
            r#"[{"name": "a", "shape": [2, 1], "datatype": "FP64", "data": [[1.0], [2.0]]},
                {"name": "t", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]}]"#,
        )
        .unwrap();
        let (t, _) = v2_inputs(&tensors, &wanted(), 10).unwrap();
        assert_eq!(t.numeric("a").unwrap(), [1.0, 2.0]);
        let bad: Vec<V2Tensor> =
            serde_json::from_str(r#"[{"name": "a", "shape": [3], "datatype": "FP64", "data": [1.0]}]"#).unwrap();
        let e = v2_inputs(&bad, &wanted(), 10).unwrap_err();
        assert!(e.v2 && e.message.contains("shape [3] does not match its 1 data values"), "{e:?}");
    }
}
