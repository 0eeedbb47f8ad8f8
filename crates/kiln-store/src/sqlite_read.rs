//! Large reads from an SQLite store (a metric history, a search page with its runs' data)
//! straight through SQLite's C API (rusqlite), on a blocking thread, beside the sqlx pool.
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

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use kiln_wire::{KeyValue, Metric, MetricPoint, MlflowError, RunData, RunInfo};
use rusqlite::{Connection, OpenFlags, params};

use crate::search::Bind;
use crate::sqlite_write::failed;

/// A bound value of kiln's SQL (`search::Bind`) as rusqlite binds it, for the reader and the
/// writer alike.
impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Self::Str(v) => v.as_str().into(),
            Self::F64(v) => (*v).into(),
            Self::I64(v) => (*v).into(),
        })
    }
}

/// Read connections to one SQLite database file, opened on demand and kept for reuse.
#[derive(Debug)]
pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// At most this many idle connections are kept (more may be open at once under load).
const KEEP: usize = 4;

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
        for pragma in crate::SQLITE_PRAGMAS {
            conn.execute_batch(pragma)?;
        }
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
        .map_err(|e| MlflowError::internal(format!("the SQLite read task failed: {e}")))?
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
    ) -> Result<Vec<MetricPoint>, MlflowError> {
        let (run_id, key) = (run_id.to_owned(), key.to_owned());
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
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
                out.push(MetricPoint { value, timestamp: r.get(3)?, step: r.get(4)? });
            }
            Ok(out)
        })
        .await
    }

    /// A page of `search-runs`: the runs `sql` selects (its `?`s bound to `binds`, then the
    /// page's limit and offset), with their params, tags and latest metrics, and which of them
    /// have inputs or outputs, all on one connection (one snapshot) and one thread.
    pub(crate) async fn search_runs(
        self: &std::sync::Arc<Self>,
        sql: String,
        binds: Vec<Bind>,
        max_results: i64,
        offset: i64,
    ) -> Result<SearchPage, MlflowError> {
        self.with(move |conn| {
            // One read transaction: the runs and their data come from the same snapshot.
            let tx = conn.unchecked_transaction()?;
            let mut stmt = tx.prepare_cached(&sql)?;
            for (i, b) in binds.iter().chain(&[Bind::I64(max_results + 1), Bind::I64(offset)]).enumerate() {
                stmt.raw_bind_parameter(i + 1, b)?;
            }
            let mut infos = Vec::new();
            let mut rows = stmt.raw_query();
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                infos.push(RunInfo {
                    run_uuid: id.clone(),
                    run_id: id,
                    run_name: r.get(1)?,
                    experiment_id: r.get::<_, i64>(2)?.to_string(),
                    user_id: r.get(3)?,
                    status: r.get(4)?,
                    start_time: r.get(5)?,
                    end_time: r.get(6)?,
                    lifecycle_stage: r.get(7)?,
                    artifact_uri: r.get(8)?,
                });
            }
            drop(rows);
            let keep = usize::try_from(max_results).unwrap_or(usize::MAX);
            let more = infos.len() > keep;
            infos.truncate(keep);
            let mut data: HashMap<String, RunData> =
                infos.iter().map(|i| (i.run_id.clone(), RunData::default())).collect();
            let mut with_io = HashSet::new();
            let ids: Vec<&str> = infos.iter().map(|i| i.run_id.as_str()).collect();
            for chunk in ids.chunks(crate::PAGE_CHUNK) {
                for (table, into) in crate::RUN_DATA_KV {
                    let mut stmt = tx.prepare_cached(&table.of_owners_sql(chunk.len()))?;
                    let mut rows = stmt.query(rusqlite::params_from_iter(chunk))?;
                    while let Some(r) = rows.next()? {
                        if let Some(d) = data.get_mut(r.get_ref(0)?.as_str()?) {
                            into(d).push(KeyValue { key: r.get(1)?, value: r.get(2)? });
                        }
                    }
                }
                let mut stmt = tx.prepare_cached(&crate::latest_metrics_of_runs_sql(chunk.len()))?;
                let mut rows = stmt.query(rusqlite::params_from_iter(chunk))?;
                while let Some(r) = rows.next()? {
                    if let Some(d) = data.get_mut(r.get_ref(5)?.as_str()?) {
                        let value = if r.get::<_, i64>(2)? != 0 { f64::NAN } else { r.get(1)? };
                        d.metrics.push(Metric {
                            key: r.get(0)?,
                            value,
                            timestamp: r.get(3)?,
                            step: r.get(4)?,
                            ..Metric::default()
                        });
                    }
                }
                for table in crate::IO_TABLES {
                    let mut stmt = tx.prepare_cached(&crate::runs_in_sql(table, chunk.len()))?;
                    let mut rows = stmt.query(rusqlite::params_from_iter(chunk))?;
                    while let Some(r) = rows.next()? {
                        with_io.insert(r.get(0)?);
                    }
                }
            }
            Ok(SearchPage { infos, data, with_io, more })
        })
        .await
    }
}

/// What [`Reader::search_runs`] reads for one page.
pub(crate) struct SearchPage {
    pub infos: Vec<RunInfo>,
    pub data: HashMap<String, RunData>,
    pub with_io: HashSet<String>,
    /// A row beyond the page exists.
    pub more: bool,
}
