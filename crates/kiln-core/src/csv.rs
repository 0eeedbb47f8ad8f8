//! Reading CSV (header row, RFC 4180 quoting, UTF-8) into [`Table`]s.
//!
//! Every field is read as text; the caller decides which columns are numbers (the config says
//! so, or the model's signature does), and [`Table::numeric`] converts them with an error that
//! names the line. [`CsvChunks`] reads a file a bounded number of rows at a time, so batch
//! scoring never holds more than one chunk.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::table::{Column, Table, TableError};

/// Errors reading a CSV file.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot open `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`, line {line}: the bytes are not valid UTF-8")]
    InvalidUtf8 { path: PathBuf, line: u64 },
    #[error("`{path}`, line {line}: {expected} fields in the header but {found} here")]
    FieldCount { path: PathBuf, line: u64, expected: usize, found: usize },
    #[error("`{path}`: the file is empty (a header row is required)")]
    Empty { path: PathBuf },
    #[error("`{path}`, line {line}: {message}")]
    Parse { path: PathBuf, line: u64, message: String },
    #[error("`{path}`: {source}")]
    Table {
        path: PathBuf,
        #[source]
        source: TableError,
    },
}

fn map_err(path: &Path, e: &csv::Error) -> CsvError {
    let line = e.position().map_or(0, csv::Position::line);
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => {
            CsvError::InvalidUtf8 { path: path.to_owned(), line: pos.as_ref().map_or(line, csv::Position::line) }
        }
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => CsvError::FieldCount {
            path: path.to_owned(),
            line: pos.as_ref().map_or(line, csv::Position::line),
            expected: usize::try_from(*expected_len).unwrap_or(usize::MAX),
            found: usize::try_from(*len).unwrap_or(usize::MAX),
        },
        _ => CsvError::Parse { path: path.to_owned(), line, message: e.to_string() },
    }
}

/// Reads a whole CSV file as raw records: the header and every row, fields exactly as written
/// (for tools that copy rows, such as `kiln csv clean|split`, and must not reinterpret them).
///
/// # Errors
/// The file cannot be opened, is not UTF-8 or has ragged rows; the error names the line.
pub fn read_records(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), CsvError> {
    let file = File::open(path).map_err(|source| CsvError::Open { path: path.to_owned(), source })?;
    let mut r = csv::ReaderBuilder::new().from_reader(std::io::BufReader::new(file));
    let header = r.headers().map_err(|e| map_err(path, &e))?.clone();
    let rows = r.records().collect::<Result<Vec<_>, _>>().map_err(|e| map_err(path, &e))?;
    Ok((header, rows))
}

/// Writes a header and rows to `path` atomically (minimal quoting, as the csv crate writes).
///
/// # Errors
/// The file or its directory cannot be written.
pub fn write_records<'a>(
    path: &Path,
    header: &csv::StringRecord,
    rows: impl IntoIterator<Item = &'a csv::StringRecord>,
) -> Result<(), crate::fs::WriteError> {
    crate::fs::write_atomic_with(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(header)?;
        for r in rows {
            w.write_record(r)?;
        }
        w.flush()
    })
}

/// Reads a whole CSV file into a table of text columns (empty fields are missing).
///
/// # Errors
/// The file cannot be opened, is not UTF-8, has ragged rows or a duplicate header.
pub fn read_path(path: &Path) -> Result<Table, CsvError> {
    let mut chunks = CsvChunks::open(path, usize::MAX)?;
    match chunks.next_chunk()? {
        Some(t) => Ok(t),
        None => chunks.empty_table(),
    }
}

/// Reads a whole CSV file, parsing every column as numbers unless it is listed in
/// `text_columns` or holds a value that is not a number (then it stays text, exactly as
/// written). Faster than [`read_path`] followed by conversions: number fields are parsed from
/// the raw bytes without allocating a string each.
///
/// # Errors
/// As [`read_path`].
pub fn read_path_typed(path: &Path, text_columns: &[String]) -> Result<Table, CsvError> {
    let mut text: Vec<String> = text_columns.to_vec();
    // A column that looked numeric and then held text is read again as text: at most one
    // more pass, since the first pass finds every such column.
    for _ in 0..2 {
        match read_typed_once(path, &text)? {
            Ok(table) => return Ok(table),
            Err(failed) => text.extend(failed),
        }
    }
    read_path(path)
}

