//! kiln-serve: the scoring server behind `kiln serve`.
//!
//! - [`routes`]: MLflow's scoring protocol (`/invocations`, `/ping`, `/health`, `/version`), the
//!   seeds' `/predict`, the Open Inference Protocol v2 (`/v2/...`), `/metrics`, `/openapi.json`.
//! - [`input`]: request bodies → tables; values are then checked against the model's signature
//!   by `kiln_model::infer`, the path `kiln predict` takes too.
//! - [`batch`]: adaptive micro-batching (leader/follower, no extra thread).
//! - [`source`]: where the model comes from ([`ModelSource`]): a bundle directory, or a
//!   `runs:/`, `models:/`, `mlflow-artifacts:/` URI resolved and downloaded through a tracking
//!   server by `kiln-client`.
//! - [`watch`]: following a registry alias, stage or `latest`: poll, download, load, smoke-test
//!   on the bundle's input example, then [`AppState::swap`] with no request dropped.
//! - [`server`]: the accept loop: header-read timeout, graceful drain on SIGTERM.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kiln_model::{Bundle, InputKind};

pub mod batch;
pub mod error;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod source;
pub mod watch;

pub use source::{LocalDir, ModelSource, Origin, UriSource};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot load the model from {source_name}")]
    Load {
        source_name: String,
        #[source]
        source: Box<source::SourceError>,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot start the thread that follows {source_name}")]
    Watch {
        source_name: String,
        #[source]
        source: std::io::Error,
    },
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// Threads answering HTTP and predicting (large batches also use rayon's pool).
    pub workers: usize,
    /// The name under `/v2/models/{name}`.
    pub name: String,
    /// Most rows in one request, and in one micro-batch.
    pub max_batch_size: usize,
    pub max_body_bytes: usize,
    /// Deadline for a whole request, from its first byte to its answer; also how long a
    /// connection may take to send a request's headers.
    pub timeout: Duration,
    /// Longest a micro-batch waits for requests on their way; `None` turns batching off (each
    /// request is predicted on its own).
    pub batch_wait: Option<Duration>,
    /// How long a shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How often a source that follows a registry alias, stage or `latest` asks which version
    /// to serve.
    pub poll_interval: Duration,
}

/// A model ready to serve: the bundle and what the routes derive from it once.
#[derive(Debug)]
pub struct LoadedModel {
    pub name: String,
    /// The version reported by `/v2/models/{name}` (the bundle's `model_uuid`).
    pub version: String,
    pub bundle: Bundle,
    /// Where it came from (the `-m` source, the registered version it resolved to).
    pub origin: Origin,
    /// The input column names, in signature order.
    pub input_names: Vec<String>,
    /// One text input: `/predict` takes `{"text": …}` for it.
    pub single_text: bool,
    pub openapi: Vec<u8>,
}

impl LoadedModel {
    #[must_use]
    pub fn new(name: String, bundle: Bundle, origin: Origin) -> Self {
        let inputs = &bundle.pipeline.inputs;
        let input_names = inputs.iter().map(|c| c.name.clone()).collect();
        let single_text = inputs.len() == 1 && inputs[0].kind == InputKind::Text;
        let version = bundle.mlmodel.model_uuid.clone();
        let openapi = openapi::document(&name, &bundle);
        Self { name, version, bundle, origin, input_names, single_text, openapi }
    }
}

/// Shared by every request.
pub struct AppState {
    /// Behind a lock so a registry source can swap in a new version without a restart; each
    /// request takes the `Arc` once and finishes on the model it started with.
    model: RwLock<Arc<LoadedModel>>,
    pub batcher: Option<Arc<batch::Batcher>>,
    pub metrics: Arc<metrics::Metrics>,
    pub options: ServeOptions,
}

impl AppState {
    /// The model now being served.
    #[must_use]
    pub fn model(&self) -> Arc<LoadedModel> {
        match self.model.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `model` from now on; requests already running finish on the old one.
    pub fn swap(&self, model: LoadedModel) {
        let new = Arc::new(model);
        match self.model.write() {
            Ok(mut m) => *m = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Loads the model and builds the shared state (no sockets yet).
///
/// # Errors
/// The model cannot be loaded, or the batching thread cannot start.
pub fn prepare(source: &dyn ModelSource, options: ServeOptions) -> Result<Arc<AppState>, ServeError> {
    let metrics = Arc::new(metrics::Metrics::default());
    let t = Instant::now();
    let fetched =
        source.load().map_err(|e| ServeError::Load { source_name: source.describe(), source: Box::new(e) })?;
    let loaded = LoadedModel::new(options.name.clone(), fetched.bundle, fetched.origin);
    metrics.set_load_seconds(t.elapsed().as_secs_f64());
    tracing::info!(
        model = %source.describe(),
        registered = ?loaded.origin.registered,
        from = %loaded.origin.location,
        seconds = t.elapsed().as_secs_f64(),
        "model loaded"
    );
    let batcher = options.batch_wait.map(|max_wait| {
        batch::Batcher::new(
            batch::BatchConfig { max_rows: options.max_batch_size, max_wait, queue: 4096 },
            metrics.clone(),
        )
    });
    Ok(Arc::new(AppState { model: RwLock::new(Arc::new(loaded)), batcher, metrics, options }))
}

/// Loads the model, listens, and serves until SIGTERM or Ctrl-C, then drains. A source that
/// follows a registry alias, stage or `latest` is polled every `options.poll_interval` and new
/// versions are swapped in ([`watch`]). `on_ready` is called with the bound address once the
/// server accepts connections.
///
/// # Errors
/// The model cannot be loaded, the address cannot be bound, or the runtime cannot start.
pub fn run(
    source: Arc<dyn ModelSource>,
    options: ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers.max(1))
        .thread_name("kiln-http")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let addr = format!("{}:{}", options.host, options.port);
    // Bind before loading the model's data so a port clash fails fast, then load.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&addr))
        .map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
    let poll_interval = options.poll_interval;
    let state = prepare(&*source, options)?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    // Stops polling when dropped, after the drain.
    let _watcher = if source.follows() {
        tracing::info!(model = %source.describe(), every_seconds = poll_interval.as_secs_f64(), "following the registry");
        Some(
            watch::spawn(state.clone(), source.clone(), poll_interval)
                .map_err(|e| ServeError::Watch { source_name: source.describe(), source: e })?,
        )
    } else {
        None
    };
    runtime.block_on(async move {
        on_ready(local);
        server::serve(listener, state, server::shutdown_signal()).await;
    });
    Ok(())
}
