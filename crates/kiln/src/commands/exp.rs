//! `kiln exp`: experiments over the pipeline, stored as git refs the way DVC stores them.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use kiln_cache::Repo;
use kiln_pipeline::exp::{self, Override};

use crate::Output;

/// Run, queue, compare, apply and remove experiments (as `dvc exp`).
#[derive(Debug, clap::Args)]
pub struct ExpArgs {
    #[command(subcommand)]
    command: ExpCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ExpCommand {
    /// Run the pipeline with changed params and record the result as an experiment.
    Run(RunArgs),
    /// Tabulate the workspace, its baseline commit and the baseline's experiments.
    Show(ShowArgs),
    /// Write an experiment's files into the workspace and check out its outputs.
    Apply {
        /// The experiment's name.
        name: String,
    },
    /// Make a git branch of an experiment.
    Branch {
        /// The experiment's name.
        name: String,
        /// The new branch.
        branch: String,
    },
    /// Delete experiments or queued runs.
    #[command(alias = "rm")]
    Remove {
        /// Experiment names.
        names: Vec<String>,
        /// Remove every queued run.
        #[arg(long)]
        queue: bool,
    },
    /// List the names of the baseline's experiments and of queued runs.
    #[command(alias = "ls")]
    List,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Set a param: `[<file>:]<key>=<value>` (the file defaults to params.yaml; the value is
    /// read as YAML). Repeatable. With --queue, `a,b`, `range(start,stop[,step])` and
    /// `choice(a,b)` queue one experiment per combination.
    #[arg(short = 'S', long = "set-param", value_name = "[FILE:]KEY=VALUE")]
    set_param: Vec<String>,
    /// The experiment's name [default: a generated one].
    #[arg(short, long)]
    name: Option<String>,
    /// Only queue the run (a snapshot of the workspace with the params set), for `--run-all`.
    #[arg(long, conflicts_with = "run_all")]
    queue: bool,
    /// Run every queued experiment, each in its own copy of the project.
    #[arg(long)]
    run_all: bool,
    /// Queued experiments to run at once (with --run-all); stages run at once otherwise.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Run every stage even if nothing changed.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// A markdown table.
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    md: bool,
    /// JSON: one object per row with its metrics, params and dependency hashes.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV.
    #[arg(long)]
    csv: bool,
    /// Significant digits of floats.
    #[arg(long, default_value_t = 5)]
    precision: usize,
}

pub fn exp(args: &ExpArgs, out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(Path::new("."))?;
    if let ExpCommand::Run(r) = &args.command {
        return run(&repo, r, out);
    }
    // Locked only here: `run`'s stages print from worker threads.
    let mut stdout = std::io::stdout().lock();
    match &args.command {
        ExpCommand::Run(_) => Ok(()),
        ExpCommand::Show(s) => {
            let rows = exp::show(&repo)?;
            if s.json {
                writeln!(stdout, "{}", exp::json(&rows))?;
                return Ok(());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
            let (header, cells) = exp::table(&rows, s.precision, now);
            if s.csv {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(&header)?;
                for c in &cells {
                    w.write_record(c)?;
                }
                stdout.write_all(&w.into_inner().context("writing the CSV")?)?;
            } else if s.md {
                writeln!(stdout, "{}", kiln_pipeline::metrics::markdown(&header, &cells))?;
            } else {
                write!(stdout, "{}", kiln_pipeline::metrics::plain(&header, &cells))?;
            }
            Ok(())
        }
        ExpCommand::Apply { name } => {
            exp::apply(&repo, name)?;
            if !out.quiet {
                writeln!(stdout, "Changes for experiment '{name}' have been applied to your current workspace.")?;
            }
            Ok(())
        }
        ExpCommand::Branch { name, branch } => {
            let commit = exp::branch(&repo, name, branch)?;
            if !out.quiet {
                writeln!(
                    stdout,
                    "Git branch '{branch}' has been created from experiment '{name}' ({}).",
                    &commit[..7]
                )?;
            }
            Ok(())
        }
        ExpCommand::Remove { names, queue } => {
            anyhow::ensure!(!names.is_empty() || *queue, "name the experiments to remove, or pass --queue");
            let removed = exp::remove(&repo, names, *queue)?;
            if !out.quiet {
                writeln!(stdout, "Removed experiments: {}", removed.join(", "))?;
            }
            Ok(())
        }
        ExpCommand::List => {
            let baseline = kiln_pipeline::git::rev_parse(&repo.root, "HEAD")?;
            for e in exp::experiments(&repo.root, &baseline)? {
                writeln!(stdout, "{}", e.name)?;
            }
            for q in exp::queued(&repo.root)? {
                writeln!(stdout, "{} (queued)", q.name)?;
            }
            Ok(())
        }
    }
}

fn run(repo: &Repo, args: &RunArgs, out: Output) -> anyhow::Result<()> {
    super::catch_interrupts();
    let overrides = args.set_param.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let mut stdout = std::io::stdout();
    let runs = exp::sweeps(&overrides)?;
    if args.queue {
        // A sweep queues one experiment per combination, named `<name>-1`, `<name>-2`, … with -n.
        let sweep = runs.len() > 1;
        for (i, set) in runs.iter().enumerate() {
            let name = args.name.as_ref().map(|n| if sweep { format!("{n}-{}", i + 1) } else { n.clone() });
            let name = exp::enqueue(repo, set, name.as_deref())?;
            if !out.quiet {
                writeln!(stdout, "Queued experiment '{name}' for future execution.")?;
            }
        }
        return Ok(());
    }
    anyhow::ensure!(runs.len() == 1, "sweep overrides (a,b / range() / choice()) need --queue, as in DVC");
    if args.run_all {
        anyhow::ensure!(
            overrides.is_empty() && args.name.is_none(),
            "--run-all runs the queue as it is; queue changed params with --queue"
        );
        let quiet = out.quiet;
        let ran = exp::run_queued(repo, usize::from(args.jobs), &|r| {
            let mut o = std::io::stdout().lock();
            if !quiet {
                let _ = write!(o, "{}", r.log);
            }
            if let Err(e) = &r.result {
                let _ = writeln!(std::io::stderr(), "ERROR: experiment '{}' failed: {e}", r.name);
            }
        })?;
        if kiln_pipeline::interrupted() {
            return Err(kiln_pipeline::PipelineError::Interrupted.into());
        }
        let ok: Vec<&str> = ran.iter().filter(|r| r.result.is_ok()).map(|r| r.name.as_str()).collect();
        if !out.quiet {
            writeln!(stdout, "\nRan experiment(s): {}", ok.join(", "))?;
            writeln!(stdout, "To apply the results of an experiment to your workspace run:\n\n\tkiln exp apply <exp>")?;
        }
        let failed = ran.len() - ok.len();
        anyhow::ensure!(failed == 0, "{failed} of {} experiments failed", ran.len());
        return Ok(());
    }
    let opts = kiln_pipeline::ReproOptions { force: args.force, jobs: usize::from(args.jobs), ..Default::default() };
    let mut log: Box<dyn Write + Send> =
        if out.quiet { Box::new(std::io::sink()) } else { Box::new(std::io::stdout()) };
    let name = exp::run_in_workspace(repo, &overrides, args.name.as_deref(), &opts, &mut log)?;
    if !out.quiet {
        writeln!(stdout, "\nRan experiment(s): {name}\nExperiment results have been applied to your workspace.")?;
    }
    Ok(())
}
