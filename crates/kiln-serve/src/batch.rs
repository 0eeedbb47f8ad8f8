//! Adaptive micro-batching: concurrent requests are gathered into one vectorised predict call on
//! a dedicated thread, as BentoML's and Triton's dynamic batchers do.
//!
//! The batcher never waits when nobody else is coming: it takes what is queued, and waits (up to
//! `max_wait`) only while other requests are being read and parsed on their way to it. A lone
//! client therefore pays no batching delay, and under load a batch grows to what arrived while
//! the previous one was being predicted. Requests are cut off at `max_rows` per batch.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kiln_core::Table;
use kiln_model::Predictions;
use tokio::sync::oneshot;

use crate::LoadedModel;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Predictions for one request: its rows of a (possibly shared) batch.
#[derive(Debug, Clone)]
pub struct Scored {
    pub preds: Arc<Predictions>,
    pub rows: Range<usize>,
}

/// Batching limits.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most rows in one predict call (a larger request is predicted alone).
    pub max_rows: usize,
    /// Longest a batch waits for requests still on their way.
    pub max_wait: Duration,
    /// Requests queued before new ones are refused with 503.
    pub queue: usize,
}

struct Job {
    model: Arc<LoadedModel>,
    table: Table,
    reply: oneshot::Sender<Result<Scored, ApiError>>,
}

/// The handle requests use to reach the batching thread.
pub struct Batcher {
    tx: SyncSender<Job>,
    /// Requests read and parsed right now, on their way to the queue.
    incoming: Arc<AtomicUsize>,
}

/// Counts a request as on its way to the batcher until it is queued or gives up.
pub struct Incoming(Option<Arc<AtomicUsize>>);

impl Incoming {
    fn done(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.done();
    }
}

impl Batcher {
    /// Starts the batching thread. It ends when the `Batcher` is dropped.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start(config: BatchConfig, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(config.queue.max(1));
        let incoming = Arc::new(AtomicUsize::new(0));
        let inc = incoming.clone();
        std::thread::Builder::new().name("kiln-batch".into()).spawn(move || run(&rx, config, &inc, &metrics))?;
        Ok(Self { tx, incoming })
    }

    /// Marks a request as on its way (call before reading its body).
    pub fn incoming(&self) -> Incoming {
        self.incoming.fetch_add(1, Ordering::SeqCst);
        Incoming(Some(self.incoming.clone()))
    }

    /// Queues `table` (already conformed to `model`) and waits for its predictions.
    ///
    /// # Errors
    /// 503 when the queue is full or the batcher is gone; predict failures.
    pub async fn predict(
        &self,
        model: Arc<LoadedModel>,
        table: Table,
        mut incoming: Incoming,
    ) -> Result<Scored, ApiError> {
        let (reply, rx) = oneshot::channel();
        // Not "on its way" any more before it is queued, so the batcher never waits for a
        // request it already holds.
        incoming.done();
        match self.tx.try_send(Job { model, table, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TEMPORARILY_UNAVAILABLE",
                    "the server is overloaded: too many requests are queued; retry later",
                ));
            }
            Err(TrySendError::Disconnected(_)) => return Err(gone()),
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }
}

fn gone() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE", "the server is shutting down")
}

fn run(rx: &Receiver<Job>, config: BatchConfig, incoming: &AtomicUsize, metrics: &Metrics) {
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let model = first.model.clone();
        let mut rows = first.table.n_rows();
        let mut jobs = vec![first];
        let deadline = Instant::now() + config.max_wait;
        while rows < config.max_rows {
            let next = match rx.try_recv() {
                Ok(j) => j,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if incoming.load(Ordering::SeqCst) == 0 || now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(j) => j,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            if !Arc::ptr_eq(&next.model, &model) || rows + next.table.n_rows() > config.max_rows {
                carry = Some(next);
                break;
            }
            rows += next.table.n_rows();
            jobs.push(next);
        }
        // A request whose client left (or timed out) is not predicted.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let tables: Vec<Table> = jobs.iter_mut().map(|j| std::mem::take(&mut j.table)).collect();
        let rows: usize = tables.iter().map(Table::n_rows).sum();
        metrics.batch(rows, jobs.len());
        match predict(&model, &tables) {
            Ok(preds) => {
                let preds = Arc::new(preds);
                let mut start = 0;
                for (job, t) in jobs.into_iter().zip(&tables) {
                    let end = start + t.n_rows();
                    let _ = job.reply.send(Ok(Scored { preds: preds.clone(), rows: start..end }));
                    start = end;
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One predict call over the batch. Input was conformed to the signature already, so a failure
/// here is unexpected; a panic is caught so one bad batch cannot stop the server.
pub fn predict(model: &LoadedModel, tables: &[Table]) -> Result<Predictions, ApiError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let joined;
        let table = if let [one] = tables {
            one
        } else {
            joined = Table::concat(tables).map_err(|e| e.to_string())?;
            &joined
        };
        model.bundle.pipeline.predict(table).map_err(|e| e.to_string())
    }));
    match result {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => {
            Err(ApiError::bad_request(format!("Encountered an unexpected error while evaluating the model: {e}")))
        }
        Err(_) => {
            tracing::error!("predict panicked; the batch was answered with 500");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the model failed on this input"))
        }
    }
}
