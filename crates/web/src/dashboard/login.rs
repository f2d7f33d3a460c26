//! Login by token (a form posted from this site), logout.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Deserialize, Default)]
pub(super) struct LoginQuery {
    error: Option<String>,
    next: Option<String>,
}

/// Percent-encodes everything but unreserved characters and `/`, for a `next=` parameter.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Only a path on this server may be a login target (no scheme, no `//host`, no backslash).
pub(super) fn local_target(next: Option<&str>) -> Option<&str> {
    // A path on this site: one leading `/` (not `//`, a scheme-relative URL), no backslash
    // (browsers read `/\\` as `//`), and only visible ASCII: browsers strip tabs and line
    // breaks from a Location (`/\t/evil.com` becomes `//evil.com`), and control characters
    // are not a valid header value.
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.contains('\\')
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
}

pub(super) async fn login_form(Query(q): Query<LoginQuery>) -> Html<String> {
    let error = if q.error.is_some() {
        "<p class=\"failed\">That token is not valid.</p>"
    } else {
        ""
    };
    let next = local_target(q.next.as_deref()).map_or_else(String::new, |n| {
        format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", esc(n))
    });
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log in · cloudbill</title><style>{STYLE}</style></head>\
<body><main><h1>cloudbill</h1>{error}<form method=\"post\" action=\"/login\">{next}<label>API token <input type=\"password\" name=\"token\" autocomplete=\"off\" size=\"70\"></label> \
<button>Log in</button></form><p>Create a token with <code>cloudbill token create --role admin</code>.</p></main></body></html>"
    ))
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Login CSRF: another site's form would log the browser in as the attacker's token.
    // Browsers name the source of a form post; a post naming another site is refused (a
    // client that names none, such as curl, is not a browser).
    if crate::guard::from_this_site(&headers) == Some(false) {
        return crate::ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "cross_site_request",
            "a login must come from this site's login form",
        )
        .into_response();
    }
    match state.tenants.authenticate(&form.token).await {
        Ok(cloudbill_service::Caller::Domain { principal: p, .. }) => {
            let target = match (&p, local_target(form.next.as_deref())) {
                (_, Some(next)) => next.to_owned(),
                (p, None) => match p {
                    Principal::Admin => "/".to_owned(),
                    Principal::ProjectMember { projects } => projects
                        .first()
                        .map_or_else(|| "/".to_owned(), |id| format!("/projects/{id}")),
                },
            };
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict",
                form.token.trim()
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response()
        }
        // A system-admin token has no dashboard: it reads no billing data.
        Ok(cloudbill_service::Caller::System(_)) | Err(_) => {
            let next = local_target(form.next.as_deref())
                .map_or_else(String::new, |n| format!("&next={}", percent_encode(n)));
            Redirect::to(&format!("/login?error=1{next}")).into_response()
        }
    }
}

pub(super) async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
