//! `kiln init`, `kiln add`, `kiln status`, `kiln checkout`: DVC-compatible data versioning.

use std::io::Write;
use std::path::PathBuf;

use kiln_cache::Repo;
use kiln_pipeline::repro::{DepChange, Reason};

use crate::Output;

/// Create a DVC repository here (`.dvc/`, as `dvc init`): kiln and dvc both work in it.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The directory [default: the current one].
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Track files or directories: store them in the cache and write `<target>.dvc` (as `dvc add`).
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Files or directories inside the repository.
    #[arg(required = true)]
    targets: Vec<PathBuf>,
}

/// Show which tracked data differs from its `.dvc` file (as `dvc status`).
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print DVC's JSON (`{}` when everything is up to date).
    #[arg(long)]
    json: bool,
}

/// Restore tracked data from the cache (as `dvc checkout`).
#[derive(Debug, clap::Args)]
pub struct CheckoutArgs {
    /// `.dvc` files or their outputs [default: all].
    targets: Vec<PathBuf>,
    /// Overwrite modified data even when its content is not in the cache (it is lost).
    #[arg(short, long)]
    force: bool,
}

/// Remove cache objects the workspace no longer uses (as `dvc gc --workspace`).
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Keep what the workspace's .dvc files and dvc.lock use (the only scope so far; required,
    /// as in DVC, so that nothing is removed by accident).
    #[arg(short, long, required = true)]
    workspace: bool,
    /// Remove without asking.
    #[arg(short, long)]
    force: bool,
    /// Only list what would be removed.
    #[arg(long)]
    dry: bool,
}

pub fn gc(args: &GcArgs, out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let unused = repo.unused_objects()?;
    let mut stdout = std::io::stdout().lock();
    if args.dry || unused.is_empty() {
        for p in &unused {
            writeln!(stdout, "{}", p.display())?;
        }
        if !args.dry {
            // Nothing to remove from the cache; the state still forgets what is gone.
            repo.remove_objects(&[])?;
        }
        if !out.quiet && unused.is_empty() {
            writeln!(stdout, "No unused cache to remove.")?;
        }
        return Ok(());
    }
    if !args.force {
        use std::io::IsTerminal;
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "{} unused cache objects would be removed; pass --force to remove them without asking",
            unused.len()
        );
        write!(stdout, "{} unused cache objects will be removed. Proceed? [y/n] ", unused.len())?;
        stdout.flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            writeln!(stdout, "nothing removed")?;
            return Ok(());
        }
    }
    repo.remove_objects(&unused)?;
    if !out.quiet {
        writeln!(stdout, "Removed {} objects from the cache.", unused.len())?;
    }
    Ok(())
}

pub fn init(args: &InitArgs, out: Output) -> anyhow::Result<()> {
    let repo = Repo::init(&args.dir)?;
    if !out.quiet {
        writeln!(std::io::stdout(), "Initialized a DVC repository in {}", repo.root.display())?;
    }
    Ok(())
}

pub fn add(args: &AddArgs, out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let added = repo.add(&args.targets)?;
    if !out.quiet {
        let mut stdout = std::io::stdout().lock();
        for a in &added {
            let rel = a.dvc_file.strip_prefix(&repo.root).unwrap_or(&a.dvc_file);
            writeln!(stdout, "{} ({}, {} bytes)", rel.display(), a.hash.md5, a.hash.size)?;
        }
    }
    Ok(())
}

/// One stage's reasons as DVC's `status --json` items.
fn reasons_json(reasons: &[Reason]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = reasons
        .iter()
        .map(|r| match r {
            Reason::Deps(deps) => {
                let m: serde_json::Map<String, serde_json::Value> = deps
                    .iter()
                    .map(|(p, c)| {
                        let v = match c {
                            DepChange::Path(w) => serde_json::json!(w),
                            DepChange::Params(kv) => serde_json::Value::Object(
                                kv.iter().map(|(k, w)| (k.clone(), serde_json::json!(w))).collect(),
                            ),
                        };
                        (p.clone(), v)
                    })
                    .collect();
                serde_json::json!({ "changed deps": m })
            }
            Reason::Outs(outs) => {
                let m: serde_json::Map<String, serde_json::Value> =
                    outs.iter().map(|(p, w)| (p.clone(), serde_json::json!(w))).collect();
                serde_json::json!({ "changed outs": m })
            }
            Reason::Command => serde_json::json!("changed command"),
            Reason::AlwaysChanged => serde_json::json!("always changed"),
        })
        .collect();
    serde_json::Value::Array(items)
}

fn word_line(out: &mut impl Write, tabs: &str, word: &str, what: &str) -> std::io::Result<()> {
    writeln!(out, "{tabs}{:<20}{what}", format!("{word}:"))
}

