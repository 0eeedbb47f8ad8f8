//! `kiln predict`: batch scoring, streaming a CSV through a bundle chunk by chunk.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kiln_core::csv::CsvChunks;
use std::io::Write;

use kiln_core::Table;
use kiln_model::infer::{self, OutputKind, RowNaming};
use kiln_model::{Predictions, Task};

use super::progress_bar;
use crate::Output;

/// What to do with a row that cannot be scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnError {
    /// Stop with an error naming the row and column; nothing is written.
    Fail,
    /// Leave the row out of the output and report how many were skipped.
    Skip,
}

/// Score a CSV with a model bundle.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The model: a bundle directory (the `model/` that `kiln train` wrote), or a URI resolved
    /// through --tracking-uri: models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME/latest,
    /// models:/NAME@ALIAS, models:/MODEL_ID, runs:/RUN_ID/PATH, mlflow-artifacts:/PATH, file://PATH.
    #[arg(short, long, value_name = "DIR|URI")]
    model: String,
    /// The tracking server that resolves models:/ and runs:/ URIs (`kiln server` or
    /// `mlflow server`, http://…).
    #[arg(long, env = "MLFLOW_TRACKING_URI", value_name = "URL")]
    tracking_uri: Option<String>,
    /// Input CSV with a header row containing the model's input columns.
    #[arg(short, long, value_name = "CSV")]
    input: PathBuf,
    /// Output file, written atomically: CSV (the input columns, then `prediction`), or MLflow's
    /// `{"predictions": [...]}` JSON when it ends in `.json` (see --output-format).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// The output's format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Auto)]
    output_format: OutputFormat,
    /// Add one `proba_<class>` column per class.
    #[arg(long)]
    proba: bool,
    /// What to do with a row that cannot be scored.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    on_error: OnError,
    /// Rows read and scored at a time (bounds memory on large files).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_rows: u64,
}

/// Shortest round-trip form, with an exponent for very small or large values (as Python's
/// `repr`), so `1e-16` is not written as seventeen zeros.
fn format_value(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| format!("{v}"), |n| n.to_string())
}

/// The output file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// From the file name: `.json` → json, anything else → csv.
    Auto,
    /// The input columns, then `prediction` (and `proba_<class>` columns with --proba).
    Csv,
    /// MLflow's `{"predictions": [...]}` document (`mlflow models predict` writes the same), the
    /// very bytes `kiln serve` answers for this input on /invocations; with --proba, one list of
    /// class probabilities per row.
    Json,
}

/// Where scored rows go: one CSV record per row, or items of the JSON `predictions` array.
enum Sink<W: std::io::Write> {
    Csv { w: Box<csv::Writer<W>>, classes: Vec<String>, proba: bool, record: Vec<String> },
    Json { w: W, kind: OutputKind, first: bool },
}

