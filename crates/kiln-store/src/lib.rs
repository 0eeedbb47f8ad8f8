//! kiln-store: the tracking store behind `kiln server` — experiments, runs, params, tags and
//! metrics, with MLflow's validation rules, on SQLite, PostgreSQL or MySQL/MariaDB.
//!
//! One implementation for the three databases, through sqlx's `Any` driver. What differs
//! between them lives in [`Dialect`]: the placeholder syntax (`?` vs `$1`), the upsert of a run's
//! latest metric, the connection set-up (SQLite's WAL and busy timeout) and the migration folder
//! (`migrations/<dialect>/`, embedded at build time). Every multi-row write is one transaction.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_wire::{Experiment, KeyValue, Metric, MlflowError, Run, RunData, RunInfo, ViewType};
use kv::{EXPERIMENT_TAGS, Owner, RUN_PARAMS, RUN_TAGS};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

mod inputs;
mod kv;
mod logged_models;
pub use inputs::DatasetInput;
pub use logged_models::NewLoggedModel;
mod names;
pub mod registry;
pub use registry::NewModelVersion;
pub mod search;
mod sqlite_read;
mod sqlite_write;
mod store;
pub use store::{Store, StoreFuture};
pub mod validate;

/// Errors opening a store (request-level problems are [`MlflowError`]s).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported backend store URI `{0}`: use sqlite:///path, postgresql://… or mysql://…")]
    Scheme(String),
    #[error(
        "an in-memory SQLite store (`{0}`) would be a different empty database on each connection: give a file, sqlite:///path.db"
    )]
    InMemory(String),
    #[error("cannot connect to {uri}")]
    Connect {
        uri: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the database at {uri}")]
    Migrate {
        uri: String,
        #[source]
        source: sqlx::Error,
    },
}

/// The database family behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// The statement with `?` placeholders rewritten for this database (PostgreSQL numbers
    /// them). kiln's statements hold no `?` inside string literals.
    fn sql(self, q: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        AssertSqlSafe(if self == Self::Postgres { Cow::Owned(Self::number(q)) } else { Cow::Borrowed(q) })
    }

    /// As [`Dialect::sql`] for a statement assembled at run time from kiln's own fragments
    /// (placeholder lists, fixed clauses); user input is only ever bound, never spliced in.
    fn sql_dyn(self, q: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(if self == Self::Postgres { Self::number(q) } else { q.to_owned() })
    }

    /// An `INSERT … VALUES …` that does nothing when the key exists.
    fn insert_ignore(self, insert: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        match self {
            Self::MySql => AssertSqlSafe(Cow::Owned(insert.replacen("INSERT INTO", "INSERT IGNORE INTO", 1))),
            Self::Postgres => AssertSqlSafe(Cow::Owned(Self::number(&format!("{insert} ON CONFLICT DO NOTHING")))),
            Self::Sqlite => AssertSqlSafe(Cow::Owned(format!("{insert} ON CONFLICT DO NOTHING"))),
        }
    }

    fn number(q: &str) -> String {
        let mut out = String::with_capacity(q.len() + 8);
        let mut n = 0;
        for c in q.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Maps a database error to MLflow's 500 (a genuine server fault), keeping the cause in the log.
/// A unique-key violation is a client race (two requests creating the same experiment, logging
/// the same param), not a fault: 400 `RESOURCE_ALREADY_EXISTS`, which the client does not retry.
fn db(e: sqlx::Error) -> MlflowError {
    let d = e.as_database_error();
    db_failure(&e, d.is_some_and(|d| d.is_unique_violation()), d.and_then(|d| d.code()).as_deref())
}

/// [`db`]'s mapping for any driver's error (sqlx's, or rusqlite's in `sqlite_read` and
/// `sqlite_write`): whether it is a unique-key violation, and its database error code.
fn db_failure(e: &dyn std::fmt::Display, unique: bool, code: Option<&str>) -> MlflowError {
    if unique {
        return MlflowError::exists(format!("a concurrent request wrote the same key first: {e}"));
    }
    // A deadlock or serialization failure rolled the whole transaction back (SQLite: busy past
    // the timeout): 503, which the client retries, and the retry is safe because nothing of the
    // request was kept.
    if code.is_some_and(|c| matches!(c, "40001" | "40P01" | "5" | "517")) {
        tracing::warn!(error = %e, "transaction conflict; the client will retry");
        return MlflowError::new(
            kiln_wire::ErrorCode::TemporarilyUnavailable,
            format!("a concurrent write conflicted, retry: {e}"),
        );
    }
    tracing::error!(error = %e, "database error");
    MlflowError::internal(format!("database error: {e}"))
}

/// The largest double MySQL stores; MLflow's SQL store clamps infinities to it too.
const MAX_DOUBLE: f64 = f64::MAX;

/// The SQL tracking store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: one write transaction at a time in this process. SQLite admits one writer
    /// anyway; without this, a second `BEGIN IMMEDIATE` lands in SQLite's busy handler, which
    /// sleeps 1, 2, 5, 10… ms between tries, while a write transaction here takes a fraction
    /// of a millisecond: queueing on an async mutex instead hands the lock over at once (other
    /// processes on the same file still meet the busy timeout).
    write_lock: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// Where new experiments' artifacts go (`mlflow-artifacts:` when the server proxies them).
    artifact_root: String,
    /// SQLite only: the paths around sqlx for its hot reads and writes.
    sqlite: Option<SqliteFile>,
}

/// SQLite's reads and writes that bypass sqlx (see `sqlite_read` and `sqlite_write`).
#[derive(Debug, Clone)]
struct SqliteFile {
    /// Large reads: a metric history, a search page with its runs' data.
    reader: std::sync::Arc<sqlite_read::Reader>,
    /// Writes with nothing to read in between, committed together with concurrent ones.
    writer: std::sync::Arc<sqlite_write::Writer>,
}

/// A write transaction (and, on SQLite, this process's write lock until it ends). Derefs to the
/// connection, so `&mut *tx` is an executor.
struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// The statements of one SQLite write transaction with no reads in between, for the writer
/// thread (`sqlite_write`).
#[derive(Default)]
struct Script {
    statements: Vec<(String, Vec<search::Bind>)>,
}

impl Script {
    /// Appends a statement with `?` placeholders and their values, in order.
    fn push(&mut self, statement: impl Into<String>, binds: impl IntoIterator<Item = search::Bind>) {
        self.statements.push((statement.into(), binds.into_iter().collect()));
    }
}

