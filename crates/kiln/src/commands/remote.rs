//! `kiln push`, `kiln fetch`, `kiln pull` and `kiln remote …`: DVC-compatible remotes.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use kiln_cache::Repo;
use kiln_remote::Remote;
use kiln_remote::config::{Level, Location, Remotes};
use kiln_remote::transfer::{Missing, Progress, Summary};

use crate::Output;

/// Options of `push`, `fetch` and `pull`.
#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// `.dvc` files, outputs (or directories holding them) or stage names [default: all].
    targets: Vec<String>,
    /// The remote to use [default: `core.remote` of .dvc/config].
    #[arg(short, long)]
    remote: Option<String>,
    /// Objects transferred at once [default: the remote's `jobs`, else 4 per core, at most 32].
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

/// Upload the cache objects of tracked data and pipeline outputs to a remote (as `dvc push`).
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    transfer: TransferArgs,
}

/// Download the cache objects of tracked data and pipeline outputs from a remote into the
/// cache, without touching the workspace (as `dvc fetch`).
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    transfer: TransferArgs,
}

/// Fetch from a remote, then check the data out into the workspace (as `dvc pull`).
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    transfer: TransferArgs,
    /// Overwrite modified data even when its content is not in the cache (it is lost).
    #[arg(short, long)]
    force: bool,
}

/// Configure remotes in .dvc/config (as `dvc remote`; `dvc` reads what kiln writes).
#[derive(Debug, clap::Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RemoteCommand {
    /// Add a remote: a local directory (absolute, or relative to here) or s3://bucket/prefix.
    Add {
        name: String,
        url: String,
        /// Make it the default remote.
        #[arg(short, long)]
        default: bool,
        /// Replace a remote of that name.
        #[arg(short, long)]
        force: bool,
        /// Write .dvc/config.local (this machine's, not committed) instead of .dvc/config.
        #[arg(long)]
        local: bool,
    },
    /// List the remotes: name, URL, and which is the default.
    List,
    /// Remove a remote (and unset it as the default).
    Remove {
        name: String,
        /// From .dvc/config.local.
        #[arg(long)]
        local: bool,
    },
    /// Show the default remote, or set it.
    Default {
        /// The remote to make the default [default: show the current one].
        name: Option<String>,
        /// Unset the default remote.
        #[arg(short, long, conflicts_with = "name")]
        unset: bool,
        /// In .dvc/config.local.
        #[arg(long)]
        local: bool,
    },
    /// Set (or unset) an option of a remote: endpointurl, region, access_key_id, secret_access_key, jobs, url, ….
    Modify {
        name: String,
        key: String,
        /// The value (required unless --unset).
        #[arg(required_unless_present = "unset")]
        value: Option<String>,
        /// Remove the option.
        #[arg(short, long, conflicts_with = "value")]
        unset: bool,
        /// In .dvc/config.local (credentials belong there).
        #[arg(long)]
        local: bool,
    },
}

fn level(local: bool) -> Level {
    if local { Level::Local } else { Level::Repo }
}

pub fn remote(args: &RemoteArgs, _out: Output) -> anyhow::Result<()> {
    let repo = Repo::find(Path::new("."))?;
    let remotes = Remotes::load(&repo.root)?;
    match &args.command {
        RemoteCommand::Add { name, url, default, force, local } => {
            remotes.add(name, url, *default, *force, level(*local))?;
            if *default {
                writeln!(std::io::stderr(), "Setting '{name}' as a default remote.")?;
            }
        }
        RemoteCommand::List => {
            let default = remotes.default_name().map(str::to_owned);
            let mut stdout = std::io::stdout().lock();
            for (name, url) in remotes.list() {
                // Local paths shown resolved, as `dvc remote list` shows them.
                let shown = match remotes.get(Some(&name)).and_then(|s| s.location()) {
                    Ok(Location::Local(p)) => p.display().to_string(),
                    _ => url,
                };
                let mark = if default.as_deref() == Some(name.as_str()) { "\t(default)" } else { "" };
                writeln!(stdout, "{name}\t{shown}{mark}")?;
            }
        }
        RemoteCommand::Remove { name, local } => remotes.remove(name, level(*local))?,
        RemoteCommand::Default { name, unset, local } => match (name, unset) {
            (Some(n), _) => remotes.set_default(Some(n), level(*local))?,
            (None, true) => remotes.set_default(None, level(*local))?,
            (None, false) => {
                let Some(d) = remotes.default_name() else {
                    anyhow::bail!("no default remote set (`kiln remote default NAME` sets one)");
                };
                writeln!(std::io::stdout(), "{d}")?;
            }
        },
        RemoteCommand::Modify { name, key, value, unset, local } => {
            remotes.modify(name, key, if *unset { None } else { value.as_deref() }, level(*local))?;
        }
    }
    Ok(())
}

/// A progress bar fed by the transfer's threads.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn add(&self, n: usize) {
        self.0.inc_length(n as u64);
    }

    fn done(&self) {
        self.0.inc(1);
    }
}

