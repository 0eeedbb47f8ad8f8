//! The model registry (`shared/spec/mlflow-compat.md` §5): registered models, their versions,
//! tags, aliases and (deprecated but widely used) stages, with MLflow's validation, errors and
//! version numbering (a deleted version's number is never issued again).

use std::collections::HashMap;

use kiln_core::uri::{ModelUri, VersionSelector};
use kiln_wire::{Alias, KeyValue, MlflowError, ModelVersion, RegisteredModel};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::kv::{KvTable, Owner};
use crate::search::{self, Bind, Key, Op, Sql, Value};
use crate::{Page, SqlStore, bind, db, decode_token, now_ms};

/// The stages a version can be in, in MLflow's spelling.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

const REGISTERED_TAGS: KvTable =
    KvTable { table: "registered_model_tags", owner: "name", key: "tag_key", value: "tag_value" };

const MODEL_COLUMNS: &str = "m.name, m.creation_time, m.last_updated_time, m.description";
const VERSION_COLUMNS: &str = "v.name, v.version, v.creation_time, v.last_updated_time, v.description, v.user_id, \
                               v.current_stage, v.source, v.run_id, v.run_link, v.status, v.status_message, v.model_id";

/// Longest registry tag key and value (MLflow 3's limits).
const MAX_TAG_KEY: usize = 250;
const MAX_TAG_VALUE: usize = 100_000;
const MAX_NAME: usize = 256;
const MAX_ALIAS: usize = 255;
const MAX_DESCRIPTION: usize = 5000;
const MAX_SOURCE: usize = 4096;

/// What a new model version is made of (`model-versions/create`).
#[derive(Debug, Default)]
pub struct NewModelVersion<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub run_id: Option<&'a str>,
    pub run_link: Option<&'a str>,
    pub description: Option<&'a str>,
    pub model_id: Option<&'a str>,
    pub tags: &'a [KeyValue],
}

/// `staging` → `Staging`; anything outside [`STAGES`] is a 400.
///
/// # Errors
/// Not a stage name.
pub fn canonical_stage(stage: &str) -> Result<&'static str, MlflowError> {
    STAGES.iter().find(|s| s.eq_ignore_ascii_case(stage)).copied().ok_or_else(|| {
        MlflowError::invalid(format!(
            "Invalid Model Version stage: {stage}. Value must be one of {}.",
            STAGES.join(", ")
        ))
    })
}

/// MLflow's name rule (no `/` or `:`, which model URIs split on; not `.` or `..`), plus a length
/// limit and no control characters.
fn model_name(name: &str) -> Result<(), MlflowError> {
    if name.trim().is_empty() {
        return Err(MlflowError::invalid("Missing value for required parameter 'name'."));
    }
    if name.chars().count() > MAX_NAME {
        return Err(MlflowError::invalid(format!(
            "Registered model name exceeds the maximum length of {MAX_NAME} characters."
        )));
    }
    if name.contains(['/', ':']) || name.chars().any(char::is_control) {
        return Err(MlflowError::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':' (or control characters)."
        )));
    }
    if name == "." || name == ".." {
        return Err(MlflowError::invalid(format!("Invalid value '{name}' for parameter 'name'.")));
    }
    Ok(())
}

fn tag(t: &KeyValue) -> Result<(), MlflowError> {
    if t.key.is_empty() {
        return Err(MlflowError::invalid("Missing value for required parameter 'key'"));
    }
    if t.key.chars().count() > MAX_TAG_KEY {
        return Err(MlflowError::invalid(format!(
            "Tag key '{}…' had length {}, which exceeded length limit of {MAX_TAG_KEY}",
            t.key.chars().take(40).collect::<String>(),
            t.key.chars().count()
        )));
    }
    if t.value.chars().count() > MAX_TAG_VALUE {
        return Err(MlflowError::invalid(format!(
            "Tag value for key '{}' had length {}, which exceeded length limit of {MAX_TAG_VALUE}",
            t.key,
            t.value.chars().count()
        )));
    }
    Ok(())
}

fn description(d: &str) -> Result<(), MlflowError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(MlflowError::invalid(format!(
            "Description had length {}, which exceeded length limit of {MAX_DESCRIPTION}",
            d.chars().count()
        )));
    }
    Ok(())
}

/// MLflow's alias rule: letters, digits, `_` and `-`; not `latest` and not `v<digits>`, which
/// `models:/` URIs read as a version.
fn alias(a: &str) -> Result<(), MlflowError> {
    if a.is_empty() || a.chars().count() > MAX_ALIAS {
        return Err(MlflowError::invalid(format!(
            "Alias name must be between 1 and {MAX_ALIAS} characters, got '{a}'."
        )));
    }
    if !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(MlflowError::invalid(format!(
            "Invalid alias name: '{a}'. Aliases may only contain alphanumerics, underscores (_) and dashes (-)."
        )));
    }
    let looks_like_version =
        a.len() > 1 && (a.starts_with('v') || a.starts_with('V')) && a[1..].bytes().all(|b| b.is_ascii_digit());
    if looks_like_version || a.eq_ignore_ascii_case("latest") {
        return Err(MlflowError::invalid(format!(
            "'{a}' alias name (case insensitive) is reserved: 'latest' and 'v<number>' are read as versions in model URIs."
        )));
    }
    Ok(())
}

fn version_number(version: &str) -> Result<i64, MlflowError> {
    version.trim().parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        MlflowError::invalid(format!("Parameter 'version' must be a positive integer, got '{version}'."))
    })
}

