//! Errors as HTTP answers: MLflow's `{"error_code", "message"}` JSON on the MLflow routes and on
//! `/predict`, the Open Inference Protocol's `{"error": …}` on `/v2`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answer. `code` is MLflow's `error_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Render as the Open Inference Protocol's `{"error": message}`.
    pub v2: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), v2: false }
    }

    /// A malformed request: bad JSON, a wrong shape, a missing key.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// Well-formed input that does not fit the model's signature (MLflow's schema enforcement).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "RESOURCE_LIMIT_EXCEEDED", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ENDPOINT_NOT_FOUND", message)
    }

    #[must_use]
    pub fn v2(mut self) -> Self {
        self.v2 = true;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.v2 {
            serde_json::json!({ "error": self.message })
        } else {
            serde_json::json!({ "error_code": self.code, "message": self.message })
        };
        json_response(self.status, body.to_string().into_bytes())
    }
}

/// A JSON answer from bytes already rendered.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