/// A page of results and the token for the next one (absent on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Page tokens: the offset as hex of `{"offset":N}`. Opaque to the client, which only echoes it.
fn encode_token(offset: i64) -> String {
    format!("{{\"offset\":{offset}}}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: Option<&str>) -> Result<i64, MlflowError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else { return Ok(0) };
    let bad = || MlflowError::invalid(format!("Invalid page token `{t}`"));
    if t.len() % 2 != 0 || t.len() > 64 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
    v["offset"].as_i64().filter(|o| *o >= 0).ok_or_else(bad)
}

/// Run statuses MLflow knows.
const STATUSES: [&str; 5] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

impl SqlStore {
    /// Opens (creating and migrating as needed) the store at `uri`: `sqlite:///relative/path.db`,
    /// `sqlite:////absolute/path.db`, `postgresql://…`, `mysql://…` (also MLflow's
    /// `postgresql+psycopg2://` / `mysql+pymysql://` spellings).
    ///
    /// # Errors
    /// An unknown scheme, an unreachable database, a failed migration.
    pub async fn open(uri: &str, artifact_root: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = connect_url(uri)?;
        let mut opts = AnyPoolOptions::new().max_connections(if dialect == Dialect::Sqlite { 4 } else { 16 });
        if dialect == Dialect::Sqlite {
            // A local file does not drop connections: skip the pool's ping before each acquire
            // (a round trip to the connection's worker thread, on every request).
            opts = opts.test_before_acquire(false);
            // WAL lets readers run beside the writer.
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    for pragma in SQLITE_PRAGMAS {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await.map_err(|source| StoreError::Connect { uri: redact(uri), source })?;
        migrate(&pool, dialect).await.map_err(|source| StoreError::Migrate { uri: redact(uri), source })?;
        let write_lock: Option<std::sync::Arc<tokio::sync::Mutex<()>>> =
            (dialect == Dialect::Sqlite).then(Default::default);
        let sqlite = match (sqlite_file(uri), &write_lock) {
            (Some(path), Some(lock)) => Some(SqliteFile {
                writer: std::sync::Arc::new(sqlite_write::Writer::start(&path, lock.clone()).map_err(|e| {
                    StoreError::Connect { uri: redact(uri), source: sqlx::Error::Configuration(e.into()) }
                })?),
                reader: std::sync::Arc::new(sqlite_read::Reader::new(path)),
            }),
            _ => None,
        };
        Ok(Self { pool, dialect, write_lock, artifact_root: artifact_root.trim_end_matches('/').to_owned(), sqlite })
    }

    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A write transaction. On SQLite it takes the write lock at BEGIN (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads first and then writes cannot wait for the lock (SQLite
    /// answers "database is locked" at once to avoid a deadlock), immediate ones queue on the
    /// busy timeout. Measured: 8 concurrent writers lost 3–5 batches a run before this.
    /// This process's SQLite write lock (see `write_lock`); nothing on other backends.
    async fn write_guard(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        }
    }

    async fn write_tx(&self) -> Result<WriteTx, MlflowError> {
        let guard = self.write_guard().await;
        let tx = if self.dialect == Dialect::Sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?
        } else {
            self.pool.begin().await.map_err(db)?
        };
        Ok(WriteTx { tx, _guard: guard })
    }

    fn q(&self, sql: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        self.dialect.sql(sql)
    }

    // ---- experiments ------------------------------------------------------------------------

    /// Creates an experiment and returns its id.
    ///
    /// # Errors
    /// An invalid name or tag, or a name already taken (also by a deleted experiment).
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<String, MlflowError> {
        validate::experiment_name(name)?;
        if let Some(loc) = artifact_location {
            validate::artifact_location(loc)?;
        }
        for t in tags {
            validate::experiment_tag(t)?;
        }
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let taken: Option<i64> = sqlx::query_scalar(self.q("SELECT experiment_id FROM experiments WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if taken.is_some() {
            return Err(MlflowError::exists(format!("Experiment '{name}' already exists.")));
        }
        let location = artifact_location.filter(|l| !l.is_empty()).unwrap_or("");
        let id: i64 = if self.dialect == Dialect::MySql {
            sqlx::query(self.q("INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, ?, 'active', ?, ?)"))
                .bind(name).bind(location).bind(now).bind(now)
                .execute(&mut *tx).await.map_err(db)?;
            sqlx::query_scalar("SELECT LAST_INSERT_ID()").fetch_one(&mut *tx).await.map_err(db)?
        } else {
            sqlx::query_scalar(self.q("INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, ?, 'active', ?, ?) RETURNING experiment_id"))
                .bind(name).bind(location).bind(now).bind(now)
                .fetch_one(&mut *tx).await.map_err(db)?
        };
        if location.is_empty() {
            // The default location names the id, known only now.
            sqlx::query(self.q("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?"))
                .bind(format!("{}/{id}", self.artifact_root))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        EXPERIMENT_TAGS.upsert(&mut tx, self.dialect, Owner::Id(id), tags).await?;
        tx.commit().await.map_err(db)?;
        Ok(id.to_string())
    }

    fn experiment_id(id: &str) -> Result<i64, MlflowError> {
        id.parse::<i64>().map_err(|_| MlflowError::not_found(format!("No Experiment with id={id} exists")))
    }

    async fn experiment_tags(&self, id: i64) -> Result<Vec<KeyValue>, MlflowError> {
        self.key_values("SELECT tag_key, tag_value FROM experiment_tags WHERE experiment_id = ? ORDER BY tag_key", id)
            .await
    }

    /// The (key, value) rows `sql` selects for one owner (its only placeholder).
    pub(crate) async fn key_values<'q, T>(&self, sql: &'static str, owner: T) -> Result<Vec<KeyValue>, MlflowError>
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        sqlx::query(self.q(sql))
            .bind(owner)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| Ok(KeyValue { key: r.try_get(0).map_err(db)?, value: r.try_get(1).map_err(db)? }))
            .collect()
    }

    fn experiment_from_row(r: &AnyRow) -> Result<Experiment, MlflowError> {
        let id: i64 = r.try_get("experiment_id").map_err(db)?;
        Ok(Experiment {
            experiment_id: id.to_string(),
            name: r.try_get("name").map_err(db)?,
            artifact_location: r.try_get("artifact_location").map_err(db)?,
            lifecycle_stage: r.try_get("lifecycle_stage").map_err(db)?,
            creation_time: r.try_get("creation_time").map_err(db)?,
            last_update_time: r.try_get("last_update_time").map_err(db)?,
            tags: Vec::new(),
        })
    }

    /// # Errors
    /// An unknown id (404).
    pub async fn get_experiment(&self, id: &str) -> Result<Experiment, MlflowError> {
        let mut e = self.experiment_row(id).await?;
        e.tags = self.experiment_tags(Self::experiment_id(id)?).await?;
        Ok(e)
    }

    /// An experiment without its tags (one query: what creating a run needs).
    async fn experiment_row(&self, id: &str) -> Result<Experiment, MlflowError> {
        let n = Self::experiment_id(id)?;
        let row = sqlx::query(self.q(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments WHERE experiment_id = ?",
        ))
        .bind(n)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| MlflowError::not_found(format!("No Experiment with id={id} exists")))?;
        Self::experiment_from_row(&row)
    }

    /// # Errors
    /// An unknown name (404; the client turns it into `None`).
    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, MlflowError> {
        let id: Option<i64> = sqlx::query_scalar(self.q("SELECT experiment_id FROM experiments WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        match id {
            Some(id) => self.get_experiment(&id.to_string()).await,
            None => Err(MlflowError::not_found(format!("Could not find experiment with name '{name}'"))),
        }
    }

    /// Experiments matching `filter`, in `order_by` order (default newest first).
    ///
    /// # Errors
    /// A bad filter, order, page token or `max_results`.
    pub async fn search_experiments(
        &self,
        view: ViewType,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>, MlflowError> {
        validate::max_results(max_results, 50_000)?;
        let offset = decode_token(page_token)?;
        let where_sql = search::compile_experiment_filter(&search::parse_filter(filter)?)?;
        let orders = order_by.iter().map(|o| search::parse_order_by(o)).collect::<Result<Vec<_>, _>>()?;
        let order_sql = search::compile_experiment_order(&orders)?;
        let stage = match view {
            ViewType::ActiveOnly => "e.lifecycle_stage = 'active'",
            ViewType::DeletedOnly => "e.lifecycle_stage = 'deleted'",
            ViewType::All => "1 = 1",
        };
        let sql = format!(
            "SELECT e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time \
             FROM experiments e WHERE {stage} AND ({}) ORDER BY {order_sql} LIMIT ? OFFSET ?",
            where_sql.text
        );
        let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
        for b in &where_sql.binds {
            q = bind(q, b);
        }
        let (rows, next_page_token) = self.fetch_page(q, max_results, offset).await?;
        let mut items = rows.iter().map(Self::experiment_from_row).collect::<Result<Vec<_>, _>>()?;
        // The page's tags in one query per 500 experiments, not one per experiment.
        let ids: Vec<i64> = items.iter().filter_map(|e| e.experiment_id.parse().ok()).collect();
        let mut tags: std::collections::HashMap<i64, Vec<KeyValue>> = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let marks = crate::marks(chunk.len());
            let sql = format!(
                "SELECT experiment_id, tag_key, tag_value FROM experiment_tags WHERE experiment_id IN ({marks}) ORDER BY experiment_id, tag_key"
            );
            let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await.map_err(db)? {
                let id: i64 = r.try_get(0).map_err(db)?;
                tags.entry(id)
                    .or_default()
                    .push(KeyValue { key: r.try_get(1).map_err(db)?, value: r.try_get(2).map_err(db)? });
            }
        }
        for e in &mut items {
            if let Some(t) = e.experiment_id.parse().ok().and_then(|id: i64| tags.remove(&id)) {
                e.tags = t;
            }
        }
        Ok(Page { items, next_page_token })
    }

    async fn set_experiment_stage(&self, id: &str, stage: &str) -> Result<(), MlflowError> {
        let n = Self::experiment_id(id)?;
        self.get_experiment(id).await?;
        sqlx::query(self.q("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?"))
            .bind(stage)
            .bind(now_ms())
            .bind(n)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Soft delete.
    ///
    /// # Errors
    /// An unknown id.
    pub async fn delete_experiment(&self, id: &str) -> Result<(), MlflowError> {
        self.set_experiment_stage(id, "deleted").await
    }

    /// # Errors
    /// An unknown id.
    pub async fn restore_experiment(&self, id: &str) -> Result<(), MlflowError> {
        self.set_experiment_stage(id, "active").await
    }

    /// Renames an experiment.
    ///
    /// # Errors
    /// An unknown id, an invalid or taken name.
    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<(), MlflowError> {
        validate::experiment_name(new_name)?;
        let n = Self::experiment_id(id)?;
        self.get_experiment(id).await?;
        let taken: Option<i64> = sqlx::query_scalar(self.q("SELECT experiment_id FROM experiments WHERE name = ?"))
            .bind(new_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        if taken.is_some_and(|t| t != n) {
            return Err(MlflowError::exists(format!("Experiment '{new_name}' already exists.")));
        }
        sqlx::query(self.q("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?"))
            .bind(new_name)
            .bind(now_ms())
            .bind(n)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Sets (or overwrites) an experiment tag.
    ///
    /// # Errors
    /// An unknown id or an invalid tag.
    pub async fn set_experiment_tag(&self, id: &str, tag: &KeyValue) -> Result<(), MlflowError> {
        validate::experiment_tag(tag)?;
        let n = Self::experiment_id(id)?;
        self.get_experiment(id).await?;
        let mut tx = self.write_tx().await?;
        EXPERIMENT_TAGS.upsert(&mut tx, self.dialect, Owner::Id(n), std::slice::from_ref(tag)).await?;
        sqlx::query(self.q("UPDATE experiments SET last_update_time = ? WHERE experiment_id = ?"))
            .bind(now_ms())
            .bind(n)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// # Errors
    /// An unknown id or tag key.
    pub async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<(), MlflowError> {
        let n = Self::experiment_id(id)?;
        self.get_experiment(id).await?;
        let done = sqlx::query(self.q("DELETE FROM experiment_tags WHERE experiment_id = ? AND tag_key = ?"))
            .bind(n)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(MlflowError::not_found(format!("No tag with name: {key} in experiment with id {id}")));
        }
        Ok(())
    }

    // ---- runs -------------------------------------------------------------------------------

    /// Creates a run (status RUNNING) and returns it.
    ///
    /// # Errors
    /// An unknown or deleted experiment, invalid tags.
    pub async fn create_run(
        &self,
        experiment_id: Option<&str>,
        user_id: &str,
        run_name: Option<&str>,
        start_time: Option<i64>,
        tags: &[KeyValue],
    ) -> Result<Run, MlflowError> {
        let exp_id = experiment_id.filter(|e| !e.is_empty()).unwrap_or("0");
        let exp = self.experiment_row(exp_id).await?;
        if exp.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!(
                "The experiment {exp_id} must be in the 'active' state. Current state is {}.",
                exp.lifecycle_stage
            )));
        }
        for t in tags {
            validate::run_tag(t)?;
        }
        let tag_name = tags.iter().find(|t| t.key == "mlflow.runName").map(|t| t.value.as_str());
        let name = match (run_name.filter(|n| !n.is_empty()), tag_name) {
            (Some(n), Some(t)) if n != t => {
                return Err(MlflowError::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='{n}', mlflow.runName='{t}')."
                )));
            }
            (Some(n), _) | (None, Some(n)) => n.to_owned(),
            (None, None) => names::generate(),
        };
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let artifact_uri = format!("{}/{run_id}/artifacts", exp.artifact_location);
        let start = start_time.unwrap_or_else(now_ms);
        const INSERT_RUN: &str = "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, 'active', ?)";
        let mut all: Vec<KeyValue> = tags.iter().filter(|t| t.key != "mlflow.runName").cloned().collect();
        all.push(KeyValue { key: "mlflow.runName".into(), value: name.clone() });
        if let Some(sqlite) = &self.sqlite {
            use search::Bind::{I64, Str};
            let mut script = Script::default();
            let binds = [Str(run_id.clone()), Str(name), I64(Self::experiment_id(exp_id)?), Str(user_id.to_owned())];
            script.push(INSERT_RUN, binds.into_iter().chain([I64(start), Str(artifact_uri.clone())]));
            RUN_TAGS.upsert_into_script(Owner::Text(&run_id), &all, &mut script);
            sqlite.writer.write(None, script.statements).await?;
        } else {
            let mut tx = self.write_tx().await?;
            sqlx::query(self.q(INSERT_RUN))
                .bind(&run_id)
                .bind(&name)
                .bind(Self::experiment_id(exp_id)?)
                .bind(user_id)
                .bind(start)
                .bind(&artifact_uri)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            RUN_TAGS.upsert(&mut tx, self.dialect, Owner::Text(&run_id), &all).await?;
            tx.commit().await.map_err(db)?;
        }
        // Everything about the new run is known here; reading it back would cost six queries.
        // As stored: one value per key (the last given), sorted by key.
        all.reverse();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all.dedup_by(|a, b| a.key == b.key);
        let info = RunInfo {
            run_uuid: run_id.clone(),
            run_id,
            run_name: all.iter().find(|t| t.key == "mlflow.runName").map(|t| t.value.clone()).unwrap_or_default(),
            experiment_id: exp.experiment_id,
            user_id: user_id.to_owned(),
            status: "RUNNING".to_owned(),
            start_time: start,
            end_time: None,
            artifact_uri,
            lifecycle_stage: "active".to_owned(),
        };
        let data = RunData { metrics: Vec::new(), params: Vec::new(), tags: all };
        Ok(Run { info, data, inputs: serde_json::json!({}), outputs: serde_json::Value::Null })
    }

    async fn run_info(&self, run_id: &str) -> Result<RunInfo, MlflowError> {
        let r = sqlx::query(self.q("SELECT run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri FROM runs WHERE run_uuid = ?"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| run_not_found(run_id))?;
        Self::run_info_from_row(&r)
    }

    fn run_info_from_row(r: &AnyRow) -> Result<RunInfo, MlflowError> {
        let id: String = r.try_get(0).map_err(db)?;
        let exp: i64 = r.try_get(2).map_err(db)?;
        Ok(RunInfo {
            run_uuid: id.clone(),
            run_id: id,
            run_name: r.try_get(1).map_err(db)?,
            experiment_id: exp.to_string(),
            user_id: r.try_get(3).map_err(db)?,
            status: r.try_get(4).map_err(db)?,
            start_time: r.try_get(5).map_err(db)?,
            end_time: r.try_get(6).map_err(db)?,
            lifecycle_stage: r.try_get(7).map_err(db)?,
            artifact_uri: r.try_get(8).map_err(db)?,
        })
    }

    /// Params, tags and latest metrics of many runs at once: a fixed number of queries per 500
    /// runs instead of three per run (a search page of thousands of runs stays fast).
    async fn runs_data(&self, ids: &[String]) -> Result<std::collections::HashMap<String, RunData>, MlflowError> {
        let mut out: std::collections::HashMap<String, RunData> =
            ids.iter().map(|id| (id.clone(), RunData::default())).collect();
        for chunk in ids.chunks(PAGE_CHUNK) {
            for (table, into) in RUN_DATA_KV {
                let mut q = sqlx::query(self.dialect.sql_dyn(&table.of_owners_sql(chunk.len())));
                for id in chunk {
                    q = q.bind(id);
                }
                for r in q.fetch_all(&self.pool).await.map_err(db)? {
                    let run: String = r.try_get(0).map_err(db)?;
                    let kv = KeyValue { key: r.try_get(1).map_err(db)?, value: r.try_get(2).map_err(db)? };
                    if let Some(d) = out.get_mut(&run) {
                        into(d).push(kv);
                    }
                }
            }
            let mut q = sqlx::query(self.dialect.sql_dyn(&latest_metrics_of_runs_sql(chunk.len())));
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await.map_err(db)? {
                let run: String = r.try_get(5).map_err(db)?;
                let m = Self::metric_from_row(&r)?;
                if let Some(d) = out.get_mut(&run) {
                    d.metrics.push(m);
                }
            }
        }
        Ok(out)
    }

    /// Which of `ids` have any inputs or outputs (most runs have none; those that do are read
    /// one by one).
    async fn runs_with_io(&self, ids: &[String]) -> Result<std::collections::HashSet<String>, MlflowError> {
        let mut found = std::collections::HashSet::new();
        for chunk in ids.chunks(PAGE_CHUNK) {
            for table in IO_TABLES {
                let mut q = sqlx::query(self.dialect.sql_dyn(&runs_in_sql(table, chunk.len())));
                for id in chunk {
                    q = q.bind(id);
                }
                for r in q.fetch_all(&self.pool).await.map_err(db)? {
                    found.insert(r.try_get::<String, _>(0).map_err(db)?);
                }
            }
        }
        Ok(found)
    }

    fn metric_from_row(r: &AnyRow) -> Result<Metric, MlflowError> {
        let is_nan: i64 = r.try_get(2).map_err(db)?;
        let value: f64 = r.try_get(1).map_err(db)?;
        Ok(Metric {
            key: r.try_get(0).map_err(db)?,
            value: if is_nan != 0 { f64::NAN } else { value },
            timestamp: r.try_get(3).map_err(db)?,
            step: r.try_get(4).map_err(db)?,
            ..Metric::default()
        })
    }

    /// # Errors
    /// An unknown run (404).
    pub async fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        let info = self.run_info(run_id).await?;
        let data = self.runs_data(std::slice::from_ref(&info.run_id)).await?.remove(run_id).unwrap_or_default();
        let outputs = self.run_outputs(run_id).await?;
        let inputs = self.run_inputs(run_id).await?;
        Ok(Run { info, data, inputs, outputs })
    }

    /// Updates status, end time and name; returns the new run info.
    ///
    /// # Errors
    /// An unknown run or status.
    pub async fn update_run(
        &self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo, MlflowError> {
        let info = self.run_info(run_id).await?;
        if let Some(s) = status
            && !STATUSES.contains(&s)
        {
            return Err(MlflowError::invalid(format!("Invalid value \"{s}\" for parameter 'status'")));
        }
        let mut tx = self.write_tx().await?;
        sqlx::query(self.q("UPDATE runs SET status = ?, end_time = ?, name = ? WHERE run_uuid = ?"))
            .bind(status.unwrap_or(&info.status))
            .bind(end_time.or(info.end_time))
            .bind(run_name.filter(|n| !n.is_empty()).unwrap_or(&info.run_name))
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(name) = run_name.filter(|n| !n.is_empty()) {
            let tag = KeyValue { key: "mlflow.runName".into(), value: name.to_owned() };
            RUN_TAGS.upsert(&mut tx, self.dialect, Owner::Text(run_id), &[tag]).await?;
        }
        tx.commit().await.map_err(db)?;
        self.run_info(run_id).await
    }

    async fn set_run_stage(&self, run_id: &str, stage: &str, deleted_time: Option<i64>) -> Result<(), MlflowError> {
        self.run_info(run_id).await?;
        sqlx::query(self.q("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?"))
            .bind(stage)
            .bind(deleted_time)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Soft delete (idempotent).
    ///
    /// # Errors
    /// An unknown run.
    pub async fn delete_run(&self, run_id: &str) -> Result<(), MlflowError> {
        self.set_run_stage(run_id, "deleted", Some(now_ms())).await
    }

    /// # Errors
    /// An unknown run.
    pub async fn restore_run(&self, run_id: &str) -> Result<(), MlflowError> {
        self.set_run_stage(run_id, "active", None).await
    }

    /// Logs metrics, params and tags in one transaction, after validating all of them
    /// (`log-metric`, `log-parameter` and `set-tag` are batches of one).
    ///
    /// # Errors
    /// An unknown or deleted run, limits, invalid keys or values, a param changed.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<(), MlflowError> {
        validate::batch_limits(metrics.len(), params.len(), tags.len())?;
        for m in metrics {
            validate::metric(m)?;
        }
        for p in params {
            validate::param(p)?;
        }
        for t in tags {
            validate::run_tag(t)?;
        }
        // The same key twice in one batch must agree.
        for (i, p) in params.iter().enumerate() {
            if let Some(q) = params[..i].iter().find(|q| q.key == p.key && q.value != p.value) {
                return Err(MlflowError::invalid(format!(
                    "Duplicate parameter keys have been submitted: key '{}' with values '{}' and '{}'",
                    p.key, q.value, p.value
                )));
            }
        }
        let run_name = tags.iter().rev().find(|t| t.key == "mlflow.runName");
        let latest = latest_points(metrics);
        if let Some(sqlite) =
            self.sqlite.as_ref().filter(|_| params.is_empty() && metrics.iter().all(|m| m.model_id.is_none()))
        {
            // No write-once params to compare and no models to look up: nothing to read in the
            // transaction but the run's state, which the writer checks in it.
            use search::Bind::Str;
            let mut script = Script::default();
            RUN_TAGS.upsert_into_script(Owner::Text(run_id), tags, &mut script);
            if let Some(name) = run_name {
                script.push(SET_RUN_NAME, [Str(name.value.clone()), Str(run_id.to_owned())]);
            }
            // A whole batch (MLflow's limit: 1,000 points) is one statement: 7,000 values, under
            // SQLite's 32,766.
            for chunk in metrics.chunks(1000) {
                script.push(insert_metrics_sql(chunk.len()), chunk.iter().flat_map(|m| history_binds(run_id, m)));
            }
            if !latest.is_empty() {
                script.push(upsert_latest_sql(latest.len()), latest.iter().flat_map(|m| metric_binds(run_id, m)));
            }
            return sqlite.writer.write(Some(run_id), script.statements).await;
        }
        require_active(run_id, &self.run_info(run_id).await?.lifecycle_stage)?;
        let mut tx = self.write_tx().await?;
        // Insert if absent, then compare: two requests logging the same param at once cannot
        // both insert (a duplicate key), and a different value is caught either way.
        if let Some((key, stored, given)) =
            RUN_PARAMS.insert_once(&mut tx, self.dialect, Owner::Text(run_id), params).await?
        {
            return Err(MlflowError::invalid(format!(
                "Changing param values is not allowed. Param with key='{key}' was already logged with value='{stored}' for run ID='{run_id}'. Attempted logging new value '{given}'."
            )));
        }
        RUN_TAGS.upsert(&mut tx, self.dialect, Owner::Text(run_id), tags).await?;
        if let Some(name) = run_name {
            sqlx::query(self.q(SET_RUN_NAME)).bind(&name.value).bind(run_id).execute(&mut *tx).await.map_err(db)?;
        }
        if !metrics.is_empty() {
            // One multi-row insert per chunk (not a statement per point); 100 rows × 6 values
            // stays under every backend's bind limit.
            for chunk in metrics.chunks(100) {
                let mut q = sqlx::query(self.dialect.sql_dyn(&insert_metrics_sql(chunk.len())));
                for m in chunk {
                    for b in history_binds(run_id, m) {
                        q = bind(q, &b);
                    }
                }
                q.execute(&mut *tx).await.map_err(db)?;
            }
            self.log_model_metrics(&mut tx, run_id, metrics).await?;
            if self.dialect == Dialect::MySql {
                for m in latest {
                    self.latest_metric_mysql(&mut tx, run_id, m).await?;
                }
            } else {
                let mut q = sqlx::query(self.dialect.sql_dyn(&upsert_latest_sql(latest.len())));
                for m in latest {
                    let (v, nan) = stored_value(m.value);
                    q = q.bind(run_id).bind(&m.key).bind(v).bind(nan).bind(m.timestamp).bind(m.step);
                }
                q.execute(&mut *tx).await.map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)
    }

    /// MySQL's form of the latest-metric upsert: insert if absent, then a conditional update
    /// (its `ON DUPLICATE KEY UPDATE` assigns left to right, so a condition on `step` would see
    /// the new step after the first assignment).
    async fn latest_metric_mysql(&self, tx: &mut WriteTx, run_id: &str, m: &Metric) -> Result<(), MlflowError> {
        let (v, nan) = stored_value(m.value);
        sqlx::query(self.dialect.insert_ignore(
            "INSERT INTO latest_metrics (run_uuid, metric_key, metric_value, is_nan, metric_timestamp, step) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(run_id)
        .bind(&m.key)
        .bind(v)
        .bind(nan)
        .bind(m.timestamp)
        .bind(m.step)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        sqlx::query(self.q("UPDATE latest_metrics SET metric_value = ?, is_nan = ?, metric_timestamp = ?, step = ? \
             WHERE run_uuid = ? AND metric_key = ? AND (step < ? OR (step = ? AND metric_timestamp < ?) \
             OR (step = ? AND metric_timestamp = ? AND ? = 0 AND (is_nan = 1 OR metric_value < ?)))"))
        .bind(v)
        .bind(nan)
        .bind(m.timestamp)
        .bind(m.step)
        .bind(run_id)
        .bind(&m.key)
        .bind(m.step)
        .bind(m.step)
        .bind(m.timestamp)
        .bind(m.step)
        .bind(m.timestamp)
        .bind(nan)
        .bind(v)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Deletes a run tag.
    ///
    /// # Errors
    /// An unknown or deleted run, or a tag it does not have.
    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), MlflowError> {
        let info = self.run_info(run_id).await?;
        if info.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!("The run {run_id} must be in the 'active' state.")));
        }
        let done = sqlx::query(self.q("DELETE FROM tags WHERE run_uuid = ? AND tag_key = ?"))
            .bind(run_id)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(MlflowError::not_found(format!("No tag with name: {key} in run with id {run_id}")));
        }
        Ok(())
    }

    /// Every point of one metric, by (step, timestamp): pages of `max_results` (at most 25,000)
    /// when asked for, else the whole history in one answer, as MLflow's server does when the
    /// request has no `max_results`.
    ///
    /// # Errors
    /// An unknown run, a bad token or page size.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<kiln_wire::MetricPoint>, MlflowError> {
        self.run_info(run_id).await?;
        if let Some(max) = max_results {
            validate::max_results(max, 25_000)?;
        }
        // "All of it" is a limit no history reaches (MySQL has no OFFSET without LIMIT).
        let limit = max_results.unwrap_or(i64::MAX - 1);
        let offset = decode_token(page_token)?;
        if let Some(sqlite) = &self.sqlite {
            let mut items = sqlite.reader.history(run_id, key, limit + 1, offset).await?;
            let more = i64::try_from(items.len()).unwrap_or(i64::MAX) > limit;
            items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            return Ok(Page { items, next_page_token: more.then(|| encode_token(offset + limit)) });
        }
        // The key is known: not selecting it saves a string per point.
        let rows = sqlx::query(self.q("SELECT metric_value, is_nan, metric_timestamp, step FROM metrics WHERE run_uuid = ? AND metric_key = ? ORDER BY step, metric_timestamp LIMIT ? OFFSET ?"))
            .bind(run_id)
            .bind(key)
            .bind(limit + 1)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows.iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
            let value: f64 = r.try_get(0).map_err(db)?;
            let is_nan: i64 = r.try_get(1).map_err(db)?;
            items.push(kiln_wire::MetricPoint {
                value: if is_nan != 0 { f64::NAN } else { value },
                timestamp: r.try_get(2).map_err(db)?,
                step: r.try_get(3).map_err(db)?,
            });
        }
        Ok(Page { items, next_page_token: more.then(|| encode_token(offset + limit)) })
    }

    /// Runs of the given experiments matching `filter` (MLflow's grammar), in `order_by` order
    /// (default newest first), a page at a time.
    ///
    /// # Errors
    /// A bad filter, order_by, token or page size.
    pub async fn search_runs(
        &self,
        experiment_ids: &[String],
        filter: &str,
        order_by: &[String],
        view: ViewType,
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<Run>, MlflowError> {
        validate::max_results(max_results, 50_000)?;
        let offset = decode_token(page_token)?;
        let clauses = search::parse_filter(filter)?;
        let where_sql = search::compile_run_filter(&clauses)?;
        let orders = order_by.iter().map(|o| search::parse_order_by(o)).collect::<Result<Vec<_>, _>>()?;
        let (joins, order_sql) = search::compile_run_order(&orders)?;
        let ids: Vec<i64> = experiment_ids.iter().filter_map(|e| e.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let stage = match view {
            ViewType::ActiveOnly => "r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'",
            ViewType::DeletedOnly => "r.lifecycle_stage = 'deleted'",
            ViewType::All => "1 = 1",
        };
        let marks = crate::marks(ids.len());
        let sql = format!(
            "SELECT r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri \
             FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id{} \
             WHERE r.experiment_id IN ({marks}) AND {stage} AND ({}) ORDER BY {order_sql} LIMIT ? OFFSET ?",
            joins.text, where_sql.text
        );
        let mut binds = joins.binds;
        binds.extend(ids.iter().map(|id| search::Bind::I64(*id)));
        binds.extend(where_sql.binds);
        let (infos, mut data, with_io, next_page_token) = if let Some(sqlite) = &self.sqlite {
            let page = sqlite.reader.search_runs(sql, binds, max_results, offset).await?;
            (page.infos, page.data, page.with_io, page.more.then(|| encode_token(offset + max_results)))
        } else {
            let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
            for b in &binds {
                q = bind(q, b);
            }
            let (rows, next_page_token) = self.fetch_page(q, max_results, offset).await?;
            let infos = rows.iter().map(Self::run_info_from_row).collect::<Result<Vec<_>, _>>()?;
            let ids: Vec<String> = infos.iter().map(|i| i.run_id.clone()).collect();
            let data = self.runs_data(&ids).await?;
            let with_io = self.runs_with_io(&ids).await?;
            (infos, data, with_io, next_page_token)
        };
        let mut items = Vec::with_capacity(infos.len());
        for info in infos {
            let (inputs, outputs) = if with_io.contains(&info.run_id) {
                (self.run_inputs(&info.run_id).await?, self.run_outputs(&info.run_id).await?)
            } else {
                (serde_json::json!({}), serde_json::Value::Null)
            };
            let d = data.remove(&info.run_id).unwrap_or_default();
            items.push(Run { info, data: d, inputs, outputs });
        }
        Ok(Page { items, next_page_token })
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl SqlStore {
    /// One page of an offset-paged query ending in `LIMIT ? OFFSET ?` (every other value
    /// already bound): one row more than the page is asked for, to know whether another page
    /// follows. Returns the page's rows and the next page's token.
    async fn fetch_page(
        &self,
        q: AnyQuery<'_>,
        max_results: i64,
        offset: i64,
    ) -> Result<(Vec<AnyRow>, Option<String>), MlflowError> {
        let mut rows = q.bind(max_results + 1).bind(offset).fetch_all(&self.pool).await.map_err(db)?;
        let keep = usize::try_from(max_results).unwrap_or(usize::MAX);
        let next = (rows.len() > keep).then(|| encode_token(offset + max_results));
        rows.truncate(keep);
        Ok((rows, next))
    }
}

fn bind<'q>(q: AnyQuery<'q>, b: &search::Bind) -> AnyQuery<'q> {
    match b {
        search::Bind::Str(s) => q.bind(s.clone()),
        search::Bind::F64(v) => q.bind(*v),
        search::Bind::I64(v) => q.bind(*v),
    }
}

/// Versioned schema migrations, one file per dialect, embedded in the binary. Applied in order on
/// one connection (MySQL's `sql_mode` is per session), each in a transaction with its record in
/// `kiln_schema`. Hand-run rather than sqlx's `migrate!`, which needs sqlx's macro crate and so
/// a second build of every database driver.
const MIGRATIONS: [(i64, [&str; 3]); 6] = [
    (
        1,
        [
            include_str!("../migrations/sqlite/0001_tracking.sql"),
            include_str!("../migrations/postgres/0001_tracking.sql"),
            include_str!("../migrations/mysql/0001_tracking.sql"),
        ],
    ),
    (
        2,
        [
            include_str!("../migrations/sqlite/0002_logged_models.sql"),
            include_str!("../migrations/postgres/0002_logged_models.sql"),
            include_str!("../migrations/mysql/0002_logged_models.sql"),
        ],
    ),
    (
        3,
        [
            include_str!("../migrations/sqlite/0003_inputs.sql"),
            include_str!("../migrations/postgres/0003_inputs.sql"),
            include_str!("../migrations/mysql/0003_inputs.sql"),
        ],
    ),
    (
        4,
        [
            include_str!("../migrations/sqlite/0004_model_metrics.sql"),
            include_str!("../migrations/postgres/0004_model_metrics.sql"),
            include_str!("../migrations/mysql/0004_model_metrics.sql"),
        ],
    ),
    (
        5,
        [
            include_str!("../migrations/sqlite/0005_metric_bits.sql"),
            include_str!("../migrations/postgres/0005_metric_bits.sql"),
            include_str!("../migrations/mysql/0005_metric_bits.sql"),
        ],
    ),
    (
        6,
        [
            include_str!("../migrations/sqlite/0006_registry.sql"),
            include_str!("../migrations/postgres/0006_registry.sql"),
            include_str!("../migrations/mysql/0006_registry.sql"),
        ],
    ),
];

/// Key of the PostgreSQL advisory lock (and name of MySQL's named lock) that serialises
/// migrations of one database ("kiln" in ASCII, then 1).
const MIGRATION_LOCK_KEY: i64 = 0x6b69_6c6e_0001;
const MIGRATION_LOCK_NAME: &str = "kiln_schema_migration";

/// Brings the schema up to date. Replicas started together against one database must not both
/// apply a migration: PostgreSQL and MySQL take a session lock (advisory / named) around the
/// whole run; SQLite applies each migration inside `BEGIN IMMEDIATE`, which already excludes
/// other writers, and every dialect re-checks `kiln_schema` inside the migration's transaction.
async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    match dialect {
        Dialect::Postgres => {
            sqlx::query(AssertSqlSafe(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")))
                .execute(&mut *conn)
                .await?;
        }
        Dialect::MySql => {
            let got: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT CAST(GET_LOCK('{MIGRATION_LOCK_NAME}', 300) AS SIGNED)"
            )))
            .fetch_one(&mut *conn)
            .await?;
            if got != Some(1) {
                return Err(sqlx::Error::Protocol(
                    "timed out after 300 s waiting for another server's schema migration".into(),
                ));
            }
        }
        Dialect::Sqlite => {}
    }
    let result = apply_migrations(&mut conn, dialect).await;
    let unlock = match dialect {
        Dialect::Postgres => format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"),
        Dialect::MySql => format!("SELECT RELEASE_LOCK('{MIGRATION_LOCK_NAME}')"),
        Dialect::Sqlite => String::new(),
    };
    if !unlock.is_empty()
        && let Err(e) = sqlx::query(AssertSqlSafe(unlock)).execute(&mut *conn).await
    {
        // The lock is the session's: closing the connection releases it.
        tracing::warn!(error = %e, "cannot release the migration lock; closing the connection");
        let _ = conn.close().await;
    }
    result
}

