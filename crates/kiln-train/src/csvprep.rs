//! The small data-preparation steps of a pipeline (`kiln csv clean|split`, as dvc.yaml stages),
//! so a project needs no scripting language for them. Records are copied field for field; only
//! the quoting is normalised (the csv crate's minimal quoting).
//!
//! The split is [`select::train_test_split`], the very function `kiln train` splits with, so a
//! `csv split` stage and a `train` with the same seed and share agree row for row.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use csv::StringRecord;
use kiln_core::csv::{CsvError, read_records, write_records};
use kiln_core::fs::WriteError;

use crate::select;

/// Errors of `csv clean|split`, each naming the file and, where there is one, line and column.
#[derive(Debug, thiserror::Error)]
pub enum CsvPrepError {
    #[error(transparent)]
    Read(#[from] CsvError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("`{path}` has no column `{column}` (it has: {})", have.join(", "))]
    UnknownColumn { path: PathBuf, column: String, have: Vec<String> },
    #[error("--test-size must be between 0 and 1 (exclusive), not {0}")]
    TestSize(f64),
}

/// What `clean` does with a file.
#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    /// Keep rows that repeat an earlier row (after trimming).
    pub keep_duplicates: bool,
    /// Keep rows with an empty field.
    pub keep_empty: bool,
    /// Columns to lower-case.
    pub lowercase: Vec<String>,
}

/// How many rows `clean` read, kept and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanSummary {
    pub read: usize,
    pub kept: usize,
    pub empty: usize,
    pub repeated: usize,
}

/// How `split` divides a file.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// The share of rows (of each class, with `stratify`) that goes to the test file.
    pub test_size: f64,
    /// The shuffle's seed.
    pub seed: u64,
    /// Keep each value of this column in the same proportion in both files.
    pub stratify: Option<String>,
}

/// How many rows went to each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSummary {
    pub train: usize,
    pub test: usize,
}

fn column(header: &StringRecord, name: &str, path: &Path) -> Result<usize, CsvPrepError> {
    header.iter().position(|h| h == name).ok_or_else(|| CsvPrepError::UnknownColumn {
        path: path.to_owned(),
        column: name.to_owned(),
        have: header.iter().map(str::to_owned).collect(),
    })
}

/// Copies `input` to `output` (atomically), trimming whitespace, lower-casing the chosen
/// columns, and dropping rows with an empty field and rows that repeat an earlier one.
///
/// # Errors
/// `input` cannot be read (the error names the line), a column is unknown, or `output` cannot be
/// written.
pub fn clean(input: &Path, output: &Path, opts: &CleanOptions) -> Result<CleanSummary, CsvPrepError> {
    let (header, rows) = read_records(input)?;
    let lower: Vec<usize> = opts.lowercase.iter().map(|c| column(&header, c, input)).collect::<Result<_, _>>()?;
    let mut seen = HashSet::new();
    let (mut empty, mut repeated) = (0usize, 0usize);
    let mut kept = Vec::with_capacity(rows.len());
    for row in &rows {
        let rec: StringRecord = row
            .iter()
            .enumerate()
            .map(|(i, f)| if lower.contains(&i) { f.trim().to_lowercase() } else { f.trim().to_owned() })
            .collect();
        if !opts.keep_empty && rec.iter().any(str::is_empty) {
            empty += 1;
            continue;
        }
        if !opts.keep_duplicates && !seen.insert(rec.iter().map(str::to_owned).collect::<Vec<_>>()) {
            repeated += 1;
            continue;
        }
        kept.push(rec);
    }
    write_records(output, &header, &kept)?;
    Ok(CleanSummary { read: rows.len(), kept: kept.len(), empty, repeated })
}

