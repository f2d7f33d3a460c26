//! The HTTP client: requests, paging, retries.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cloudbill_core::{CostRecord, DateRange, ProviderSpec, Settings, ValidationError};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::settings::{prepared, Credentials, SPEC};
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
    /// The endpoint of accounts registered without one (`CLOUDBILL_HYPERBILLING_ENDPOINT`).
    pub default_endpoint: Option<String>,
}

impl ClientConfig {
    /// The defaults, with `allow_link_local` from `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS`
    /// (`1` or `true`).
    pub fn from_env() -> Self {
        Self {
            allow_link_local: cloudbill_outbound::allow_link_local_from_env(),
            ..Self::default()
        }
    }

    /// The outbound policy of this provider's calls: same-origin redirects (credentials ride
    /// in headers), the timeouts, the link-local rule.
    fn policy(&self) -> cloudbill_outbound::Policy {
        cloudbill_outbound::Policy {
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            allow_link_local: self.allow_link_local,
            same_origin_redirects: true,
        }
    }
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
            default_endpoint: None,
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
        // elsewhere), and no Referer is sent: the shared outbound policy.
        let http = config
            .policy()
            .client()
            .map_err(ProviderError::InvalidRequest)?;
        Ok(Self { http, config })
    }

    /// The linked AWS accounts the credentials may read.
    async fn linked_accounts(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Vec<String>, ProviderError> {
        let url = format!("{}/v1/search/linkedaccount", credentials.endpoint);
        let body = serde_json::json!({});
        let who = credentials.who();
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
        credentials: &Credentials<'_>,
        scope: FetchScope,
        account: &str,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        let url = format!("{}/v1/search/billing", credentials.endpoint);
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
        credentials: &Credentials<'_>,
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
    /// they resolve: the shared outbound policy).
    fn check_endpoint(&self, url: &str) -> Result<(), ProviderError> {
        self.config
            .policy()
            .check_url(url)
            .map_err(|e| ProviderError::InvalidRequest(format!("endpoint {url}: {e}")))
    }

    /// Reads a body of at most `max_response_bytes`.
    async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, Attempt> {
        match cloudbill_outbound::read_limited(response, self.config.max_response_bytes).await {
            Ok(body) => Ok(body),
            Err(cloudbill_outbound::BodyError::TooLarge(max)) => Err(Attempt::TooLarge(max)),
            Err(cloudbill_outbound::BodyError::Transport(e)) => Err(Attempt::Retry {
                reason: format!("reading the response: {}", describe_transport(&e)),
                wait: None,
            }),
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

fn auth_headers(credentials: &Credentials<'_>) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    let id = HeaderValue::from_str(credentials.email).map_err(|_| {
        ProviderError::InvalidRequest("the client email is not a valid header".into())
    })?;
    let mut secret = HeaderValue::from_str(credentials.key.expose()).map_err(|_| {
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
    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn max_window_days(&self) -> u32 {
        MAX_WINDOW_DAYS
    }

    fn prepare(&self, settings: Settings) -> Result<Settings, ValidationError> {
        prepared(settings, self.config.default_endpoint.as_deref())
    }

    #[tracing::instrument(skip_all, fields(account = settings.value("account").unwrap_or("")))]
    async fn verify(&self, settings: &Settings) -> Result<Vec<String>, ProviderError> {
        let credentials = Credentials::of(settings)?;
        let linked = self.linked_accounts(&credentials).await?;
        let account = credentials.account;
        if !account.is_empty() && !linked.iter().any(|a| a == account) {
            return Err(ProviderError::Unauthorized {
                provider: PROVIDER_NAME,
                account: account.to_owned(),
            });
        }
        Ok(linked)
    }

    #[tracing::instrument(skip_all, fields(account = settings.value("account").unwrap_or(""), %window))]
    async fn fetch(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        if window.days() > i64::from(MAX_WINDOW_DAYS) {
            return Err(ProviderError::InvalidRequest(format!(
                "window {window} is longer than {MAX_WINDOW_DAYS} days"
            )));
        }
        let credentials = Credentials::of(settings)?;
        if credentials.account.is_empty() {
            let mut all = Vec::new();
            for account in self.linked_accounts(&credentials).await? {
                all.extend(
                    self.fetch_account(&credentials, scope, &account, window)
                        .await?,
                );
            }
            Ok(all)
        } else {
            self.fetch_account(&credentials, scope, credentials.account, window)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use cloudbill_core::net::is_link_local;

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
