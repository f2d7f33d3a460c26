//! Who is calling: a bearer token (or the dashboard's cookie) becomes a `Principal`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cloudbill_service::Principal;

use crate::{ApiError, AppState};

/// The cookie the dashboard login sets.
pub(crate) const COOKIE: &str = "cloudbill_token";

/// The token presented: the bearer header's, else the dashboard cookie's.
fn presented_token(parts: &Parts) -> Option<String> {
    bearer_token(parts).or_else(|| cookie_token(parts))
}

fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|t| t.trim().to_owned())
}

fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
}

/// An authenticated API caller; 401 otherwise.
pub(crate) struct Auth(pub(crate) Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.get(header::AUTHORIZATION).is_none() && cookie_token(parts).is_some() {
            crate::guard::check_cookie_request(parts)?;
        }
        let token = presented_token(parts).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing API token: send `Authorization: Bearer <token>` (create one with `cloudbill token create`)",
            )
        })?;
        Ok(Auth(state.billing.authenticate(&token).await?))
    }
}

/// An authenticated dashboard viewer; a redirect to the login page otherwise.
pub(crate) struct PageAuth(pub(crate) Principal);

impl FromRequestParts<AppState> for PageAuth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let next = crate::dashboard::percent_encode(next);
        let Some(token) = presented_token(parts) else {
            return Err(Redirect::to(&format!("/login?next={next}")).into_response());
        };
        match state.billing.authenticate(&token).await {
            Ok(p) => Ok(PageAuth(p)),
            Err(_) => Err(Redirect::to(&format!("/login?error=1&next={next}")).into_response()),
        }
    }
}
