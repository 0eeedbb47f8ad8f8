//! Adaptive micro-batching: concurrent requests are gathered into one vectorised predict call,
//! as BentoML's and Triton's dynamic batchers do.
//!
//! There is no batching thread. The request that finds nobody predicting becomes the leader:
//! it lets the requests already being read and parsed (counted in `incoming`) join the queue,
//! takes the queue (at most `max_rows` rows), predicts it in one call on its own worker thread,
//! and hands each waiting request its rows. Requests that arrive meanwhile queue up and form the
//! next batch, led by a task the leader spawns. A lone client therefore predicts inline with no
//! wait and no thread hop; under load a batch grows to what arrived while the previous one ran.
//! (A dedicated batching thread was measured first: on two cores its two extra wake-ups per
//! request cost more than batching saved.)

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Longest a leader waits for requests already on their way.
    pub max_wait: Duration,
    /// Requests queued before new ones are refused with 503.
    pub queue: usize,
}

struct Job {
    model: Arc<LoadedModel>,
    table: Table,
    reply: oneshot::Sender<Result<Scored, ApiError>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A leader is gathering or predicting.
    leading: bool,
}

/// The micro-batcher shared by all requests.
pub struct Batcher {
    config: BatchConfig,
    metrics: Arc<Metrics>,
    queue: Mutex<Queue>,
    /// Requests being read and parsed now, on their way to the queue.
    incoming: AtomicUsize,
    /// Requests that have finished being on their way (queued, or failed), ever.
    arrived: AtomicU64,
    /// Woken on every arrival, for a leader waiting for them.
    arrivals: tokio::sync::Notify,
}

/// Counts a request as on its way to the batcher until it is queued or gives up.
pub struct Incoming(Option<Arc<Batcher>>);

impl Incoming {
    fn done(&mut self) {
        if let Some(b) = self.0.take() {
            b.arrived.fetch_add(1, Ordering::SeqCst);
            b.incoming.fetch_sub(1, Ordering::SeqCst);
            b.arrivals.notify_waiters();
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.done();
    }
}

fn overloaded() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "TEMPORARILY_UNAVAILABLE",
        "the server is overloaded: too many requests are queued; retry later",
    )
}

impl Batcher {
    #[must_use]
    pub fn new(config: BatchConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            config,
            metrics,
            queue: Mutex::new(Queue::default()),
            incoming: AtomicUsize::new(0),
            arrived: AtomicU64::new(0),
            arrivals: tokio::sync::Notify::new(),
        })
    }

    /// Marks a request as on its way (call before reading its body).
    pub fn incoming(self: &Arc<Self>) -> Incoming {
        self.incoming.fetch_add(1, Ordering::SeqCst);
        Incoming(Some(self.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `table` (already conformed to `model`) and waits for its predictions.
    ///
    /// # Errors
    /// 503 when the queue is full; predict failures.
    pub async fn predict(
        self: &Arc<Self>,
        model: Arc<LoadedModel>,
        table: Table,
        mut incoming: Incoming,
    ) -> Result<Scored, ApiError> {
        let (reply, rx) = oneshot::channel();
        let lead = {
            let mut q = self.lock();
            if q.jobs.len() >= self.config.queue {
                return Err(overloaded());
            }
            q.jobs.push_back(Job { model, table, reply });
            !std::mem::replace(&mut q.leading, true)
        };
        // Arrived only once queued, so a leader waiting for it finds it.
        incoming.done();
        if lead {
            self.clone().lead().await;
        }
        rx.await.unwrap_or_else(|_| Err(ApiError::bad_request("the request was dropped before it was predicted")))
    }

    /// Gathers one batch, predicts it, and passes the lead on if more requests are queued.
    /// (Boxed: it spawns itself, and a recursive `async fn` has no nameable `Send` type.)
    fn lead(self: Arc<Self>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            // The leader's own request may be cancelled (its client left, its deadline passed)
            // while it waits below; the lead then passes to a new task instead of being lost.
            let mut guard = PassLead(Some(self.clone()));
            // Wait (asleep, so this worker serves them meanwhile) for the requests that were
            // already on their way when this batch started; later arrivals form the next batch.
            // Spinning here instead cost a tenth of the throughput on two cores.
            let goal = self.arrived.load(Ordering::SeqCst) + self.incoming.load(Ordering::SeqCst) as u64;
            let deadline = Instant::now() + self.config.max_wait;
            loop {
                let notified = self.arrivals.notified();
                tokio::pin!(notified);
                // Registered before the check, so an arrival between the two is not missed.
                notified.as_mut().enable();
                let now = Instant::now();
                if self.arrived.load(Ordering::SeqCst) >= goal || now >= deadline {
                    break;
                }
                if tokio::time::timeout(deadline - now, notified).await.is_err() {
                    break;
                }
            }
            let (jobs, more) = {
                let mut q = self.lock();
                let mut jobs: Vec<Job> = Vec::new();
                let mut rows = 0;
                while let Some(j) = q.jobs.front() {
                    let same = jobs.first().is_none_or(|f| Arc::ptr_eq(&f.model, &j.model));
                    if !jobs.is_empty() && (!same || rows + j.table.n_rows() > self.config.max_rows) {
                        break;
                    }
                    rows += j.table.n_rows();
                    jobs.extend(q.jobs.pop_front());
                }
                let more = !q.jobs.is_empty();
                q.leading = more;
                (jobs, more)
            };
            guard.0 = None;
            if more {
                let next = self.clone();
                tokio::spawn(next.lead());
            }
            self.run(jobs);
        })
    }

    fn run(&self, mut jobs: Vec<Job>) {
        // A request whose client left (or timed out) is not predicted.
        jobs.retain(|j| !j.reply.is_closed());
        let Some(model) = jobs.first().map(|j| j.model.clone()) else { return };
        let tables: Vec<Table> = jobs.iter_mut().map(|j| std::mem::take(&mut j.table)).collect();
        let counts: Vec<usize> = tables.iter().map(Table::n_rows).collect();
        let rows: usize = counts.iter().sum();
        self.metrics.batch(rows, jobs.len());
        match predict(&model, tables) {
            Ok(preds) => {
                let preds = Arc::new(preds);
                let mut start = 0;
                for (job, n) in jobs.into_iter().zip(counts) {
                    let end = start + n;
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

/// Spawns a new leader if dropped while armed.
struct PassLead(Option<Arc<Batcher>>);

impl Drop for PassLead {
    fn drop(&mut self) {
        if let Some(b) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(b.lead());
        }
    }
}

/// One predict call over the batch, on the calling worker thread (a large batch fans out to
/// rayon's pool and the worker waits for it). Input was conformed to the signature already, so
/// a failure here is unexpected; a panic is caught so one bad batch cannot stop the server.
///
/// Not `block_in_place`: it hands the worker's other tasks to a fresh thread each time, and on
/// the 1,000-row benchmark that grew the server to 17 threads and twice the memory for no gain
/// in throughput.
pub fn predict(model: &LoadedModel, tables: Vec<Table>) -> Result<Predictions, ApiError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let table = Table::concat(tables).map_err(|e| e.to_string())?;
        model.bundle.pipeline.predict(&table).map_err(|e| e.to_string())
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
