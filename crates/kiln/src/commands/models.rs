//! `kiln models`: the model registry of a tracking server (`kiln server` or `mlflow server`),
//! over its REST API.

use std::io::Write;

use anyhow::Context;
use kiln_client::TrackingClient;
use kiln_wire::{KeyValue, ModelVersion};

use crate::Output;

/// Manage registered models: list, show, register, aliases, stages, delete.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  kiln models register runs:/<run id>/model spam --alias champion\n  \
kiln models alias set spam champion 3\n  kiln models show spam --json")]
pub struct ModelsArgs {
    /// The tracking server (http://…).
    #[arg(long, env = "MLFLOW_TRACKING_URI", value_name = "URL", global = true)]
    tracking_uri: Option<String>,
    /// Print JSON (MLflow's shapes) instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ModelsCommand {
    /// List registered models.
    List {
        /// MLflow search filter, e.g. "name LIKE 'spam%'" or "tags.team = 'ml'".
        #[arg(long, default_value = "")]
        filter: String,
    },
    /// Show a registered model and its versions, or one version.
    #[command(disable_version_flag = true)]
    Show {
        name: String,
        /// Only this version.
        #[arg(long = "version", id = "model_version", value_name = "VERSION")]
        version: Option<String>,
    },
    /// Register a new version of a model (created if missing) from a logged model.
    Register {
        /// Where the model is: runs:/<run id>/<path>, models:/<model id>, or an artifact URI.
        model_uri: String,
        /// The registered model's name.
        name: String,
        /// The version's description.
        #[arg(long)]
        description: Option<String>,
        /// A tag on the version, KEY=VALUE (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Point this alias at the new version (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
    /// Set or remove an alias.
    Alias {
        #[command(subcommand)]
        command: AliasCommand,
    },
    /// Move a version to a stage: None, Staging, Production or Archived (legacy stages).
    Stage {
        name: String,
        #[arg(id = "model_version", value_name = "VERSION")]
        version: String,
        stage: String,
        /// Move the other versions in that stage to Archived.
        #[arg(long)]
        archive_existing: bool,
    },
    /// Delete a registered model (with all its versions), or one version.
    #[command(disable_version_flag = true)]
    Delete {
        name: String,
        /// Only this version.
        #[arg(long = "version", id = "model_version", value_name = "VERSION")]
        version: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum AliasCommand {
    /// Point ALIAS at VERSION (moving it if it named another).
    Set {
        name: String,
        alias: String,
        #[arg(id = "model_version", value_name = "VERSION")]
        version: String,
    },
    /// Remove ALIAS.
    Unset { name: String, alias: String },
}

fn tag(s: &str) -> anyhow::Result<KeyValue> {
    let (k, v) = s.split_once('=').with_context(|| format!("--tag `{s}`: expected KEY=VALUE"))?;
    Ok(KeyValue { key: k.to_owned(), value: v.to_owned() })
}

fn version_line(v: &ModelVersion) -> String {
    let aliases = if v.aliases.is_empty() { String::new() } else { format!(" @{}", v.aliases.join(" @")) };
    format!("  version {:<4} {:<10} run {:<32} {}{aliases}", v.version, v.current_stage, v.run_id, v.source)
}

pub fn run(args: &ModelsArgs, out: Output) -> anyhow::Result<()> {
    let uri = args
        .tracking_uri
        .as_deref()
        .filter(|u| !u.is_empty())
        .context("kiln models needs a tracking server: --tracking-uri URL or MLFLOW_TRACKING_URI")?;
    let client = TrackingClient::new(uri)?;
    let mut stdout = std::io::stdout().lock();
    match &args.command {
        ModelsCommand::List { filter } => {
            let models = client.search_registered_models(filter)?;
            if args.json {
                return print_json(&mut stdout, &models);
            }
            for m in &models {
                let latest = m.latest_versions.iter().filter_map(|v| v.version.parse::<i64>().ok()).max();
                let aliases: Vec<String> = m.aliases.iter().map(|a| format!("@{}={}", a.alias, a.version)).collect();
                writeln!(
                    stdout,
                    "{:<30} latest {:<5} {} {}",
                    m.name,
                    latest.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                    aliases.join(" "),
                    m.description
                )?;
            }
        }
        ModelsCommand::Show { name, version: Some(version) } => {
            let v = client.model_version(name, version)?;
            if args.json {
                return print_json(&mut stdout, &v);
            }
            writeln!(stdout, "{} version {}", v.name, v.version)?;
            writeln!(stdout, "{}", version_line(&v))?;
            for t in &v.tags {
                writeln!(stdout, "  tag {}={}", t.key, t.value)?;
            }
        }
        ModelsCommand::Show { name, version: None } => {
            let d = client.model_details(name)?;
            if args.json {
                return print_json(&mut stdout, &d);
            }
            writeln!(
                stdout,
                "{}{}",
                d.model.name,
                if d.model.description.is_empty() { String::new() } else { format!(": {}", d.model.description) }
            )?;
            for t in &d.model.tags {
                writeln!(stdout, "  tag {}={}", t.key, t.value)?;
            }
            for v in &d.versions {
                writeln!(stdout, "{}", version_line(v))?;
            }
        }
        ModelsCommand::Register { model_uri, name, description, tags, aliases } => {
            let tags = tags.iter().map(|t| tag(t)).collect::<anyhow::Result<Vec<_>>>()?;
            // Read by kiln-core's one URI parser: the run a `runs:/<run>/<path>` URI names
            // becomes the version's run, and MLflow 3 requires a `models:/<model id>` source
            // to carry that id.
            let parsed =
                kiln_core::uri::ModelUri::parse(model_uri).with_context(|| format!("cannot register `{model_uri}`"))?;
            let (run_id, model_id) = match &parsed {
                kiln_core::uri::ModelUri::Run { run_id, .. } => (Some(run_id.as_str()), None),
                kiln_core::uri::ModelUri::LoggedModel { model_id } => (None, Some(model_id.as_str())),
                _ => (None, None),
            };
            client.ensure_registered_model(name)?;
            let v = client
                .create_model_version(name, model_uri, run_id, model_id, description.as_deref(), &tags)
                .with_context(|| format!("cannot register `{model_uri}` as a version of `{name}`"))?;
            for a in aliases {
                client.set_alias(name, a, &v.version)?;
            }
            let v = if aliases.is_empty() { v } else { client.model_version(name, &v.version)? };
            if args.json {
                return print_json(&mut stdout, &v);
            }
            if !out.quiet {
                writeln!(stdout, "registered {} version {} from {}", v.name, v.version, v.source)?;
            }
        }
        ModelsCommand::Alias { command: AliasCommand::Set { name, alias, version } } => {
            client.set_alias(name, alias, version)?;
            if !out.quiet {
                writeln!(stdout, "{name}@{alias} -> version {version}")?;
            }
        }
        ModelsCommand::Alias { command: AliasCommand::Unset { name, alias } } => {
            client.delete_alias(name, alias)?;
            if !out.quiet {
                writeln!(stdout, "removed {name}@{alias}")?;
            }
        }
        ModelsCommand::Stage { name, version, stage, archive_existing } => {
            let v = client.transition_stage(name, version, stage, *archive_existing)?;
            if args.json {
                return print_json(&mut stdout, &v);
            }
            if !out.quiet {
                writeln!(stdout, "{} version {} is now in {}", v.name, v.version, v.current_stage)?;
            }
        }
        ModelsCommand::Delete { name, version } => {
            match version {
                Some(v) => client.delete_model_version(name, v)?,
                None => client.delete_registered_model(name)?,
            }
            if !out.quiet {
                match version {
                    Some(v) => writeln!(stdout, "deleted {name} version {v}")?,
                    None => writeln!(stdout, "deleted {name} and all its versions")?,
                }
            }
        }
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(stdout: &mut impl Write, v: &T) -> anyhow::Result<()> {
    writeln!(stdout, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}
