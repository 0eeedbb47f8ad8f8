//! The column table shared by training, batch scoring and serving.

use std::collections::HashMap;

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; a missing value is `NaN`.
    Numeric(Vec<f64>),
    /// Strings; a missing value (an empty CSV field) is `None`.
    Text(Vec<Option<String>>),
}

/// What a column holds, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Numeric,
    Text,
}

impl Column {
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Text(v) => v.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[must_use]
    pub fn kind(&self) -> ColumnKind {
        match self {
            Self::Numeric(_) => ColumnKind::Numeric,
            Self::Text(_) => ColumnKind::Text,
        }
    }

    /// The rows at `idx`, in that order.
    #[must_use]
    pub fn take(&self, idx: &[usize]) -> Self {
        match self {
            Self::Numeric(v) => Self::Numeric(idx.iter().map(|&i| v[i]).collect()),
            Self::Text(v) => Self::Text(idx.iter().map(|&i| v[i].clone()).collect()),
        }
    }

    /// The value of row `i` as text (`None` when missing), for reports and error messages.
    #[must_use]
    pub fn display(&self, i: usize) -> Option<String> {
        match self {
            Self::Numeric(v) => (!v[i].is_nan()).then(|| format_number(v[i])),
            Self::Text(v) => v[i].clone(),
        }
    }
}

/// Formats a number the way a CSV writer would: integers without a trailing `.0`.
#[must_use]
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v}") }
}

/// Errors about a table's shape or contents.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("column `{column}` not found; the columns are: {available}")]
    MissingColumn { column: String, available: String },
    #[error("column `{column}`, line {line}: `{value}` is not a number")]
    NotANumber { column: String, line: u64, value: String },
    #[error("column `{0}` appears twice in the header")]
    DuplicateColumn(String),
    #[error("columns have different lengths ({0} and {1})")]
    Ragged(usize, usize),
    #[error("tables with different columns cannot be joined")]
    Mismatched,
}

/// Tables with at least this many columns get a hash index of their names.
const INDEX_MIN_COLUMNS: usize = 16;

/// Named columns of equal length, with the source line of every row kept for error messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
    /// Name → position, built only for wide tables: below [`INDEX_MIN_COLUMNS`] a scan of the
    /// names is faster than hashing and costs no allocation, which a server building small
    /// tables per request notices.
    index: Option<HashMap<String, usize>>,
    /// 1-based source line of each row (the header is line 1 in a CSV).
    lines: Vec<u64>,
}

impl Table {
    /// Builds a table; `lines` defaults to `2..` (the rows of a CSV under its header).
    ///
    /// # Errors
    /// Duplicate names or columns of different lengths.
    pub fn new(names: Vec<String>, columns: Vec<Column>) -> Result<Self, TableError> {
        let n = columns.first().map_or(0, Column::len);
        let lines = (0..n as u64).map(|i| i + 2).collect();
        Self::with_lines(names, columns, lines)
    }

