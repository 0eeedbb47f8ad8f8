//! The model registry's REST endpoints (`registered-models/*`, `model-versions/*`), thin over
//! the store: parse the message, call one store method, shape the answer as MLflow does.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use kiln_store::NewModelVersion;
use kiln_wire::{KeyValue, MlflowError};
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, AppState, OneOrMany, S, message, ok, read, required, to_value};

#[derive(Deserialize)]
struct CreateModel {
    name: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    description: Option<String>,
}

handler!(create_registered_model, CreateModel, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let rm = store.create_registered_model(name, &m.tags, m.description.as_deref()).await?;
    ok(&json!({ "registered_model": to_value(&rm)? }))
});

#[derive(Deserialize)]
struct ModelName {
    name: Option<String>,
}

handler!(get_registered_model, ModelName, |store, m| {
    let rm = store.get_registered_model(required(m.name.as_deref(), "name")?).await?;
    ok(&json!({ "registered_model": to_value(&rm)? }))
});

handler!(delete_registered_model, ModelName, |store, m| {
    store.delete_registered_model(required(m.name.as_deref(), "name")?).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct RenameModel {
    name: Option<String>,
    new_name: Option<String>,
}

handler!(rename_registered_model, RenameModel, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let rm = store.rename_registered_model(name, required(m.new_name.as_deref(), "new_name")?).await?;
    ok(&json!({ "registered_model": to_value(&rm)? }))
});

#[derive(Deserialize)]
struct UpdateModel {
    name: Option<String>,
    description: Option<String>,
}

handler!(update_registered_model, UpdateModel, |store, m| {
    let rm = store.update_registered_model(required(m.name.as_deref(), "name")?, m.description.as_deref()).await?;
    ok(&json!({ "registered_model": to_value(&rm)? }))
});

/// A search request. On a GET the client repeats `order_by=` for each entry, which a struct
/// deserializer refuses as a duplicate field, so the query string is read pair by pair.
#[derive(Deserialize, Default)]
struct Search {
    filter: Option<String>,
    max_results: Option<i64>,
    #[serde(default)]
    order_by: OneOrMany,
    page_token: Option<String>,
}

async fn search_message(req: Request) -> Result<Search, ApiError> {
    let (method, query, bytes) = read(req).await?;
    if method != axum::http::Method::GET {
        return message(&method, query.as_deref(), &bytes);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError(MlflowError::invalid(format!("Invalid request: {e}"))))?;
    let mut s = Search::default();
    let mut order_by = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "filter" => s.filter = Some(v),
            "max_results" => {
                s.max_results = Some(v.parse().map_err(|_| {
                    ApiError(MlflowError::invalid(format!("Invalid value '{v}' for parameter 'max_results'")))
                })?);
            }
            "order_by" => order_by.push(v),
            "page_token" => s.page_token = Some(v),
            _ => {}
        }
    }
    s.order_by = OneOrMany::Many(order_by);
    Ok(s)
}

async fn search_registered_models(State(st): S, req: Request) -> Result<Response, ApiError> {
    let m = search_message(req).await?;
    let page = st
        .store
        .search_registered_models(
            m.filter.as_deref().unwrap_or(""),
            m.max_results.unwrap_or(100),
            &m.order_by.into_vec(),
            m.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({});
    if !page.items.is_empty() {
        out["registered_models"] = to_value(&page.items)?;
    }
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    ok(&out)
}

#[derive(Deserialize)]
struct LatestVersions {
    name: Option<String>,
    #[serde(default)]
    stages: OneOrMany,
}

/// `get-latest-versions`: a JSON body, or (GET) a query string where the client repeats
/// `stages=` for each stage, which a struct deserializer refuses as a duplicate field.
async fn get_latest_versions(State(st): S, req: Request) -> Result<Response, ApiError> {
    let (method, query, bytes) = read(req).await?;
    let m: LatestVersions = if method == axum::http::Method::GET {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|e| ApiError(MlflowError::invalid(format!("Invalid request: {e}"))))?;
        LatestVersions {
            name: pairs.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone()),
            stages: OneOrMany::Many(pairs.into_iter().filter(|(k, _)| k == "stages").map(|(_, v)| v).collect()),
        }
    } else {
        message(&method, query.as_deref(), &bytes)?
    };
    let name = required(m.name.as_deref(), "name")?;
    let versions = st.store.get_latest_versions(name, &m.stages.into_vec()).await?;
    let mut out = json!({});
    if !versions.is_empty() {
        out["model_versions"] = to_value(&versions)?;
    }
    ok(&out)
}

#[derive(Deserialize)]
struct ModelTag {
    name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

handler!(set_registered_model_tag, ModelTag, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let key = required(m.key.as_deref(), "key")?.to_owned();
    let value =
        m.value.ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'value'")))?;
    store.set_registered_model_tag(name, &KeyValue { key, value }).await?;
    ok(&json!({}))
});

handler!(delete_registered_model_tag, ModelTag, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    store.delete_registered_model_tag(name, required(m.key.as_deref(), "key")?).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct AliasMsg {
    name: Option<String>,
    alias: Option<String>,
    #[serde(default, deserialize_with = "crate::string_or_number")]
    version: Option<String>,
}

handler!(set_alias, AliasMsg, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let alias = required(m.alias.as_deref(), "alias")?;
    store.set_registered_model_alias(name, alias, required(m.version.as_deref(), "version")?).await?;
    ok(&json!({}))
});