async fn apply_migrations(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS kiln_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM kiln_schema").fetch_all(&mut *conn).await?;
    for (version, files) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let file = match dialect {
            Dialect::Sqlite => files[0],
            Dialect::Postgres => files[1],
            Dialect::MySql => files[2],
        };
        let mut tx = if dialect == Dialect::Sqlite {
            sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?
        } else {
            sqlx::Connection::begin(&mut *conn).await?
        };
        // Another process may have applied it since the read above (SQLite has no session lock).
        let done: Option<i64> = sqlx::query_scalar(dialect.sql("SELECT version FROM kiln_schema WHERE version = ?"))
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        for stmt in statements(file) {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query(dialect.sql("INSERT INTO kiln_schema (version, applied_at) VALUES (?, ?)"))
            .bind(version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

/// The statements of a migration file: split at `;` ending a line, `--` comment lines dropped.
/// (The files hold no `;` inside strings.)
fn statements(file: &'static str) -> Vec<&'static str> {
    file.split(";\n")
        .map(|s| s.trim())
        .filter(|s| !s.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with("--")))
        .collect()
}

/// MLflow's order for "the latest" metric: highest step, then timestamp, then value (NaN last).
fn newer(a: &Metric, b: &Metric) -> bool {
    (a.step, a.timestamp) > (b.step, b.timestamp)
        || ((a.step, a.timestamp) == (b.step, b.timestamp)
            && !a.value.is_nan()
            && (b.value.is_nan() || a.value > b.value))
}

/// What the database holds for a metric value: NaN as 0 with a flag (MySQL has no NaN), and
/// infinities clamped to the largest double, as MLflow's SQL store does. The flag is an integer:
/// sqlx's `Any` driver cannot read SQLite booleans.
const SET_RUN_NAME: &str = "UPDATE runs SET name = ? WHERE run_uuid = ?";

/// A multi-row insert of `rows` metric points into the history (7 values each, see
/// [`history_binds`]).
fn insert_metrics_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO metrics (run_uuid, metric_key, metric_value, is_nan, metric_timestamp, step, value_bits) VALUES {values}"
    )
}

/// A history row's values: [`metric_binds`] and the stored value's IEEE-754 bits, which keep
/// every value exact on its way back (SQLite may store an integral REAL such as `-0.0` as the
/// integer 0; see `sqlite_read::Reader::history`).
fn history_binds(run_id: &str, m: &Metric) -> [search::Bind; 7] {
    let [a, b, c, d, e, f] = metric_binds(run_id, m);
    let (v, nan) = stored_value(m.value);
    let v = if nan == 1 { f64::NAN } else { v };
    let bits = i64::from_ne_bytes(v.to_bits().to_ne_bytes());
    [a, b, c, d, e, f, search::Bind::I64(bits)]
}

/// SQLite's and PostgreSQL's latest-metric write for `rows` keys: insert if absent, else
/// overwrite only when the new point is newer (higher step, then timestamp, then value), so the
/// row ends at the newest point whatever order concurrent batches commit in.
fn upsert_latest_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO latest_metrics (run_uuid, metric_key, metric_value, is_nan, metric_timestamp, step) VALUES {values} \
         ON CONFLICT (run_uuid, metric_key) DO UPDATE SET metric_value = excluded.metric_value, \
         is_nan = excluded.is_nan, metric_timestamp = excluded.metric_timestamp, step = excluded.step \
         WHERE latest_metrics.step < excluded.step \
         OR (latest_metrics.step = excluded.step AND latest_metrics.metric_timestamp < excluded.metric_timestamp) \
         OR (latest_metrics.step = excluded.step AND latest_metrics.metric_timestamp = excluded.metric_timestamp \
         AND excluded.is_nan = 0 AND (latest_metrics.is_nan = 1 OR latest_metrics.metric_value < excluded.metric_value))"
    )
}

