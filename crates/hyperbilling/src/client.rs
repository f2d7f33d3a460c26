//! The HTTP client: requests, paging, retries.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cloudbill_core::net::is_link_local;
use cloudbill_core::{CostRecord, Credentials, DateRange, ProviderKind};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::wire::{BillingRequest, Filter, LinkedAccounts, TimePeriod, GROUP_BY, RESULT};
use crate::{convert, MAX_WINDOW_DAYS, PROVIDER_NAME};

/// Retry and timeout settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with full jitter.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; longer ones fail the request.
    pub max_retry_after: Duration,
    /// Timeout of one HTTP request, body included.
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Pages fetched for one window before the provider is deemed to loop.
    pub max_pages: u32,
    /// The largest response body read (a page); a larger one fails the request.
    pub max_response_bytes: usize,
    /// Allow endpoints on link-local addresses (169.254.0.0/16, fe80::/10, the cloud metadata
    /// address fd00:ec2::254). Off by default: a registered endpoint must not reach a cloud
    /// instance's metadata service (SSRF). `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS=1` turns it on
    /// in [`ClientConfig::from_env`].
    pub allow_link_local: bool,
}

impl ClientConfig {
    /// The defaults, with `allow_link_local` from `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS`
    /// (`1` or `true`).
    pub fn from_env() -> Self {
        let allow = std::env::var("CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS")
            .is_ok_and(|v| matches!(v.trim(), "1" | "true"));
        Self {
            allow_link_local: allow,
            ..Self::default()
        }
    }
}

/// The most redirects followed for one request (same origin only).
const MAX_REDIRECTS: usize = 5;

/// Resolves host names like the system does, leaving out link-local addresses (a name that
/// resolves only to them fails), so a registered endpoint cannot reach a metadata service.
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
                return Err(format!(
                    "{host} resolves only to link-local addresses, which endpoints may not use \
                     (set CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS=1 to allow them)"
                )
                .into());
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

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_pages: 100_000,
            max_response_bytes: 64 << 20,
            allow_link_local: false,
        }
    }
}

/// The Hyperbilling-for-AWS provider.
#[derive(Debug, Clone)]
pub struct Hyperbilling {
    http: reqwest::Client,
    config: ClientConfig,
}

/// How one attempt ended.
enum Attempt {
    Done(Option<Bytes>),
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    /// The body is larger than allowed (not retried).
    TooLarge(usize),
}

