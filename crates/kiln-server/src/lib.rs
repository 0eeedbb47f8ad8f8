//! kiln-server: MLflow's tracking REST API (`/api/2.0/mlflow/…`, also under `/ajax-api/…`) over
//! the [`kiln_store::Store`] trait, so the official `mlflow` client works unchanged.
//!
//! Request bodies and query strings are read into typed structs; a wrong type or a missing
//! required field is 400 `INVALID_PARAMETER_VALUE`, never a 5xx (the client retries 5xx for
//! minutes). Endpoints not built yet answer 501 `NOT_IMPLEMENTED` as JSON.

use std::sync::Arc;

pub mod artifacts;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use kiln_store::{SqlStore, Store};
use kiln_wire::{ErrorCode, KeyValue, Metric, MlflowError, ViewType};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The version `/version` reports: MLflow's, since tools parse it (kiln's own is in
/// `/api/3.0/mlflow/server-info`).
pub const MLFLOW_VERSION: &str = "3.17.2";

/// Largest request body (a 1,000-metric log-batch is ~100 KB; artifacts do not come here).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Shared by every request.
pub struct AppState {
    pub store: Box<dyn Store>,
    pub artifacts: kiln_artifacts::ArtifactStore,
}

/// An MLflow error as an HTTP answer.
pub struct ApiError(pub MlflowError);

impl From<MlflowError> for ApiError {
    fn from(e: MlflowError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, self.0.body())
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn ok(v: &Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, v.to_string()))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError(MlflowError::internal(e.to_string())))
}

type S = State<Arc<AppState>>;

/// The request message: the JSON body of a POST, or the query string of a GET.
fn message<T: DeserializeOwned>(method: &Method, query: Option<&str>, body: &Bytes) -> Result<T, ApiError> {
    let parsed = if method == Method::GET {
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| e.to_string())
    } else if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_str("{}").map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError(MlflowError::invalid(format!("Invalid request: {e}"))))
}

async fn read(req: Request) -> Result<(Method, Option<String>, Bytes), ApiError> {
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError(MlflowError::invalid(format!("cannot read the request body: {e}"))))?;
    Ok((method, query, body))
}

fn required<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError(MlflowError::invalid(format!("Missing value for required parameter '{name}'"))))
}

/// `run_id`, else the legacy `run_uuid` (the client sends both).
fn run_id<'a>(run_id: Option<&'a str>, run_uuid: Option<&'a str>) -> Result<&'a str, ApiError> {
    required(run_id.filter(|s| !s.is_empty()).or(run_uuid), "run_id")
}

macro_rules! handler {
    ($name:ident, $msg:ty, |$store:ident, $m:ident| $body:block) => {
        async fn $name(State(state): S, req: Request) -> Result<Response, ApiError> {
            let $store = &state.store;
            let (method, query, bytes) = read(req).await?;
            let $m: $msg = message(&method, query.as_deref(), &bytes)?;
            $body
        }
    };
}

mod registry;

/// A field MLflow sends as a string that other clients may send as a number (`version`).
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        S(String),
        I(i64),
    }
    Ok(Option::<V>::deserialize(d)?.map(|v| match v {
        V::S(s) => s,
        V::I(i) => i.to_string(),
    }))
}

// ---- experiments ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct CreateExperiment {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

handler!(create_experiment, CreateExperiment, |store, m| {
    let name = required(m.name.as_deref(), "name")?;
    let id = store.create_experiment(name, m.artifact_location.as_deref(), &m.tags).await?;
    ok(&json!({ "experiment_id": id }))
});

#[derive(Deserialize)]
struct ExperimentId {
    experiment_id: Option<String>,
}

handler!(get_experiment, ExperimentId, |store, m| {
    let e = store.get_experiment(required(m.experiment_id.as_deref(), "experiment_id")?).await?;
    ok(&json!({ "experiment": to_value(&e)? }))
});