/// Splits `input` into `train` and `test` files (each written atomically) by a seeded,
/// optionally stratified shuffle; rows keep their order within each file.
///
/// # Errors
/// `test_size` is not strictly between 0 and 1, `input` cannot be read, the `stratify` column
/// is unknown, or an output cannot be written.
pub fn split(input: &Path, train: &Path, test: &Path, opts: &SplitOptions) -> Result<SplitSummary, CsvPrepError> {
    if !(opts.test_size > 0.0 && opts.test_size < 1.0) {
        return Err(CsvPrepError::TestSize(opts.test_size));
    }
    let (header, rows) = read_records(input)?;
    let strata = match &opts.stratify {
        Some(name) => {
            let c = column(&header, name, input)?;
            let mut values: Vec<&str> = rows.iter().map(|r| r.get(c).unwrap_or("")).collect();
            values.sort_unstable();
            values.dedup();
            let y: Vec<usize> =
                rows.iter().map(|r| values.binary_search(&r.get(c).unwrap_or("")).unwrap_or_default()).collect();
            Some((y, values.len()))
        }
        None => None,
    };
    let (train_rows, test_rows) = select::train_test_split(
        rows.len(),
        strata.as_ref().map(|(y, k)| (y.as_slice(), *k)),
        opts.test_size,
        opts.seed,
    );
    write_records(train, &header, train_rows.iter().map(|&i| &rows[i]))?;
    write_records(test, &header, test_rows.iter().map(|&i| &rows[i]))?;
    Ok(SplitSummary { train: train_rows.len(), test: test_rows.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_trims_drops_empty_and_repeated_rows() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        std::fs::write(&input, "label,text\nham, Hello \nspam,WIN\nham,Hello\nham,\nspam,\"a, b\"\n").unwrap();
        let output = d.path().join("out/clean.csv");
        let opts = CleanOptions { lowercase: vec!["text".into()], ..CleanOptions::default() };
        let summary = clean(&input, &output, &opts).unwrap();
        assert_eq!(summary, CleanSummary { read: 5, kept: 3, empty: 1, repeated: 1 });
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "label,text\nham,hello\nspam,win\nspam,\"a, b\"\n");
    }

    #[test]
    fn split_is_seeded_stratified_and_complete() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        let mut text = String::from("label,n\n");
        for i in 0..100 {
            text.push_str(&format!("{},{i}\n", if i % 5 == 0 { "spam" } else { "ham" }));
        }
        std::fs::write(&input, text).unwrap();
        let (train_p, test_p) = (d.path().join("train.csv"), d.path().join("test.csv"));
        let run = |seed| {
            let opts = SplitOptions { test_size: 0.2, seed, stratify: Some("label".into()) };
            assert_eq!(split(&input, &train_p, &test_p, &opts).unwrap(), SplitSummary { train: 80, test: 20 });
            (std::fs::read_to_string(&train_p).unwrap(), std::fs::read_to_string(&test_p).unwrap())
        };
        let (train, test) = run(1);
        assert_eq!(run(1), (train.clone(), test.clone()));
        assert_ne!(run(2).1, test);
        assert_eq!(test.lines().count(), 21);
        assert_eq!(train.lines().count(), 81);
        assert_eq!(test.lines().filter(|l| l.starts_with("spam")).count(), 4);
        let mut all: Vec<&str> = train.lines().skip(1).chain(test.lines().skip(1)).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 100);
    }

    #[test]
    fn split_refuses_a_bad_proportion_and_an_unknown_column() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        std::fs::write(&input, "a\n1\n2\n").unwrap();
        let (tr, te) = (d.path().join("tr.csv"), d.path().join("te.csv"));
        let mut opts = SplitOptions { test_size: 1.5, seed: 0, stratify: None };
        assert!(matches!(split(&input, &tr, &te, &opts), Err(CsvPrepError::TestSize(_))));
        opts.test_size = 0.5;
        opts.stratify = Some("nope".into());
        let err = split(&input, &tr, &te, &opts).unwrap_err().to_string();
        assert!(err.contains("no column `nope` (it has: a)"), "{err}");
    }

    #[test]
    fn a_ragged_row_names_the_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        std::fs::write(&input, "a,b\n1,2\n3\n").unwrap();
        let err = clean(&input, &d.path().join("out.csv"), &CleanOptions::default()).unwrap_err().to_string();
        assert_eq!(err, format!("`{}`, line 3: 2 fields in the header but 1 here", input.display()));
    }
}