pub fn status(args: &StatusArgs, _out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let stages = if repo.root.join("dvc.yaml").is_file() {
        let pipeline = kiln_pipeline::Pipeline::load(&repo.root)?;
        kiln_pipeline::status(&repo, &pipeline)?
    } else {
        Vec::new()
    };
    let changes = repo.status()?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let mut doc = serde_json::Map::new();
        for (name, reasons) in &stages {
            doc.insert(name.clone(), reasons_json(reasons));
        }
        for (file, outs) in &changes {
            let outs: serde_json::Map<String, serde_json::Value> =
                outs.iter().map(|(p, c)| (p.clone(), serde_json::json!(c.word()))).collect();
            doc.insert(file.clone(), serde_json::json!([{ "changed outs": outs }]));
        }
        writeln!(stdout, "{}", serde_json::Value::Object(doc))?;
        return Ok(());
    }
    if changes.is_empty() && stages.is_empty() {
        writeln!(stdout, "Data and pipelines are up to date.")?;
    }
    for (name, reasons) in &stages {
        writeln!(stdout, "{name}:")?;
        for r in reasons {
            match r {
                Reason::Deps(deps) => {
                    writeln!(stdout, "\tchanged deps:")?;
                    for (p, c) in deps {
                        match c {
                            DepChange::Path(w) => word_line(&mut stdout, "\t\t", w, p)?,
                            DepChange::Params(kv) => {
                                writeln!(stdout, "\t\t{p}:")?;
                                for (k, w) in kv {
                                    word_line(&mut stdout, "\t\t\t", w, k)?;
                                }
                            }
                        }
                    }
                }
                Reason::Outs(outs) => {
                    writeln!(stdout, "\tchanged outs:")?;
                    for (p, w) in outs {
                        word_line(&mut stdout, "\t\t", w, p)?;
                    }
                }
                Reason::Command => writeln!(stdout, "\tchanged command")?,
                Reason::AlwaysChanged => writeln!(stdout, "\talways changed")?,
            }
        }
    }
    for (file, outs) in &changes {
        writeln!(stdout, "{file}:\n\tchanged outs:")?;
        for (p, c) in outs {
            word_line(&mut stdout, "\t\t", c.word(), p)?;
        }
    }
    Ok(())
}

/// Run the pipeline's changed stages, upstream first (as `dvc repro`).
#[derive(Debug, clap::Args)]
pub struct ReproArgs {
    /// Stage names [default: every stage of dvc.yaml].
    targets: Vec<String>,
    /// Run the stages (and their upstream) even if nothing changed.
    #[arg(short, long)]
    force: bool,
    /// Only the targets, not the stages they depend on.
    #[arg(short, long)]
    single_item: bool,
    /// Stages to run at once where the graph allows.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// The targets and every stage that depends on them (not the stages they depend on).
    #[arg(long, conflicts_with_all = ["single_item", "pipeline"])]
    downstream: bool,
    /// The whole pipeline each target belongs to.
    #[arg(short, long, conflicts_with = "single_item")]
    pipeline: bool,
    /// Print the commands that would run; run nothing, write nothing.
    #[arg(long)]
    dry: bool,
    /// Skip stages whose only changes are missing data (outputs not in the workspace or cache).
    #[arg(long)]
    allow_missing: bool,
    /// After a stage fails, run the stages that do not depend on it; exit non-zero at the end.
    #[arg(short, long)]
    keep_going: bool,
}

/// Metrics of the pipeline (as `dvc metrics`).
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    command: MetricsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MetricsCommand {
    /// The workspace's metrics files (stages' `metrics:` outputs, top-level `metrics:`).
    Show {
        /// DVC's JSON.
        #[arg(long, conflicts_with = "md")]
        json: bool,
        /// A markdown table.
        #[arg(long)]
        md: bool,
    },
    /// Changed metrics between two git revisions, or a revision and the workspace.
    Diff(DiffArgs),
}

/// What `metrics diff` and `params diff` share (DVC's options).
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old revision (a git branch, tag or commit).
    #[arg(default_value = "HEAD")]
    a_rev: String,
    /// The new revision [default: the workspace].
    b_rev: Option<String>,
    /// Show unchanged values too.
    #[arg(long)]
    all: bool,
    /// DVC's JSON: `{file: {key: {"old", "new", "diff"}}}`.
    #[arg(long, conflicts_with = "md")]
    json: bool,
    /// A markdown table.
    #[arg(long)]
    md: bool,
    /// Leave out the Path column.
    #[arg(long)]
    no_path: bool,
    /// Digits after the point that metrics are rounded to.
    #[arg(long, default_value_t = 5)]
    precision: usize,
}

