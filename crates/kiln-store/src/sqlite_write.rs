//! SQLite writes with nothing to read in between (creating a run, logging metrics and tags)
//! through one writer thread that commits concurrent requests together.
//!
//! Why: every SQLite commit appends the pages it touched to the WAL; eight clients logging one
//! metric each touch the same few index and table pages, so one transaction for all eight
//! writes those pages once instead of eight times. And a request costs one hand-off to this
//! thread and back, where sqlx took two (its connection runs on a worker thread of its own, and
//! the run check and the write were separate trips). Each request runs inside its own
//! savepoint: one that fails is rolled back alone and answered with its error, the others
//! commit; a process killed mid-group commits nothing of it. The thread takes the store's
//! in-process write lock around each group, so it queues with the sqlx transactions of the
//! other endpoints instead of meeting them in SQLite's busy handler.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use kiln_wire::MlflowError;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::search::Bind;

/// At most this many requests share one transaction.
const MAX_GROUP: usize = 64;

/// One request's write: optionally a check that a run exists and is active, then statements.
struct Job {
    check_run: Option<String>,
    statements: Vec<(String, Vec<Bind>)>,
    reply: tokio::sync::oneshot::Sender<Result<(), MlflowError>>,
}

/// The handle to the writer thread (it ends when every handle is dropped).
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// A rusqlite error (of this writer or of `sqlite_read`'s connections) as MLflow's error, by
/// the store's one mapping (`db_failure`: 400 for a unique-key race, 503 when busy, else 500).
pub(crate) fn failed(e: &rusqlite::Error) -> MlflowError {
    let sqlite = e.sqlite_error();
    // SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE.
    let unique = sqlite.is_some_and(|s| matches!(s.extended_code, 1555 | 2067));
    crate::db_failure(e, unique, sqlite.map(|s| s.extended_code.to_string()).as_deref())
}

impl Writer {
    /// Opens the writer's connection to the (migrated) database at `path` and starts its thread.
    pub(crate) fn start(path: &Path, lock: Arc<tokio::sync::Mutex<()>>) -> Result<Self, rusqlite::Error> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        for pragma in crate::SQLITE_PRAGMAS {
            conn.execute_batch(pragma)?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("kiln-sqlite-writer".into())
            .spawn(move || serve(&conn, &queue, &lock))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Self { jobs })
    }

    /// Runs `statements` (each with its binds) in one transaction shared with concurrent
    /// requests, after checking that `check_run` (if any) exists and is active. Nothing of it
    /// stays when any part fails.
    pub(crate) async fn write(
        &self,
        check_run: Option<&str>,
        statements: Vec<(String, Vec<Bind>)>,
    ) -> Result<(), MlflowError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || MlflowError::internal("the SQLite writer thread stopped");
        self.jobs.send(Job { check_run: check_run.map(str::to_owned), statements, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer thread: takes what is queued (up to [`MAX_GROUP`]), commits it as one
/// transaction, answers each request.
fn serve(conn: &Connection, queue: &mpsc::Receiver<Job>, lock: &tokio::sync::Mutex<()>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let results = {
            let _guard = lock.blocking_lock();
            commit_group(conn, &jobs)
        };
        for (job, result) in jobs.into_iter().zip(results) {
            // A request whose client went away has nobody to answer.
            let _ = job.reply.send(result);
        }
    }
}

fn commit_group(conn: &Connection, jobs: &[Job]) -> Vec<Result<(), MlflowError>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return jobs.iter().map(|_| Err(failed(&e))).collect();
    }
    let mut results: Vec<Result<(), MlflowError>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = conn.execute_batch("SAVEPOINT job").map_err(|e| failed(&e)).and_then(|()| run_job(conn, job));
        let closed = match &result {
            Ok(()) => conn.execute_batch("RELEASE job"),
            Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job"),
        };
        if let Err(e) = closed {
            // The transaction is in an unknown state: give it up whole.
            let _ = conn.execute_batch("ROLLBACK");
            return jobs.iter().map(|_| Err(failed(&e))).collect();
        }
        results.push(result);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return jobs.iter().map(|_| Err(failed(&e))).collect();
    }
    results
}

fn run_job(conn: &Connection, job: &Job) -> Result<(), MlflowError> {
    if let Some(run) = &job.check_run {
        let stage: Option<String> = conn
            .prepare_cached("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?1")
            .and_then(|mut s| s.query_row([run], |r| r.get(0)).optional())
            .map_err(|e| failed(&e))?;
        crate::require_active(run, &stage.ok_or_else(|| crate::run_not_found(run))?)?;
    }
    for (sql, binds) in &job.statements {
        let mut stmt = conn.prepare_cached(sql).map_err(|e| failed(&e))?;
        stmt.execute(rusqlite::params_from_iter(binds)).map_err(|e| failed(&e))?;
    }
    Ok(())
}
