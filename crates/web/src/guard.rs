//! What every request passes: size limits on the URI and headers, a deadline, security
//! headers on every response, and one JSON error shape for every error the framework (not a
//! handler) produces — a bad query string, an unknown route, a body too large.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;

use crate::{ApiError, AppState};

/// The longest request URI accepted (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) accepted in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// How long one request may take by default (`--request-timeout-secs`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The dashboard runs no script and is never framed: the CSP says so.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware: limits, deadline, headers, error shape.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let uri_bytes = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    let mut response = if uri_bytes > MAX_URI_BYTES {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response()
    } else if request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum::<usize>()
        > MAX_HEADER_BYTES
    {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        )
        .into_response()
    } else {
        // A panic in a handler is a program error: answered as a 500 like any internal
        // error, so the client gets a response and the connection stays usable.
        let run = std::panic::AssertUnwindSafe(next.run(request)).catch_unwind();
        match tokio::time::timeout(state.request_timeout, run).await {
            Ok(Ok(response)) => as_json_error(response).await,
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                tracing::error!(panic = %what, "a request handler panicked");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details",
                )
                .into_response()
            }
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s and was stopped",
                    state.request_timeout.as_secs()
                ),
            )
            .into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// An error response the framework made (plain text or empty) as `{"error": {…}}`; handler
/// errors (already JSON) and dashboard pages (HTML) pass unchanged.
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(status.is_client_error() || status.is_server_error())
        || kind.starts_with("application/json")
        || kind.starts_with("text/html")
    {
        return response;
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "malformed_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let (_, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let mut message: String = text.trim().chars().take(300).collect();
    if message.is_empty() {
        message = match status {
            StatusCode::NOT_FOUND => "no such route".to_owned(),
            s => s.canonical_reason().unwrap_or("error").to_lowercase(),
        };
    }
    if code == "internal" {
        tracing::error!(status = status.as_u16(), error = %message, "request failed");
        "internal error; the server log has the details".clone_into(&mut message);
    }
    ApiError::new(status, code, message).into_response()
}

/// Rejects a state-changing API request authenticated by the dashboard's cookie unless it
/// comes from this site (`Origin`, else `Referer`, naming the request's host) with a JSON
/// body: a form on another site can send the cookie, but neither of those.
pub(crate) fn check_cookie_request(parts: &axum::http::request::Parts) -> Result<(), ApiError> {
    use axum::http::Method;
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let forbidden = |why: &str| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            format!("{why}; a request authenticated by the dashboard cookie must come from this site with a JSON body (or use `Authorization: Bearer`)"),
        )
    };
    match from_this_site(&parts.headers) {
        Some(true) => {}
        Some(false) => return Err(forbidden("the request comes from another site")),
        None => return Err(forbidden("no Host, or no Origin or Referer header")),
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(forbidden("the request has no JSON content type"));
    }
    Ok(())
}

/// Whether a request names this site as its source: its `Origin` (else `Referer`) is on the
/// request's `Host` (`Some(false)`: another site, or `Origin: null`); `None` when it names no
/// source or has no `Host`.
pub(crate) fn from_this_site(headers: &axum::http::HeaderMap) -> Option<bool> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok())?;
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())?;
    let source_host = source
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    Some(source_host == Some(host))
}
