//! The one policy every outbound HTTP call of cloudbill follows — provider APIs, notification
//! receivers, cloud connectors:
//!
//! - **no link-local or metadata addresses** (169.254.0.0/16, fe80::/10, fd00:ec2::254), as IP
//!   literals or as names that resolve only to them, unless `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS=1`
//!   ([`Policy::from_env`]): a registered URL must not reach a cloud instance's credentials;
//! - **redirects**: none, or at most [`MAX_REDIRECTS`] to the same origin (scheme, host, port) —
//!   a request that carries credentials is never sent elsewhere — and no `Referer`;
//! - **timeouts** on connecting and on the whole request;
//! - **bounded bodies**: [`read_limited`] fails past a size, [`read_prefix`] reads a small
//!   prefix and drops the rest.
//!
//! **Architecture invariant:** transport policy only; knows no provider, no wire format.

use std::time::Duration;

use bytes::Bytes;
use cloudbill_core::net::is_link_local;

/// The most redirects followed for one request (same origin only).
pub const MAX_REDIRECTS: usize = 5;

/// The message of a refused link-local address.
pub const LINK_LOCAL: &str = "link-local addresses (a cloud metadata service) are refused \
     (set CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS=1 to allow them)";

/// How a client calls out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Establishing a connection.
    pub connect_timeout: Duration,
    /// One request, its body included.
    pub request_timeout: Duration,
    /// Let URLs reach link-local addresses (off by default).
    pub allow_link_local: bool,
    /// Follow redirects to the same origin (up to [`MAX_REDIRECTS`]); otherwise none is
    /// followed.
    pub same_origin_redirects: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            allow_link_local: false,
            same_origin_redirects: false,
        }
    }
}

impl Policy {
    /// The defaults, with `allow_link_local` from `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS`
    /// (`1` or `true`).
    pub fn from_env() -> Self {
        Self {
            allow_link_local: allow_link_local_from_env(),
            ..Self::default()
        }
    }

    /// A client that follows this policy.
    ///
    /// # Errors
    /// The TLS backend could not be set up (the message names it).
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let redirects = if self.same_origin_redirects {
            reqwest::redirect::Policy::custom(|attempt| {
                let to = origin(attempt.url());
                let from = attempt.previous().first().map(origin).unwrap_or_default();
                if to != from {
                    attempt.error(format!(
                        "redirected to another origin ({to}); credentials are never sent there"
                    ))
                } else if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
                } else {
                    attempt.follow()
                }
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut builder = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(redirects)
            .referer(false)
            .user_agent(concat!("cloudbill/", env!("CARGO_PKG_VERSION")))
            // The bundled web PKI roots only (object_store turns reqwest's native roots on for
            // the whole build; loading the system's certificates costs every process ~5 ms at
            // start, and cloudbill never trusted them).
            .tls_built_in_native_certs(false);
        if !self.allow_link_local {
            builder = builder.dns_resolver(std::sync::Arc::new(GuardedResolver));
        }
        builder
            .build()
            .map_err(|e| format!("HTTP client: {}", e.without_url()))
    }

    /// Refuses `url` when its host is a link-local IP literal (names are checked when they
    /// are resolved).
    ///
    /// # Errors
    /// [`LINK_LOCAL`].
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        if self.allow_link_local {
            return Ok(());
        }
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
        if host
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
            .is_some_and(is_link_local)
        {
            return Err(LINK_LOCAL.to_owned());
        }
        Ok(())
    }
}

/// Whether `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS` is `1` or `true`.
pub fn allow_link_local_from_env() -> bool {
    std::env::var("CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS")
        .is_ok_and(|v| matches!(v.trim(), "1" | "true"))
}

/// Resolves names as the system does, leaving out link-local addresses: a name that resolves
/// only to them fails.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|a| !is_link_local(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to {LINK_LOCAL}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// scheme://host:port of a URL.
fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Why a body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// It is larger than the bound (in bytes).
    TooLarge(usize),
    /// The connection failed mid-body.
    Transport(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "the body is larger than {max} bytes"),
            // The URL is left out: it may carry a token.
            BodyError::Transport(e) => write!(
                f,
                "the connection failed mid-body{}",
                if e.is_timeout() { " (timeout)" } else { "" }
            ),
        }
    }
}

/// The whole body, or [`BodyError::TooLarge`] as soon as it passes `max` bytes (what was read
/// is dropped: memory stays bounded whatever the server sends).
///
/// # Errors
/// Too large, or the connection failed.
pub async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max))
    {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(BodyError::TooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(e) => return Err(BodyError::Transport(e.without_url())),
        }
    }
}

/// At most the first `max` bytes of the body; the rest is never read (the connection is
/// dropped). For the text of an error answer.
pub async fn read_prefix(mut response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut prefix: Vec<u8> = Vec::new();
    while prefix.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - prefix.len();
                prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_literals_are_refused_unless_allowed() {
        let p = Policy::default();
        for bad in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
        ] {
            assert_eq!(p.check_url(bad), Err(LINK_LOCAL.to_owned()), "{bad}");
        }
        assert!(p.check_url("http://127.0.0.1:9/").is_ok());
        let allowed = Policy {
            allow_link_local: true,
            ..p
        };
        assert!(allowed.check_url("http://169.254.169.254/").is_ok());
    }
}
