//! `kiln server`: the MLflow-compatible tracking server.

use kiln_server::ServerOptions;

use crate::Output;

/// Run the tracking server: MLflow's REST API, so the `mlflow` client works unchanged.
#[derive(Debug, clap::Args)]
#[command(after_help = "Point the mlflow client at it: MLFLOW_TRACKING_URI=http://127.0.0.1:5000.\n\
Every flag can also be set in the environment (KILN_BACKEND_STORE_URI, KILN_HOST, …).")]
pub struct ServerArgs {
    /// Where runs are stored: sqlite:///path.db (relative) or sqlite:////abs/path.db,
    /// postgresql://user@host/db, mysql://user:password@host/db.
    #[arg(long, env = "KILN_BACKEND_STORE_URI", default_value = "sqlite:///mlflow.db")]
    backend_store_uri: String,
    /// The artifact root new experiments get (`<root>/<experiment id>`).
    #[arg(long, env = "KILN_DEFAULT_ARTIFACT_ROOT", default_value = "mlflow-artifacts:")]
    default_artifact_root: String,
    /// Where uploaded artifacts are kept (the `mlflow-artifacts` proxy): a local directory,
    /// file:///abs/dir, or s3://bucket/prefix (credentials and endpoint from AWS_* and
    /// MLFLOW_S3_ENDPOINT_URL).
    #[arg(long, env = "KILN_ARTIFACTS_DESTINATION", default_value = "mlartifacts")]
    artifacts_destination: String,
    /// Address to listen on.
    #[arg(long, env = "KILN_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(short, long, env = "KILN_PORT", default_value_t = 5000)]
    port: u16,
}

pub fn run(args: &ServerArgs, out: Output) -> anyhow::Result<()> {
    let options = ServerOptions {
        backend_store_uri: args.backend_store_uri.clone(),
        artifact_root: args.default_artifact_root.clone(),
        artifacts_destination: args.artifacts_destination.clone(),
        host: args.host.clone(),
        port: args.port,
    };
    let quiet = out.quiet;
    // The same SIGTERM/Ctrl-C handling `kiln serve` uses.
    kiln_server::run(&options, kiln_serve::server::shutdown_signal(), |addr| {
        if !quiet {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("tracking server on http://{addr} (Ctrl-C or SIGTERM stops)");
            }
        }
    })?;
    Ok(())
}
