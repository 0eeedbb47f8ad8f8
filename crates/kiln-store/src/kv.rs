//! Key/value tables — experiment, run and model tags; run and model params — written the same
//! way everywhere: one statement per batch of pairs (not one per pair), and race-free (an upsert,
//! or insert-if-absent then compare for write-once params), so two requests writing the same key
//! at once both succeed or get MLflow's "changing param values" error, never a duplicate key.

use std::collections::HashMap;

use kiln_wire::{KeyValue, MlflowError};
use sqlx::{AssertSqlSafe, Row};

use crate::{Dialect, db};

/// Pairs per statement: 3 binds each stays far under every backend's bind limit.
const CHUNK: usize = 100;

/// A key/value table and its columns (kiln's own constants, never user input).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KvTable {
    pub table: &'static str,
    pub owner: &'static str,
    pub key: &'static str,
    pub value: &'static str,
}

pub(crate) const EXPERIMENT_TAGS: KvTable =
    KvTable { table: "experiment_tags", owner: "experiment_id", key: "tag_key", value: "tag_value" };
pub(crate) const RUN_TAGS: KvTable = KvTable { table: "tags", owner: "run_uuid", key: "tag_key", value: "tag_value" };
pub(crate) const RUN_PARAMS: KvTable =
    KvTable { table: "params", owner: "run_uuid", key: "param_key", value: "param_value" };
pub(crate) const MODEL_TAGS: KvTable =
    KvTable { table: "logged_model_tags", owner: "model_id", key: "tag_key", value: "tag_value" };
pub(crate) const MODEL_PARAMS: KvTable =
    KvTable { table: "logged_model_params", owner: "model_id", key: "param_key", value: "param_value" };

impl KvTable {
    /// (owner, key, value) of the owners in an IN-list of `n`, by owner then key: a page's
    /// pairs in one query.
    pub(crate) fn of_owners_sql(self, n: usize) -> String {
        let Self { table, owner, key, value } = self;
        let marks = crate::marks(n);
        format!("SELECT {owner}, {key}, {value} FROM {table} WHERE {owner} IN ({marks}) ORDER BY {owner}, {key}")
    }
}

/// Whose pairs: experiments have numeric ids, runs and models text ones.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    Id(i64),
    Text(&'a str),
}

/// What an insert does when the key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    Overwrite,
    Ignore,
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn bind_owner<'q>(q: AnyQuery<'q>, owner: Owner<'_>) -> AnyQuery<'q> {
    match owner {
        Owner::Id(v) => q.bind(v),
        Owner::Text(s) => q.bind(s.to_owned()),
    }
}

/// The pairs with the last value given for each key, in order.
fn last_of_each_key(items: &[KeyValue]) -> Vec<&KeyValue> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, kv) in items.iter().enumerate() {
        last.insert(&kv.key, i);
    }
    items.iter().enumerate().filter(|(i, kv)| last[kv.key.as_str()] == *i).map(|(_, kv)| kv).collect()
}

impl Dialect {
    /// `INSERT INTO table (owner, key, value) VALUES (?, ?, ?)…` for `rows` rows, overwriting or
    /// ignoring existing keys.
    pub(crate) fn kv_insert(self, t: KvTable, rows: usize, on_conflict: OnConflict) -> AssertSqlSafe<String> {
        let values = vec!["(?, ?, ?)"; rows].join(", ");
        let (table, owner, key, value) = (t.table, t.owner, t.key, t.value);
        let insert = format!("INSERT INTO {table} ({owner}, {key}, {value}) VALUES {values}");
        self.sql_dyn(&match (self, on_conflict) {
            (Self::MySql, OnConflict::Overwrite) => {
                format!("{insert} ON DUPLICATE KEY UPDATE {value} = VALUES({value})")
            }
            (Self::MySql, OnConflict::Ignore) => insert.replacen("INSERT INTO", "INSERT IGNORE INTO", 1),
            (_, OnConflict::Overwrite) => {
                format!("{insert} ON CONFLICT ({owner}, {key}) DO UPDATE SET {value} = excluded.{value}")
            }
            (_, OnConflict::Ignore) => format!("{insert} ON CONFLICT DO NOTHING"),
        })
    }
}

