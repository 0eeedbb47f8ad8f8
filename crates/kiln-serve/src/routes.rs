//! The HTTP routes. Every answer to bad input is a 4xx with a JSON body naming the problem.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use http_body_util::BodyExt;
use kiln_core::Table;
use kiln_model::Task;
use kiln_model::infer::{self, OutputKind, RowNaming};
use serde_json::Value;

use crate::batch::{self, Scored};
use crate::error::{ApiError, json_response};
use crate::{AppState, LoadedModel, input};

type S = State<Arc<AppState>>;

/// Route patterns, as metric labels (a fixed set, so paths cannot create new series).
const ROUTES: [&str; 15] = [
    "/invocations",
    "/predict",
    "/ping",
    "/health",
    "/version",
    "/metrics",
    "/openapi.json",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}",
    "/v2/models/{name}/versions/{version}/infer",
];

/// Builds the router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let get_only = |m: MethodRouter<Arc<AppState>>| m.fallback(method_not_allowed);
    Router::new()
        .route(ROUTES[0], get_only(post(invocations)))
        .route(ROUTES[1], get_only(post(predict)))
        .route(ROUTES[2], get_only(get(ping)))
        .route(ROUTES[3], get_only(get(ping)))
        .route(ROUTES[4], get_only(get(version)))
        .route(ROUTES[5], get_only(get(metrics)))
        .route(ROUTES[6], get_only(get(openapi)))
        .route(ROUTES[7], get_only(get(v2_server)))
        .route(ROUTES[8], get_only(get(v2_live)))
        .route(ROUTES[9], get_only(get(v2_live)))
        .route(ROUTES[10], get_only(get(v2_model)))
        .route(ROUTES[11], get_only(get(v2_model_ready)))
        .route(ROUTES[12], get_only(post(v2_infer)))
        .route(ROUTES[13], get_only(get(v2_model_version)))
        .route(ROUTES[14], get_only(post(v2_infer_version)))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Metrics and the per-request deadline, around every route.
async fn observe(State(s): S, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| ROUTES.iter().copied().find(|r| *r == m.as_str()))
        .unwrap_or("unmatched");
    let _in_flight = s.metrics.start();
    let t = Instant::now();
    let response = match tokio::time::timeout(s.options.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "DEADLINE_EXCEEDED",
            format!(
                "the request did not complete within {:?} (kiln serve --timeout); a body sent too slowly is cut off",
                s.options.timeout
            ),
        )
        .into_response(),
    };
    s.metrics.request(route, response.status().as_u16(), t.elapsed().as_secs_f64());
    response
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(method: Method, req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "BAD_REQUEST",
        format!("method {method} is not allowed on {}", req.uri().path()),
    )
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// MLflow answers `/ping` with a newline typed as JSON; clients only look at the status.
async fn ping() -> Response {
    text(StatusCode::OK, "application/json", "\n")
}

/// kiln's version as plain text, as MLflow answers its own; with `Accept: application/json`,
/// also which model answers: its name, bundle UUID, the `-m` source and the registered version
/// it resolved to (what changes when a followed alias moves).
async fn version(State(s): S, headers: HeaderMap) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("application/json")));
    if !wants_json {
        return text(StatusCode::OK, "text/plain; charset=utf-8", env!("CARGO_PKG_VERSION"));
    }
    let m = s.model();
    let registered =
        m.origin.registered.as_ref().map(|r| serde_json::json!({"name": r.name, "version": r.version.to_string()}));
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "model": {
            "name": m.name,
            "model_uuid": m.version,
            "source": m.origin.source,
            "location": m.origin.location,
            "registered_model": registered,
        },
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn metrics(State(s): S) -> Response {
    let m = s.model();
    text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", s.metrics.render(&m.name, &m.version, &m.origin))
}

async fn openapi(State(s): S) -> Response {
    json_response(StatusCode::OK, s.model().openapi.clone())
}

/// The body, at most `limit` bytes (413 beyond, without reading the rest).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let too_large =
        || ApiError::too_large(format!("the body is larger than {limit} bytes (kiln serve --max-body-bytes)"));
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!("cannot read the request body: {e}"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Json,
    Csv,
}

