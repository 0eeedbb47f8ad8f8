//! `kiln evaluate`: arguments and the printed report; the scoring is `kiln_train::evaluate`'s
//! (the same JSON shape as `kiln train`'s `metrics.json`), for an evaluate stage of a pipeline.

use std::path::PathBuf;

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

pub fn run(args: &EvaluateArgs, out: Output) -> anyhow::Result<()> {
    let scored = kiln_train::evaluate::evaluate(&args.model, &args.input, &args.metrics, args.plots.as_deref())?;
    if !out.quiet {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", scored.report);
        }
    }
    Ok(())
}
