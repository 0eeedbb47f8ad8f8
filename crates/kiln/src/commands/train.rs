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
    /// Log the run to this tracking server (`kiln server` or `mlflow server`, http://…): params,
    /// metrics, and every output file (the bundle under `model/`, plots) as artifacts.
    #[arg(long, env = "MLFLOW_TRACKING_URI", value_name = "URL")]
    tracking_uri: Option<String>,
    /// The experiment to log into (created if missing).
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", default_value = "Default")]
    experiment_name: String,
    /// The run's name [default: the config file's directory name].
    #[arg(long)]
    run_name: Option<String>,
}

/// Logs a finished training to a tracking server: one run with the chosen hyper-parameters as
/// params, every number of `metrics.json` (plus fit and predict seconds) as metrics, and every
/// file of the output directory as artifacts under the same relative paths.
fn log_run(uri: &str, args: &TrainArgs, outcome: &kiln_train::train::TrainOutcome) -> anyhow::Result<(String, String)> {
    use kiln_wire::KeyValue;
    let client = kiln_client::TrackingClient::new(uri)?;
    let exp = client.experiment_id(&args.experiment_name)?;
    let name = args.run_name.clone().unwrap_or_else(|| {
        absolute(&args.config)
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(|| "kiln".to_owned(), |n| n.to_string_lossy().into_owned())
    });
    let tags = [
        KeyValue { key: "mlflow.source.name".into(), value: absolute(&args.config).display().to_string() },
        KeyValue { key: "mlflow.source.type".into(), value: "LOCAL".into() },
        KeyValue { key: "kiln.version".into(), value: env!("CARGO_PKG_VERSION").into() },
    ];
    let run = client.create_run(&exp, &name, &tags)?;
    let result = (|| -> anyhow::Result<()> {
        let params_doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(outcome.out_dir.join("params.json"))?)?;
        let mut params =
            vec![KeyValue { key: "model".into(), value: params_doc["model"].as_str().unwrap_or_default().into() }];
        if let Some(p) = params_doc["params"].as_object() {
            params.extend(p.iter().map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            }));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        let mut metrics = kiln_client::flatten_metrics(&outcome.metrics, now);
        metrics.extend(kiln_client::flatten_metrics(
            &serde_json::json!({"fit_seconds": outcome.fit_s, "predict_seconds": outcome.predict_s}),
            now,
        ));
        client.log_batch(&run, &metrics, &params, &[])?;
        let mut files = Vec::new();
        let mut stack = vec![outcome.out_dir.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let p = e?.path();
                if p.is_dir() { stack.push(p) } else { files.push(p) }
            }
        }
        files.sort();
        for f in &files {
            let rel = f.strip_prefix(&outcome.out_dir).unwrap_or(f);
            let rel =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
            client.upload_artifact(&run, &rel, f)?;
        }
        client.end_run(&run, "FINISHED")?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = client.end_run(&run, "FAILED");
        return Err(e.context(format!("logging run {} to {uri} failed; the run is marked FAILED", run.run_id)));
    }
    Ok((run.run_id, exp))
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
        writeln!(stdout, "{}", outcome.report.trim_end())?;
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
    if let Some(uri) = args.tracking_uri.as_deref().filter(|u| !u.is_empty()) {
        let (run_id, exp) = log_run(uri, args, &outcome).context("the model was trained and saved, but not logged")?;
        if !out.quiet {
            writeln!(stdout, "logged run {run_id} (experiment {exp}) to {uri}")?;
        }
    }
    Ok(())
}
