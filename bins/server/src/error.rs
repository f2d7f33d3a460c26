//! The one place HTTP status codes are decided: `{"error": {"code", "message", "details"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudbill_provider::ProviderError;
use cloudbill_service::ServiceError;
use serde_json::json;

/// An API error: status, stable snake_case code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
}

impl ApiError {
    /// A client error with a specific message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let message = err.to_string();
        // Exhaustive on purpose: a new variant does not compile until it has a status.
        let (status, code) = match &err {
            ServiceError::BillingDisabled { .. } => (StatusCode::CONFLICT, "billing_disabled"),
            ServiceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ServiceError::Invalid(_) | ServiceError::Validation(_) | ServiceError::Import(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            // The data is valid and so is the query; its answer holds a total no exact
            // decimal can write. Its own code, so a client does not blame its query.
            ServiceError::Query(cloudbill_service::QueryError::TotalOutOfRange { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "total_out_of_range")
            }
            ServiceError::Query(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"),
            ServiceError::Provider(p) => match p {
                ProviderError::Unauthorized { .. } => {
                    (StatusCode::BAD_GATEWAY, "provider_unauthorized")
                }
                ProviderError::RateLimited { .. }
                | ProviderError::Unavailable { .. }
                | ProviderError::Rejected { .. }
                | ProviderError::InvalidResponse { .. } => {
                    (StatusCode::BAD_GATEWAY, "provider_failed")
                }
                ProviderError::InvalidRequest(_) | ProviderError::NotRegistered(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
                }
            },
            ServiceError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        // Provider failures (502) keep their message: it names the account and what to fix.
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %message, "request failed");
            return Self::new(
                status,
                code,
                "internal error; the server log has the details",
            );
        }
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        (self.status, axum::Json(body)).into_response()
    }
}
