//! `GET /openapi.json`: an OpenAPI 3.0 document generated from the model's signature, so a
//! client can be generated for this very model (its column names and types, its classes).

use kiln_model::{Bundle, InputKind, Task};
use serde_json::{Value, json};

/// The document for `bundle`, served under `/v2/models/{name}`.
#[must_use]
pub fn document(name: &str, bundle: &Bundle) -> Vec<u8> {
    let p = &bundle.pipeline;
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    for c in &p.inputs {
        let ty = match c.kind {
            InputKind::Numeric => json!({"type": "number", "nullable": c.optional}),
            InputKind::Text => json!({"type": "string", "nullable": true}),
            InputKind::Categorical => json!({"type": "string", "nullable": true}),
        };
        props.insert(c.name.clone(), ty);
        required.push(c.name.clone());
    }
    let cell = json!({"oneOf": [{"type": "number"}, {"type": "string"}], "nullable": true});
    let (label, proba) = match &p.task {
        Task::Classification { classes, .. } => (
            json!({"type": "string", "enum": classes}),
            json!({"type": "array", "items": {"type": "number"}, "minItems": classes.len(), "maxItems": classes.len()}),
        ),
        Task::Regression { .. } => (json!({"type": "number"}), Value::Null),
    };
    let mut predict_result = json!({"type": "object", "required": ["result"], "properties": {"result": label}});
    if let Task::Classification { classes, .. } = &p.task
        && p.has_proba()
    {
        let probs: serde_json::Map<String, Value> =
            classes.iter().map(|c| (c.clone(), json!({"type": "number"}))).collect();
        predict_result["properties"]["probabilities"] = json!({"type": "object", "properties": probs});
    }
    let predictions_item = if proba.is_null() { label.clone() } else { json!({"oneOf": [label, proba]}) };
    let error = json!({"$ref": "#/components/schemas/Error"});
    let errors = json!({
        "400": {"description": "Malformed input, or input that does not fit the signature", "content": {"application/json": {"schema": error}}},
        "413": {"description": "Body or batch over the limit", "content": {"application/json": {"schema": error}}},
        "415": {"description": "Unsupported content type", "content": {"application/json": {"schema": error}}},
    });
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": format!("kiln scoring server: {name}"),
            "version": bundle.mlmodel.model_uuid,
            "description": format!("{} ({}) served by kiln {}", p.estimator.sklearn_name(), bundle.flavor.task, env!("CARGO_PKG_VERSION")),
        },
        "paths": {
            "/invocations": {"post": {
                "summary": "Score rows (MLflow's scoring protocol)",
                "parameters": [],
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InvocationsRequest"}},
                    "text/csv": {"schema": {"type": "string", "description": format!("CSV with a header row holding {}", required.join(", "))}},
                }},
                "responses": merge(json!({"200": {"description": "One prediction per row", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["predictions"],
                    "properties": {"predictions": {"type": "array", "items": predictions_item}}}}}}}), &errors),
            }},
            "/predict": {"post": {
                "summary": "Score one record (or a list of records)",
                "parameters": [{"name": "proba", "in": "query", "required": false, "schema": {"type": "boolean"}, "description": "Add class probabilities"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Record"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}]}}}},
                "responses": merge(json!({"200": {"description": "The prediction", "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/PredictResult"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/PredictResult"}}]}}}}}), &errors),
            }},
            format!("/v2/models/{name}/infer"): {"post": {
                "summary": "Open Inference Protocol v2: one tensor per input column",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"},
                    "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
                        "name": {"type": "string", "enum": required}, "shape": {"type": "array", "items": {"type": "integer"}},
                        "datatype": {"type": "string"}, "data": {"type": "array", "items": {}}}}},
                    "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string", "enum": ["predict", "predict_proba"]}}}}}}}}},
                "responses": {"200": {"description": "Output tensors"}, "400": {"description": "Bad input"}, "404": {"description": "Unknown model"}},
            }},
            "/ping": {"get": {"summary": "Liveness (MLflow)", "responses": {"200": {"description": "Serving"}}}},
            "/health": {"get": {"summary": "Liveness (MLflow)", "responses": {"200": {"description": "Serving"}}}},
            "/version": {"get": {"summary": "kiln's version", "responses": {"200": {"description": "Version string"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format"}}}},
        },
        "components": {"schemas": {
            "Record": {"type": "object", "required": required, "properties": props},
            "PredictResult": predict_result,
            "Error": {"type": "object", "required": ["error_code", "message"], "properties": {
                "error_code": {"type": "string"}, "message": {"type": "string"}}},
            "InvocationsRequest": {"type": "object", "properties": {
                "dataframe_split": {"type": "object", "required": ["columns", "data"], "properties": {
                    "columns": {"type": "array", "items": {"type": "string", "enum": required}},
                    "data": {"type": "array", "items": {"type": "array", "items": cell}},
                    "index": {"type": "array", "items": {}}}},
                "dataframe_records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                "instances": {"type": "array", "items": {}},
                "inputs": {"oneOf": [{"type": "object", "additionalProperties": {"type": "array", "items": cell}}, {"type": "array", "items": {}}]},
                "params": {"type": "object", "properties": {"predict_method": {"type": "string", "enum": ["predict", "predict_proba"]}}},
            }, "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs"},
        }},
    });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

fn merge(mut a: Value, b: &Value) -> Value {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}