impl KvTable {
    async fn insert(
        self,
        tx: &mut sqlx::AnyConnection,
        dialect: Dialect,
        owner: Owner<'_>,
        items: &[&KeyValue],
        on_conflict: OnConflict,
    ) -> Result<(), MlflowError> {
        for chunk in items.chunks(CHUNK) {
            let mut q = sqlx::query(dialect.kv_insert(self, chunk.len(), on_conflict));
            for kv in chunk {
                q = bind_owner(q, owner).bind(kv.key.clone()).bind(kv.value.clone());
            }
            q.execute(&mut *tx).await.map_err(db)?;
        }
        Ok(())
    }

    /// [`KvTable::upsert`] appended to a SQLite write script (for the writer thread, `sqlite_write`).
    pub(crate) fn upsert_into_script(self, owner: Owner<'_>, items: &[KeyValue], script: &mut crate::Script) {
        let unique = last_of_each_key(items);
        for chunk in unique.chunks(CHUNK) {
            let mut binds = Vec::with_capacity(chunk.len() * 3);
            for kv in chunk {
                binds.push(match owner {
                    Owner::Id(v) => crate::search::Bind::I64(v),
                    Owner::Text(s) => crate::search::Bind::Str(s.to_owned()),
                });
                binds.push(crate::search::Bind::Str(kv.key.clone()));
                binds.push(crate::search::Bind::Str(kv.value.clone()));
            }
            script.push(Dialect::Sqlite.kv_insert(self, chunk.len(), OnConflict::Overwrite).0, binds);
        }
    }

    /// Sets every pair; for a key given twice the last value wins (PostgreSQL refuses one upsert
    /// touching a row twice).
    pub(crate) async fn upsert(
        self,
        tx: &mut sqlx::AnyConnection,
        dialect: Dialect,
        owner: Owner<'_>,
        items: &[KeyValue],
    ) -> Result<(), MlflowError> {
        let unique = last_of_each_key(items);
        self.insert(tx, dialect, owner, &unique, OnConflict::Overwrite).await
    }

    /// Write-once values: inserts the absent pairs, then reads every key back. Returns the first
    /// pair whose stored value differs from the one given, as (key, stored, given).
    pub(crate) async fn insert_once(
        self,
        tx: &mut sqlx::AnyConnection,
        dialect: Dialect,
        owner: Owner<'_>,
        items: &[KeyValue],
    ) -> Result<Option<(String, String, String)>, MlflowError> {
        let refs: Vec<&KeyValue> = items.iter().collect();
        self.insert(tx, dialect, owner, &refs, OnConflict::Ignore).await?;
        let mut stored: HashMap<String, String> = HashMap::new();
        for chunk in items.chunks(CHUNK) {
            let marks = crate::marks(chunk.len());
            let sql = format!(
                "SELECT {}, {} FROM {} WHERE {} = ? AND {} IN ({marks})",
                self.key, self.value, self.table, self.owner, self.key
            );
            let mut q = bind_owner(sqlx::query(dialect.sql_dyn(&sql)), owner);
            for kv in chunk {
                q = q.bind(kv.key.clone());
            }
            for r in q.fetch_all(&mut *tx).await.map_err(db)? {
                stored.insert(r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?);
            }
        }
        Ok(items.iter().find_map(|kv| match stored.get(&kv.key) {
            Some(v) if *v != kv.value => Some((kv.key.clone(), v.clone(), kv.value.clone())),
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_per_dialect() {
        assert_eq!(
            Dialect::Postgres.kv_insert(RUN_TAGS, 2, OnConflict::Overwrite).0,
            "INSERT INTO tags (run_uuid, tag_key, tag_value) VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT (run_uuid, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
        );
        assert_eq!(
            Dialect::MySql.kv_insert(RUN_PARAMS, 1, OnConflict::Ignore).0,
            "INSERT IGNORE INTO params (run_uuid, param_key, param_value) VALUES (?, ?, ?)"
        );
        assert!(Dialect::Sqlite.kv_insert(MODEL_PARAMS, 1, OnConflict::Ignore).0.ends_with("ON CONFLICT DO NOTHING"));
    }
}
