//! MLflow 3 logged models (`shared/spec/mlflow-compat.md` §2.3): `mlflow.<flavor>.log_model`
//! creates one, uploads its files under `<experiment location>/models/<id>/artifacts`, then marks
//! it ready; `runs:/` URIs find a run's model through `logged-models/search`.

use kiln_wire::{KeyValue, Metric, MlflowError};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::kv::{MODEL_PARAMS, MODEL_TAGS, OnConflict, Owner};
use crate::{Page, SqlStore, bind, db, decode_token, now_ms, search, validate};

/// A run's output models, upserted like a key/value pair (the value is the step).
const RUN_OUTPUTS: crate::kv::KvTable =
    crate::kv::KvTable { table: "run_model_outputs", owner: "run_uuid", key: "model_id", value: "step" };

const STATUSES: [&str; 3] = ["LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"];

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms, \
                       m.last_updated_timestamp_ms, m.status, m.model_type, m.source_run_id, m.status_message";

/// What a new logged model is made of.
#[derive(Debug, Default)]
pub struct NewLoggedModel<'a> {
    pub experiment_id: &'a str,
    pub name: Option<&'a str>,
    pub model_type: Option<&'a str>,
    pub source_run_id: Option<&'a str>,
    pub params: &'a [KeyValue],
    pub tags: &'a [KeyValue],
}

