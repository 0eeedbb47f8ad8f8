//! Run inputs (`runs/log-inputs`): datasets, identified per experiment by (name, digest) and
//! stored once, linked to the runs that used them with their input tags
//! (`mlflow.data.context` = `training`, …); and models a run took as input.

use kiln_wire::{KeyValue, MlflowError};
use serde_json::{Value, json};
use sqlx::Row;

use crate::{SqlStore, db};

/// One dataset input as the client sends it.
#[derive(Debug, Clone, Default)]
pub struct DatasetInput {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
    pub tags: Vec<KeyValue>,
}

fn limit(what: &str, value: &str, max: usize) -> Result<(), MlflowError> {
    if value.len() > max {
        return Err(MlflowError::invalid(format!("Dataset {what} exceeds the maximum length of {max}")));
    }
    Ok(())
}

impl SqlStore {
    /// Links datasets and models to a run. Logging the same dataset again is a no-op.
    ///
    /// # Errors
    /// An unknown or deleted run, a missing or over-long field.
    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[String],
    ) -> Result<(), MlflowError> {
        let info = self.run_info(run_id).await?;
        if info.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!("The run {run_id} must be in the 'active' state.")));
        }
        for d in datasets {
            for (what, v) in
                [("name", &d.name), ("digest", &d.digest), ("source_type", &d.source_type), ("source", &d.source)]
            {
                if v.is_empty() {
                    return Err(MlflowError::invalid(format!("Missing value for required parameter 'dataset.{what}'")));
                }
            }
            limit("name", &d.name, 500)?;
            limit("digest", &d.digest, 36)?;
            limit("source", &d.source, 65_535)?;
            limit("schema", d.schema.as_deref().unwrap_or(""), 1 << 20)?;
            limit("profile", d.profile.as_deref().unwrap_or(""), 16 << 20)?;
            for t in &d.tags {
                limit("input tag key", &t.key, 255)?;
                limit("input tag value", &t.value, 500)?;
            }
        }
        let exp = Self::experiment_id(&info.experiment_id)?;
        let mut tx = self.write_tx().await?;
        for d in datasets {
            let existing: Option<String> = sqlx::query_scalar(
                self.q("SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?"),
            )
            .bind(exp)
            .bind(&d.name)
            .bind(&d.digest)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    sqlx::query(self.q("INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
                        .bind(&id)
                        .bind(exp)
                        .bind(&d.name)
                        .bind(&d.digest)
                        .bind(&d.source_type)
                        .bind(&d.source)
                        .bind(d.schema.clone())
                        .bind(d.profile.clone())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    id
                }
            };
            let linked: Option<String> = sqlx::query_scalar(
                self.q("SELECT dataset_uuid FROM run_dataset_inputs WHERE run_uuid = ? AND dataset_uuid = ?"),
            )
            .bind(run_id)
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if linked.is_none() {
                sqlx::query(self.q("INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid) VALUES (?, ?)"))
                    .bind(run_id)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            for t in &d.tags {
                sqlx::query(
                    self.q(
                        "DELETE FROM run_dataset_input_tags WHERE run_uuid = ? AND dataset_uuid = ? AND tag_key = ?",
                    ),
                )
                .bind(run_id)
                .bind(&id)
                .bind(&t.key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query(self.q("INSERT INTO run_dataset_input_tags (run_uuid, dataset_uuid, tag_key, tag_value) VALUES (?, ?, ?, ?)"))
                    .bind(run_id)
                    .bind(&id)
                    .bind(&t.key)
                    .bind(&t.value)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        for m in models {
            sqlx::query(self.dialect.insert_ignore("INSERT INTO run_model_inputs (run_uuid, model_id) VALUES (?, ?)"))
                .bind(run_id)
                .bind(m)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// A run's `inputs` JSON: `{"dataset_inputs": [...], "model_inputs": [...]}` (empties omitted).
    pub(crate) async fn run_inputs(&self, run_id: &str) -> Result<Value, MlflowError> {
        let rows = sqlx::query(self.q(
            "SELECT d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.dataset_schema, d.dataset_profile \
             FROM run_dataset_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid WHERE i.run_uuid = ? ORDER BY d.name, d.digest",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut out = json!({});
        let mut datasets = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0).map_err(db)?;
            let mut ds = json!({
                "name": r.try_get::<String, _>(1).map_err(db)?,
                "digest": r.try_get::<String, _>(2).map_err(db)?,
                "source_type": r.try_get::<String, _>(3).map_err(db)?,
                "source": r.try_get::<String, _>(4).map_err(db)?,
            });
            for (key, i) in [("schema", 5), ("profile", 6)] {
                if let Some(v) = r.try_get::<Option<String>, _>(i).map_err(db)?.filter(|v| !v.is_empty()) {
                    ds[key] = json!(v);
                }
            }
            let tags: Vec<Value> = sqlx::query(self.q(
                "SELECT tag_key, tag_value FROM run_dataset_input_tags WHERE run_uuid = ? AND dataset_uuid = ? ORDER BY tag_key",
            ))
            .bind(run_id)
            .bind(&id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|t| Ok(json!({"key": t.try_get::<String, _>(0).map_err(db)?, "value": t.try_get::<String, _>(1).map_err(db)?})))
            .collect::<Result<_, MlflowError>>()?;
            let mut input = json!({ "dataset": ds });
            if !tags.is_empty() {
                input["tags"] = json!(tags);
            }
            datasets.push(input);
        }
        if !datasets.is_empty() {
            out["dataset_inputs"] = json!(datasets);
        }
        let models: Vec<Value> =
            sqlx::query(self.q("SELECT model_id FROM run_model_inputs WHERE run_uuid = ? ORDER BY model_id"))
                .bind(run_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .iter()
                .map(|r| Ok(json!({"model_id": r.try_get::<String, _>(0).map_err(db)?})))
                .collect::<Result<_, MlflowError>>()?;
        if !models.is_empty() {
            out["model_inputs"] = json!(models);
        }
        Ok(out)
    }
}
