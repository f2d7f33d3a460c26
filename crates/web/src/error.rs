//! The one place HTTP status codes are decided: `{"error": {"code", "message", "details"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudbill_service::ProviderError;
use cloudbill_service::{Hint, ServiceError};
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

/// A service remedy as the API request that carries it out.
fn request_for(hint: &Hint) -> (String, Option<String>) {
    let (words, request) = match hint {
        Hint::EnableBilling => (
            hint.describe(),
            Some("POST /api/v1/billing/enable".to_owned()),
        ),
        Hint::EnableProvider(p) => (
            hint.describe(),
            Some(format!("POST /api/v1/providers/{p}/enable")),
        ),
        Hint::EnableAccount(a) => (
            hint.describe(),
            Some(format!("POST /api/v1/service-accounts/{a}/enable")),
        ),
        Hint::NameProject => ("give \"project\"".to_owned(), None),
        Hint::GiveSettings(kind) => (
            format!("give \"settings\" and \"secrets\" (GET /api/v1/providers/{kind} lists them)"),
            Some(format!("GET /api/v1/providers/{kind}")),
        ),
        Hint::DropProject => ("leave \"project\" out".to_owned(), None),
        other => (other.describe(), None),
    };
    (words, request)
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let (inner, hint) = err.parts();
        let mut details = serde_json::Value::Null;
        let message = match &hint {
            Some(hint) => {
                let (words, request) = request_for(hint);
                details = json!({"hint": hint.code(), "request": request});
                format!("{inner}; {words}")
            }
            None => inner.to_string(),
        };
        // Exhaustive on purpose: a new variant does not compile until it has a status.
        let (status, code) = match inner {
            ServiceError::BillingDisabled { .. } => (StatusCode::CONFLICT, "billing_disabled"),
            ServiceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            // Arithmetic on amounts left the decimal range: this request only (the data and
            // the request are valid; the answer cannot be written exactly).
            ServiceError::Validation(cloudbill_core::ValidationError::Overflow(_))
            | ServiceError::Query(cloudbill_service::QueryError::AmountOutOfRange { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "amount_out_of_range")
            }
            ServiceError::Invalid(_) | ServiceError::Validation(_) | ServiceError::Import(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            // The data is valid and so is the query; its answer holds a total no exact
            // decimal can write. Its own code, so a client does not blame its query.
            ServiceError::Query(cloudbill_service::QueryError::TotalOutOfRange { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "total_out_of_range")
            }
            ServiceError::Query(cloudbill_service::QueryError::AnswerTooLarge { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "answer_too_large")
            }
            // A filter naming a project, group or account that does not exist (or that a
            // member does not see: the same answer) names nothing, as a path would.
            ServiceError::Query(cloudbill_service::QueryError::UnknownFilterValue { .. }) => {
                (StatusCode::NOT_FOUND, "not_found")
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
            ServiceError::DeadlinePassed(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ServiceError::Receiver(_) => (StatusCode::BAD_GATEWAY, "receiver_failed"),
            // `parts` took any hint off: a `Hinted` left here would be one hinted twice.
            ServiceError::Store(_)
            | ServiceError::Write(_)
            | ServiceError::Internal(_)
            | ServiceError::Hinted { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
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
        let mut error = Self::new(status, code, message);
        error.details = details;
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        (self.status, axum::Json(body)).into_response()
    }
}