impl Hyperbilling {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Self, ProviderError> {
        // Credentials ride in headers, so a redirect to another origin is refused outright
        // (never followed without them either: the provider has no business sending us
        // elsewhere), and no Referer is sent.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
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
        });
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(redirects)
            .referer(false)
            .user_agent(concat!("cloudbill/", env!("CARGO_PKG_VERSION")));
        if !config.allow_link_local {
            builder = builder.dns_resolver(std::sync::Arc::new(GuardedResolver));
        }
        let http = builder
            .build()
            .map_err(|e| ProviderError::InvalidRequest(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// The linked AWS accounts the credentials may read.
    pub async fn linked_accounts(
        &self,
        credentials: &Credentials,
    ) -> Result<Vec<String>, ProviderError> {
        let url = format!("{}/v1/search/linkedaccount", credentials.endpoint());
        let body = serde_json::json!({});
        let who = if credentials.account().is_empty() {
            credentials.email()
        } else {
            credentials.account()
        };
        let bytes = self
            .send(Method::GET, &url, credentials, &body, who)
            .await?;
        let Some(bytes) = bytes else {
            return Ok(vec![]);
        };
        let parsed: LinkedAccounts =
            serde_json::from_slice(&bytes).map_err(|e| ProviderError::InvalidResponse {
                provider: PROVIDER_NAME,
                detail: format!("linked accounts: {e}"),
            })?;
        parsed
            .results
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                other => Err(ProviderError::InvalidResponse {
                    provider: PROVIDER_NAME,
                    detail: format!("linked account {other} is not an account id"),
                }),
            })
            .collect()
    }

    /// Every record of one linked account for one window, following `NextDataToken`.
    #[tracing::instrument(level = "debug", skip(self, credentials, scope), fields(%window))]
    async fn fetch_account(
        &self,
        credentials: &Credentials,
        scope: FetchScope,
        account: &str,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        let url = format!("{}/v1/search/billing", credentials.endpoint());
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for page in 0.. {
            if page >= self.config.max_pages {
                return Err(ProviderError::InvalidResponse {
                    provider: PROVIDER_NAME,
                    detail: format!("more than {} pages for one window", self.config.max_pages),
                });
            }
            let request = BillingRequest {
                filter: Filter {
                    linked_account: [account],
                    granularity: "DAILY",
                    time_period: TimePeriod {
                        start: window.start().format("%Y-%m-%d").to_string(),
                        // Hyperbilling's End is inclusive; our ranges are end-exclusive.
                        end: window.last_day().format("%Y-%m-%d").to_string(),
                    },
                    next_data_token: token.as_deref(),
                },
                group_by: GROUP_BY,
                result: RESULT,
            };
            let Some(body) = self
                .send(Method::POST, &url, credentials, &request, account)
                .await?
            else {
                break; // 204: no (more) data for this window.
            };
            token = convert::decode_page(&body, scope, account, window, &mut out)?;
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Sends one request with retries; `Ok(None)` for 204 No Content.
    async fn send<T: serde::Serialize + ?Sized + Sync>(
        &self,
        method: Method,
        url: &str,
        credentials: &Credentials,
        body: &T,
        account: &str,
    ) -> Result<Option<Bytes>, ProviderError> {
        self.check_endpoint(url)?;
        let headers = auth_headers(credentials)?;
        let attempts = self.config.max_attempts.max(1);
        let mut last_error = String::new();
        let mut last_retry_after = None;
        let mut rate_limited = false;
        for attempt in 1..=attempts {
            let outcome = self
                .attempt(method.clone(), url, headers.clone(), body, account)
                .await?;
            match outcome {
                Attempt::Done(bytes) => return Ok(bytes),
                Attempt::TooLarge(max) => {
                    return Err(ProviderError::InvalidResponse {
                        provider: PROVIDER_NAME,
                        detail: format!("a response larger than {max} bytes"),
                    })
                }
                Attempt::Retry { reason, wait } => {
                    rate_limited = wait.is_some();
                    last_retry_after = wait;
                    last_error = reason;
                }
            }
            if attempt == attempts {
                break;
            }
            let delay = match last_retry_after {
                Some(wait) if wait > self.config.max_retry_after => {
                    return Err(ProviderError::RateLimited {
                        provider: PROVIDER_NAME,
                        attempts: attempt,
                        retry_after: Some(wait),
                    });
                }
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            tracing::warn!(
                attempt,
                max_attempts = attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason = %last_error,
                "Hyperbilling request failed, retrying"
            );
            tokio::time::sleep(delay).await;
        }
        if rate_limited {
            Err(ProviderError::RateLimited {
                provider: PROVIDER_NAME,
                attempts,
                retry_after: last_retry_after,
            })
        } else {
            Err(ProviderError::Unavailable {
                provider: PROVIDER_NAME,
                attempts,
                last_error,
            })
        }
    }

    async fn attempt<T: serde::Serialize + ?Sized + Sync>(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: &T,
        account: &str,
    ) -> Result<Attempt, ProviderError> {
        let response = match self
            .http
            .request(method, url)
            .headers(headers)
            .json(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Err(ProviderError::InvalidRequest(format!(
                    "cannot build request: {e}"
                )))
            }
            Err(e) if e.is_redirect() => {
                return Err(ProviderError::InvalidResponse {
                    provider: PROVIDER_NAME,
                    detail: describe_transport(&e),
                })
            }
            Err(e) => {
                return Ok(Attempt::Retry {
                    reason: describe_transport(&e),
                    wait: None,
                })
            }
        };
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(Attempt::Done(None));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ProviderError::Unauthorized {
                provider: PROVIDER_NAME,
                account: if account.is_empty() {
                    "(all linked accounts)".into()
                } else {
                    account.to_owned()
                },
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(response.headers()).unwrap_or_else(|| self.backoff(1));
            return Ok(Attempt::Retry {
                reason: "HTTP 429 Too Many Requests".into(),
                wait: Some(wait),
            });
        }
        if status.is_server_error() {
            return Ok(Attempt::Retry {
                reason: format!("HTTP {status}"),
                wait: None,
            });
        }
        let bytes = match self.read_body(response).await {
            Ok(b) => b,
            Err(attempt) => return Ok(attempt),
        };
        if status.is_success() {
            return Ok(Attempt::Done(Some(bytes)));
        }
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if text.len() > 2000 {
            let cut = (0..=2000)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        Err(ProviderError::Rejected {
            provider: PROVIDER_NAME,
            status: status.as_u16(),
            body: text,
        })
    }

    /// Refuses an endpoint whose host is a link-local IP literal (names are checked when
    /// they resolve, by [`GuardedResolver`]).
    fn check_endpoint(&self, url: &str) -> Result<(), ProviderError> {
        if self.config.allow_link_local {
            return Ok(());
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ProviderError::InvalidRequest(format!("endpoint: {e}")))?;
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if ip.is_some_and(is_link_local) {
            return Err(ProviderError::InvalidRequest(format!(
                "endpoint {} is a link-local address (a cloud metadata service?); endpoints \
                 may not use one unless CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS=1",
                origin(&parsed)
            )));
        }
        Ok(())
    }

    /// Reads a body of at most `max_response_bytes`.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, Attempt> {
        let max = self.config.max_response_bytes;
        let too_big = || Attempt::TooLarge(max);
        if response
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max))
        {
            return Err(too_big());
        }
        let mut body = bytes::BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max {
                        return Err(too_big());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => {
                    return Err(Attempt::Retry {
                        reason: format!("reading the response: {}", describe_transport(&e)),
                        wait: None,
                    })
                }
            }
        }
    }

    /// Full-jitter exponential backoff before attempt `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.initial_backoff.as_millis();
        let exp = base.saturating_mul(1u128 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.config.max_backoff.as_millis());
        let capped = u64::try_from(capped).unwrap_or(u64::MAX);
        // Full jitter: uniform in [capped/2, capped] so retries from many accounts spread out.
        Duration::from_millis(capped / 2 + fastrand::u64(0..=capped / 2))
    }
}