impl SqlStore {
    /// Creates a logged model (status `LOGGED_MODEL_PENDING`) and returns its JSON.
    ///
    /// # Errors
    /// An unknown or deleted experiment, an unknown source run, invalid params or tags.
    pub async fn create_logged_model(&self, m: &NewLoggedModel<'_>) -> Result<Value, MlflowError> {
        // Its state and location are all that is needed; not its tags.
        let exp = self.experiment_row(m.experiment_id).await?;
        if exp.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!(
                "The experiment {} must be in the 'active' state.",
                m.experiment_id
            )));
        }
        if let Some(r) = m.source_run_id.filter(|r| !r.is_empty()) {
            // Only that it exists: not its params, tags and metrics.
            self.run_info(r).await?;
        }
        for p in m.params {
            validate::param(p)?;
        }
        for t in m.tags {
            validate::run_tag(t)?;
        }
        let id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let name = m.name.filter(|n| !n.is_empty()).map_or_else(crate::names::generate, str::to_owned);
        let location = format!("{}/models/{id}/artifacts", exp.artifact_location);
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query(self.q("INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, model_type, source_run_id, status_message, lifecycle_stage) VALUES (?, ?, ?, ?, ?, ?, 'LOGGED_MODEL_PENDING', ?, ?, '', 'active')"))
            .bind(&id)
            .bind(Self::experiment_id(m.experiment_id)?)
            .bind(&name)
            .bind(&location)
            .bind(now)
            .bind(now)
            .bind(m.model_type.unwrap_or(""))
            .bind(m.source_run_id.unwrap_or(""))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // A new model: its params cannot conflict with anything stored.
        MODEL_PARAMS.insert_once(&mut tx, self.dialect, Owner::Text(&id), m.params).await?;
        MODEL_TAGS.upsert(&mut tx, self.dialect, Owner::Text(&id), m.tags).await?;
        tx.commit().await.map_err(db)?;
        self.get_logged_model(&id).await
    }

    async fn model_row(&self, id: &str) -> Result<AnyRow, MlflowError> {
        let sql =
            format!("SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = ? AND m.lifecycle_stage = 'active'");
        sqlx::query(self.dialect.sql_dyn(&sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| MlflowError::not_found(format!("Logged model with ID '{id}' not found.")))
    }

    async fn model_json(&self, r: &AnyRow) -> Result<Value, MlflowError> {
        let id: String = r.try_get(0).map_err(db)?;
        let exp: i64 = r.try_get(1).map_err(db)?;
        let as_json = |kv: Vec<KeyValue>| -> Vec<Value> {
            kv.into_iter().map(|p| json!({"key": p.key, "value": p.value})).collect()
        };
        let tags = as_json(
            self.key_values(
                "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ? ORDER BY tag_key",
                id.clone(),
            )
            .await?,
        );
        let params = as_json(
            self.key_values(
                "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ? ORDER BY param_key",
                id.clone(),
            )
            .await?,
        );
        let s = |i: usize| -> Result<String, MlflowError> { r.try_get(i).map_err(db) };
        let mut info = json!({
            "model_id": id,
            "experiment_id": exp.to_string(),
            "name": s(2)?,
            "artifact_uri": s(3)?,
            "creation_timestamp_ms": r.try_get::<i64, _>(4).map_err(db)?,
            "last_updated_timestamp_ms": r.try_get::<i64, _>(5).map_err(db)?,
            "status": s(6)?,
        });
        for (key, i) in [("model_type", 7), ("source_run_id", 8), ("status_message", 9)] {
            let v = s(i)?;
            if !v.is_empty() {
                info[key] = json!(v);
            }
        }
        if !tags.is_empty() {
            info["tags"] = json!(tags);
        }
        let mut data = json!({});
        if !params.is_empty() {
            data["params"] = json!(params);
        }
        let metrics = self.model_metrics(&id).await?;
        if !metrics.is_empty() {
            data["metrics"] = json!(metrics);
        }
        Ok(json!({"info": info, "data": data}))
    }

    /// Every point logged for a model (`log_metric(model_id=…)`), as MLflow returns them: each
    /// with its run and dataset.
    async fn model_metrics(&self, id: &str) -> Result<Vec<Value>, MlflowError> {
        let rows = sqlx::query(self.q(
            "SELECT metric_name, metric_value, is_nan, metric_timestamp_ms, metric_step, run_id, dataset_name, dataset_digest \
             FROM logged_model_metrics WHERE model_id = ? ORDER BY metric_name, metric_step, metric_timestamp_ms",
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let is_nan: i64 = r.try_get(2).map_err(db)?;
            let value: f64 = r.try_get(1).map_err(db)?;
            let m = Metric {
                key: r.try_get(0).map_err(db)?,
                value: if is_nan != 0 { f64::NAN } else { value },
                timestamp: r.try_get(3).map_err(db)?,
                step: r.try_get(4).map_err(db)?,
                model_id: Some(id.to_owned()),
                dataset_name: r.try_get(6).map_err(db)?,
                dataset_digest: r.try_get(7).map_err(db)?,
            };
            let mut v = serde_json::to_value(&m).map_err(|e| MlflowError::internal(e.to_string()))?;
            v["run_id"] = json!(r.try_get::<String, _>(5).map_err(db)?);
            out.push(v);
        }
        Ok(out)
    }

    /// Records the points of a run's batch that name a logged model for that model too (inside
    /// the batch's transaction). An unknown or deleted model is a 404 and nothing is written.
    pub(crate) async fn log_model_metrics(
        &self,
        tx: &mut crate::WriteTx,
        run_id: &str,
        metrics: &[Metric],
    ) -> Result<(), MlflowError> {
        let linked: Vec<&Metric> = metrics.iter().filter(|m| m.model_id.is_some()).collect();
        if linked.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = linked.iter().filter_map(|m| m.model_id.as_deref()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let found: Option<String> = sqlx::query_scalar(
                self.q("SELECT model_id FROM logged_models WHERE model_id = ? AND lifecycle_stage = 'active'"),
            )
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db)?;
            if found.is_none() {
                return Err(MlflowError::not_found(format!("Logged model with ID '{id}' not found.")));
            }
        }
        for chunk in linked.chunks(100) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, is_nan, run_id, dataset_name, dataset_digest) VALUES {rows}"
            );
            let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
            for m in chunk {
                let (v, nan) = crate::stored_value(m.value);
                q = q
                    .bind(m.model_id.clone())
                    .bind(&m.key)
                    .bind(m.timestamp)
                    .bind(m.step)
                    .bind(v)
                    .bind(nan)
                    .bind(run_id)
                    .bind(m.dataset_name.clone())
                    .bind(m.dataset_digest.clone());
            }
            q.execute(&mut **tx).await.map_err(db)?;
        }
        Ok(())
    }

    /// # Errors
    /// An unknown (or deleted) model: 404.
    pub async fn get_logged_model(&self, id: &str) -> Result<Value, MlflowError> {
        let r = self.model_row(id).await?;
        self.model_json(&r).await
    }

    /// Sets the status (`LOGGED_MODEL_READY` once uploaded).
    ///
    /// # Errors
    /// An unknown model or status.
    pub async fn finalize_logged_model(&self, id: &str, status: &str) -> Result<Value, MlflowError> {
        if !STATUSES.contains(&status) {
            return Err(MlflowError::invalid(format!("Invalid value \"{status}\" for parameter 'status'")));
        }
        self.model_row(id).await?;
        sqlx::query(self.q("UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?"))
            .bind(status)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.get_logged_model(id).await
    }

    /// Soft delete.
    ///
    /// # Errors
    /// An unknown model.
    pub async fn delete_logged_model(&self, id: &str) -> Result<(), MlflowError> {
        self.model_row(id).await?;
        sqlx::query(self.q(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? WHERE model_id = ?",
        ))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Sets (overwrites) tags on a model.
    ///
    /// # Errors
    /// An unknown model or an invalid tag.
    pub async fn set_logged_model_tags(&self, id: &str, tags: &[KeyValue]) -> Result<Value, MlflowError> {
        for t in tags {
            validate::run_tag(t)?;
        }
        self.model_row(id).await?;
        let mut tx = self.write_tx().await?;
        MODEL_TAGS.upsert(&mut tx, self.dialect, Owner::Text(id), tags).await?;
        tx.commit().await.map_err(db)?;
        self.get_logged_model(id).await
    }

    /// # Errors
    /// An unknown model or tag.
    pub async fn delete_logged_model_tag(&self, id: &str, key: &str) -> Result<(), MlflowError> {
        self.model_row(id).await?;
        let done = sqlx::query(self.q("DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?"))
            .bind(id)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(MlflowError::not_found(format!("No tag with key '{key}' on logged model '{id}'")));
        }
        Ok(())
    }

    /// Adds params (write-once, as run params).
    ///
    /// # Errors
    /// An unknown model, an invalid or changed param.
    pub async fn log_logged_model_params(&self, id: &str, params: &[KeyValue]) -> Result<(), MlflowError> {
        for p in params {
            validate::param(p)?;
        }
        self.model_row(id).await?;
        let mut tx = self.write_tx().await?;
        if let Some((key, stored, _)) = MODEL_PARAMS.insert_once(&mut tx, self.dialect, Owner::Text(id), params).await?
        {
            return Err(MlflowError::invalid(format!(
                "Changing param values is not allowed. Param '{key}' of model '{id}' is '{stored}'"
            )));
        }
        tx.commit().await.map_err(db)
    }

    /// Records models as outputs of a run (`runs/outputs`).
    ///
    /// # Errors
    /// An unknown run.
    pub async fn log_run_outputs(&self, run_id: &str, models: &[(String, i64)]) -> Result<(), MlflowError> {
        self.run_info(run_id).await?;
        let mut tx = self.write_tx().await?;
        for (model, step) in models {
            sqlx::query(self.dialect.kv_insert(RUN_OUTPUTS, 1, OnConflict::Overwrite))
                .bind(run_id)
                .bind(model)
                .bind(*step)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// A run's `outputs` JSON (`{"model_outputs": [...]}`), or null when it has none.
    pub(crate) async fn run_outputs(&self, run_id: &str) -> Result<Value, MlflowError> {
        let rows =
            sqlx::query(self.q("SELECT model_id, step FROM run_model_outputs WHERE run_uuid = ? ORDER BY model_id"))
                .bind(run_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        if rows.is_empty() {
            return Ok(Value::Null);
        }
        let outs: Vec<Value> = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(db)?;
                let step: i64 = r.try_get(1).map_err(db)?;
                Ok(json!({"model_id": id, "step": step}))
            })
            .collect::<Result<_, MlflowError>>()?;
        Ok(json!({ "model_outputs": outs }))
    }

    /// Logged models of the experiments matching `filter` (attributes `name`, `model_id`,
    /// `model_type`, `status`, `source_run_id`, the two timestamps, `tags.`/`params.`, and
    /// `metrics.` narrowed to `datasets` when given), in `order_by` order (default newest first).
    ///
    /// # Errors
    /// A bad filter, order, token or page size.
    pub async fn search_logged_models(
        &self,
        experiment_ids: &[String],
        filter: &str,
        datasets: &[search::DatasetRef],
        order_by: &[search::ModelOrder],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<Value>, MlflowError> {
        validate::max_results(max_results, 10_000)?;
        let offset = decode_token(page_token)?;
        let where_sql = search::compile_logged_model_filter(&search::parse_filter(filter)?, datasets)?;
        let order = search::compile_logged_model_order(order_by)?;
        let ids: Vec<i64> = experiment_ids.iter().filter_map(|e| e.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let marks = crate::marks(ids.len());
        let sql = format!(
            "SELECT {COLUMNS} FROM logged_models m WHERE m.experiment_id IN ({marks}) AND m.lifecycle_stage = 'active' AND ({}) \
             ORDER BY {} LIMIT ? OFFSET ?",
            where_sql.text, order.text
        );
        let mut q = sqlx::query(self.dialect.sql_dyn(&sql));
        for id in &ids {
            q = q.bind(*id);
        }
        for b in where_sql.binds.iter().chain(&order.binds) {
            q = bind(q, b);
        }
        let (rows, next_page_token) = self.fetch_page(q, max_results, offset).await?;
        let mut items = Vec::new();
        for r in rows.iter() {
            items.push(self.model_json(r).await?);
        }
        Ok(Page { items, next_page_token })
    }
}
