//! `kiln evaluate`: score a labelled CSV with a bundle and write the metrics (the same JSON shape
//! as `kiln train`'s `metrics.json`), for an evaluate stage of a pipeline.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kiln_model::infer::{self, RowNaming};
use kiln_model::{Predictions, Task};
use kiln_train::{metrics, plots};
use serde_json::json;

use crate::Output;

/// Evaluate a model bundle on a labelled CSV.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The model bundle directory (the `model/` that `kiln train` wrote).
    #[arg(short, long, value_name = "DIR")]
    model: PathBuf,
    /// A CSV with the model's input columns and its target column.
    #[arg(short, long, value_name = "CSV")]
    input: PathBuf,
    /// Where the metrics go (JSON: accuracy, per-class precision/recall/f1-score/support,
    /// macro and weighted averages, roc_auc for two classes, confusion_matrix as a list of
    /// lists; r2/mae/mse/rmse for a regressor).
    #[arg(long, value_name = "JSON")]
    metrics: PathBuf,
    /// Also draw the confusion matrix (and ROC curve for two classes) as PNGs in this directory.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let cannot = || format!("cannot write `{}`", path.display());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(cannot)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(cannot)?;
    std::fs::write(tmp.path(), bytes).with_context(cannot)?;
    tmp.persist(path).with_context(cannot)?;
    Ok(())
}

pub fn run(args: &EvaluateArgs, out: Output) -> anyhow::Result<()> {
    let bundle = kiln_model::bundle::load(&args.model)
        .with_context(|| format!("cannot load the model `{}`", args.model.display()))?;
    let p = &bundle.pipeline;
    let table = kiln_core::csv::read_path(&args.input)?;
    let cannot = || format!("cannot score `{}`", args.input.display());
    let conformed = infer::conform(p, &table, RowNaming::CsvLine).with_context(cannot)?;
    if let Some((_, e)) = conformed.row_errors.first() {
        return Err(anyhow::anyhow!("{e}")).with_context(cannot);
    }
    let pred = p.predict(&conformed.table).with_context(cannot)?;
    let target = p.task.target();
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let (report, doc) = match (&p.task, &pred) {
        (Task::Classification { classes, .. }, Predictions::Classes { index, scores, .. }) => {
            let mut y = Vec::with_capacity(table.n_rows());
            for (i, v) in table.text(target)?.into_iter().enumerate() {
                let v = v.with_context(|| {
                    format!("{}, line {}: `{target}` is empty", args.input.display(), table.line(i))
                })?;
                let Some(k) = classes.iter().position(|c| *c == v) else {
                    bail!(
                        "{}, line {}: class `{v}` of `{target}` is not one the model knows ({})",
                        args.input.display(),
                        table.line(i),
                        classes.join(", ")
                    );
                };
                y.push(k);
            }
            let rep = metrics::ClassificationReport::new(&y, index, classes)?;
            let mut doc = rep.to_json();
            let mut text = rep.render();
            if classes.len() == 2 && y.contains(&0) && y.contains(&1) {
                let truth: Vec<bool> = y.iter().map(|&c| c == 1).collect();
                let pos: Vec<f64> = (0..scores.n_rows).map(|i| scores.get(i, 1)).collect();
                let auc = metrics::roc_auc(&truth, &pos);
                doc["roc_auc"] = json!(auc);
                text.push_str(&format!("\nROC AUC ({}): {auc:.4}\n", classes[1]));
                if let Some(dir) = &args.plots {
                    let (fpr, tpr, _) = metrics::roc_curve(&truth, &pos);
                    plots::roc_curve_png(&dir.join("roc_curve.png"), &fpr, &tpr, auc)?;
                }
            }
            let cm = metrics::confusion_matrix(&y, index, classes.len());
            if let Some(dir) = &args.plots {
                plots::confusion_matrix_png(&dir.join("confusion_matrix.png"), &cm, classes)?;
            }
            doc["confusion_matrix"] = json!(cm);
            (text, doc)
        }
        (Task::Regression { .. }, Predictions::Values(v)) => {
            let y = table.numeric(target)?;
            if let Some(i) = y.iter().position(|x| x.is_nan()) {
                bail!("{}, line {}: `{target}` is empty or not a number", args.input.display(), table.line(i));
            }
            let rep = metrics::RegressionReport::new(&y, v)?;
            (rep.render(), rep.to_json())
        }
        _ => bail!("the model's task and its predictions differ"),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    write_atomic(&args.metrics, &bytes)?;
    if !out.quiet {
        #[allow(clippy::print_stdout)]
        {
            println!("{report}");
        }
    }
    Ok(())
}