/// MLflow's rule: `application/json` or `text/csv`, with no parameter but `charset`; anything
/// else is 415. (MLflow's 415 body is plain text; kiln's is JSON, like every other error.)
fn content_type(headers: &HeaderMap) -> Result<Content, ApiError> {
    let raw = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
    let unsupported = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            format!(
                "This predictor only supports the following content types: application/json, text/csv. Got '{}'.",
                raw.unwrap_or("")
            ),
        )
    };
    let raw = raw.ok_or_else(unsupported)?;
    let mut parts = raw.split(';');
    let kind = match parts.next().map(|t| t.trim().to_ascii_lowercase()).as_deref() {
        Some("application/json") => Content::Json,
        Some("text/csv") => Content::Csv,
        _ => return Err(unsupported()),
    };
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let v = v.trim().trim_matches('"');
        if !k.trim().eq_ignore_ascii_case("charset")
            || !(v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8"))
        {
            return Err(unsupported());
        }
    }
    Ok(kind)
}

/// Checks input against the signature; every row must be scorable.
fn conform(model: &LoadedModel, table: Table, naming: RowNaming, v2: bool) -> Result<Table, ApiError> {
    let wrap = |e: ApiError| if v2 { e.v2() } else { e };
    let c = infer::conform_owned(&model.bundle.pipeline, table, naming)
        .map_err(|e| wrap(ApiError::invalid_input(e.to_string())))?;
    if let Some((_, e)) = c.row_errors.first() {
        let more = c.row_errors.len() - 1;
        let tail = if more > 0 { format!(" (and {more} more rows with problems)") } else { String::new() };
        return Err(wrap(ApiError::invalid_input(format!("{e}{tail}"))));
    }
    Ok(c.table)
}

fn log_extra(extra: &[String]) {
    if !extra.is_empty() {
        tracing::debug!(columns = ?extra, "dropped input columns the model does not take");
    }
}

/// Predicts `table`: through the micro-batcher, or inline when batching is off.
async fn score(
    s: &AppState,
    model: &Arc<LoadedModel>,
    table: Table,
    incoming: Option<batch::Incoming>,
) -> Result<Scored, ApiError> {
    match (&s.batcher, incoming) {
        (Some(b), Some(inc)) => b.predict(model.clone(), table, inc).await,
        _ => {
            let n = table.n_rows();
            let preds = batch::predict(model, vec![table])?;
            s.metrics.batch(n, 1);
            Ok(Scored { preds: Arc::new(preds), rows: 0..n })
        }
    }
}

fn predict_method(params: Option<&serde_json::Map<String, Value>>) -> Result<OutputKind, ApiError> {
    let Some(params) = params else { return Ok(OutputKind::Predict) };
    for k in params.keys().filter(|k| *k != "predict_method") {
        tracing::warn!(param = %k, "ignoring a param the model does not take");
    }
    match params.get("predict_method") {
        None => Ok(OutputKind::Predict),
        Some(Value::String(m)) if m == "predict" => Ok(OutputKind::Predict),
        Some(Value::String(m)) if m == "predict_proba" => Ok(OutputKind::Proba),
        Some(other) => Err(ApiError::invalid_input(format!(
            "params.predict_method must be \"predict\" or \"predict_proba\", got {other}"
        ))),
    }
}

fn no_proba(model: &LoadedModel) -> ApiError {
    ApiError::invalid_input(format!("{} gives no class probabilities", model.bundle.pipeline.estimator.sklearn_name()))
}

async fn invocations(State(s): S, req: Request) -> Result<Response, ApiError> {
    let incoming = s.batcher.as_ref().map(batch::Batcher::incoming);
    let model = s.model();
    let (parts, body) = req.into_parts();
    let content = content_type(&parts.headers)?;
    let body = read_body(&parts.headers, body, s.options.max_body_bytes).await?;
    let max_rows = s.options.max_batch_size;
    let (table, naming, kind) = match content {
        Content::Json => {
            let p = input::invocations_json(&body, &model.input_names, max_rows)?;
            log_extra(&p.extra);
            (p.table, RowNaming::Index, predict_method(p.params.as_ref())?)
        }
        Content::Csv => (input::csv(&body, max_rows)?, RowNaming::CsvLine, OutputKind::Predict),
    };
    if kind == OutputKind::Proba && !model.bundle.pipeline.has_proba() {
        return Err(no_proba(&model));
    }
    let table = conform(&model, table, naming, false)?;
    let scored = score(&s, &model, table, incoming).await?;
    let mut out = Vec::with_capacity(32 + scored.rows.len() * 8);
    out.extend_from_slice(infer::PREDICTIONS_OPEN);
    infer::write_predictions(&model.bundle.pipeline, &scored.preds, scored.rows, kind, &mut out)
        .map_err(|e| ApiError::invalid_input(e.to_string()))?;
    out.extend_from_slice(infer::PREDICTIONS_CLOSE);
    Ok(json_response(StatusCode::OK, out))
}

