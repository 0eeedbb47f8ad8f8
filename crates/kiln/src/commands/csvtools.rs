//! `kiln csv clean|split`: arguments and the summary line; the work is `kiln_train::csvprep`'s.

use std::path::PathBuf;

use kiln_train::csvprep::{self, CleanOptions, SplitOptions};

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

fn clean(args: &CleanArgs, out: Output) -> anyhow::Result<()> {
    let opts = CleanOptions {
        keep_duplicates: args.keep_duplicates,
        keep_empty: args.keep_empty,
        lowercase: args.lowercase.clone(),
    };
    let s = csvprep::clean(&args.input, &args.output, &opts)?;
    if !out.quiet {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "kept {} of {} rows in {} ({} with an empty field, {} repeated)",
                s.kept,
                s.read,
                args.output.display(),
                s.empty,
                s.repeated
            );
        }
    }
    Ok(())
}

fn split(args: &SplitArgs, out: Output) -> anyhow::Result<()> {
    let opts = SplitOptions { test_size: args.test_size, seed: args.seed, stratify: args.stratify.clone() };
    let s = csvprep::split(&args.input, &args.train, &args.test, &opts)?;
    if !out.quiet {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{} rows into {}, {} into {}", s.train, args.train.display(), s.test, args.test.display());
        }
    }
    Ok(())
}