/// The 6 values of a metric row, in the column order of the two statements above.
fn metric_binds(run_id: &str, m: &Metric) -> [search::Bind; 6] {
    use search::Bind::{F64, I64, Str};
    let (v, nan) = stored_value(m.value);
    [Str(run_id.to_owned()), Str(m.key.clone()), F64(v), I64(nan), I64(m.timestamp), I64(m.step)]
}

/// The newest point of each key in a batch (highest step, then timestamp, then value).
fn latest_points(metrics: &[Metric]) -> Vec<&Metric> {
    let mut latest: Vec<&Metric> = Vec::new();
    for m in metrics {
        match latest.iter_mut().find(|l| l.key == m.key) {
            Some(l) => {
                if newer(m, l) {
                    *l = m;
                }
            }
            None => latest.push(m),
        }
    }
    latest
}

fn stored_value(v: f64) -> (f64, i64) {
    // -0.0 is stored as 0.0, as SQLite stores it, so every backend and read path agrees.
    if v.is_nan() {
        (0.0, 1)
    } else if v == 0.0 {
        (0.0, 0)
    } else {
        (v.clamp(-MAX_DOUBLE, MAX_DOUBLE), 0)
    }
}

/// The sqlx URL for an MLflow-style backend store URI.
fn connect_url(uri: &str) -> Result<(Dialect, String), StoreError> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| StoreError::Scheme(redact(uri)))?;
    let base = scheme.split('+').next().unwrap_or(scheme);
    match base {
        // sqlite:///relative.db and sqlite:////abs/path.db, as SQLAlchemy (and MLflow) read them.
        "sqlite" => {
            let path = rest.strip_prefix('/').unwrap_or(rest);
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::InMemory(uri.to_owned()));
            }
            Ok((Dialect::Sqlite, format!("sqlite://{path}?mode=rwc")))
        }
        "postgresql" | "postgres" => Ok((Dialect::Postgres, format!("postgres://{rest}"))),
        "mysql" | "mariadb" => Ok((Dialect::MySql, format!("mysql://{rest}"))),
        _ => Err(StoreError::Scheme(redact(uri))),
    }
}