/// The repository, the chosen remote (opened), its selected outputs and the number of jobs.
fn prepare(args: &TransferArgs) -> anyhow::Result<(Repo, Remote, Vec<kiln_remote::outputs::Output>, usize)> {
    let repo = Repo::find(Path::new("."))?;
    let spec = Remotes::load(&repo.root)?.get(args.remote.as_deref())?;
    let remote = Remote::open(&spec)?;
    let outputs = kiln_remote::outputs::select(&repo, &args.targets)?;
    let jobs = args.jobs.map(usize::from).or_else(|| spec.jobs()).unwrap_or_else(kiln_remote::default_jobs);
    Ok((repo, remote, outputs, jobs))
}

fn bar(out: Output, verb: &str) -> Bar {
    let pb = super::progress_bar(out.progress, 0, &format!("{verb} {{bar:30}} {{pos}}/{{len}} objects"));
    Bar(pb)
}

/// Prints what is missing and what failed on stderr; true when something did.
fn report(summary: &Summary, what: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    if !summary.missing.is_empty() {
        writeln!(
            err,
            "WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache files:"
        )?;
        for Missing { md5, name } in &summary.missing {
            writeln!(err, "name: {name}, md5: {md5}")?;
        }
    }
    for e in &summary.failed {
        let mut line = format!("error: failed to {what}: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            line.push_str(&format!(": {s}"));
            source = s.source();
        }
        writeln!(err, "{line}")?;
    }
    Ok(!summary.complete())
}

fn files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

fn incomplete(summary: &Summary, verb: &str, remote: &Remote) -> anyhow::Error {
    let mut parts = Vec::new();
    if !summary.missing.is_empty() {
        parts.push(format!("{} missing", files(summary.missing.len())));
    }
    if !summary.failed.is_empty() {
        parts.push(format!("{} failed", files(summary.failed.len())));
    }
    let dir = if verb == "push" { "to" } else { "from" };
    anyhow::anyhow!("failed to {verb} data {dir} remote '{}': {}", remote.name, parts.join(", "))
}

/// A transfer one way, as `kiln_remote::push` and `kiln_remote::fetch` both are.
type Transfer = fn(
    &Repo,
    &Remote,
    &[kiln_remote::outputs::Output],
    usize,
    &dyn Progress,
) -> Result<Summary, kiln_remote::RemoteError>;

/// `push` and `fetch`: the same steps and report, in the words of each direction.
fn push_or_fetch(args: &TransferArgs, out: Output, push: bool) -> anyhow::Result<()> {
    let (verb, dir, what, done, transfer): (&str, &str, &str, &str, Transfer) = if push {
        ("push", "to", "upload", "pushed", kiln_remote::push)
    } else {
        ("fetch", "from", "download", "fetched", kiln_remote::fetch)
    };
    let (repo, remote, outputs, jobs) = prepare(args)?;
    let pb = bar(out, verb);
    let summary = transfer(&repo, &remote, &outputs, jobs, &pb)
        .with_context(|| format!("failed to {verb} data {dir} remote '{}' ({})", remote.name, remote.url))?;
    pb.0.finish_and_clear();
    let bad = report(&summary, what)?;
    if !out.quiet {
        let mut stdout = std::io::stdout().lock();
        if summary.transferred == 0 && !bad {
            writeln!(stdout, "Everything is up to date.")?;
        } else {
            writeln!(stdout, "{} {done}", files(summary.transferred))?;
        }
    }
    if bad {
        return Err(incomplete(&summary, verb, &remote));
    }
    Ok(())
}

pub fn push(args: &PushArgs, out: Output) -> anyhow::Result<()> {
    push_or_fetch(&args.transfer, out, true)
}

pub fn fetch(args: &FetchArgs, out: Output) -> anyhow::Result<()> {
    push_or_fetch(&args.transfer, out, false)
}

pub fn pull(args: &PullArgs, out: Output) -> anyhow::Result<()> {
    let (repo, remote, outputs, jobs) = prepare(&args.transfer)?;
    let pb = bar(out, "pull");
    let pulled = kiln_remote::pull(&repo, &remote, &outputs, jobs, args.force, &pb)
        .with_context(|| format!("failed to pull data from remote '{}' ({})", remote.name, remote.url))?;
    pb.0.finish_and_clear();
    let bad = report(&pulled.fetch, "download")?;
    {
        let mut err = std::io::stderr().lock();
        for e in &pulled.failed {
            writeln!(err, "error: checkout failed: {e}")?;
        }
    }
    if !out.quiet {
        let mut stdout = std::io::stdout().lock();
        for r in &pulled.restored {
            writeln!(stdout, "{}\t{}", if r.added { "A" } else { "M" }, r.name)?;
        }
        let fetched = pulled.fetch.transferred;
        if fetched == 0 && pulled.restored.is_empty() && !bad && pulled.failed.is_empty() {
            writeln!(stdout, "Everything is up to date.")?;
        } else if fetched > 0 {
            writeln!(stdout, "{} fetched", files(fetched))?;
        }
    }
    if bad {
        return Err(incomplete(&pulled.fetch, "pull", &remote));
    }
    if let Some(first) = pulled.failed.into_iter().next() {
        return Err(anyhow::Error::new(first).context("checkout failed"));
    }
    Ok(())
}