enum TypedCol {
    Num(Vec<f64>),
    Text(Vec<Option<String>>),
    Failed,
}

fn read_typed_once(path: &Path, text_columns: &[String]) -> Result<Result<Table, Vec<String>>, CsvError> {
    let file = File::open(path).map_err(|source| CsvError::Open { path: path.to_owned(), source })?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| map_err(path, &e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(CsvError::Empty { path: path.to_owned() });
    }
    let width = header.len();
    let mut cols: Vec<TypedCol> = header
        .iter()
        .map(|h| if text_columns.contains(h) { TypedCol::Text(Vec::new()) } else { TypedCol::Num(Vec::new()) })
        .collect();
    let mut lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| map_err(path, &e))?;
        if !more {
            break;
        }
        if record.len() == 1 && width > 1 && record[0].is_empty() {
            continue;
        }
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != width {
            return Err(CsvError::FieldCount { path: path.to_owned(), line, expected: width, found: record.len() });
        }
        for (c, field) in cols.iter_mut().zip(record.iter()) {
            let field =
                std::str::from_utf8(field).map_err(|_| CsvError::InvalidUtf8 { path: path.to_owned(), line })?;
            match c {
                TypedCol::Num(v) => {
                    if field.is_empty() {
                        v.push(f64::NAN);
                    } else if let Some(x) = crate::table::parse_number(field) {
                        v.push(x);
                    } else {
                        *c = TypedCol::Failed;
                    }
                }
                TypedCol::Text(v) => v.push((!field.is_empty()).then(|| field.to_owned())),
                TypedCol::Failed => {}
            }
        }
        lines.push(line);
    }
    let failed: Vec<String> =
        header.iter().zip(&cols).filter(|(_, c)| matches!(c, TypedCol::Failed)).map(|(h, _)| h.clone()).collect();
    if !failed.is_empty() {
        return Ok(Err(failed));
    }
    let columns = cols
        .into_iter()
        .map(|c| match c {
            TypedCol::Num(v) => Column::Numeric(v),
            TypedCol::Text(v) => Column::Text(v),
            TypedCol::Failed => Column::Text(Vec::new()),
        })
        .collect();
    Table::with_lines(header, columns, lines)
        .map(Ok)
        .map_err(|source| CsvError::Table { path: path.to_owned(), source })
}

/// Reads CSV from any reader (`name` is used in error messages).
///
/// # Errors
/// As [`read_path`].
pub fn read_from<R: Read>(reader: R, name: &str) -> Result<Table, CsvError> {
    let mut chunks = CsvChunks::from_reader(reader, name, usize::MAX)?;
    match chunks.next_chunk()? {
        Some(t) => Ok(t),
        None => chunks.empty_table(),
    }
}

/// A CSV file read `chunk_rows` rows at a time.
pub struct CsvChunks<R: Read> {
    reader: csv::Reader<R>,
    path: PathBuf,
    header: Vec<String>,
    chunk_rows: usize,
    done: bool,
}

impl CsvChunks<File> {
    /// Opens `path` and reads its header.
    ///
    /// # Errors
    /// The file cannot be opened, or its header is missing or invalid.
    pub fn open(path: &Path, chunk_rows: usize) -> Result<Self, CsvError> {
        let file = File::open(path).map_err(|source| CsvError::Open { path: path.to_owned(), source })?;
        Self::from_reader(file, &path.to_string_lossy(), chunk_rows)
    }
}

