//! `kiln csv clean|split`: the small data-preparation steps of a pipeline (dvc.yaml stages), so a
//! project needs no scripting language for them. Records are copied field for field; only the
//! quoting is normalised (the csv crate's minimal quoting).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::Output;

/// Clean or split CSV files (pipeline stages).
#[derive(Debug, clap::Args)]
pub struct CsvArgs {
    #[command(subcommand)]
    command: CsvCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CsvCommand {
    /// Copy a CSV, trimming whitespace, dropping rows with an empty field and repeated rows.
    Clean(CleanArgs),
    /// Split a CSV into train and test files by a seeded (optionally stratified) shuffle.
    Split(SplitArgs),
}

#[derive(Debug, clap::Args)]
struct CleanArgs {
    /// The input CSV (with a header row).
    input: PathBuf,
    /// The cleaned CSV, written atomically.
    #[arg(short, long, value_name = "CSV")]
    output: PathBuf,
    /// Keep rows that repeat an earlier row (after trimming); by default they are dropped.
    #[arg(long)]
    keep_duplicates: bool,
    /// Keep rows with an empty field; by default they are dropped.
    #[arg(long)]
    keep_empty: bool,
    /// Lower-case these columns (repeatable).
    #[arg(long, value_name = "COLUMN")]
    lowercase: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct SplitArgs {
    /// The input CSV (with a header row).
    input: PathBuf,
    /// Where the training rows go.
    #[arg(long, value_name = "CSV")]
    train: PathBuf,
    /// Where the test rows go.
    #[arg(long, value_name = "CSV")]
    test: PathBuf,
    /// The share of rows (of each class, with --stratify) that goes to the test file.
    #[arg(long, default_value_t = 0.25)]
    test_size: f64,
    /// The shuffle's seed (the same seed gives the same split, on every machine).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep each value of this column in the same proportion in both files.
    #[arg(long, value_name = "COLUMN")]
    stratify: Option<String>,
}

pub fn csv(args: &CsvArgs, out: Output) -> anyhow::Result<()> {
    match &args.command {
        CsvCommand::Clean(a) => clean(a, out),
        CsvCommand::Split(a) => split(a, out),
    }
}

fn read(path: &Path) -> anyhow::Result<(csv::StringRecord, Vec<csv::StringRecord>)> {
    let mut r =
        csv::ReaderBuilder::new().from_path(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let header = r.headers().with_context(|| format!("cannot read `{}`", path.display()))?.clone();
    let mut rows = Vec::new();
    for rec in r.records() {
        rows.push(rec.with_context(|| format!("cannot read `{}`", path.display()))?);
    }
    Ok((header, rows))
}

fn write<'a>(
    path: &Path,
    header: &csv::StringRecord,
    rows: impl Iterator<Item = &'a csv::StringRecord>,
) -> anyhow::Result<()> {
    let cannot = || format!("cannot write `{}`", path.display());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(cannot)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(cannot)?;
    {
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(tmp.as_file()));
        w.write_record(header).with_context(cannot)?;
        for r in rows {
            w.write_record(r).with_context(cannot)?;
        }
        w.flush().with_context(cannot)?;
    }
    tmp.persist(path).with_context(cannot)?;
    Ok(())
}

fn column(header: &csv::StringRecord, name: &str, path: &Path) -> anyhow::Result<usize> {
    header.iter().position(|h| h == name).with_context(|| {
        let have: Vec<&str> = header.iter().collect();
        format!("`{}` has no column `{name}` (it has: {})", path.display(), have.join(", "))
    })
}

fn clean(args: &CleanArgs, out: Output) -> anyhow::Result<()> {
    let (header, rows) = read(&args.input)?;
    let lower: Vec<usize> = args.lowercase.iter().map(|c| column(&header, c, &args.input)).collect::<Result<_, _>>()?;
    let mut seen = HashSet::new();
    let (mut empty, mut dups) = (0usize, 0usize);
    let mut kept = Vec::with_capacity(rows.len());
    for row in &rows {
        let rec: csv::StringRecord = row
            .iter()
            .enumerate()
            .map(|(i, f)| if lower.contains(&i) { f.trim().to_lowercase() } else { f.trim().to_owned() })
            .collect();
        if !args.keep_empty && rec.iter().any(str::is_empty) {
            empty += 1;
            continue;
        }
        if !args.keep_duplicates && !seen.insert(rec.iter().map(str::to_owned).collect::<Vec<_>>()) {
            dups += 1;
            continue;
        }
        kept.push(rec);
    }
    write(&args.output, &header, kept.iter())?;
    if !out.quiet {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "kept {} of {} rows in {} ({empty} with an empty field, {dups} repeated)",
                kept.len(),
                rows.len(),
                args.output.display()
            );
        }
    }
    Ok(())
}

fn split(args: &SplitArgs, out: Output) -> anyhow::Result<()> {
    if !(args.test_size > 0.0 && args.test_size < 1.0) {
        bail!("--test-size must be between 0 and 1 (exclusive), not {}", args.test_size);
    }
    let (header, rows) = read(&args.input)?;
    let strata = match &args.stratify {
        Some(name) => {
            let c = column(&header, name, &args.input)?;
            let mut values: Vec<&str> = rows.iter().map(|r| r.get(c).unwrap_or("")).collect();
            values.sort_unstable();
            values.dedup();
            let y: Vec<usize> =
                rows.iter().map(|r| values.binary_search(&r.get(c).unwrap_or("")).unwrap_or_default()).collect();
            Some((y, values.len()))
        }
        None => None,
    };
    let (train, test) = kiln_train::select::train_test_split(
        rows.len(),
        strata.as_ref().map(|(y, k)| (y.as_slice(), *k)),
        args.test_size,
        args.seed,
    );
    write(&args.train, &header, train.iter().map(|&i| &rows[i]))?;
    write(&args.test, &header, test.iter().map(|&i| &rows[i]))?;
    if !out.quiet {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "{} rows into {}, {} into {}",
                train.len(),
                args.train.display(),
                test.len(),
                args.test.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Output {
        Output { progress: false, quiet: true, color: false }
    }

    #[test]
    fn clean_trims_drops_empty_and_repeated_rows() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        std::fs::write(&input, "label,text\nham, Hello \nspam,WIN\nham,Hello\nham,\nspam,\"a, b\"\n").unwrap();
        let output = d.path().join("out/clean.csv");
        let args = CleanArgs {
            input,
            output: output.clone(),
            keep_duplicates: false,
            keep_empty: false,
            lowercase: vec!["text".into()],
        };
        clean(&args, quiet()).unwrap();
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
        let run = |seed| {
            let args = SplitArgs {
                input: input.clone(),
                train: d.path().join("train.csv"),
                test: d.path().join("test.csv"),
                test_size: 0.2,
                seed,
                stratify: Some("label".into()),
            };
            split(&args, quiet()).unwrap();
            (
                std::fs::read_to_string(d.path().join("train.csv")).unwrap(),
                std::fs::read_to_string(d.path().join("test.csv")).unwrap(),
            )
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
        let mut args = SplitArgs {
            input,
            train: d.path().join("tr.csv"),
            test: d.path().join("te.csv"),
            test_size: 1.5,
            seed: 0,
            stratify: None,
        };
        assert!(split(&args, quiet()).is_err());
        args.test_size = 0.5;
        args.stratify = Some("nope".into());
        let err = format!("{:#}", split(&args, quiet()).unwrap_err());
        assert!(err.contains("no column `nope`"), "{err}");
    }
}
