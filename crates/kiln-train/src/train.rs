//! `kiln train`: read, split, search, refit, evaluate, and write the bundle, metrics and plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::ProgressBar;
use kiln_core::Table;
use kiln_model::bundle::{self, SaveOptions};
use kiln_model::estimator::FittedEstimator;
use kiln_model::matrix::Features;
use kiln_model::pipeline::{InputColumn, InputKind, Pipeline, Predictions, Task, predict_features, transform_steps};
use kiln_model::preprocess::Step;
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::TrainError;
use crate::config::Config;
use crate::estimators::{Hyper, Target};
use crate::evaluate::{self, Truth};
use crate::{plots, prep, select};

/// How `train` reports progress and stamps the bundle.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Progress of the cross-validation fits (hidden when not drawn to a terminal).
    pub progress: Option<ProgressBar>,
    /// Bundle creation time, microseconds since the Unix epoch.
    pub created_unix_micros: i64,
}

/// One row of the grid-search table.
#[derive(Debug, Clone)]
pub struct SearchRow {
    pub params: Hyper,
    pub fold_scores: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    pub rank: usize,
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub out_dir: PathBuf,
    pub model_dir: PathBuf,
    /// The test-set report as text (classification report or regression metrics).
    pub report: String,
    /// `metrics.json` as written.
    pub metrics: Value,
    pub search: Vec<SearchRow>,
    pub best: Hyper,
    pub n_train: usize,
    pub n_test: usize,
    pub fit_s: f64,
    pub predict_s: f64,
    /// Files written besides the bundle.
    pub files: Vec<PathBuf>,
}

/// The target column, encoded.
enum Labels {
    Classes { y: Vec<usize>, classes: Vec<String> },
    Values(Vec<f64>),
}

impl Labels {
    /// The labels of rows `idx`, in that order.
    fn take(&self, idx: &[usize]) -> Self {
        match self {
            Self::Classes { y, classes } => {
                Self::Classes { y: idx.iter().map(|&i| y[i]).collect(), classes: classes.clone() }
            }
            Self::Values(v) => Self::Values(idx.iter().map(|&i| v[i]).collect()),
        }
    }

    /// The labels as an estimator's target.
    fn as_target(&self) -> Target<'_> {
        match self {
            Self::Classes { y, classes } => Target::Classes { y, n_classes: classes.len() },
            Self::Values(v) => Target::Values(v),
        }
    }

    fn strata(&self) -> Option<(&[usize], usize)> {
        match self {
            Self::Classes { y, classes } => Some((y, classes.len())),
            Self::Values(_) => None,
        }
    }
}

fn read_labels(cfg: &Config, table: &Table, classes: Option<&[String]>) -> Result<Labels, TrainError> {
    let name = &cfg.data.target;
    if cfg.model.is_classifier() {
        let raw = table.text(name)?;
        let mut values = Vec::with_capacity(raw.len());
        for (i, v) in raw.into_iter().enumerate() {
            values.push(v.ok_or_else(|| TrainError::TargetMissing { column: name.clone(), line: table.line(i) })?);
        }
        let classes: Vec<String> = match classes {
            Some(c) => c.to_vec(),
            None => {
                let mut c = values.clone();
                c.sort();
                c.dedup();
                c
            }
        };
        let mut y = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let k = classes.binary_search(v).map_err(|_| TrainError::UnknownTestClass {
                column: name.clone(),
                line: table.line(i),
                value: v.clone(),
            })?;
            y.push(k);
        }
        Ok(Labels::Classes { y, classes })
    } else {
        let v = table.numeric(name)?;
        if let Some(i) = v.iter().position(|x| x.is_nan()) {
            return Err(TrainError::TargetMissing { column: name.clone(), line: table.line(i) });
        }
        Ok(Labels::Values(v))
    }
}

/// Fits the preprocessing on `rows` and returns it with the features of those rows.
fn fit_transform(
    cfg: &Config,
    inputs: &[InputColumn],
    stop: &[String],
    rows: &Table,
) -> Result<(Vec<Step>, Features), TrainError> {
    let steps = prep::fit_steps(cfg, inputs, rows, stop)?;
    let x = transform_steps(&steps, rows)?;
    Ok((steps, x))
}

