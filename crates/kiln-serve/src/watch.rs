//! Following a moving registry URI (`models:/name@alias`, a stage, `latest`) while serving.
//!
//! A thread of its own (the polls and downloads are blocking HTTP) asks the source every poll
//! interval which version it names now. When that differs from the version being served it
//! downloads and loads the new version, runs a smoke prediction on the bundle's own input
//! example, and only then hands it to [`AppState::swap`]: requests already running finish on the
//! model they started with, new ones get the new one, none waits or fails.
//!
//! A version that fails (download, load, smoke prediction) is logged, counted in
//! `kiln_model_swap_failures_total`, and the old model keeps serving; the same version is tried
//! again only after a backoff that doubles each time (one poll interval, two, four, … at most
//! [`MAX_BACKOFF`]), so a broken version neither floods the log nor is given up on for good (its
//! artifacts may be fixed). A tracking server that does not answer is logged once when it goes
//! away and once when it is back (`kiln_model_poll_errors_total` counts every failed poll).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use kiln_client::RegisteredVersion;
use kiln_model::infer::{self, RowNaming};

use crate::source::{ModelSource, SourceError};
use crate::{AppState, LoadedModel, batch, input};

/// The longest a failed version waits before it is tried again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// Why a new version was not swapped in.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the smoke prediction on `{example}` failed: {message}")]
    Smoke { example: String, message: String },
}

/// The polling thread; dropping it stops the thread at its next wake-up.
pub struct Watcher {
    _stop: mpsc::Sender<()>,
}

/// Starts following `source` for `state`, polling every `interval`.
///
/// # Errors
/// The thread cannot be started.
pub fn spawn(state: Arc<AppState>, source: Arc<dyn ModelSource>, interval: Duration) -> std::io::Result<Watcher> {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new().name("kiln-watch".into()).spawn(move || {
        let mut w = Follow { state, source, interval, failed: HashMap::new(), polls_failing: false };
        // Only the sender's drop ends the wait early: a message is never sent.
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
            w.poll();
        }
    })?;
    Ok(Watcher { _stop: stop })
}

/// A version that failed, and when it may be tried again.
struct Failed {
    attempts: u32,
    retry_at: Instant,
}

struct Follow {
    state: Arc<AppState>,
    source: Arc<dyn ModelSource>,
    interval: Duration,
    failed: HashMap<RegisteredVersion, Failed>,
    /// The previous poll failed (so the next failure is not logged again).
    polls_failing: bool,
}

impl Follow {
    fn poll(&mut self) {
        let serving = self.state.model().origin.registered.clone();
        let wanted = match self.source.current_version() {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => {
                self.state.metrics.poll_error();
                if self.polls_failing {
                    tracing::debug!(source = %self.source.describe(), error = %chain(&e), "poll failed again");
                } else {
                    tracing::warn!(
                        source = %self.source.describe(),
                        serving = %shown(serving.as_ref()),
                        error = %chain(&e),
                        "cannot ask the tracking server which version to serve; the current one keeps serving"
                    );
                }
                self.polls_failing = true;
                return;
            }
        };
        if std::mem::take(&mut self.polls_failing) {
            tracing::info!(source = %self.source.describe(), "the tracking server answers again");
        }
        if serving.as_ref() == Some(&wanted) {
            return;
        }
        if self.failed.get(&wanted).is_some_and(|f| Instant::now() < f.retry_at) {
            return;
        }
        let started = Instant::now();
        match swap_to(&self.state, &*self.source, &wanted) {
            Ok(()) => {
                self.failed.remove(&wanted);
                self.state.metrics.swapped(started.elapsed().as_secs_f64());
                tracing::info!(
                    model = %wanted,
                    previous = %shown(serving.as_ref()),
                    seconds = started.elapsed().as_secs_f64(),
                    "swapped in a new model version"
                );
            }
            Err(e) => {
                self.state.metrics.swap_failed();
                let f = self.failed.entry(wanted.clone()).or_insert(Failed { attempts: 0, retry_at: started });
                f.attempts += 1;
                let delay = self.interval.saturating_mul(1 << f.attempts.min(16)).min(MAX_BACKOFF);
                f.retry_at = Instant::now() + delay;
                tracing::error!(
                    model = %wanted,
                    serving = %shown(serving.as_ref()),
                    attempts = f.attempts,
                    retry_in_seconds = delay.as_secs_f64(),
                    error = %chain(&e),
                    "the new model version was not swapped in; the current one keeps serving"
                );
            }
        }
    }
}

fn shown(v: Option<&RegisteredVersion>) -> String {
    v.map_or_else(|| "(no registered version)".to_owned(), ToString::to_string)
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Loads `version`, smoke-tests it and swaps it in.
///
/// # Errors
/// The version cannot be downloaded or loaded, or its smoke prediction fails.
pub fn swap_to(state: &AppState, source: &dyn ModelSource, version: &RegisteredVersion) -> Result<(), SwapError> {
    let fetched = source.load_version(version)?;
    let path = fetched.bundle.path.clone();
    let loaded = LoadedModel::new(state.options.name.clone(), fetched.bundle, fetched.origin);
    if let Err(e) = smoke(&loaded, state.options.max_batch_size) {
        source.forget(&path);
        return Err(e);
    }
    state.swap(loaded);
    Ok(())
}

/// Predicts the bundle's serving input example (`serving_input_example.json`, an
/// `/invocations` body) the way a request would be: parsed, conformed to the signature,
/// predicted. A bundle without an example passes with a warning: there is nothing to try.
///
/// # Errors
/// The example is missing, unreadable, does not fit the signature, or predict fails.
pub fn smoke(model: &LoadedModel, max_rows: usize) -> Result<(), SwapError> {
    let Some(info) = &model.bundle.mlmodel.saved_input_example_info else {
        tracing::warn!(model = %model.bundle.path.display(), "the bundle has no input example; swapped in without a smoke prediction");
        return Ok(());
    };
    let name = &info.serving_input_path;
    let path = model.bundle.path.join(name);
    let fail = |message: String| SwapError::Smoke { example: path.display().to_string(), message };
    if !kiln_core::uri::is_plain_name(name) {
        return Err(fail(format!("`{name}` is not a file name inside the bundle")));
    }
    let body = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
    let parsed = input::invocations_json(&body, &model.input_names, max_rows).map_err(|e| fail(e.message))?;
    let rows = parsed.table.n_rows();
    let c = infer::conform_owned(&model.bundle.pipeline, parsed.table, RowNaming::Index)
        .map_err(|e| fail(e.to_string()))?;
    if let Some((_, e)) = c.row_errors.first() {
        return Err(fail(e.to_string()));
    }
    let preds = batch::predict(model, vec![c.table]).map_err(|e| fail(e.message))?;
    let n = match &preds {
        kiln_model::Predictions::Classes { index, .. } => index.len(),
        kiln_model::Predictions::Values(v) => v.len(),
    };
    if n != rows {
        return Err(fail(format!("{rows} rows gave {n} predictions")));
    }
    Ok(())
}