/// `?proba=true` (or `1`) on `/predict`.
fn wants_proba(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| matches!(kv.split_once('='), Some(("proba", "true" | "1"))) || kv == "proba")
    })
}

async fn predict(State(s): S, req: Request) -> Result<Response, ApiError> {
    let incoming = s.batcher.as_ref().map(batch::Batcher::incoming);
    let model = s.model();
    let proba = wants_proba(req.uri().query());
    let (parts, body) = req.into_parts();
    // `curl -d` sends application/x-www-form-urlencoded: any type is read as JSON, so the
    // seed's one-liner works, but CSV is pointed to /invocations.
    if matches!(content_type(&parts.headers), Ok(Content::Csv)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            "/predict takes a JSON record or a list of records; send CSV to /invocations",
        ));
    }
    let body = read_body(&parts.headers, body, s.options.max_body_bytes).await?;
    let (table, list, extra) =
        input::predict_body(&body, &model.input_names, model.single_text, s.options.max_batch_size)?;
    log_extra(&extra);
    if proba && !model.bundle.pipeline.has_proba() {
        return Err(no_proba(&model));
    }
    let table = conform(&model, table, RowNaming::Index, false)?;
    let scored = score(&s, &model, table, incoming).await?;
    let p = &model.bundle.pipeline;
    let mut out = Vec::with_capacity(64 * scored.rows.len());
    if list {
        out.push(b'[');
    }
    for (k, i) in scored.rows.clone().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"result\":");
        infer::write_predictions(p, &scored.preds, i..i + 1, OutputKind::Predict, &mut out)
            .map_err(|e| ApiError::invalid_input(e.to_string()))?;
        if proba && let (Task::Classification { classes, .. }, Some(m)) = (&p.task, scored.preds.proba()) {
            out.extend_from_slice(b",\"probabilities\":{");
            for (j, (c, v)) in classes.iter().zip(m.row(i)).enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                infer::write_json(&mut out, c);
                out.push(b':');
                infer::write_json(&mut out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    if list {
        out.push(b']');
    }
    Ok(json_response(StatusCode::OK, out))
}

// ---- Open Inference Protocol v2 -------------------------------------------------------------

async fn v2_server() -> Response {
    let body = serde_json::json!({"name": "kiln", "version": env!("CARGO_PKG_VERSION"), "extensions": []});
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn v2_live() -> Response {
    json_response(StatusCode::OK, b"{\"live\":true}".to_vec())
}

fn v2_find(s: &AppState, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ApiError> {
    let m = s.model();
    if m.name != name || version.is_some_and(|v| v != m.version) {
        let what = version.map_or(String::new(), |v| format!(" version `{v}`"));
        return Err(
            ApiError::not_found(format!("model `{name}`{what} is not served here; it serves `{}`", m.name)).v2()
        );
    }
    Ok(m)
}

fn datatype(kind: kiln_model::InputKind) -> &'static str {
    match kind {
        kiln_model::InputKind::Numeric => "FP64",
        kiln_model::InputKind::Text | kiln_model::InputKind::Categorical => "BYTES",
    }
}

fn v2_metadata(m: &LoadedModel) -> Response {
    let p = &m.bundle.pipeline;
    let inputs: Vec<Value> = p
        .inputs
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "datatype": datatype(c.kind), "shape": [-1]}))
        .collect();
    let label = if matches!(p.task, Task::Classification { .. }) { "BYTES" } else { "FP64" };
    let mut outputs = vec![serde_json::json!({"name": "predict", "datatype": label, "shape": [-1]})];
    if let (Task::Classification { classes, .. }, true) = (&p.task, p.has_proba()) {
        outputs.push(serde_json::json!({"name": "predict_proba", "datatype": "FP64", "shape": [-1, classes.len()]}));
    }
    let body = serde_json::json!({
        "name": m.name, "versions": [m.version], "platform": "kiln",
        "inputs": inputs, "outputs": outputs,
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn v2_model(State(s): S, Path(name): Path<String>) -> Result<Response, ApiError> {
    let m = v2_find(&s, &name, None)?;
    Ok(v2_metadata(&m))
}

async fn v2_model_version(State(s): S, Path((name, v)): Path<(String, String)>) -> Result<Response, ApiError> {
    let m = v2_find(&s, &name, Some(&v))?;
    Ok(v2_metadata(&m))
}

async fn v2_model_ready(State(s): S, Path(name): Path<String>) -> Result<Response, ApiError> {
    v2_find(&s, &name, None)?;
    Ok(json_response(StatusCode::OK, b"{\"ready\":true}".to_vec()))
}

#[derive(serde::Deserialize)]
struct V2Request {
    #[serde(default)]
    id: Option<String>,
    inputs: Vec<input::V2Tensor>,
    #[serde(default)]
    outputs: Option<Vec<V2Output>>,
}

#[derive(serde::Deserialize)]
struct V2Output {
    name: String,
}

async fn v2_infer(State(s): S, Path(name): Path<String>, req: Request) -> Result<Response, ApiError> {
    v2_infer_inner(&s, &name, None, req).await
}

async fn v2_infer_version(
    State(s): S,
    Path((name, v)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    v2_infer_inner(&s, &name, Some(&v), req).await
}

async fn v2_infer_inner(s: &AppState, name: &str, version: Option<&str>, req: Request) -> Result<Response, ApiError> {
    let incoming = s.batcher.as_ref().map(batch::Batcher::incoming);
    let model = v2_find(s, name, version)?;
    let (parts, body) = req.into_parts();
    if matches!(content_type(&parts.headers), Ok(Content::Csv)) {
        return Err(
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "BAD_REQUEST", "the infer request must be JSON").v2()
        );
    }
    let body = read_body(&parts.headers, body, s.options.max_body_bytes).await.map_err(ApiError::v2)?;
    let request: V2Request = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not a valid inference request: {e}")).v2())?;
    let p = &model.bundle.pipeline;
    let outputs: Vec<String> = match request.outputs {
        Some(o) if !o.is_empty() => o.into_iter().map(|o| o.name).collect(),
        _ => vec!["predict".to_owned()],
    };
    for o in &outputs {
        match o.as_str() {
            "predict" => {}
            "predict_proba" if p.has_proba() => {}
            "predict_proba" => return Err(no_proba(&model).v2()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown output `{other}`; this model gives `predict`{}",
                    if p.has_proba() { " and `predict_proba`" } else { "" }
                ))
                .v2());
            }
        }
    }
    let (table, extra) = input::v2_inputs(&request.inputs, &model.input_names, s.options.max_batch_size)?;
    log_extra(&extra);
    let table = conform(&model, table, RowNaming::Index, true)?;
    let scored = score(s, &model, table, incoming).await.map_err(ApiError::v2)?;
    let n = scored.rows.len();
    let mut out = Vec::with_capacity(128 + n * 16);
    out.extend_from_slice(b"{\"model_name\":");
    infer::write_json(&mut out, &model.name);
    out.extend_from_slice(b",\"model_version\":");
    infer::write_json(&mut out, &model.version);
    if let Some(id) = &request.id {
        out.extend_from_slice(b",\"id\":");
        infer::write_json(&mut out, id);
    }
    out.extend_from_slice(b",\"parameters\":{},\"outputs\":[");
    for (k, o) in outputs.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        if o == "predict" {
            let dt = if matches!(p.task, Task::Classification { .. }) { "BYTES" } else { "FP64" };
            out.extend_from_slice(
                format!("{{\"name\":\"predict\",\"shape\":[{n}],\"datatype\":\"{dt}\",\"data\":[").as_bytes(),
            );
            infer::write_predictions(p, &scored.preds, scored.rows.clone(), OutputKind::Predict, &mut out)
                .map_err(|e| ApiError::invalid_input(e.to_string()).v2())?;
        } else if let Some(m) = scored.preds.proba() {
            let k = m.row(0).len();
            out.extend_from_slice(
                format!("{{\"name\":\"predict_proba\",\"shape\":[{n},{k}],\"datatype\":\"FP64\",\"data\":[").as_bytes(),
            );
            // Row-major and flat, as the protocol's tensors are.
            for (j, i) in scored.rows.clone().enumerate() {
                for (c, v) in m.row(i).iter().enumerate() {
                    if j > 0 || c > 0 {
                        out.push(b',');
                    }
                    infer::write_json(&mut out, v);
                }
            }
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(StatusCode::OK, out))
}