/// `n` bind placeholders for an `IN (…)` or `VALUES (…)` list: `?, ?, ?`.
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// MLflow's answer for a run that does not exist.
pub(crate) fn run_not_found(run_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Run with id={run_id} not found"))
}

/// MLflow's answer for a write to a run that is not active (deleted), given its stage.
pub(crate) fn require_active(run_id: &str, lifecycle_stage: &str) -> Result<(), MlflowError> {
    if lifecycle_stage == "active" {
        return Ok(());
    }
    Err(MlflowError::invalid(format!(
        "The run {run_id} must be in the 'active' state. Current state is {lifecycle_stage}."
    )))
}

/// Every SQLite connection's settings, sqlx's, the reader's and the writer's alike: a busy
/// timeout (concurrent writers wait for the lock instead of failing with "database is locked"),
/// foreign keys, MLflow's case-sensitive LIKE (ILIKE is the other one; SQLite's LIKE is not by
/// default), and WAL's usual `synchronous = NORMAL`.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA busy_timeout = 30000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA case_sensitive_like = ON",
    "PRAGMA synchronous = NORMAL",
];

/// Runs per IN-list when a page's data is read (well under every backend's bind limit).
const PAGE_CHUNK: usize = 500;

/// The key/value tables read with a page of runs, and where each one's pairs go.
type PairsOf = fn(&mut RunData) -> &mut Vec<KeyValue>;
const RUN_DATA_KV: [(kv::KvTable, PairsOf); 2] = [(RUN_PARAMS, |d| &mut d.params), (RUN_TAGS, |d| &mut d.tags)];