/// Params of the pipeline (as `dvc params`).
#[derive(Debug, clap::Args)]
pub struct ParamsArgs {
    #[command(subcommand)]
    command: ParamsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ParamsCommand {
    /// Changed params between two git revisions, or a revision and the workspace: every key of
    /// `params.yaml`, the keys stages use from other files, top-level `params:` files.
    Diff(DiffArgs),
}

pub fn metrics(args: &MetricsArgs, _out: Output) -> anyhow::Result<()> {
    use kiln_pipeline::metrics;
    let repo = Repo::find(std::path::Path::new("."))?;
    let (json, md) = match &args.command {
        MetricsCommand::Show { json, md } => (*json, *md),
        MetricsCommand::Diff(d) => return diff(&repo, d, true),
    };
    let docs = kiln_pipeline::compare::metrics_of(&repo, &kiln_pipeline::compare::Revision::workspace(&repo.root))?;
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", metrics::json(&docs))?;
        return Ok(());
    }
    if docs.is_empty() {
        return Ok(());
    }
    let (header, rows) = metrics::table(&docs);
    if md {
        writeln!(stdout, "{}", metrics::markdown(&header, &rows))?;
    } else {
        write!(stdout, "{}", metrics::plain(&header, &rows))?;
    }
    Ok(())
}

pub fn params(args: &ParamsArgs, _out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let ParamsCommand::Diff(d) = &args.command;
    diff(&repo, d, false)
}

/// `metrics diff` (`metrics` true) or `params diff`, as DVC prints them.
fn diff(repo: &Repo, args: &DiffArgs, metrics: bool) -> anyhow::Result<()> {
    use kiln_pipeline::compare::{self, Revision, TableStyle};
    // As DVC: a repository without commits has nothing to compare (and no HEAD to name).
    if args.a_rev == "HEAD" && kiln_pipeline::git::rev_parse(&repo.root, "HEAD").is_err() {
        return Ok(());
    }
    let old = Revision::open(&repo.root, Some(&args.a_rev))?;
    let new = Revision::open(&repo.root, args.b_rev.as_deref())?;
    let d = if metrics {
        let side = |r: &Revision| compare::metrics_of(repo, r).map(|docs| compare::flatten_docs(&docs));
        compare::diff(&side(&old)?, &side(&new)?, args.all)
    } else {
        compare::diff(&compare::params_of(&old)?, &compare::params_of(&new)?, args.all)
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", compare::render_json(&d))?;
        return Ok(());
    }
    let style = TableStyle {
        title: if metrics { "Metric" } else { "Param" },
        a_rev: &args.a_rev,
        b_rev: args.b_rev.as_deref().unwrap_or("workspace"),
        changes: metrics,
        precision: metrics.then_some(args.precision),
        no_path: args.no_path,
        markdown: args.md,
    };
    write!(stdout, "{}", compare::render_table(&d, &style))?;
    Ok(())
}

/// Show the pipeline's stage graph (as `dvc dag`).
#[derive(Debug, clap::Args)]
pub struct DagArgs {
    /// Graphviz DOT.
    #[arg(long, conflicts_with_all = ["mermaid", "md"])]
    dot: bool,
    /// A mermaid flowchart.
    #[arg(long, conflicts_with = "md")]
    mermaid: bool,
    /// A mermaid flowchart in a markdown code block.
    #[arg(long)]
    md: bool,
}

pub fn dag(args: &DagArgs, _out: Output) -> anyhow::Result<()> {
    use kiln_pipeline::repro::DagFormat;
    let repo = Repo::find(std::path::Path::new("."))?;
    let pipeline = kiln_pipeline::Pipeline::load(&repo.root)?;
    let format = match (args.dot, args.mermaid, args.md) {
        (true, _, _) => DagFormat::Dot,
        (_, true, _) => DagFormat::Mermaid,
        (_, _, true) => DagFormat::Markdown,
        _ => DagFormat::Text,
    };
    write!(std::io::stdout(), "{}", kiln_pipeline::repro::dag(&pipeline, format)?)?;
    Ok(())
}

pub fn repro(args: &ReproArgs, out: Output) -> anyhow::Result<()> {
    super::catch_interrupts();
    let repo = Repo::find(std::path::Path::new("."))?;
    let pipeline = kiln_pipeline::Pipeline::load(&repo.root)?;
    let opts = kiln_pipeline::ReproOptions {
        targets: args.targets.clone(),
        force: args.force,
        single_item: args.single_item,
        jobs: usize::from(args.jobs),
        downstream: args.downstream,
        pipeline: args.pipeline,
        dry: args.dry,
        allow_missing: args.allow_missing,
        keep_going: args.keep_going,
    };
    let mut log: Box<dyn Write + Send> =
        if out.quiet { Box::new(std::io::sink()) } else { Box::new(std::io::stdout()) };
    kiln_pipeline::repro(&repo, &pipeline, &opts, &mut log)?;
    Ok(())
}

pub fn checkout(args: &CheckoutArgs, out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let mut restored = repo.checkout(&args.targets, args.force)?;
    // With no targets, the pipeline's outputs too (as `dvc checkout`).
    if args.targets.is_empty() && repo.root.join("dvc.yaml").is_file() {
        let (outs, missing) = kiln_pipeline::repro::checkout_outs(&repo, &repo.root, args.force)?;
        for m in &missing {
            tracing::warn!("'{m}' is not in the cache; it cannot be checked out");
        }
        restored.extend(outs);
    }
    if !out.quiet {
        let mut stdout = std::io::stdout().lock();
        for p in &restored {
            writeln!(stdout, "M\t{p}")?;
        }
    }
    Ok(())
}