handler!(delete_alias, AliasMsg, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    store.delete_registered_model_alias(name, required(m.alias.as_deref(), "alias")?).await?;
    ok(&json!({}))
});

handler!(get_alias, AliasMsg, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let mv = store.get_model_version_by_alias(name, required(m.alias.as_deref(), "alias")?).await?;
    ok(&json!({ "model_version": to_value(&mv)? }))
});

// ---- model versions ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct CreateVersion {
    name: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    run_link: Option<String>,
    description: Option<String>,
    model_id: Option<String>,
}

handler!(create_model_version, CreateVersion, |store, m| {
    let v = NewModelVersion {
        name: required(m.name.as_deref(), "name")?,
        source: required(m.source.as_deref(), "source")?,
        run_id: m.run_id.as_deref().filter(|s| !s.is_empty()),
        run_link: m.run_link.as_deref(),
        description: m.description.as_deref(),
        model_id: m.model_id.as_deref().filter(|s| !s.is_empty()),
        tags: &m.tags,
    };
    let mv = store.create_model_version(&v).await?;
    ok(&json!({ "model_version": to_value(&mv)? }))
});

#[derive(Deserialize)]
struct VersionRef {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::string_or_number")]
    version: Option<String>,
}

impl VersionRef {
    fn parts(&self) -> Result<(&str, &str), ApiError> {
        Ok((required(self.name.as_deref(), "name")?, required(self.version.as_deref(), "version")?))
    }
}

handler!(get_model_version, VersionRef, |store, m| {
    let (name, version) = m.parts()?;
    ok(&json!({ "model_version": to_value(&store.get_model_version(name, version).await?)? }))
});

handler!(delete_model_version, VersionRef, |store, m| {
    let (name, version) = m.parts()?;
    store.delete_model_version(name, version).await?;
    ok(&json!({}))
});

handler!(get_download_uri, VersionRef, |store, m| {
    let (name, version) = m.parts()?;
    ok(&json!({ "artifact_uri": store.get_model_version_download_uri(name, version).await? }))
});

#[derive(Deserialize)]
struct UpdateVersion {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::string_or_number")]
    version: Option<String>,
    description: Option<String>,
}

handler!(update_model_version, UpdateVersion, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let version = required(m.version.as_deref(), "version")?;
    let mv = store.update_model_version(name, version, m.description.as_deref()).await?;
    ok(&json!({ "model_version": to_value(&mv)? }))
});

#[derive(Deserialize)]
struct Transition {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::string_or_number")]
    version: Option<String>,
    stage: Option<String>,
    #[serde(default)]
    archive_existing_versions: Option<bool>,
}

handler!(transition_stage, Transition, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let version = required(m.version.as_deref(), "version")?;
    let stage = required(m.stage.as_deref(), "stage")?;
    let archive = m.archive_existing_versions.unwrap_or(false);
    let mv = store.transition_model_version_stage(name, version, stage, archive).await?;
    ok(&json!({ "model_version": to_value(&mv)? }))
});

async fn search_model_versions(State(st): S, req: Request) -> Result<Response, ApiError> {
    let m = search_message(req).await?;
    let page = st
        .store
        .search_model_versions(
            m.filter.as_deref().unwrap_or(""),
            m.max_results.unwrap_or(10_000),
            &m.order_by.into_vec(),
            m.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({});
    if !page.items.is_empty() {
        out["model_versions"] = to_value(&page.items)?;
    }
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    ok(&out)
}

#[derive(Deserialize)]
struct VersionTag {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::string_or_number")]
    version: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

handler!(set_model_version_tag, VersionTag, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let version = required(m.version.as_deref(), "version")?;
    let key = required(m.key.as_deref(), "key")?.to_owned();
    let value =
        m.value.ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'value'")))?;
    store.set_model_version_tag(name, version, &KeyValue { key, value }).await?;
    ok(&json!({}))
});

handler!(delete_model_version_tag, VersionTag, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let version = required(m.version.as_deref(), "version")?;
    store.delete_model_version_tag(name, version, required(m.key.as_deref(), "key")?).await?;
    ok(&json!({}))
});

/// The registry's routes, merged into the tracking API under the same prefixes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    use axum::routing::{delete, patch};
    Router::new()
        .route("/registered-models/create", post(create_registered_model))
        .route("/registered-models/get", get(get_registered_model))
        .route("/registered-models/rename", post(rename_registered_model))
        .route("/registered-models/update", patch(update_registered_model))
        .route("/registered-models/delete", delete(delete_registered_model))
        .route("/registered-models/search", get(search_registered_models).post(search_registered_models))
        .route("/registered-models/get-latest-versions", post(get_latest_versions).get(get_latest_versions))
        .route("/registered-models/set-tag", post(set_registered_model_tag))
        .route("/registered-models/delete-tag", delete(delete_registered_model_tag))
        .route("/registered-models/alias", post(set_alias).delete(delete_alias).get(get_alias))
        .route("/model-versions/create", post(create_model_version))
        .route("/model-versions/get", get(get_model_version))
        .route("/model-versions/update", patch(update_model_version))
        .route("/model-versions/delete", delete(delete_model_version))
        .route("/model-versions/search", get(search_model_versions).post(search_model_versions))
        .route("/model-versions/get-download-uri", get(get_download_uri))
        .route("/model-versions/transition-stage", post(transition_stage))
        .route("/model-versions/set-tag", post(set_model_version_tag))
        .route("/model-versions/delete-tag", delete(delete_model_version_tag))
        .route("/model-versions/get-artifact", get(crate::artifacts::model_version_artifact))
}