/// A local path (no scheme, or `file:`) as a version source.
fn is_local(source: &str) -> bool {
    match source.split_once(':') {
        None => true,
        // `C:\…` is a drive letter, not a scheme.
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("file") || scheme.len() == 1,
    }
}

/// Percent-decodes until nothing changes (`%252e` is `.` after two rounds).
fn fully_decoded(s: &str) -> String {
    let mut cur = s.to_owned();
    for _ in 0..8 {
        let next = percent_encoding::percent_decode_str(&cur.replace('+', " ")).decode_utf8_lossy().into_owned();
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// MLflow's guard against model-version sources that climb out of where they point
/// (CVE-2023-6909, CVE-2024-0520 classes): after decoding, no `..` or `.` segment and no NUL.
fn source_without_relative_parts(source: &str) -> Result<(), MlflowError> {
    let decoded = fully_decoded(source);
    let path = decoded.split_once("://").map_or(decoded.as_str(), |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if decoded.contains('\0') || path.split(['/', '\\']).any(|seg| seg == ".." || seg == ".") {
        return Err(MlflowError::invalid(format!(
            "Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, \
             ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path \
             references present. Please provide an absolute path."
        )));
    }
    Ok(())
}

fn local_path(uri: &str) -> &str {
    uri.strip_prefix("file://").or_else(|| uri.strip_prefix("file:")).unwrap_or(uri)
}

fn model_not_found(name: &str) -> MlflowError {
    MlflowError::not_found(format!("Registered Model with name={name} not found"))
}

fn version_not_found(name: &str, version: i64) -> MlflowError {
    MlflowError::not_found(format!("Model Version (name={name}, version={version}) not found"))
}

fn version_from_row(r: &AnyRow) -> Result<ModelVersion, MlflowError> {
    let s = |i: usize| -> Result<String, MlflowError> { r.try_get(i).map_err(db) };
    Ok(ModelVersion {
        name: s(0)?,
        version: r.try_get::<i64, _>(1).map_err(db)?.to_string(),
        creation_timestamp: r.try_get(2).map_err(db)?,
        last_updated_timestamp: r.try_get(3).map_err(db)?,
        description: s(4)?,
        user_id: s(5)?,
        current_stage: s(6)?,
        source: s(7)?,
        run_id: s(8)?,
        run_link: s(9)?,
        status: s(10)?,
        status_message: s(11)?,
        model_id: s(12)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

fn model_from_row(r: &AnyRow) -> Result<RegisteredModel, MlflowError> {
    Ok(RegisteredModel {
        name: r.try_get(0).map_err(db)?,
        creation_timestamp: r.try_get(1).map_err(db)?,
        last_updated_timestamp: r.try_get(2).map_err(db)?,
        user_id: String::new(),
        description: r.try_get(3).map_err(db)?,
        latest_versions: Vec::new(),
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Rows per `IN (…)` list when filling in a page's tags, aliases and versions.
const IN_CHUNK: usize = 500;

/// `tags.<key> <op> <value>` as an `EXISTS` over a tag table.
fn tag_predicate(
    key: &str,
    c: &search::Clause,
    table: &str,
    join: &str,
    binds: &mut Vec<Bind>,
) -> Result<String, MlflowError> {
    let base = format!("SELECT 1 FROM {table} t WHERE {join} AND t.tag_key = ?");
    match c.op {
        Op::IsNull => {
            binds.push(Bind::Str(key.to_owned()));
            Ok(format!("NOT EXISTS ({base})"))
        }
        Op::IsNotNull => {
            binds.push(Bind::Str(key.to_owned()));
            Ok(format!("EXISTS ({base})"))
        }
        // MLflow's client adds `tags.mlflow.prompt.is_prompt != 'true'` to every registered-model
        // search, and models without that tag must match it; for any other tag, as in MLflow,
        // a missing tag makes the clause false.
        Op::Ne if key == "mlflow.prompt.is_prompt" => {
            binds.push(Bind::Str(key.to_owned()));
            let Value::Str(v) = &c.value else {
                return Err(MlflowError::invalid(format!("Invalid value for tag '{key}': expected a quoted string")));
            };
            binds.push(Bind::Str(v.clone()));
            Ok(format!("NOT EXISTS ({base} AND t.tag_value = ?)"))
        }
        Op::Ne | Op::Eq | Op::Like | Op::ILike => {
            binds.push(Bind::Str(key.to_owned()));
            let pred = search::string_predicate("t.tag_value", c.op, &c.value, binds, &format!("tag '{key}'"))?;
            Ok(format!("EXISTS ({base} AND {pred})"))
        }
        _ => Err(MlflowError::invalid(format!("Invalid comparator for tag '{key}': use =, !=, LIKE or ILIKE"))),
    }
}

/// `registered-models/search` filters: `name` and `tags.*`.
fn compile_model_filter(filter: &str) -> Result<Sql, MlflowError> {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for c in search::parse_filter(filter)? {
        parts.push(match &c.key {
            Key::Attribute(a) if a == "name" => {
                search::string_predicate("m.name", c.op, &c.value, &mut binds, "attribute 'name'")?
            }
            Key::Tag(k) => tag_predicate(k, &c, "registered_model_tags", "t.name = m.name", &mut binds)?,
            other => {
                return Err(MlflowError::invalid(format!(
                    "Invalid filter key {other:?} for registered models: they take name and tags.<key>"
                )));
            }
        });
    }
    Ok(Sql { text: if parts.is_empty() { "1 = 1".to_owned() } else { parts.join(" AND ") }, binds })
}

/// `model-versions/search` filters: `name`, `run_id`, `source_path`, `version_number`, `tags.*`.
fn compile_version_filter(filter: &str) -> Result<Sql, MlflowError> {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for c in search::parse_filter(filter)? {
        parts.push(match &c.key {
            Key::Attribute(a) if a == "name" => {
                search::string_predicate("v.name", c.op, &c.value, &mut binds, "attribute 'name'")?
            }
            Key::Attribute(a) if a == "run_id" => {
                search::string_predicate("v.run_id", c.op, &c.value, &mut binds, "attribute 'run_id'")?
            }
            Key::Attribute(a) if a == "source_path" || a == "source" => {
                search::string_predicate("v.source", c.op, &c.value, &mut binds, "attribute 'source_path'")?
            }
            Key::Attribute(a) if a == "version_number" || a == "version" => {
                let n = match &c.value {
                    Value::Num(n) => *n,
                    Value::Str(s) => s.parse::<f64>().map_err(|_| {
                        MlflowError::invalid(format!("Invalid value for version_number: '{s}' is not a number"))
                    })?,
                    _ => return Err(MlflowError::invalid("version_number takes a number")),
                };
                if !matches!(c.op, Op::Eq | Op::Ne | Op::Gt | Op::Ge | Op::Lt | Op::Le) {
                    return Err(MlflowError::invalid("Invalid comparator for version_number"));
                }
                binds.push(Bind::F64(n));
                format!("v.version {} ?", search::comparison(c.op))
            }
            Key::Tag(k) => {
                tag_predicate(k, &c, "model_version_tags", "t.name = v.name AND t.version = v.version", &mut binds)?
            }
            other => {
                return Err(MlflowError::invalid(format!(
                    "Invalid filter key {other:?} for model versions: they take name, run_id, source_path, \
                     version_number and tags.<key>"
                )));
            }
        });
    }
    Ok(Sql { text: if parts.is_empty() { "1 = 1".to_owned() } else { parts.join(" AND ") }, binds })
}

/// ORDER BY for registered models, as MLflow's SQL store: `name`, `timestamp` or
/// `last_updated_timestamp` (both the last update), `creation_timestamp` (kiln's addition); name
/// ascending as the default and the tie-break.
fn compile_model_order(order_by: &[String]) -> Result<String, MlflowError> {
    compile_order(
        order_by,
        "m",
        &[
            ("name", "name"),
            ("timestamp", "last_updated_time"),
            ("last_updated_timestamp", "last_updated_time"),
            ("creation_timestamp", "creation_time"),
        ],
        &[],
        &["m.name ASC"],
    )
}

/// ORDER BY for model versions, as MLflow's SQL store: by default the last updated first; a
/// caller's order, then name ascending and version descending as tie-breaks.
fn compile_version_order(order_by: &[String]) -> Result<String, MlflowError> {
    compile_order(
        order_by,
        "v",
        &[
            ("name", "name"),
            ("version_number", "version"),
            ("creation_timestamp", "creation_time"),
            ("timestamp", "creation_time"),
            ("last_updated_timestamp", "last_updated_time"),
            ("run_id", "run_id"),
            ("source_path", "source"),
            ("current_stage", "current_stage"),
        ],
        &["v.last_updated_time DESC"],
        &["v.name ASC", "v.version DESC"],
    )
}

/// `default` applies when the caller gives no order; `tie_break` terms follow unless the
/// caller ordered by their column.
fn compile_order(
    order_by: &[String],
    alias: &str,
    keys: &[(&str, &str)],
    default: &[&str],
    tie_break: &[&str],
) -> Result<String, MlflowError> {
    let mut terms: Vec<String> = Vec::new();
    if order_by.is_empty() {
        terms.extend(default.iter().map(|t| (*t).to_owned()));
    }
    let mut seen: Vec<&str> = Vec::new();
    for entry in order_by {
        let o = search::parse_order_by(entry)?;
        let Key::Attribute(a) = &o.key else {
            return Err(MlflowError::invalid(format!("Invalid order_by key in '{entry}'")));
        };
        let col = keys.iter().find(|(k, _)| k == a).map(|(_, c)| *c).ok_or_else(|| {
            MlflowError::invalid(format!(
                "Invalid order by key '{a}' specified. Valid keys are {}",
                keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if seen.contains(&col) {
            return Err(MlflowError::invalid(format!("order_by contains the same key twice: {entry}")));
        }
        seen.push(col);
        terms.push(format!("{alias}.{col} {}", if o.ascending { "ASC" } else { "DESC" }));
    }
    for t in tie_break {
        let col = t.split_whitespace().next().unwrap_or("").trim_start_matches(&format!("{alias}."));
        if !seen.contains(&col) {
            terms.push((*t).to_owned());
        }
    }
    Ok(terms.join(", "))
}

impl SqlStore {
    // ---- registered models ----------------------------------------------------------------

    /// Locks the model's row for the rest of the write transaction (an `UPDATE` that changes
    /// nothing takes the row lock on PostgreSQL and MySQL; SQLite has one writer), then reads
    /// it: every registry write orders on its model, so a version created while the model is
    /// deleted, an alias set on a version being deleted, or two archiving transitions cannot
    /// interleave. A model deleted meanwhile is a 404.
    async fn lock_model(&self, conn: &mut sqlx::AnyConnection, name: &str) -> Result<RegisteredModel, MlflowError> {
        sqlx::query(self.q("UPDATE registered_models SET last_updated_time = last_updated_time WHERE name = ?"))
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        self.registered_row(conn, name).await
    }

    async fn registered_row(&self, conn: &mut sqlx::AnyConnection, name: &str) -> Result<RegisteredModel, MlflowError> {
        let sql = format!("SELECT {MODEL_COLUMNS} FROM registered_models m WHERE m.name = ?");
        let row = sqlx::query(self.dialect.sql_dyn(&sql))
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| model_not_found(name))?;
        model_from_row(&row)
    }

    /// Runs `sql`, whose only placeholders are an `IN (…)` list, for `names`.
    async fn rows_for_names(&self, sql: &str, names: &[String]) -> Result<Vec<AnyRow>, MlflowError> {
        let mut q = sqlx::query(self.dialect.sql_dyn(sql));
        for n in names {
            q = q.bind(n.clone());
        }
        q.fetch_all(&self.pool).await.map_err(db)
    }

    /// Fills in tags, aliases and latest versions of a page of models: a few `IN` queries for
    /// the whole page, not a handful per model.
    async fn hydrate_models(&self, models: &mut [RegisteredModel]) -> Result<(), MlflowError> {
        let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
        let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
        let mut aliases: HashMap<String, Vec<Alias>> = HashMap::new();
        let mut latest: HashMap<String, Vec<ModelVersion>> = HashMap::new();
        for chunk in names.chunks(IN_CHUNK) {
            let m = crate::marks(chunk.len());
            let sql = format!(
                "SELECT name, tag_key, tag_value FROM registered_model_tags WHERE name IN ({m}) ORDER BY tag_key"
            );
            let rows = self.rows_for_names(&sql, chunk).await?;
            for r in rows {
                tags.entry(r.try_get(0).map_err(db)?)
                    .or_default()
                    .push(KeyValue { key: r.try_get(1).map_err(db)?, value: r.try_get(2).map_err(db)? });
            }
            let sql =
                format!("SELECT name, alias, version FROM registered_model_aliases WHERE name IN ({m}) ORDER BY alias");
            let rows = self.rows_for_names(&sql, chunk).await?;
            for r in rows {
                aliases.entry(r.try_get(0).map_err(db)?).or_default().push(Alias {
                    alias: r.try_get(1).map_err(db)?,
                    version: r.try_get::<i64, _>(2).map_err(db)?.to_string(),
                });
            }
            // The newest version in each stage.
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN (SELECT name, current_stage, MAX(version) AS version \
                 FROM model_versions WHERE name IN ({m}) GROUP BY name, current_stage) l \
                 ON v.name = l.name AND v.version = l.version ORDER BY v.version"
            );
            let rows = self.rows_for_names(&sql, chunk).await?;
            let mut versions = rows.iter().map(version_from_row).collect::<Result<Vec<_>, _>>()?;
            self.hydrate_versions(&mut versions).await?;
            for v in versions {
                latest.entry(v.name.clone()).or_default().push(v);
            }
        }
        for m in models {
            m.tags = tags.remove(&m.name).unwrap_or_default();
            m.aliases = aliases.remove(&m.name).unwrap_or_default();
            m.latest_versions = latest.remove(&m.name).unwrap_or_default();
        }
        Ok(())
    }

    /// Fills in tags and aliases of versions.
    async fn hydrate_versions(&self, versions: &mut [ModelVersion]) -> Result<(), MlflowError> {
        let mut names: Vec<String> = versions.iter().map(|v| v.name.clone()).collect();
        names.sort_unstable();
        names.dedup();
        let mut tags: HashMap<(String, String), Vec<KeyValue>> = HashMap::new();
        let mut aliases: HashMap<(String, String), Vec<String>> = HashMap::new();
        for chunk in names.chunks(IN_CHUNK) {
            let m = crate::marks(chunk.len());
            let sql = format!(
                "SELECT name, version, tag_key, tag_value FROM model_version_tags WHERE name IN ({m}) ORDER BY tag_key"
            );
            let rows = self.rows_for_names(&sql, chunk).await?;
            for r in rows {
                let key = (r.try_get::<String, _>(0).map_err(db)?, r.try_get::<i64, _>(1).map_err(db)?.to_string());
                tags.entry(key)
                    .or_default()
                    .push(KeyValue { key: r.try_get(2).map_err(db)?, value: r.try_get(3).map_err(db)? });
            }
            let sql =
                format!("SELECT name, version, alias FROM registered_model_aliases WHERE name IN ({m}) ORDER BY alias");
            let rows = self.rows_for_names(&sql, chunk).await?;
            for r in rows {
                let key = (r.try_get::<String, _>(0).map_err(db)?, r.try_get::<i64, _>(1).map_err(db)?.to_string());
                aliases.entry(key).or_default().push(r.try_get(2).map_err(db)?);
            }
        }
        for v in versions {
            let key = (v.name.clone(), v.version.clone());
            v.tags = tags.remove(&key).unwrap_or_default();
            v.aliases = aliases.remove(&key).unwrap_or_default();
        }
        Ok(())
    }

    /// Creates a registered model.
    ///
    /// # Errors
    /// An invalid name, tag or description; a name already taken (400 `RESOURCE_ALREADY_EXISTS`).
    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[KeyValue],
        description: Option<&str>,
    ) -> Result<RegisteredModel, MlflowError> {
        model_name(name)?;
        for t in tags {
            tag(t)?;
        }
        description.map(self::description).transpose()?;
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let exists: Option<String> = sqlx::query_scalar(self.q("SELECT name FROM registered_models WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if exists.is_some() {
            return Err(MlflowError::exists(format!("Registered Model (name={name}) already exists.")));
        }
        sqlx::query(self.q(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description, last_version) VALUES (?, ?, ?, ?, 0)",
        ))
        .bind(name)
        .bind(now)
        .bind(now)
        .bind(description.unwrap_or(""))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // Two creates racing: the loser sees MLflow's message, not the database's.
            if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                MlflowError::exists(format!("Registered Model (name={name}) already exists."))
            } else {
                db(e)
            }
        })?;
        REGISTERED_TAGS.upsert(&mut tx, self.dialect, Owner::Text(name), tags).await?;
        tx.commit().await.map_err(db)?;
        self.get_registered_model(name).await
    }

    /// # Errors
    /// An unknown name (404).
    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, MlflowError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let mut m = self.registered_row(&mut conn, name).await?;
        drop(conn);
        self.hydrate_models(std::slice::from_mut(&mut m)).await?;
        Ok(m)
    }

    /// Renames a model; its versions, tags and aliases follow.
    ///
    /// # Errors
    /// Unknown `name`, invalid or taken `new_name`.
    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel, MlflowError> {
        model_name(new_name)?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        if new_name != name {
            let taken: Option<String> = sqlx::query_scalar(self.q("SELECT name FROM registered_models WHERE name = ?"))
                .bind(new_name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if taken.is_some() {
                return Err(MlflowError::exists(format!("Registered Model (name={new_name}) already exists.")));
            }
            for sql in [
                "UPDATE registered_models SET name = ? WHERE name = ?",
                "UPDATE registered_model_tags SET name = ? WHERE name = ?",
                "UPDATE model_versions SET name = ? WHERE name = ?",
                "UPDATE model_version_tags SET name = ? WHERE name = ?",
                "UPDATE registered_model_aliases SET name = ? WHERE name = ?",
            ] {
                sqlx::query(self.q(sql)).bind(new_name).bind(name).execute(&mut *tx).await.map_err(db)?;
            }
            self.touch_model(&mut tx, new_name).await?;
            // MLflow's store stamps the versions too: they were renamed.
            sqlx::query(self.q("UPDATE model_versions SET last_updated_time = ? WHERE name = ?"))
                .bind(now_ms())
                .bind(new_name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        self.get_registered_model(new_name).await
    }

    async fn touch_model(&self, conn: &mut sqlx::AnyConnection, name: &str) -> Result<(), MlflowError> {
        sqlx::query(self.q("UPDATE registered_models SET last_updated_time = ? WHERE name = ?"))
            .bind(now_ms())
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Sets the description (absent: unchanged, as MLflow).
    ///
    /// # Errors
    /// Unknown name, description too long.
    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, MlflowError> {
        description.map(self::description).transpose()?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        if let Some(d) = description {
            sqlx::query(self.q("UPDATE registered_models SET description = ? WHERE name = ?"))
                .bind(d)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)?;
        self.get_registered_model(name).await
    }

    /// Deletes a model with all its versions, tags and aliases.
    ///
    /// # Errors
    /// Unknown name.
    pub async fn delete_registered_model(&self, name: &str) -> Result<(), MlflowError> {
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        for sql in [
            "DELETE FROM registered_model_aliases WHERE name = ?",
            "DELETE FROM model_version_tags WHERE name = ?",
            "DELETE FROM model_versions WHERE name = ?",
            "DELETE FROM registered_model_tags WHERE name = ?",
            "DELETE FROM registered_models WHERE name = ?",
        ] {
            sqlx::query(self.q(sql)).bind(name).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Searches registered models (default order: name).
    ///
    /// # Errors
    /// A bad filter, order or token; `max_results` outside 1..=1000.
    pub async fn search_registered_models(
        &self,
        filter: &str,
        max_results: i64,
        order_by: &[String],
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>, MlflowError> {
        crate::validate::max_results(max_results, 1000)?;
        let where_ = compile_model_filter(filter)?;
        let order = compile_model_order(order_by)?;
        let offset = decode_token(page_token)?;
        let sql = format!(
            "SELECT {MODEL_COLUMNS} FROM registered_models m WHERE {} ORDER BY {order} LIMIT ? OFFSET ?",
            where_.text
        );
        let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
        for b in &where_.binds {
            q = bind(q, b);
        }
        let (rows, next_page_token) = self.fetch_page(q, max_results, offset).await?;
        let mut items = rows.iter().map(model_from_row).collect::<Result<Vec<_>, _>>()?;
        self.hydrate_models(&mut items).await?;
        Ok(Page { items, next_page_token })
    }

    /// The newest version in each of `stages` (all stages when empty).
    ///
    /// # Errors
    /// Unknown model, invalid stage.
    pub async fn get_latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>, MlflowError> {
        let wanted: Vec<&str> = if stages.is_empty() {
            STAGES.to_vec()
        } else {
            stages.iter().map(|s| canonical_stage(s)).collect::<Result<_, _>>()?
        };
        let m = self.get_registered_model(name).await?;
        Ok(m.latest_versions.into_iter().filter(|v| wanted.contains(&v.current_stage.as_str())).collect())
    }

    /// # Errors
    /// Unknown model, invalid tag.
    pub async fn set_registered_model_tag(&self, name: &str, t: &KeyValue) -> Result<(), MlflowError> {
        tag(t)?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        REGISTERED_TAGS.upsert(&mut tx, self.dialect, Owner::Text(name), std::slice::from_ref(t)).await?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }

    /// Deleting a tag that is not there is not an error (as MLflow's SQL store).
    ///
    /// # Errors
    /// Unknown model.
    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<(), MlflowError> {
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        sqlx::query(self.q("DELETE FROM registered_model_tags WHERE name = ? AND tag_key = ?"))
            .bind(name)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }

    /// Points `alias` at `version` (moving it if it named another).
    ///
    /// # Errors
    /// Invalid or reserved alias, unknown model or version.
    pub async fn set_registered_model_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), MlflowError> {
        self::alias(alias)?;
        let v = version_number(version)?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        self.version_row(&mut tx, name, v).await?;
        sqlx::query(self.q("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?"))
            .bind(name)
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(self.q("INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)"))
            .bind(name)
            .bind(alias)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }

    /// # Errors
    /// Unknown model.
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<(), MlflowError> {
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        sqlx::query(self.q("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?"))
            .bind(name)
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }

    /// The version an alias names. An unknown alias is a 400 `INVALID_PARAMETER_VALUE`, as
    /// MLflow answers (not a 404).
    ///
    /// # Errors
    /// Unknown model or alias.
    pub async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, MlflowError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        self.registered_row(&mut conn, name).await?;
        let version: Option<i64> =
            sqlx::query_scalar(self.q("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"))
                .bind(name)
                .bind(alias)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
        drop(conn);
        let Some(v) = version else {
            return Err(MlflowError::invalid(format!("Registered model alias {alias} not found.")));
        };
        self.get_model_version(name, &v.to_string()).await
    }

    // ---- model versions -------------------------------------------------------------------

    async fn version_row(
        &self,
        conn: &mut sqlx::AnyConnection,
        name: &str,
        version: i64,
    ) -> Result<ModelVersion, MlflowError> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM model_versions v WHERE v.name = ? AND v.version = ?");
        let row = sqlx::query(self.dialect.sql_dyn(&sql))
            .bind(name)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| version_not_found(name, version))?;
        version_from_row(&row)
    }

    /// Checks a version's source as MLflow's server does: a `models:/<id>` source must carry
    /// that `model_id`; a local path needs a run whose (local) artifact directory contains it;
    /// any other URI must not climb with `..`.
    async fn check_source(&self, v: &NewModelVersion<'_>) -> Result<(), MlflowError> {
        let invalid = || {
            MlflowError::invalid(format!(
                "Invalid model version source: '{}'. To use a local path as a model version source, the run_id \
                 request parameter has to be specified and the local path has to be contained within the artifact \
                 directory of the run specified by the run_id.",
                v.source
            ))
        };
        // URIs are read by kiln-core's one parser, as the CLI and the serving side read them.
        if let Ok(ModelUri::LoggedModel { model_id }) = ModelUri::parse(v.source) {
            if v.model_id != Some(model_id.as_str()) {
                return Err(MlflowError::invalid(format!(
                    "Invalid model version source: '{}'. A models:/<model_id> source must name the request's model_id.",
                    v.source
                )));
            }
            return Ok(());
        }
        if is_local(v.source) {
            let Some(run_id) = v.run_id.filter(|r| !r.is_empty()) else { return Err(invalid()) };
            let run = self.run_info(run_id).await?;
            if !is_local(&run.artifact_uri) {
                return Err(invalid());
            }
            source_without_relative_parts(v.source).map_err(|_| invalid())?;
            let source = std::path::Path::new(local_path(v.source));
            let root = std::path::Path::new(local_path(&run.artifact_uri));
            // Compared as written (no `..` is left after the check above) and, where both exist
            // on this machine, with symlinks resolved.
            let inside = source.starts_with(root)
                && match (source.canonicalize(), root.canonicalize()) {
                    (Ok(s), Ok(r)) => s.starts_with(r),
                    _ => true,
                };
            return if inside { Ok(()) } else { Err(invalid()) };
        }
        source_without_relative_parts(v.source)
    }

    /// Registers a new version (status `READY` at once: there is no asynchronous copy).
    ///
    /// # Errors
    /// Unknown model, invalid source, tag or description.
    pub async fn create_model_version(&self, v: &NewModelVersion<'_>) -> Result<ModelVersion, MlflowError> {
        if v.source.is_empty() {
            return Err(MlflowError::invalid("Missing value for required parameter 'source'"));
        }
        // The columns' sizes, checked here so that an oversized value is a 400, not a database
        // error.
        for (what, value, max) in [
            ("source", Some(v.source), MAX_SOURCE),
            ("run_id", v.run_id, 32),
            ("model_id", v.model_id, 64),
            ("run_link", v.run_link, MAX_SOURCE),
        ] {
            if let Some(value) = value
                && value.chars().count() > max
            {
                return Err(MlflowError::invalid(format!(
                    "Parameter '{what}' had length {}, which exceeded length limit of {max}",
                    value.chars().count()
                )));
            }
        }
        for t in v.tags {
            tag(t)?;
        }
        v.description.map(self::description).transpose()?;
        self.check_source(v).await?;
        // A version of a logged model belongs to the run that logged it, unless told otherwise.
        let mut run_id = v.run_id.unwrap_or("").to_owned();
        if let (true, Some(id)) = (run_id.is_empty(), v.model_id) {
            let m = self.get_logged_model(id).await?;
            run_id = m["info"]["source_run_id"].as_str().unwrap_or_default().to_owned();
        }
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, v.name).await?;
        // The row lock this UPDATE takes orders concurrent creates on PostgreSQL and MySQL
        // (SQLite has one writer): each gets its own number.
        sqlx::query(
            self.q(
                "UPDATE registered_models SET last_version = last_version + 1, last_updated_time = ? WHERE name = ?",
            ),
        )
        .bind(now)
        .bind(v.name)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let version: i64 = sqlx::query_scalar(self.q("SELECT last_version FROM registered_models WHERE name = ?"))
            .bind(v.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(self.q(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, run_link, status, status_message, model_id) \
             VALUES (?, ?, ?, ?, ?, '', 'None', ?, ?, ?, 'READY', '', ?)",
        ))
        .bind(v.name)
        .bind(version)
        .bind(now)
        .bind(now)
        .bind(v.description.unwrap_or(""))
        .bind(v.source)
        .bind(&run_id)
        .bind(v.run_link.unwrap_or(""))
        .bind(v.model_id.unwrap_or(""))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for t in last_of_each(v.tags) {
            self.put_version_tag(&mut tx, v.name, version, t).await?;
        }
        tx.commit().await.map_err(db)?;
        self.get_model_version(v.name, &version.to_string()).await
    }

    async fn put_version_tag(
        &self,
        conn: &mut sqlx::AnyConnection,
        name: &str,
        version: i64,
        t: &KeyValue,
    ) -> Result<(), MlflowError> {
        // Delete then insert: portable across the three dialects for a three-column key, and
        // atomic inside the caller's transaction.
        sqlx::query(self.q("DELETE FROM model_version_tags WHERE name = ? AND version = ? AND tag_key = ?"))
            .bind(name)
            .bind(version)
            .bind(&t.key)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query(self.q("INSERT INTO model_version_tags (name, version, tag_key, tag_value) VALUES (?, ?, ?, ?)"))
            .bind(name)
            .bind(version)
            .bind(&t.key)
            .bind(&t.value)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// # Errors
    /// Unknown model or version, a version that is not a positive integer.
    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion, MlflowError> {
        let v = version_number(version)?;
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let mut mv = self.version_row(&mut conn, name, v).await?;
        drop(conn);
        self.hydrate_versions(std::slice::from_mut(&mut mv)).await?;
        Ok(mv)
    }

    /// # Errors
    /// Unknown model or version, description too long.
    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersion, MlflowError> {
        let v = version_number(version)?;
        description.map(self::description).transpose()?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        self.version_row(&mut tx, name, v).await?;
        let now = now_ms();
        if let Some(d) = description {
            sqlx::query(
                self.q(
                    "UPDATE model_versions SET description = ?, last_updated_time = ? WHERE name = ? AND version = ?",
                ),
            )
            .bind(d)
            .bind(now)
            .bind(name)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)?;
        self.get_model_version(name, version).await
    }

    /// Deletes a version, its tags and the aliases naming it; its number is not reused.
    ///
    /// # Errors
    /// Unknown model or version.
    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<(), MlflowError> {
        let v = version_number(version)?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        self.version_row(&mut tx, name, v).await?;
        for sql in [
            "DELETE FROM registered_model_aliases WHERE name = ? AND version = ?",
            "DELETE FROM model_version_tags WHERE name = ? AND version = ?",
            "DELETE FROM model_versions WHERE name = ? AND version = ?",
        ] {
            sqlx::query(self.q(sql)).bind(name).bind(v).execute(&mut *tx).await.map_err(db)?;
        }
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }

    /// Searches versions (default order: name, then newest version first).
    ///
    /// # Errors
    /// A bad filter, order or token; `max_results` outside 1..=200000.
    pub async fn search_model_versions(
        &self,
        filter: &str,
        max_results: i64,
        order_by: &[String],
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>, MlflowError> {
        crate::validate::max_results(max_results, 200_000)?;
        let where_ = compile_version_filter(filter)?;
        let order = compile_version_order(order_by)?;
        let offset = decode_token(page_token)?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions v WHERE {} ORDER BY {order} LIMIT ? OFFSET ?",
            where_.text
        );
        let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
        for b in &where_.binds {
            q = bind(q, b);
        }
        let (rows, next_page_token) = self.fetch_page(q, max_results, offset).await?;
        let mut items = rows.iter().map(version_from_row).collect::<Result<Vec<_>, _>>()?;
        self.hydrate_versions(&mut items).await?;
        Ok(Page { items, next_page_token })
    }

    /// Where a version's files are, as MLflow's SQL store answers: a `models:/<model_id>`
    /// source's logged-model location, a `models:/<name>/<version>` source's own download URI,
    /// else the source itself (a `runs:/` source stays one: the client resolves it, with its
    /// fallback to the run's logged model).
    ///
    /// # Errors
    /// Unknown model or version; a source naming a logged model or version that is gone.
    pub async fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String, MlflowError> {
        let mut mv = self.get_model_version(name, version).await?;
        // A version registered from another version: follow the chain (bounded: a cycle cannot
        // be made, since a source must exist when registered, but a deleted one is an error).
        for _ in 0..8 {
            match ModelUri::parse(&mv.source) {
                Ok(ModelUri::LoggedModel { model_id }) => {
                    let m = self.get_logged_model(&model_id).await?;
                    return Ok(m["info"]["artifact_uri"].as_str().unwrap_or_default().to_owned());
                }
                Ok(ModelUri::Registered { name: n, selector: VersionSelector::Version(v) }) => {
                    mv = self.get_model_version(&n, &v.to_string()).await?;
                }
                _ => return Ok(mv.source),
            }
        }
        Err(MlflowError::invalid(format!("Model version source chain of {name}/{version} is too long")))
    }

    /// Moves a version to `stage`; with `archive_existing`, every other version in that stage
    /// (Staging or Production only) goes to Archived in the same transaction.
    ///
    /// # Errors
    /// Unknown model or version, invalid stage, archiving from a stage that is not active.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion, MlflowError> {
        let v = version_number(version)?;
        let stage = canonical_stage(stage)?;
        if archive_existing && !matches!(stage, "Staging" | "Production") {
            return Err(MlflowError::invalid(format!(
                "Model version transition cannot archive existing model versions because '{stage}' is not an \
                 Active stage. Valid stages are Staging, Production"
            )));
        }
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        self.version_row(&mut tx, name, v).await?;
        if archive_existing {
            sqlx::query(self.q("UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ? \
                 WHERE name = ? AND current_stage = ? AND version <> ?"))
            .bind(now)
            .bind(name)
            .bind(stage)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        sqlx::query(
            self.q("UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE name = ? AND version = ?"),
        )
        .bind(stage)
        .bind(now)
        .bind(name)
        .bind(v)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)?;
        self.get_model_version(name, version).await
    }

    /// # Errors
    /// Unknown model or version, invalid tag.
    pub async fn set_model_version_tag(&self, name: &str, version: &str, t: &KeyValue) -> Result<(), MlflowError> {
        let v = version_number(version)?;
        tag(t)?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        self.version_row(&mut tx, name, v).await?;
        self.put_version_tag(&mut tx, name, v, t).await?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }

    /// # Errors
    /// Unknown model or version.
    pub async fn delete_model_version_tag(&self, name: &str, version: &str, key: &str) -> Result<(), MlflowError> {
        let v = version_number(version)?;
        let mut tx = self.write_tx().await?;
        self.lock_model(&mut tx, name).await?;
        self.version_row(&mut tx, name, v).await?;
        sqlx::query(self.q("DELETE FROM model_version_tags WHERE name = ? AND version = ? AND tag_key = ?"))
            .bind(name)
            .bind(v)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        self.touch_model(&mut tx, name).await?;
        tx.commit().await.map_err(db)
    }
}

/// The pairs with the last value given for each key.
fn last_of_each(items: &[KeyValue]) -> Vec<&KeyValue> {
    let mut out: Vec<&KeyValue> = Vec::new();
    for kv in items {
        if let Some(slot) = out.iter_mut().find(|o| o.key == kv.key) {
            *slot = kv;
        } else {
            out.push(kv);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_case_insensitive() {
        assert_eq!(canonical_stage("staging").unwrap(), "Staging");
        assert_eq!(canonical_stage("PRODUCTION").unwrap(), "Production");
        assert_eq!(canonical_stage("none").unwrap(), "None");
        assert!(canonical_stage("prod").is_err());
    }

    #[test]
    fn aliases_follow_mlflow() {
        for ok in ["champion", "challenger-2", "a_b", "v1a", "version"] {
            assert!(alias(ok).is_ok(), "{ok}");
        }
        for bad in ["", "v1", "V22", "latest", "LATEST", "a b", "a/b", "ü", &"a".repeat(256)] {
            assert!(alias(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_cannot_climb() {
        for bad in [
            "mlflow-artifacts:/1/../../etc",
            "s3://bucket/a/%2e%2e/b",
            "http://host/a/%252e%252e/x",
            "/abs/./x",
            "file:///tmp/a\0b",
        ] {
            assert!(source_without_relative_parts(bad).is_err(), "{bad}");
        }
        for ok in ["mlflow-artifacts:/1/abc/artifacts/model", "s3://bucket/models/m-1", "runs:/abc/model"] {
            assert!(source_without_relative_parts(ok).is_ok(), "{ok}");
        }
        assert!(is_local("/tmp/x") && is_local("file:///tmp/x") && is_local("C:\\x") && !is_local("s3://b/x"));
    }

    #[test]
    fn filters_and_orders_compile() {
        let f = compile_model_filter("name LIKE '%spam%' AND tags.`mlflow.prompt.is_prompt` != 'true'").unwrap();
        assert!(f.text.contains("m.name LIKE ?") && f.text.contains("NOT EXISTS"), "{}", f.text);
        assert!(compile_model_filter("run_id = 'x'").is_err());
        // Only the prompt tag's `!=` matches models without the tag (as MLflow).
        let f = compile_model_filter("tags.team != 'x'").unwrap();
        assert!(f.text.starts_with("EXISTS") && f.text.contains("t.tag_value != ?"), "{}", f.text);
        let f = compile_version_filter("name = 'a' AND version_number > 2 AND run_id IN ('r1', 'r2')").unwrap();
        assert_eq!(f.binds.len(), 4);
        assert_eq!(compile_model_order(&[]).unwrap(), "m.name ASC");
        assert_eq!(compile_version_order(&[]).unwrap(), "v.last_updated_time DESC, v.name ASC, v.version DESC");
        assert_eq!(compile_version_order(&["version_number ASC".to_owned()]).unwrap(), "v.version ASC, v.name ASC");
        assert!(compile_model_order(&["metrics.x".to_owned()]).is_err());
        assert!(compile_version_order(&["name".to_owned(), "name DESC".to_owned()]).is_err());
    }
}
