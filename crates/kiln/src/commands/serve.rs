//! `kiln serve`: the scoring server.

use std::time::Duration;

use anyhow::Context;
use kiln_serve::ServeOptions;

use crate::Output;

/// Serve a model over HTTP: MLflow's /invocations, /predict, the Open Inference Protocol v2.
#[derive(Debug, clap::Args)]
#[command(after_help = "Routes: POST /invocations (MLflow scoring protocol), POST /predict, \
/v2/... (Open Inference Protocol), GET /ping /health /version /metrics /openapi.json.\n\
SIGTERM or Ctrl-C stops accepting, lets in-flight requests finish, then exits 0.\n\
With -m models:/NAME@ALIAS (or a stage, or latest) the server follows the registry: every \
--poll-interval it asks which version the alias names and swaps a new one in once it has loaded \
and predicted its input example; a version that fails is logged and counted in /metrics, and the \
old one keeps serving.")]
pub struct ServeArgs {
    /// The model: a bundle directory (the `model/` that `kiln train` wrote), or a URI resolved
    /// through --tracking-uri: models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME/latest,
    /// models:/NAME@ALIAS, models:/MODEL_ID, runs:/RUN_ID/PATH, mlflow-artifacts:/PATH, file://PATH.
    #[arg(short, long, value_name = "DIR|URI")]
    model: String,
    /// The tracking server that resolves models:/ and runs:/ URIs (`kiln server` or
    /// `mlflow server`, http://…).
    #[arg(long, env = "MLFLOW_TRACKING_URI", value_name = "URL")]
    tracking_uri: Option<String>,
    /// Seconds between asking the tracking server which version an alias, a stage or `latest`
    /// names (a pinned version, a run or a directory is not watched).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    poll_interval: f64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(short, long, default_value_t = 8080)]
    port: u16,
    /// Threads answering HTTP requests [default: the number of CPUs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// The model's name under /v2/models/{name} [default: the bundle directory's name].
    #[arg(long)]
    name: Option<String>,
    /// Most rows in one request (413 beyond), and in one micro-batch.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_batch_size: u64,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_body_bytes: u64,
    /// Seconds a request may take from its first byte to its answer (408 beyond); also the
    /// limit for sending a request's headers.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    timeout: f64,
    /// Longest a micro-batch waits, in microseconds, for requests already being received (it
    /// never waits when none is). 0: a batch is what queued up while the previous predict ran.
    /// Worth raising only for models whose predict call has a large fixed cost.
    #[arg(long, default_value_t = 0, value_name = "MICROS")]
    batch_wait_us: u64,
    /// Predict every request on its own instead of gathering concurrent ones.
    #[arg(long)]
    no_batching: bool,
    /// Seconds a shutdown waits for in-flight requests before closing connections.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    drain_timeout: f64,
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{name} must be a positive number of seconds, got {v}"))
}

pub fn run(args: &ServeArgs, out: Output) -> anyhow::Result<()> {
    let name = args.name.clone().unwrap_or_else(|| kiln_serve::source::default_name(&args.model));
    let workers = args.workers.map_or_else(|| std::thread::available_parallelism().map_or(2, usize::from), usize::from);
    let options = ServeOptions {
        host: args.host.clone(),
        port: args.port,
        workers,
        name,
        max_batch_size: usize::try_from(args.max_batch_size).unwrap_or(usize::MAX),
        max_body_bytes: usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX),
        timeout: seconds("timeout", args.timeout)?,
        batch_wait: (!args.no_batching).then(|| Duration::from_micros(args.batch_wait_us)),
        drain_timeout: seconds("drain-timeout", args.drain_timeout)?,
        poll_interval: seconds("poll-interval", args.poll_interval)?,
    };
    let source = kiln_serve::source::open(&args.model, args.tracking_uri.as_deref(), kiln_client::default_cache_dir())
        .with_context(|| format!("cannot serve `{}`", args.model))?;
    let quiet = out.quiet;
    kiln_serve::run(source, options, |addr| {
        if !quiet {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("serving {} on http://{addr} (Ctrl-C or SIGTERM stops)", args.model);
            }
        }
    })?;
    Ok(())
}