impl<R: Read> CsvChunks<R> {
    /// Wraps a reader and reads its header.
    ///
    /// # Errors
    /// The header is missing or invalid.
    pub fn from_reader(reader: R, name: &str, chunk_rows: usize) -> Result<Self, CsvError> {
        let path = PathBuf::from(name);
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| map_err(&path, &e))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_owned())
            .collect();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(CsvError::Empty { path });
        }
        Ok(Self { reader, path, header, chunk_rows: chunk_rows.max(1), done: false })
    }

    /// Bytes consumed so far (for progress bars).
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The column names of the header row.
    #[must_use]
    pub fn header(&self) -> &[String] {
        &self.header
    }

    fn empty_table(&self) -> Result<Table, CsvError> {
        let cols = self.header.iter().map(|_| Column::Text(Vec::new())).collect();
        Table::new(self.header.clone(), cols).map_err(|source| CsvError::Table { path: self.path.clone(), source })
    }

    /// The next chunk of at most `chunk_rows` rows, or `None` at the end of the file.
    ///
    /// # Errors
    /// Invalid UTF-8 or a row with the wrong number of fields, naming the line.
    pub fn next_chunk(&mut self) -> Result<Option<Table>, CsvError> {
        if self.done {
            return Ok(None);
        }
        let width = self.header.len();
        let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        while lines.len() < self.chunk_rows {
            let more = self.reader.read_record(&mut record).map_err(|e| map_err(&self.path, &e))?;
            if !more {
                self.done = true;
                break;
            }
            // A completely blank line is skipped, as pandas does.
            if record.len() == 1 && width > 1 && record[0].is_empty() {
                continue;
            }
            let line = record.position().map_or(0, csv::Position::line);
            for (c, field) in cols.iter_mut().zip(record.iter()) {
                c.push((!field.is_empty()).then(|| field.to_owned()));
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Ok(None);
        }
        let columns = cols.into_iter().map(Column::Text).collect();
        Table::with_lines(self.header.clone(), columns, lines)
            .map(Some)
            .map_err(|source| CsvError::Table { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_fields_and_missing_values() {
        let t = read_from("a,b\n\"x, y\",1\n,2\n".as_bytes(), "t.csv").unwrap();
        assert_eq!(t.n_rows(), 2);
        assert_eq!(t.text("a").unwrap(), vec![Some("x, y".into()), None]);
        assert_eq!(t.numeric("b").unwrap(), vec![1.0, 2.0]);
        assert_eq!(t.lines(), &[2, 3]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let data = b"a,b\nok,1\nbad\xff,2\n";
        let err = read_from(&data[..], "t.csv").unwrap_err().to_string();
        assert_eq!(err, "`t.csv`, line 3: the bytes are not valid UTF-8");
    }

    #[test]
    fn ragged_row_names_the_line() {
        let err = read_from("a,b\n1,2\n3\n".as_bytes(), "t.csv").unwrap_err().to_string();
        assert_eq!(err, "`t.csv`, line 3: 2 fields in the header but 1 here");
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = read_from("".as_bytes(), "t.csv").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn typed_read_parses_numbers_and_keeps_text_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        let mut text = String::from("zip,x,label,late\n");
        for i in 0..50 {
            text.push_str(&format!(
                "0{i},{i}.5,{},{}\n",
                if i % 2 == 0 { "a" } else { "b" },
                if i == 40 { "?" } else { "1" }
            ));
        }
        text.push_str("01,,a,2\n");
        std::fs::write(&p, &text).unwrap();
        let t = read_path_typed(&p, &["zip".to_owned()]).unwrap();
        assert_eq!(t.column("zip").unwrap().display(0).as_deref(), Some("00"));
        assert!(matches!(t.column("x").unwrap(), Column::Numeric(v) if v[1] == 1.5 && v[50].is_nan()));
        // `label` fails on its first row, `late` only on row 40: both end up as text.
        assert_eq!(t.text("label").unwrap()[0].as_deref(), Some("a"));
        assert_eq!(t.text("late").unwrap()[40].as_deref(), Some("?"));
        assert_eq!(t.column("late").unwrap().kind(), crate::ColumnKind::Text);
        assert_eq!(t.lines()[50], 52);
        let mut whole = read_path(&p).unwrap();
        whole.make_numeric("x").unwrap();
        // Debug output compares NaN equal to NaN, which `==` does not.
        assert_eq!(format!("{:?}", t.columns()), format!("{:?}", whole.columns()));
        assert_eq!((t.names(), t.lines()), (whole.names(), whole.lines()));
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, b"a,b\n1,2\n3,\xff\n").unwrap();
        assert!(read_path_typed(&bad, &[]).unwrap_err().to_string().contains("line 3: the bytes are not valid UTF-8"));
    }

    #[test]
    fn chunks_cover_the_file() {
        let mut s = String::from("x\n");
        for i in 0..10 {
            s.push_str(&format!("{i}\n"));
        }
        let mut c = CsvChunks::from_reader(s.as_bytes(), "t.csv", 4).unwrap();
        let mut sizes = vec![];
        while let Some(t) = c.next_chunk().unwrap() {
            sizes.push(t.n_rows());
        }
        assert_eq!(sizes, vec![4, 4, 2]);
    }
}
