//! `kiln train`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use kiln_train::config::Config;
use kiln_train::train::{TrainOptions, render_search, train};

use super::{absolute, progress_bar};
use crate::Output;

/// Train a model from a kiln.yaml.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The config file.
    #[arg(default_value = "kiln.yaml")]
    config: PathBuf,
    /// Output directory (receives model/, metrics.json, plots/, cv_results.csv); default from
    /// the config's `output`, else `out/` beside the config.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Override a config value, e.g. `-S model.C=0.5` or `-S split.test_size=0.4`
    /// (repeatable; the value is parsed as YAML, so `-S model.C=[0.1,1]` makes a grid).
    #[arg(short = 'S', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Use this CSV instead of the config's `data.path`.
    #[arg(long, value_name = "CSV")]
    data: Option<PathBuf>,
    /// Evaluate on this CSV instead of splitting the data.
    #[arg(long, value_name = "CSV")]
    test_data: Option<PathBuf>,
    /// Print a one-line JSON summary (accuracy or r2, fit and predict seconds) as the last line.
    #[arg(long)]
    summary_json: bool,
}

/// Creation time for the bundle: `SOURCE_DATE_EPOCH` (reproducible builds' convention) when set,
/// else now.
fn created_micros() -> i64 {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()) {
        return secs.saturating_mul(1_000_000);
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub fn run(args: &TrainArgs, out: Output) -> anyhow::Result<()> {
    let mut overrides = args.set.clone();
    for (key, path) in [("data.path", &args.data), ("data.test_path", &args.test_data), ("output", &args.out)] {
        if let Some(p) = path {
            let abs = absolute(p);
            overrides.push(format!("{key}={}", serde_json::Value::String(abs.to_string_lossy().into_owned())));
        }
    }
    let cfg = Config::load(&args.config, &overrides)
        .with_context(|| format!("invalid config `{}`", args.config.display()))?;
    let pb = progress_bar(out.progress, 0, "{spinner} {msg} [{bar:30}] {pos}/{len} fits ({elapsed})");
    let opts = TrainOptions { progress: Some(pb.clone()), created_unix_micros: created_micros() };
    let outcome = train(&cfg, &opts).with_context(|| format!("training from `{}` failed", args.config.display()))?;
    pb.finish_and_clear();

    let mut stdout = std::io::stdout().lock();
    if !out.quiet {
        writeln!(stdout, "{} on {} training rows, {} test rows", cfg.model, outcome.n_train, outcome.n_test)?;
        if !outcome.search.is_empty() {
            writeln!(stdout, "\ngrid search, {}-fold cross-validation:", cfg.cv.folds)?;
            write!(stdout, "{}", render_search(&outcome.search, cfg.scoring.as_str()))?;
        }
        writeln!(stdout, "\ntest set:")?;
    }
    writeln!(stdout, "{}", outcome.report.trim_end())?;
    if !out.quiet {
        writeln!(stdout, "\nmodel: {}", outcome.model_dir.display())?;
        writeln!(stdout, "metrics, plots and search table: {}", outcome.out_dir.display())?;
    }
    if args.summary_json {
        let m = &outcome.metrics;
        let mut summary = serde_json::json!({ "fit_s": outcome.fit_s, "predict_s": outcome.predict_s, "n_train": outcome.n_train, "n_test": outcome.n_test });
        for (k, v) in
            [("accuracy", m.get("accuracy")), ("macro_f1", m.pointer("/macro avg/f1-score")), ("r2", m.get("r2"))]
        {
            if let Some(v) = v {
                summary[k] = v.clone();
            }
        }
        writeln!(stdout, "{summary}")?;
    }
    Ok(())
}
