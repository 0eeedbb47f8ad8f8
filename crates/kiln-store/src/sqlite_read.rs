//! Large reads from an SQLite store straight through SQLite's C API (rusqlite), on a blocking
//! thread, beside the sqlx pool.
//!
//! Why: sqlx runs each SQLite connection on a worker thread of its own and hands every result
//! row over to the async caller one at a time. For a 100,000-point metric history those
//! hand-offs were most of the time; the earlier workaround (SQLite concatenating the page into
//! one row of text, then parsing it back) still spent half its time turning numbers into text
//! and back. Stepping the rows here, on the thread that uses them, does neither. rusqlite
//! shares sqlx's `libsqlite3-sys` (the same bundled SQLite), so this adds no second C build.
//!
//! The connections are read-only in effect (`query_only`), see committed data only (WAL
//! snapshots), and are kept for reuse.

use std::path::PathBuf;
use std::sync::Mutex;

use kiln_wire::{Metric, MlflowError};
use rusqlite::{Connection, OpenFlags, params};

/// Read connections to one SQLite database file, opened on demand and kept for reuse.
#[derive(Debug)]
pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// At most this many idle connections are kept (more may be open at once under load).
const KEEP: usize = 4;

fn failed(e: &rusqlite::Error) -> MlflowError {
    tracing::error!(error = %e, "database error (sqlite read)");
    MlflowError::internal(format!("database error: {e}"))
}

impl Reader {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        // Read-write flags but `query_only`: a read-only open of a WAL database cannot create
        // the `-shm` file when it is missing; `query_only` refuses any write all the same.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    async fn with<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, MlflowError> {
        let me = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let pooled = me.idle.lock().ok().and_then(|mut v| v.pop());
            let conn = match pooled {
                Some(c) => c,
                None => me.open().map_err(|e| failed(&e))?,
            };
            let out = f(&conn).map_err(|e| failed(&e));
            // A connection whose statement failed is dropped, not reused.
            if out.is_ok()
                && let Ok(mut idle) = me.idle.lock()
                && idle.len() < KEEP
            {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| MlflowError::internal(format!("history read task failed: {e}")))?
    }

    /// Up to `limit` points of one metric from `offset`, by (step, timestamp). Values come
    /// from `value_bits` when the point has them (exact, `-0.0` and NaN included), else from
    /// the value and NaN columns (points logged before migration 0005).
    pub(crate) async fn history(
        self: &std::sync::Arc<Self>,
        run_id: &str,
        key: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Metric>, MlflowError> {
        let (run_id, key) = (run_id.to_owned(), key.to_owned());
        self.with(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT value_bits, metric_value, is_nan, metric_timestamp, step FROM metrics \
                 WHERE run_uuid = ?1 AND metric_key = ?2 ORDER BY step, metric_timestamp LIMIT ?3 OFFSET ?4",
            )?;
            let mut rows = stmt.query(params![run_id, key, limit, offset])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let value = match r.get::<_, Option<i64>>(0)? {
                    Some(bits) => f64::from_bits(u64::from_ne_bytes(bits.to_ne_bytes())),
                    None if r.get::<_, i64>(2)? != 0 => f64::NAN,
                    None => r.get(1)?,
                };
                out.push(Metric {
                    key: key.clone(),
                    value,
                    timestamp: r.get(3)?,
                    step: r.get(4)?,
                    ..Metric::default()
                });
            }
            Ok(out)
        })
        .await
    }
}