fn auth_headers(credentials: &Credentials) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    let id = HeaderValue::from_str(credentials.email()).map_err(|_| {
        ProviderError::InvalidRequest("the client email is not a valid header".into())
    })?;
    let mut secret = HeaderValue::from_str(credentials.key().expose()).map_err(|_| {
        ProviderError::InvalidRequest("the client key is not a valid header".into())
    })?;
    secret.set_sensitive(true);
    headers.insert("X-Client-Id", id);
    headers.insert("X-Client-Secret", secret);
    Ok(headers)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_redirect() {
        "redirect refused"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped mid-response"
    } else {
        "transport error"
    };
    // The source chain names the OS error (reset, refused); the request URL holds no secret.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    format!("{kind} ({detail})")
}

#[async_trait]
impl BillingProvider for Hyperbilling {
    fn kind(&self) -> ProviderKind {
        ProviderKind::HyperbillingAws
    }

    fn max_window_days(&self) -> u32 {
        MAX_WINDOW_DAYS
    }

    #[tracing::instrument(skip_all, fields(account = %credentials.account()))]
    async fn verify(&self, credentials: &Credentials) -> Result<Vec<String>, ProviderError> {
        let linked = self.linked_accounts(credentials).await?;
        let account = credentials.account();
        if !account.is_empty() && !linked.iter().any(|a| a == account) {
            return Err(ProviderError::Unauthorized {
                provider: PROVIDER_NAME,
                account: account.to_owned(),
            });
        }
        Ok(linked)
    }

    #[tracing::instrument(skip_all, fields(account = %credentials.account(), %window))]
    async fn fetch(
        &self,
        credentials: &Credentials,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        if window.days() > i64::from(MAX_WINDOW_DAYS) {
            return Err(ProviderError::InvalidRequest(format!(
                "window {window} is longer than {MAX_WINDOW_DAYS} days"
            )));
        }
        if credentials.account().is_empty() {
            let mut all = Vec::new();
            for account in self.linked_accounts(credentials).await? {
                all.extend(
                    self.fetch_account(credentials, scope, &account, window)
                        .await?,
                );
            }
            Ok(all)
        } else {
            self.fetch_account(credentials, scope, credentials.account(), window)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_recognised() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_link_local(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "::1",
            "fd00:ec2::253",
            "2001:db8::1",
        ] {
            assert!(!is_link_local(good.parse().unwrap()), "{good}");
        }
    }
}