impl<W: std::io::Write> Sink<W> {
    fn rows(&mut self, p: &kiln_model::Pipeline, input: &Table, pred: &Predictions) -> anyhow::Result<()> {
        match self {
            Self::Csv { w, classes, proba, record } => {
                for i in 0..input.n_rows() {
                    record.clear();
                    record.extend(input.columns().iter().map(|c| c.display(i).unwrap_or_default()));
                    match pred {
                        Predictions::Classes { index, .. } => {
                            record.push(classes[index[i]].clone());
                            if *proba && let Some(pm) = pred.proba() {
                                record.extend(pm.row(i).iter().map(|&v| format_value(v)));
                            }
                        }
                        Predictions::Values(v) => record.push(format_value(v[i])),
                    }
                    w.write_record(&*record)?;
                }
            }
            Self::Json { w, kind, first } => {
                let mut buf = Vec::with_capacity(input.n_rows() * 16);
                if !*first {
                    buf.push(b',');
                }
                infer::write_predictions(p, pred, 0..input.n_rows(), *kind, &mut buf)?;
                *first = false;
                w.write_all(&buf)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Csv { mut w, .. } => w.flush()?,
            Self::Json { mut w, .. } => {
                w.write_all(infer::PREDICTIONS_CLOSE)?;
                w.flush()?;
            }
        }
        Ok(())
    }
}

pub fn run(args: &PredictArgs, out: Output) -> anyhow::Result<()> {
    let cannot = || format!("cannot load the model `{}`", args.model);
    let source = kiln_serve::source::open(&args.model, args.tracking_uri.as_deref(), kiln_client::default_cache_dir())
        .with_context(cannot)?;
    let fetched = source.load().with_context(cannot)?;
    if let Some(r) = &fetched.origin.registered {
        tracing::info!(model = %args.model, registered = %r, from = %fetched.origin.location, "resolved");
    }
    let b = fetched.bundle;
    let p = &b.pipeline;
    let classes: Vec<String> = match &p.task {
        Task::Classification { classes, .. } => classes.clone(),
        Task::Regression { .. } => Vec::new(),
    };
    if args.proba && !p.has_proba() {
        bail!("--proba: {} gives no class probabilities", p.estimator.sklearn_name());
    }
    let json = match args.output_format {
        OutputFormat::Json => true,
        OutputFormat::Csv => false,
        OutputFormat::Auto => args.output.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")),
    };
    let chunk = usize::try_from(args.chunk_rows).unwrap_or(usize::MAX);
    let mut reader = CsvChunks::open(&args.input, chunk)?;
    let header = reader.header().to_vec();

    let dir = args.output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
    let file = std::io::BufWriter::new(tmp.as_file());
    let mut sink = if json {
        let mut w = file;
        w.write_all(infer::PREDICTIONS_OPEN)?;
        let kind = if args.proba { OutputKind::Proba } else { OutputKind::Predict };
        Sink::Json { w, kind, first: true }
    } else {
        let mut w = csv::Writer::from_writer(file);
        let mut out_header = header.clone();
        out_header.push("prediction".to_owned());
        if args.proba {
            out_header.extend(classes.iter().map(|c| format!("proba_{c}")));
        }
        w.write_record(&out_header)?;
        Sink::Csv { w: Box::new(w), classes, proba: args.proba, record: Vec::new() }
    };

    let total = std::fs::metadata(&args.input).map_or(0, |m| m.len());
    let pb = progress_bar(out.progress, total, "{spinner} scoring [{bar:30}] {bytes}/{total_bytes} ({elapsed})");
    let (mut rows, mut skipped) = (0usize, 0usize);
    let nothing = || format!("cannot score `{}`; nothing was written", args.input.display());
    while let Some(table) = reader.next_chunk().with_context(|| format!("cannot read `{}`", args.input.display()))? {
        if table.n_rows() == 0 {
            continue;
        }
        // The same check `kiln serve` runs on a request.
        let conformed = infer::conform(p, &table, RowNaming::CsvLine).with_context(nothing)?;
        let (input, model_input) = match (conformed.row_errors.first(), args.on_error) {
            (None, _) => (table, conformed.table),
            (Some((_, e)), OnError::Fail) => {
                return Err(anyhow::anyhow!("{e}")).context(format!(
                    "cannot score `{}` (use --on-error skip to leave such rows out); nothing was written",
                    args.input.display()
                ));
            }
            (Some(_), OnError::Skip) => {
                let bad = &conformed.row_errors;
                skipped += bad.len();
                let keep: Vec<usize> =
                    (0..table.n_rows()).filter(|i| bad.binary_search_by_key(i, |(r, _)| *r).is_err()).collect();
                (table.take(&keep), conformed.table.take(&keep))
            }
        };
        if input.n_rows() == 0 {
            continue;
        }
        let pred = p.predict(&model_input).with_context(nothing)?;
        sink.rows(p, &input, &pred)?;
        rows += input.n_rows();
        pb.set_position(reader.bytes_read());
    }
    sink.finish()?;
    tmp.as_file().sync_all()?;
    tmp.persist(&args.output).with_context(|| format!("cannot write `{}`", args.output.display()))?;
    pb.finish_and_clear();
    if !out.quiet {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("scored {rows} rows into {}", args.output.display());
            if skipped > 0 {
                eprintln!("skipped {skipped} rows that could not be scored");
            }
        }
    }
    Ok(())
}