/// The latest metrics of the runs in an IN-list of `n` (the columns of
/// `SqlStore::metric_from_row`, then the run).
fn latest_metrics_of_runs_sql(n: usize) -> String {
    let marks = crate::marks(n);
    format!(
        "SELECT metric_key, metric_value, is_nan, metric_timestamp, step, run_uuid FROM latest_metrics WHERE run_uuid IN ({marks}) ORDER BY run_uuid, metric_key"
    )
}

/// The tables that record a run's inputs and outputs.
const IO_TABLES: [&str; 3] = ["run_model_outputs", "run_dataset_inputs", "run_model_inputs"];

/// Which runs of an IN-list of `n` have a row in `table`.
fn runs_in_sql(table: &str, n: usize) -> String {
    let marks = crate::marks(n);
    format!("SELECT DISTINCT run_uuid FROM {table} WHERE run_uuid IN ({marks})")
}

/// The database file of a `sqlite:` store URI, as [`connect_url`] reads it; `None` for other
/// backends.
fn sqlite_file(uri: &str) -> Option<std::path::PathBuf> {
    let (scheme, rest) = uri.split_once("://")?;
    (scheme.split('+').next() == Some("sqlite"))
        .then(|| std::path::PathBuf::from(rest.strip_prefix('/').unwrap_or(rest)))
}