    /// Builds a table whose rows came from the given source lines.
    ///
    /// # Errors
    /// Duplicate names or columns of different lengths.
    pub fn with_lines(names: Vec<String>, columns: Vec<Column>, lines: Vec<u64>) -> Result<Self, TableError> {
        let index = if names.len() >= INDEX_MIN_COLUMNS {
            let mut index = HashMap::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                if index.insert(name.clone(), i).is_some() {
                    return Err(TableError::DuplicateColumn(name.clone()));
                }
            }
            Some(index)
        } else {
            if let Some((_, name)) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)) {
                return Err(TableError::DuplicateColumn(name.clone()));
            }
            None
        };
        for c in &columns {
            if c.len() != lines.len() {
                return Err(TableError::Ragged(c.len(), lines.len()));
            }
        }
        Ok(Self { names, columns, index, lines })
    }

    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.names.iter().position(|n| n == name),
        }
    }

    #[must_use]
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    #[must_use]
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Source line of row `i` (for error messages).
    #[must_use]
    pub fn line(&self, i: usize) -> u64 {
        self.lines[i]
    }

    #[must_use]
    pub fn lines(&self) -> &[u64] {
        &self.lines
    }

    /// The column called `name`.
    ///
    /// # Errors
    /// [`TableError::MissingColumn`] listing the columns there are.
    pub fn column(&self, name: &str) -> Result<&Column, TableError> {
        self.position(name)
            .map(|i| &self.columns[i])
            .ok_or_else(|| TableError::MissingColumn { column: name.to_owned(), available: self.names.join(", ") })
    }

    #[must_use]
    pub fn has_column(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The column called `name` as numbers: text that parses as a number is converted, an
    /// empty field is `NaN`.
    ///
    /// # Errors
    /// A missing column, or a field that is not a number (naming its line).
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>, TableError> {
        match self.column(name)? {
            Column::Numeric(v) => Ok(v.clone()),
            Column::Text(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| match s {
                    None => Ok(f64::NAN),
                    Some(s) => parse_number(s).ok_or_else(|| TableError::NotANumber {
                        column: name.to_owned(),
                        line: self.lines[i],
                        value: s.clone(),
                    }),
                })
                .collect(),
        }
    }

    /// Converts the column called `name` to numbers in place (see [`Table::numeric`]), so later
    /// reads need no parsing. On error the column is left as it was.
    ///
    /// # Errors
    /// As [`Table::numeric`].
    pub fn make_numeric(&mut self, name: &str) -> Result<(), TableError> {
        let values = self.numeric(name)?;
        if let Some(i) = self.position(name) {
            self.columns[i] = Column::Numeric(values);
        }
        Ok(())
    }

    /// The column called `name` as strings (numbers formatted as a CSV writer would).
    ///
    /// # Errors
    /// A missing column.
    pub fn text(&self, name: &str) -> Result<Vec<Option<String>>, TableError> {
        Ok(match self.column(name)? {
            Column::Text(v) => v.clone(),
            c @ Column::Numeric(v) => (0..v.len()).map(|i| c.display(i)).collect(),
        })
    }

    /// Names, columns and source lines, taken apart (to move columns out without copying).
    #[must_use]
    pub fn into_parts(self) -> (Vec<String>, Vec<Column>, Vec<u64>) {
        (self.names, self.columns, self.lines)
    }

    /// The rows of `tables` one after another (a server's micro-batch), moved, not copied.
    /// Every table must have the same column names and kinds, in the same order.
    ///
    /// # Errors
    /// [`TableError::Mismatched`] when they do not.
    pub fn concat(tables: Vec<Self>) -> Result<Self, TableError> {
        let mut it = tables.into_iter();
        let Some(mut acc) = it.next() else { return Ok(Self::default()) };
        for t in it {
            if t.names != acc.names {
                return Err(TableError::Mismatched);
            }
            for (dst, src) in acc.columns.iter_mut().zip(t.columns) {
                match (dst, src) {
                    (Column::Numeric(d), Column::Numeric(s)) => d.extend(s),
                    (Column::Text(d), Column::Text(s)) => d.extend(s),
                    _ => return Err(TableError::Mismatched),
                }
            }
            acc.lines.extend(t.lines);
        }
        Ok(acc)
    }

    /// The rows at `idx`, in that order.
    #[must_use]
    pub fn take(&self, idx: &[usize]) -> Self {
        Self {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.take(idx)).collect(),
            index: self.index.clone(),
            lines: idx.iter().map(|&i| self.lines[i]).collect(),
        }
    }
}

/// Parses a CSV number the way pandas would read it (surrounding spaces allowed; `nan`, `inf`
/// accepted). An empty string is not a number: the caller treats it as missing.
#[must_use]
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        Table::new(
            vec!["a".into(), "b".into()],
            vec![
                Column::Text(vec![Some("1.5".into()), None, Some("x".into())]),
                Column::Numeric(vec![1.0, f64::NAN, 2.5]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn numeric_conversion_names_line_and_column() {
        let err = t().numeric("a").unwrap_err().to_string();
        assert_eq!(err, "column `a`, line 4: `x` is not a number");
        let b = t().numeric("b").unwrap();
        assert!(b[1].is_nan());
    }

    #[test]
    fn missing_column_lists_available() {
        let err = t().column("zz").unwrap_err().to_string();
        assert_eq!(err, "column `zz` not found; the columns are: a, b");
    }

    #[test]
    fn make_numeric_converts_in_place() {
        let mut t = t();
        assert!(t.make_numeric("a").is_err());
        assert_eq!(t.column("a").unwrap().kind(), ColumnKind::Text);
        let mut u = t.take(&[0, 1]);
        u.make_numeric("a").unwrap();
        assert!(matches!(u.column("a").unwrap(), Column::Numeric(v) if v[0] == 1.5 && v[1].is_nan()));
    }

    #[test]
    fn take_keeps_lines() {
        let s = t().take(&[2, 0]);
        assert_eq!(s.lines(), &[4, 2]);
        assert_eq!(s.text("b").unwrap(), vec![Some("2.5".into()), Some("1".into())]);
    }

    #[test]
    fn duplicate_and_ragged_are_errors() {
        assert!(
            Table::new(vec!["a".into(), "a".into()], vec![Column::Numeric(vec![]), Column::Numeric(vec![])]).is_err()
        );
        assert!(
            Table::new(vec!["a".into(), "b".into()], vec![Column::Numeric(vec![1.0]), Column::Numeric(vec![])])
                .is_err()
        );
    }
}
