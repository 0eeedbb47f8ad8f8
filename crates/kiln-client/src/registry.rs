//! The model registry over REST (`registered-models/*`, `model-versions/*`), as the `mlflow`
//! client calls it: what `kiln models` does. Works against `kiln server` and `mlflow server`.

use kiln_wire::{KeyValue, ModelVersion, RegisteredModel};
use serde_json::{Value, json};

use crate::{ClientError, TrackingClient, url_encode};

/// A registered model and all its versions (newest first), as `kiln models show` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelDetails {
    #[serde(flatten)]
    pub model: RegisteredModel,
    pub versions: Vec<ModelVersion>,
}

fn decode<T: serde::de::DeserializeOwned>(v: &Value, field: &str, what: &str) -> Result<T, ClientError> {
    serde_json::from_value(v.get(field).cloned().unwrap_or(Value::Null)).map_err(|e| ClientError::Http {
        method: "GET",
        url: what.to_owned(),
        message: format!("unexpected answer ({field}): {e}"),
    })
}

fn query(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&")
}

impl TrackingClient {
    /// Creates a registered model; an existing one is kept (as `mlflow.register_model` does).
    ///
    /// # Errors
    /// The server refuses (other than "already exists").
    pub fn ensure_registered_model(&self, name: &str) -> Result<(), ClientError> {
        match self.call("POST", "registered-models/create", Some(&json!({ "name": name }))) {
            Ok(_) => Ok(()),
            Err(ClientError::Status { status: 400, body, .. }) if body.contains("RESOURCE_ALREADY_EXISTS") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Registers a version of `name` from `source` (a `runs:/`, `models:/` or artifact URI).
    ///
    /// # Errors
    /// The server refuses (unknown model, invalid source, …).
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        model_id: Option<&str>,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<ModelVersion, ClientError> {
        let mut body = json!({ "name": name, "source": source, "tags": tags });
        if let Some(r) = run_id {
            body["run_id"] = json!(r);
        }
        if let Some(m) = model_id {
            body["model_id"] = json!(m);
        }
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        let v = self.call("POST", "model-versions/create", Some(&body))?;
        decode(&v, "model_version", "model-versions/create")
    }

    /// Every registered model matching `filter` (all pages).
    ///
    /// # Errors
    /// A bad filter, an unreachable server.
    pub fn search_registered_models(&self, filter: &str) -> Result<Vec<RegisteredModel>, ClientError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut pairs = vec![("max_results", "1000"), ("order_by", "name ASC")];
            if !filter.is_empty() {
                pairs.push(("filter", filter));
            }
            if !token.is_empty() {
                pairs.push(("page_token", &token));
            }
            let v = self.call("GET", &format!("registered-models/search?{}", query(&pairs)), None)?;
            let page: Vec<RegisteredModel> =
                if v.get("registered_models").is_some() { decode(&v, "registered_models", "search")? } else { vec![] };
            out.extend(page);
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_owned(),
                _ => return Ok(out),
            }
        }
    }

    /// A registered model and every version of it, newest first.
    ///
    /// # Errors
    /// Unknown model.
    pub fn model_details(&self, name: &str) -> Result<ModelDetails, ClientError> {
        let v = self.call("GET", &format!("registered-models/get?{}", query(&[("name", name)])), None)?;
        let model: RegisteredModel = decode(&v, "registered_model", "registered-models/get")?;
        let mut versions = Vec::new();
        let mut token = String::new();
        let filter = format!("name = '{}'", name.replace('\'', "\\'"));
        loop {
            let mut pairs = vec![("filter", filter.as_str()), ("order_by", "version_number DESC")];
            if !token.is_empty() {
                pairs.push(("page_token", &token));
            }
            let v = self.call("GET", &format!("model-versions/search?{}", query(&pairs)), None)?;
            if v.get("model_versions").is_some() {
                versions.extend(decode::<Vec<ModelVersion>>(&v, "model_versions", "model-versions/search")?);
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_owned(),
                _ => return Ok(ModelDetails { model, versions }),
            }
        }
    }

    /// One version.
    ///
    /// # Errors
    /// Unknown model or version.
    pub fn model_version(&self, name: &str, version: &str) -> Result<ModelVersion, ClientError> {
        let q = query(&[("name", name), ("version", version)]);
        let v = self.call("GET", &format!("model-versions/get?{q}"), None)?;
        decode(&v, "model_version", "model-versions/get")
    }

    /// Points `alias` at `version`.
    ///
    /// # Errors
    /// Invalid or reserved alias, unknown model or version.
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), ClientError> {
        self.call("POST", "registered-models/alias", Some(&json!({"name": name, "alias": alias, "version": version})))?;
        Ok(())
    }

    /// Removes `alias`.
    ///
    /// # Errors
    /// Unknown model.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<(), ClientError> {
        self.call("DELETE", "registered-models/alias", Some(&json!({"name": name, "alias": alias})))?;
        Ok(())
    }

    /// Moves a version to a stage (None, Staging, Production, Archived).
    ///
    /// # Errors
    /// Invalid stage, unknown model or version.
    pub fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion, ClientError> {
        let v = self.call(
            "POST",
            "model-versions/transition-stage",
            Some(&json!({"name": name, "version": version, "stage": stage, "archive_existing_versions": archive_existing})),
        )?;
        decode(&v, "model_version", "model-versions/transition-stage")
    }

    /// Deletes a registered model with all its versions.
    ///
    /// # Errors
    /// Unknown model.
    pub fn delete_registered_model(&self, name: &str) -> Result<(), ClientError> {
        self.call("DELETE", "registered-models/delete", Some(&json!({ "name": name })))?;
        Ok(())
    }

    /// Deletes one version (its number is not reused).
    ///
    /// # Errors
    /// Unknown model or version.
    pub fn delete_model_version(&self, name: &str, version: &str) -> Result<(), ClientError> {
        self.call("DELETE", "model-versions/delete", Some(&json!({ "name": name, "version": version })))?;
        Ok(())
    }
}