#[derive(Deserialize)]
struct ExperimentName {
    experiment_name: Option<String>,
}

handler!(get_experiment_by_name, ExperimentName, |store, m| {
    let e = store.get_experiment_by_name(required(m.experiment_name.as_deref(), "experiment_name")?).await?;
    ok(&json!({ "experiment": to_value(&e)? }))
});

#[derive(Deserialize)]
struct SearchExperiments {
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: OneOrMany,
    #[serde(default)]
    view_type: Option<ViewType>,
}

/// A repeated field: a JSON list, or (query strings) one value.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

fn not_yet(what: &str) -> ApiError {
    ApiError(MlflowError::new(ErrorCode::NotImplemented, format!("{what} is not implemented by kiln server yet")))
}

handler!(search_experiments, SearchExperiments, |store, m| {
    let page = store
        .search_experiments(
            m.view_type.unwrap_or_default(),
            m.filter.as_deref().unwrap_or(""),
            &m.order_by.into_vec(),
            m.max_results.unwrap_or(1000),
            m.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({});
    if !page.items.is_empty() {
        out["experiments"] = to_value(&page.items)?;
    }
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    ok(&out)
});

#[derive(Deserialize)]
struct UpdateExperiment {
    experiment_id: Option<String>,
    new_name: Option<String>,
}

handler!(update_experiment, UpdateExperiment, |store, m| {
    let id = required(m.experiment_id.as_deref(), "experiment_id")?;
    store.rename_experiment(id, required(m.new_name.as_deref(), "new_name")?).await?;
    ok(&json!({}))
});

handler!(delete_experiment, ExperimentId, |store, m| {
    store.delete_experiment(required(m.experiment_id.as_deref(), "experiment_id")?).await?;
    ok(&json!({}))
});

handler!(restore_experiment, ExperimentId, |store, m| {
    store.restore_experiment(required(m.experiment_id.as_deref(), "experiment_id")?).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct ExperimentTag {
    experiment_id: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

handler!(set_experiment_tag, ExperimentTag, |store, m| {
    let id = required(m.experiment_id.as_deref(), "experiment_id")?;
    let key = required(m.key.as_deref(), "key")?.to_owned();
    let value =
        m.value.ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'value'")))?;
    store.set_experiment_tag(id, &KeyValue { key, value }).await?;
    ok(&json!({}))
});

handler!(delete_experiment_tag, ExperimentTag, |store, m| {
    let id = required(m.experiment_id.as_deref(), "experiment_id")?;
    store.delete_experiment_tag(id, required(m.key.as_deref(), "key")?).await?;
    ok(&json!({}))
});

// ---- runs -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct CreateRun {
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

handler!(create_run, CreateRun, |store, m| {
    let run = store
        .create_run(
            m.experiment_id.as_deref(),
            m.user_id.as_deref().unwrap_or(""),
            m.run_name.as_deref(),
            m.start_time,
            &m.tags,
        )
        .await?;
    ok(&json!({ "run": to_value(&run)? }))
});

#[derive(Deserialize)]
struct RunRef {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

handler!(get_run, RunRef, |store, m| {
    let run = store.get_run(run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?).await?;
    ok(&json!({ "run": to_value(&run)? }))
});

handler!(delete_run, RunRef, |store, m| {
    store.delete_run(run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?).await?;
    ok(&json!({}))
});

handler!(restore_run, RunRef, |store, m| {
    store.restore_run(run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct UpdateRun {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    end_time: Option<i64>,
    run_name: Option<String>,
}

handler!(update_run, UpdateRun, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let info = store.update_run(id, m.status.as_deref(), m.end_time, m.run_name.as_deref()).await?;
    ok(&json!({ "run_info": to_value(&info)? }))
});

#[derive(Deserialize)]
struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    #[serde(default, with = "opt_double")]
    value: Option<f64>,
    timestamp: Option<i64>,
    #[serde(default)]
    step: i64,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

/// An optional proto3 double: a number or `"NaN"`/`"Infinity"`/`"-Infinity"`.
mod opt_double {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "kiln_wire::special_double")] f64);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

handler!(log_metric, LogMetric, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let key = required(m.key.as_deref(), "key")?.to_owned();
    let value =
        m.value.ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'value'")))?;
    let timestamp = m
        .timestamp
        .ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'timestamp'")))?;
    let metric = Metric {
        key,
        value,
        timestamp,
        step: m.step,
        model_id: m.model_id.filter(|i| !i.is_empty()),
        dataset_name: m.dataset_name,
        dataset_digest: m.dataset_digest,
    };
    store.log_batch(id, &[metric], &[], &[]).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct LogKeyValue {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

handler!(log_param, LogKeyValue, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let key = required(m.key.as_deref(), "key")?.to_owned();
    let value =
        m.value.ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'value'")))?;
    store.log_batch(id, &[], &[KeyValue { key, value }], &[]).await?;
    ok(&json!({}))
});

handler!(set_tag, LogKeyValue, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let key = required(m.key.as_deref(), "key")?.to_owned();
    let value =
        m.value.ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'value'")))?;
    store.log_batch(id, &[], &[], &[KeyValue { key, value }]).await?;
    ok(&json!({}))
});

handler!(delete_tag, LogKeyValue, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    store.delete_tag(id, required(m.key.as_deref(), "key")?).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct LogBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

handler!(log_batch, LogBatch, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    store.log_batch(id, &m.metrics, &m.params, &m.tags).await?;
    ok(&json!({}))
});

#[derive(Deserialize)]
struct MetricHistory {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: Option<String>,
    max_results: Option<i64>,
    page_token: Option<String>,
}

handler!(metric_history, MetricHistory, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let key = required(m.metric_key.as_deref(), "metric_key")?;
    let page = store.metric_history(id, key, m.max_results, m.page_token.as_deref()).await?;
    // Written straight from the points (a page can be 100,000 of them; see `history_json`).
    let body = kiln_wire::history_json(key, &page.items, page.next_page_token.as_deref())
        .map_err(|e| ApiError(MlflowError::internal(e.to_string())))?;
    Ok(json_response(StatusCode::OK, body))
});

#[derive(Deserialize)]
struct SearchRuns {
    #[serde(default)]
    experiment_ids: OneOrMany,
    filter: Option<String>,
    run_view_type: Option<ViewType>,
    max_results: Option<i64>,
    #[serde(default)]
    order_by: OneOrMany,
    page_token: Option<String>,
}

handler!(search_runs, SearchRuns, |store, m| {
    let ids = m.experiment_ids.into_vec();
    let page = store
        .search_runs(
            &ids,
            m.filter.as_deref().unwrap_or(""),
            &m.order_by.into_vec(),
            m.run_view_type.unwrap_or_default(),
            m.max_results.unwrap_or(1000),
            m.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({});
    if !page.items.is_empty() {
        out["runs"] = to_value(&page.items)?;
    }
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    ok(&out)
});

// ---- the rest -------------------------------------------------------------------------------

// ---- run inputs ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireDataset {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    source: String,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
struct WireDatasetInput {
    #[serde(default)]
    tags: Vec<KeyValue>,
    dataset: Option<WireDataset>,
}

#[derive(Deserialize)]
struct WireModelInput {
    model_id: Option<String>,
}

#[derive(Deserialize)]
struct LogInputs {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    datasets: Vec<WireDatasetInput>,
    #[serde(default)]
    models: Vec<WireModelInput>,
}

handler!(log_inputs, LogInputs, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let datasets = m
        .datasets
        .into_iter()
        .map(|d| {
            let ds = d
                .dataset
                .ok_or_else(|| ApiError(MlflowError::invalid("Missing value for required parameter 'dataset'")))?;
            Ok(kiln_store::DatasetInput {
                name: ds.name,
                digest: ds.digest,
                source_type: ds.source_type,
                source: ds.source,
                schema: ds.schema,
                profile: ds.profile,
                tags: d.tags,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let models = m
        .models
        .into_iter()
        .map(|mi| Ok(required(mi.model_id.as_deref(), "model_id")?.to_owned()))
        .collect::<Result<Vec<_>, ApiError>>()?;
    store.log_inputs(id, &datasets, &models).await?;
    ok(&json!({}))
});

// ---- logged models (MLflow 3) ----------------------------------------------------------------

#[derive(Deserialize)]
struct CreateLoggedModel {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

handler!(create_logged_model, CreateLoggedModel, |store, m| {
    let model = store
        .create_logged_model(&kiln_store::NewLoggedModel {
            experiment_id: required(m.experiment_id.as_deref(), "experiment_id")?,
            name: m.name.as_deref(),
            model_type: m.model_type.as_deref(),
            source_run_id: m.source_run_id.as_deref(),
            params: &m.params,
            tags: &m.tags,
        })
        .await?;
    ok(&json!({ "model": model }))
});

#[derive(Deserialize)]
struct SearchLoggedModels {
    #[serde(default)]
    experiment_ids: OneOrMany,
    filter: Option<String>,
    max_results: Option<i64>,
    page_token: Option<String>,
    #[serde(default)]
    order_by: Vec<kiln_store::search::ModelOrder>,
    #[serde(default)]
    datasets: Vec<kiln_store::search::DatasetRef>,
}

handler!(search_logged_models, SearchLoggedModels, |store, m| {
    let page = store
        .search_logged_models(
            &m.experiment_ids.into_vec(),
            m.filter.as_deref().unwrap_or(""),
            &m.datasets,
            &m.order_by,
            m.max_results.unwrap_or(100),
            m.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({});
    if !page.items.is_empty() {
        out["models"] = json!(page.items);
    }
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    ok(&out)
});

async fn get_logged_model(State(st): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(&json!({ "model": st.store.get_logged_model(&id).await? }))
}

#[derive(Deserialize)]
struct FinalizeLoggedModel {
    status: Option<String>,
}

async fn finalize_logged_model(State(st): S, Path(id): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (method, query, bytes) = read(req).await?;
    let m: FinalizeLoggedModel = message(&method, query.as_deref(), &bytes)?;
    let model = st.store.finalize_logged_model(&id, required(m.status.as_deref(), "status")?).await?;
    ok(&json!({ "model": model }))
}

async fn delete_logged_model(State(st): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    st.store.delete_logged_model(&id).await?;
    ok(&json!({}))
}

#[derive(Deserialize)]
struct ModelTags {
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn set_logged_model_tags(State(st): S, Path(id): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (method, query, bytes) = read(req).await?;
    let m: ModelTags = message(&method, query.as_deref(), &bytes)?;
    ok(&json!({ "model": st.store.set_logged_model_tags(&id, &m.tags).await? }))
}

async fn delete_logged_model_tag(State(st): S, Path((id, key)): Path<(String, String)>) -> Result<Response, ApiError> {
    st.store.delete_logged_model_tag(&id, &key).await?;
    ok(&json!({}))
}

#[derive(Deserialize)]
struct ModelParams {
    #[serde(default)]
    params: Vec<KeyValue>,
}

async fn log_logged_model_params(State(st): S, Path(id): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (method, query, bytes) = read(req).await?;
    let m: ModelParams = message(&method, query.as_deref(), &bytes)?;
    st.store.log_logged_model_params(&id, &m.params).await?;
    ok(&json!({}))
}

#[derive(Deserialize)]
struct ModelOutput {
    model_id: Option<String>,
    #[serde(default)]
    step: i64,
}

#[derive(Deserialize)]
struct RunOutputs {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    models: Vec<ModelOutput>,
}

handler!(log_run_outputs, RunOutputs, |store, m| {
    let id = run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let models = m
        .models
        .into_iter()
        .map(|o| Ok((required(o.model_id.as_deref(), "model_id")?.to_owned(), o.step)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    store.log_run_outputs(id, &models).await?;
    ok(&json!({}))
});

async fn server_info() -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "store_type": "SqlStore", "workspaces_enabled": false, "trace_archival_enabled": false,
            "multipart_uploads_enabled": false, "multipart_downloads_enabled": false,
            "kiln_version": env!("CARGO_PKG_VERSION"),
        })
        .to_string(),
    )
}

async fn not_implemented(req: Request) -> ApiError {
    not_yet(&format!("{} {}", req.method(), req.uri().path()))
}

async fn not_found(req: Request) -> ApiError {
    ApiError(MlflowError::new(
        ErrorCode::EndpointNotFound,
        format!("no endpoint {} {}", req.method(), req.uri().path()),
    ))
}

/// The tracking API under one prefix.
fn api() -> Router<Arc<AppState>> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route("/experiments/search", post(search_experiments).get(search_experiments))
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route("/experiments/delete-experiment-tag", post(delete_experiment_tag))
        .route("/runs/create", post(create_run))
        .route("/runs/get", get(get_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/search", post(search_runs))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/metrics/get-history", get(metric_history))
        .route("/runs/outputs", post(log_run_outputs))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/logged-models", post(create_logged_model))
        .route("/logged-models/search", post(search_logged_models))
        .route(
            "/logged-models/{model_id}",
            get(get_logged_model).patch(finalize_logged_model).delete(delete_logged_model),
        )
        .route("/logged-models/{model_id}/tags", axum::routing::patch(set_logged_model_tags))
        .route("/logged-models/{model_id}/tags/{tag_key}", axum::routing::delete(delete_logged_model_tag))
        .route("/logged-models/{model_id}/params", post(log_logged_model_params))
        .merge(registry::routes())
        .fallback(any(not_implemented))
}

/// The artifact proxy under one prefix.
fn artifact_api() -> Router<Arc<AppState>> {
    Router::new()
        .route("/artifacts", get(artifacts::list))
        .route("/artifacts/{*path}", get(artifacts::download).put(artifacts::upload).delete(artifacts::delete))
        .fallback(any(not_implemented))
}

/// The whole router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .nest("/api/2.0/mlflow", api())
        .nest("/ajax-api/2.0/mlflow", api())
        .nest("/api/2.0/mlflow-artifacts", artifact_api())
        .nest("/ajax-api/2.0/mlflow-artifacts", artifact_api())
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .route("/ajax-api/3.0/mlflow/server-info", get(server_info))
        .route("/get-artifact", get(artifacts::run_artifact))
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { MLFLOW_VERSION }))
        .fallback(not_found)
        .with_state(state)
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Artifacts(#[from] kiln_artifacts::OpenError),
    #[error("the server stopped")]
    Serve(#[source] std::io::Error),
}

/// How `kiln server` runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub backend_store_uri: String,
    pub artifact_root: String,
    /// Where proxied artifacts are kept: a directory, `file:///dir` or `s3://bucket/prefix`.
    pub artifacts_destination: String,
    pub host: String,
    pub port: u16,
}

/// Opens the store, listens, and serves until `shutdown` completes (the binary passes
/// `kiln_serve::server::shutdown_signal`: SIGTERM or Ctrl-C), then finishes in-flight requests.
/// `on_ready` gets the address.
///
/// # Errors
/// The store cannot be opened or the address bound.
pub fn run(
    options: &ServerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServerError> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ServerError::Runtime)?;
    rt.block_on(async {
        let store = SqlStore::open(&options.backend_store_uri, &options.artifact_root).await?;
        let artifacts = kiln_artifacts::ArtifactStore::open(&options.artifacts_destination)?;
        let addr = format!("{}:{}", options.host, options.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind { addr: addr.clone(), source })?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
        on_ready(local);
        axum::serve(listener, router(Arc::new(AppState { store: Box::new(store), artifacts })))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServerError::Serve)
    })
}