/// The URI without its password, for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &uri[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..s + 3], &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// SQLite's history reader is exact (values travel as bits, `-0.0` and NaN included) and
    /// reads points logged before the bits column from the value columns.
    #[tokio::test]
    async fn sqlite_history_is_exact_in_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("t.db").display());
        let store = SqlStore::open(&uri, "mlflow-artifacts:").await.unwrap();
        let run = store.create_run(Some("0"), "u", None, None, &[]).await.unwrap().info.run_id;
        let values = [0.1, -0.0, 1e-300, 5e-324, f64::MAX, f64::NAN, 1.0 / 3.0, -123_456.789, f64::INFINITY, 2.5];
        let points: Vec<Metric> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Metric { key: "k".into(), value: *v, timestamp: 7, step: i as i64, ..Metric::default() })
            .collect();
        store.log_batch(&run, &points, &[], &[]).await.unwrap();
        let fast = store.metric_history(&run, "k", None, None).await.unwrap().items;
        let bits = |ms: &[kiln_wire::MetricPoint]| {
            ms.iter().map(|m| (m.value.to_bits(), m.step, m.timestamp)).collect::<Vec<_>>()
        };
        let want: Vec<f64> = values.iter().map(|v| if v.is_nan() { f64::NAN } else { stored_value(*v).0 }).collect();
        assert_eq!(
            fast.iter().map(|m| m.value.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        sqlx::query("UPDATE metrics SET value_bits = NULL WHERE step = 3").execute(&store.pool).await.unwrap();
        let rows = store.metric_history(&run, "k", None, None).await.unwrap().items;
        assert_eq!(bits(&rows), bits(&fast));
        let page = store.metric_history(&run, "k", Some(4), None).await.unwrap();
        assert_eq!(page.items.len(), 4);
        let rest = store.metric_history(&run, "k", Some(25_000), page.next_page_token.as_deref()).await.unwrap();
        assert_eq!(rest.items.len(), 6);
        assert!(rest.next_page_token.is_none());
    }

    /// A statement failing inside a SQLite script undoes the statements before it and leaves
    /// the writer usable (no transaction left open); an in-memory SQLite store is refused.
    #[tokio::test]
    async fn a_failed_sqlite_script_leaves_nothing() {
        use search::Bind::{I64, Str};
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("t.db").display());
        let store = SqlStore::open(&uri, "mlflow-artifacts:").await.unwrap();
        let run = store.create_run(Some("0"), "u", Some("before"), None, &[]).await.unwrap().info.run_id;
        let mut script = Script::default();
        script.push(SET_RUN_NAME, [Str("after".into()), Str(run.clone())]);
        script.push("INSERT INTO no_such_table VALUES (?)", [I64(1)]);
        assert!(store.sqlite.as_ref().unwrap().writer.write(None, script.statements).await.is_err());
        assert!(matches!(SqlStore::open("sqlite:///:memory:", "x").await, Err(StoreError::InMemory(_))));
        for step in 0..12 {
            let m = Metric { key: "m".into(), value: 1.0, timestamp: 1, step, ..Metric::default() };
            store.log_batch(&run, &[m], &[], &[]).await.unwrap();
        }
        let got = store.get_run(&run).await.unwrap();
        assert_eq!(got.info.run_name, "before");
        assert_eq!(got.data.metrics[0].step, 11);
        assert_eq!(store.metric_history(&run, "m", None, None).await.unwrap().items.len(), 12);
    }

    /// Writes that share one SQLite transaction stand alone: one for a deleted or unknown run
    /// is answered with its own error and leaves nothing; the others commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_writes_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("t.db").display());
        let store = SqlStore::open(&uri, "mlflow-artifacts:").await.unwrap();
        let good = store.create_run(Some("0"), "u", None, None, &[]).await.unwrap().info.run_id;
        let gone = store.create_run(Some("0"), "u", None, None, &[]).await.unwrap().info.run_id;
        store.delete_run(&gone).await.unwrap();
        let tasks: Vec<_> = (0..60i64)
            .map(|i| {
                let store = store.clone();
                let run = match i % 6 {
                    0 => gone.clone(),
                    1 => "0123456789abcdef0123456789abcdef".to_owned(),
                    _ => good.clone(),
                };
                tokio::spawn(async move {
                    let m = Metric { key: "m".into(), value: 1.0, timestamp: 1, step: i, ..Metric::default() };
                    let tag = KeyValue { key: format!("t{i}"), value: "v".into() };
                    (i, store.log_batch(&run, &[m], &[], &[tag]).await)
                })
            })
            .collect();
        for t in tasks {
            let (i, result) = t.await.unwrap();
            match i % 6 {
                0 => assert_eq!(result.unwrap_err().code, kiln_wire::ErrorCode::InvalidParameterValue),
                1 => assert_eq!(result.unwrap_err().code, kiln_wire::ErrorCode::ResourceDoesNotExist),
                _ => result.unwrap(),
            }
        }
        assert_eq!(store.metric_history(&good, "m", None, None).await.unwrap().items.len(), 40);
        assert_eq!(store.get_run(&good).await.unwrap().data.tags.len(), 41); // 40 + mlflow.runName
        assert!(store.metric_history(&gone, "m", None, None).await.unwrap().items.is_empty());
        assert_eq!(store.get_run(&gone).await.unwrap().data.tags.len(), 1);
    }

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(Dialect::Postgres.sql("a = ? AND b IN (?, ?)").0, "a = $1 AND b IN ($2, $3)");
        assert_eq!(Dialect::MySql.sql("a = ?").0, "a = ?");
    }

    #[test]
    fn page_tokens_round_trip_and_bad_ones_are_400() {
        assert_eq!(decode_token(Some(&encode_token(1234))).unwrap(), 1234);
        assert_eq!(decode_token(None).unwrap(), 0);
        assert_eq!(decode_token(Some("zz")).unwrap_err().code, kiln_wire::ErrorCode::InvalidParameterValue);
    }

    #[test]
    fn every_migration_splits_into_statements() {
        for (_, files) in MIGRATIONS {
            for f in files {
                let st = statements(f);
                assert!(!st.is_empty(), "{st:?}");
                assert!(st.iter().all(|s| !s.ends_with(';')));
            }
        }
    }

    #[test]
    fn uris() {
        assert_eq!(
            connect_url("sqlite:///mlflow.db").unwrap(),
            (Dialect::Sqlite, "sqlite://mlflow.db?mode=rwc".into())
        );
        assert_eq!(connect_url("sqlite:////tmp/x.db").unwrap().1, "sqlite:///tmp/x.db?mode=rwc");
        assert_eq!(connect_url("postgresql+psycopg2://u@h/db").unwrap().1, "postgres://u@h/db");
        assert!(connect_url("oracle://x").is_err());
        assert_eq!(redact("mysql://root:secret@127.0.0.1/test"), "mysql://root:***@127.0.0.1/test");
    }

    #[test]
    fn latest_metric_order() {
        let m = |step, ts, v| Metric { key: "k".into(), value: v, timestamp: ts, step, ..Metric::default() };
        assert!(newer(&m(2, 0, 1.0), &m(1, 9, 5.0)));
        assert!(newer(&m(1, 2, 1.0), &m(1, 1, 5.0)));
        assert!(newer(&m(1, 1, 6.0), &m(1, 1, 5.0)));
        assert!(newer(&m(1, 1, 1.0), &m(1, 1, f64::NAN)));
    }
}
