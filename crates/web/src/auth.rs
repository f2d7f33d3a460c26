//! Who is calling: a bearer token (or the dashboard's cookie) becomes the service of the
//! token's domain with what the token may do there ([`Who`]), or the system admin.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cloudbill_service::{Billing, Caller, Principal, SystemAdmin};

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

/// A domain caller: the service of the token's domain and what the token may do in it. Every
/// handler acts through `billing`, so a token never reaches another domain's data.
#[derive(Clone)]
pub(crate) struct Who {
    pub(crate) billing: Billing,
    pub(crate) principal: Principal,
    /// Who the token is, for change logs (never its secret).
    pub(crate) actor: String,
}

impl std::ops::Deref for Who {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

fn missing() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "missing API token: send `Authorization: Bearer <token>` (create one with `cloudbill token create`)",
    )
}

/// The token of an API request, checked.
async fn caller(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    if parts.headers.get(header::AUTHORIZATION).is_none() && cookie_token(parts).is_some() {
        crate::guard::check_cookie_request(parts)?;
    }
    let token = presented_token(parts).ok_or_else(missing)?;
    Ok(state.tenants.authenticate(&token).await?)
}

/// An authenticated domain caller; 401 without a valid token, 403 for a system-admin token
/// (which reads no billing data).
pub(crate) struct Auth(pub(crate) Who);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match caller(parts, state).await? {
            Caller::Domain {
                billing,
                principal,
                actor,
            } => Ok(Auth(Who {
                billing,
                principal,
                actor,
            })),
            Caller::System(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a system-admin token manages domains (/api/v1/domains) and reads no billing data; use a token of the domain",
            )),
        }
    }
}

/// An authenticated system admin; 401 without a valid token, 403 for a domain token.
pub(crate) struct SystemAuth(pub(crate) SystemAdmin);

impl FromRequestParts<AppState> for SystemAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match caller(parts, state).await? {
            Caller::System(s) => Ok(SystemAuth(s)),
            Caller::Domain { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only a system-admin token manages domains (`cloudbill token create --role system-admin`)",
            )),
        }
    }
}

/// An authenticated dashboard viewer of a domain; a redirect to the login page otherwise.
pub(crate) struct PageAuth(pub(crate) Who);

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
        match state.tenants.authenticate(&token).await {
            Ok(Caller::Domain {
                billing,
                principal,
                actor,
            }) => Ok(PageAuth(Who {
                billing,
                principal,
                actor,
            })),
            Ok(Caller::System(_)) | Err(_) => {
                Err(Redirect::to(&format!("/login?error=1&next={next}")).into_response())
            }
        }
    }
}
