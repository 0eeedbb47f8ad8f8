//! `kiln init`, `kiln add`, `kiln status`, `kiln checkout`: DVC-compatible data versioning.

use std::io::Write;
use std::path::PathBuf;

use kiln_cache::Repo;

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
    let unused = repo.gc(true)?;
    let mut stdout = std::io::stdout().lock();
    if args.dry || unused.is_empty() {
        for p in &unused {
            writeln!(stdout, "{}", p.display())?;
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
    let removed = repo.gc(false)?;
    if !out.quiet {
        writeln!(stdout, "Removed {} objects from the cache.", removed.len())?;
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

pub fn status(args: &StatusArgs, _out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let changes = repo.status()?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let doc: serde_json::Map<String, serde_json::Value> = changes
            .iter()
            .map(|(file, outs)| {
                let outs: serde_json::Map<String, serde_json::Value> =
                    outs.iter().map(|(p, c)| (p.clone(), serde_json::json!(c.word()))).collect();
                (file.clone(), serde_json::json!([{ "changed outs": outs }]))
            })
            .collect();
        writeln!(stdout, "{}", serde_json::Value::Object(doc))?;
        return Ok(());
    }
    if changes.is_empty() {
        writeln!(stdout, "Data and pipelines are up to date.")?;
    }
    for (file, outs) in &changes {
        writeln!(stdout, "{file}:\n\tchanged outs:")?;
        for (p, c) in outs {
            writeln!(stdout, "\t\t{:<20}{p}", format!("{}:", c.word()))?;
        }
    }
    Ok(())
}

pub fn checkout(args: &CheckoutArgs, out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(std::path::Path::new("."))?;
    let restored = repo.checkout(&args.targets, args.force)?;
    if !out.quiet {
        let mut stdout = std::io::stdout().lock();
        for p in &restored {
            writeln!(stdout, "M\t{p}")?;
        }
    }
    Ok(())
}