fn score(cfg: &Config, pred: &Predictions, truth: &Labels) -> Result<f64, TrainError> {
    Ok(match (pred, truth) {
        (Predictions::Classes { index, scores, .. }, Labels::Classes { y, .. }) => {
            let pos: Option<Vec<f64>> =
                (scores.n_cols == 2).then(|| (0..scores.n_rows).map(|i| scores.get(i, 1)).collect());
            cfg.scoring.score_classification(y, index, pos.as_deref())?
        }
        (Predictions::Values(p), Labels::Values(y)) => cfg.scoring.score_regression(y, p)?,
        _ => return Err(TrainError::Internal("prediction and target kinds differ")),
    })
}

fn hyper_label(h: &Hyper) -> String {
    if h.values.is_empty() {
        return "(defaults)".to_owned();
    }
    h.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// Runs the grid search with k-fold CV on the training rows.
fn search(
    cfg: &Config,
    inputs: &[InputColumn],
    stop: &[String],
    train: &Table,
    labels: &Labels,
    opts: &TrainOptions,
) -> Result<Vec<SearchRow>, TrainError> {
    let folds = select::k_fold(train.n_rows(), labels.strata(), cfg.cv.folds, cfg.split.seed);
    let prepared: Vec<(Features, Features, Labels, Labels)> = folds
        .par_iter()
        .map(|(fit, val)| {
            let (steps, xf) = fit_transform(cfg, inputs, stop, &train.take(fit))?;
            let xv = transform_steps(&steps, &train.take(val))?;
            Ok((xf, xv, labels.take(fit), labels.take(val)))
        })
        .collect::<Result<_, TrainError>>()?;
    let jobs: Vec<(usize, usize)> = (0..cfg.grid.len()).flat_map(|g| (0..folds.len()).map(move |f| (g, f))).collect();
    if let Some(pb) = &opts.progress {
        pb.set_length(jobs.len() as u64);
        pb.set_message("cross-validating");
    }
    let scores: Vec<f64> = jobs
        .par_iter()
        .map(|&(g, f)| {
            let est = cfg.model.build(&cfg.grid[g])?;
            let (xf, xv, yf, yv) = &prepared[f];
            let fitted = est.fit(xf, &yf.as_target(), cfg.split.seed)?;
            let s = score(cfg, &predict_features(&fitted, xv), yv);
            if let Some(pb) = &opts.progress {
                pb.inc(1);
            }
            s
        })
        .collect::<Result<_, TrainError>>()?;
    let k = folds.len();
    let mut rows: Vec<SearchRow> = cfg
        .grid
        .iter()
        .enumerate()
        .map(|(g, h)| {
            let fs = scores[g * k..(g + 1) * k].to_vec();
            #[allow(clippy::cast_precision_loss)]
            let n = fs.len() as f64;
            let mean = fs.iter().sum::<f64>() / n;
            let std = (fs.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n).sqrt();
            SearchRow { params: h.clone(), fold_scores: fs, mean, std, rank: 0 }
        })
        .collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    // Highest mean first; ties keep grid order (scikit-learn's rank_test_score uses "min").
    order.sort_by(|&a, &b| rows[b].mean.total_cmp(&rows[a].mean).then(a.cmp(&b)));
    for (r, &i) in order.iter().enumerate() {
        rows[i].rank = r + 1;
    }
    Ok(rows)
}

fn search_csv(rows: &[SearchRow]) -> String {
    let keys: Vec<&String> = rows.first().map(|r| r.params.values.keys().collect()).unwrap_or_default();
    let k = rows.first().map_or(0, |r| r.fold_scores.len());
    let mut out = String::new();
    for key in &keys {
        let _ = write!(out, "param_{key},");
    }
    out.push_str("mean_test_score,std_test_score,rank_test_score");
    for f in 0..k {
        let _ = write!(out, ",split{f}_test_score");
    }
    out.push('\n');
    for r in rows {
        for key in &keys {
            let v = r.params.values.get(*key).map_or(String::new(), |v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let _ = write!(out, "\"{}\",", v.replace('"', "\"\""));
        }
        let _ = write!(out, "{},{},{}", r.mean, r.std, r.rank);
        for s in &r.fold_scores {
            let _ = write!(out, ",{s}");
        }
        out.push('\n');
    }
    out
}

/// Renders the search table for the terminal.
#[must_use]
pub fn render_search(rows: &[SearchRow], scoring: &str) -> String {
    let head = format!("mean {scoring}");
    let w = head.len().max(10);
    let mut out = format!("{:>4}  {head:>w$}  {:>8}  params\n", "rank", "std");
    let mut sorted: Vec<&SearchRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.rank);
    for r in sorted {
        let _ = writeln!(out, "{:>4}  {:>w$.4}  {:>8.4}  {}", r.rank, r.mean, r.std, hyper_label(&r.params));
    }
    out
}

/// Columns that must keep their text exactly as written (a categorical `007` is not the
/// number 7, and class labels are names).
fn text_columns(cfg: &Config) -> Vec<String> {
    let d = &cfg.data;
    let mut cols: Vec<String> = d.text.iter().chain(&d.categorical).cloned().collect();
    if cfg.model.is_classifier() {
        cols.push(d.target.clone());
    }
    cols
}

/// Trains the configured model end to end and writes everything into the output directory.
///
/// # Errors
/// Unreadable or invalid data, a fit failure, or an output that cannot be written.
#[allow(clippy::too_many_lines)]
pub fn train(cfg: &Config, opts: &TrainOptions) -> Result<TrainOutcome, TrainError> {
    let started = Instant::now();
    let text_columns = text_columns(cfg);
    let test_path = cfg.test_path();
    let (table, test) = rayon::join(
        || kiln_core::csv::read_path_typed(&cfg.data_path(), &text_columns),
        || test_path.as_ref().map(|p| kiln_core::csv::read_path_typed(p, &text_columns)).transpose(),
    );
    let (mut table, test) = (table?, test?);
    let inputs = prep::resolve_inputs(cfg, &mut table)?;
    tracing::info!(rows = table.n_rows(), seconds = started.elapsed().as_secs_f64(), "read and typed the data");
    let stop = prep::stop_words(cfg)?;
    let labels = read_labels(cfg, &table, None)?;
    if let Labels::Classes { classes, .. } = &labels
        && classes.len() < 2
    {
        return Err(TrainError::OneClass {
            column: cfg.data.target.clone(),
            class: classes.first().cloned().unwrap_or_default(),
        });
    }

    // The held-out rows: a separate file, or a (stratified) split of the data.
    let (train_t, train_labels, test_t, test_labels) = if let Some(mut test) = test {
        for c in inputs.iter().filter(|c| c.kind == InputKind::Numeric) {
            test.make_numeric(&c.name)?;
        }
        let classes = match &labels {
            Labels::Classes { classes, .. } => Some(classes.clone()),
            Labels::Values(_) => None,
        };
        let test_labels = read_labels(cfg, &test, classes.as_deref())?;
        (table, labels, test, test_labels)
    } else {
        let strata = if cfg.split.stratify { labels.strata() } else { None };
        let (tr, te) = select::train_test_split(table.n_rows(), strata, cfg.split.test_size, cfg.split.seed);
        (table.take(&tr), labels.take(&tr), table.take(&te), labels.take(&te))
    };
    let min_rows = cfg.cv.folds.max(2);
    if train_t.n_rows() < min_rows || test_t.n_rows() == 0 {
        return Err(TrainError::TooFewRows { train: train_t.n_rows(), test: test_t.n_rows(), needed: min_rows });
    }

    let search_rows =
        if cfg.cv.folds >= 2 { search(cfg, &inputs, &stop, &train_t, &train_labels, opts)? } else { Vec::new() };
    if let Some(pb) = &opts.progress {
        pb.set_message("fitting the best model");
    }
    let best = search_rows.iter().find(|r| r.rank == 1).map_or_else(|| cfg.grid[0].clone(), |r| r.params.clone());

    // Refit on the whole training split, then evaluate once on the test rows.
    let t0 = Instant::now();
    let (steps, x_train) = fit_transform(cfg, &inputs, &stop, &train_t)?;
    let fitted = cfg.model.build(&best)?.fit(&x_train, &train_labels.as_target(), cfg.split.seed)?;
    let fit_s = t0.elapsed().as_secs_f64();
    tracing::info!(seconds = fit_s, "refitted preprocessing and estimator on the training rows");
    let task = match &train_labels {
        Labels::Classes { classes, .. } => {
            Task::Classification { target: cfg.data.target.clone(), classes: classes.clone() }
        }
        Labels::Values(_) => Task::Regression { target: cfg.data.target.clone() },
    };
    let pipeline = Pipeline { task, inputs: inputs.clone(), steps, estimator: fitted };
    // Writing the bundle and scoring the test rows only read the pipeline: do both at once.
    let out_dir = cfg.output_dir();
    let model_dir = out_dir.join("model");
    let save_opts = SaveOptions {
        created_unix_micros: opts.created_unix_micros,
        example: Some(train_t.take(&(0..train_t.n_rows().min(5)).collect::<Vec<_>>())),
    };
    let (pred, saved) = rayon::join(
        || {
            let t1 = Instant::now();
            pipeline.predict(&test_t).map(|p| (p, t1.elapsed().as_secs_f64()))
        },
        || {
            let t2 = Instant::now();
            bundle::save(&model_dir, &pipeline, &save_opts).map(|()| t2.elapsed().as_secs_f64())
        },
    );
    let (pred, predict_s) = pred?;
    tracing::info!(seconds = predict_s, rows = test_t.n_rows(), "predicted the test rows");
    tracing::info!(seconds = saved?, "wrote the bundle");

    let plot_dir = out_dir.join("plots");
    let mut files = Vec::new();
    if cfg.plots {
        std::fs::create_dir_all(&plot_dir).map_err(|source| TrainError::Write { path: plot_dir.clone(), source })?;
    }
    let truth = match &test_labels {
        Labels::Classes { y, classes } => Truth::Classes { y, classes },
        Labels::Values(v) => Truth::Values(v),
    };
    let scored = evaluate::score(&pred, truth, cfg.plots.then_some(plot_dir.as_path()))?;
    let (report, mut metrics_json) = (scored.report, scored.metrics);
    files.extend(scored.files);
    if let (true, Predictions::Values(p), Labels::Values(y)) = (cfg.plots, &pred, &test_labels) {
        let path = plot_dir.join("predicted_vs_actual.png");
        plots::predicted_vs_actual_png(&path, y, p)?;
        files.push(path);
        let path = plot_dir.join("residuals.png");
        plots::residuals_png(&path, y, p)?;
        files.push(path);
    }
    if let Some(best_row) = search_rows.iter().find(|r| r.rank == 1) {
        metrics_json["cv"] = json!({ "scoring": cfg.scoring.as_str(), "mean": best_row.mean, "std": best_row.std, "folds": cfg.cv.folds });
    }

    if cfg.plots {
        if let Some(imp) = pipeline.estimator.feature_importance() {
            let p = plot_dir.join("feature_importance.png");
            let what = match pipeline.estimator {
                FittedEstimator::DecisionTreeClassifier(_)
                | FittedEstimator::DecisionTreeRegressor(_)
                | FittedEstimator::RandomForestClassifier(_)
                | FittedEstimator::RandomForestRegressor(_) => "feature importance",
                FittedEstimator::MultinomialNb(_) => "log-probability ratio",
                _ => "largest |coefficient|",
            };
            let title = match (&pipeline.estimator, &pipeline.task) {
                (FittedEstimator::MultinomialNb(_), Task::Classification { classes, .. }) if classes.len() == 2 => {
                    format!("MultinomialNB: log P(term | {}) - log P(term | {})", classes[1], classes[0])
                }
                _ => format!("{}: {what}", pipeline.estimator.sklearn_name()),
            };
            plots::feature_importance_png(&p, &pipeline.feature_names(), &imp, 20, &title)?;
            files.push(p);
        }
        if let Labels::Classes { y, classes } = &train_labels {
            let mut counts = vec![0usize; classes.len()];
            y.iter().for_each(|&c| counts[c] += 1);
            let p = plot_dir.join("class_balance.png");
            plots::class_balance_png(&p, classes, &counts)?;
            files.push(p);
        }
        for c in inputs.iter().filter(|c| c.kind == InputKind::Numeric) {
            let values = train_t.numeric(&c.name)?;
            let p = plot_dir.join(format!("hist_{}.png", plots::safe_file_stem(&c.name)));
            plots::histogram_png(&p, &c.name, &values)?;
            files.push(p);
        }
    }

    let metrics_path = out_dir.join("metrics.json");
    let mut pretty = serde_json::to_vec_pretty(&metrics_json).map_err(|e| TrainError::Serialize(e.to_string()))?;
    pretty.push(b'\n');
    kiln_core::fs::write_atomic(&metrics_path, &pretty)?;
    files.push(metrics_path);
    if !search_rows.is_empty() {
        let p = out_dir.join("cv_results.csv");
        kiln_core::fs::write_atomic(&p, search_csv(&search_rows).as_bytes())?;
        files.push(p);
    }
    let params_path = out_dir.join("params.json");
    let params: BTreeMap<&String, &Value> = best.values.iter().collect();
    let params_doc = json!({"model": cfg.model.name(), "params": params});
    kiln_core::fs::write_atomic(&params_path, format!("{params_doc:#}\n").as_bytes())?;
    files.push(params_path);

    Ok(TrainOutcome {
        out_dir,
        model_dir,
        report,
        metrics: metrics_json,
        search: search_rows,
        best,
        n_train: train_t.n_rows(),
        n_test: test_t.n_rows(),
        fit_s,
        predict_s,
        files,
    })
}
