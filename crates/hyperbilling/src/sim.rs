//! An in-process simulator of the Hyperbilling REST API, on a random loopback port.
//!
//! Faithful to the wire format (auth headers, GET-with-body, inclusive End, 31-day windows,
//! `NextDataToken` paging, 204 for no data) and adversarial: small pages, null and empty
//! REGION, credits, 10-digit decimals, injectable faults, restated days. It knows the exact
//! totals of what it serves, so tests compare exactly. The demo and the tests use it.
//!
//! One file on purpose: the server, the data it generates and the faults it injects share one
//! state and are read together when a provider test fails.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use cloudbill_core::{DateRange, Decimal};
use tokio::sync::oneshot;

use crate::MAX_WINDOW_DAYS;

/// One API client the simulator knows.
#[derive(Debug, Clone)]
pub struct SimClient {
    /// Client id (`X-Client-Id`), an email address.
    pub email: String,
    /// Client secret (`X-Client-Secret`).
    pub key: String,
    /// The linked AWS accounts this client may read.
    pub accounts: Vec<String>,
}

/// What the simulator serves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Known clients.
    pub clients: Vec<SimClient>,
    /// Rows per page.
    pub page_size: usize,
    /// Seed of the generated data.
    pub seed: u64,
    /// Days with data: `[data.start, data.end)`. Requests outside get 204.
    pub data: DateRange,
}

impl SimConfig {
    /// The demo set-up: two clients, three linked accounts, 400 days of data up to `today`
    /// (inclusive), pages of 50 rows.
    pub fn demo(today: NaiveDate) -> Self {
        let end = today.succ_opt().unwrap_or(today);
        let start = today - chrono::Duration::days(400);
        Self {
            clients: vec![
                SimClient {
                    email: "ops@acme.example".into(),
                    key: "demo-key-acme".into(),
                    accounts: vec!["111111111111".into(), "222222222222".into()],
                },
                SimClient {
                    email: "finops@globex.example".into(),
                    key: "demo-key-globex".into(),
                    accounts: vec!["333333333333".into()],
                },
            ],
            page_size: 50,
            seed: 2025,
            data: DateRange::new(start, end).unwrap_or_else(|_| DateRange::day(today)),
        }
    }
}

/// A fault to inject into the next request(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests with `Retry-After: secs`.
    RateLimited {
        /// Seconds in the Retry-After header.
        retry_after_secs: u64,
    },
    /// 503 Service Unavailable.
    Unavailable,
    /// Answer normally, after a delay.
    Slow(Duration),
    /// Start a 200 response, then drop the connection half way through the body.
    DropConnection,
    /// A 200 response whose body is not JSON.
    MalformedJson,
    /// 401 Unauthorized whatever the credentials.
    Unauthorized,
    /// 400 Bad Request with a message body, as the API answers a request it cannot parse.
    BadRequest,
}

/// A request the simulator saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// `X-Client-Id`.
    pub client_id: String,
    /// `Filter.LinkedAccount`.
    pub accounts: Vec<String>,
    /// `TimePeriod.Start`.
    pub start: Option<String>,
    /// `TimePeriod.End` (inclusive).
    pub end: Option<String>,
    /// `Filter.NextDataToken`.
    pub token: Option<String>,
    /// The status answered (0 while the request is in flight or was abandoned).
    pub status: u16,
}

/// One generated billing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLine {
    /// Linked account.
    pub account: String,
    /// Usage day.
    pub date: NaiveDate,
    /// Billing-region code as served (`None` is sent as JSON null).
    pub region_code: Option<&'static str>,
    /// SERVICE_CODE.
    pub service: &'static str,
    /// USAGE_TYPE.
    pub usage_type: &'static str,
    /// INSTANCE_TYPE (`""` when none).
    pub instance_type: &'static str,
    /// USAGE_COST, 10 decimals; negative for credits.
    pub cost: Decimal,
    /// USAGE_QUANTITY.
    pub quantity: Decimal,
}

type CatalogueItem = (
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);

const CATALOGUE: [CatalogueItem; 7] = [
    (Some("USE1"), "AmazonEC2", "BoxUsage:t3.micro", "t3.micro"),
    (
        Some("APN2"),
        "AmazonEC2",
        "APN2-BoxUsage:m5.large",
        "m5.large",
    ),
    (Some(""), "AmazonS3", "TimedStorage-ByteHrs", ""),
    (None, "AWSDataTransfer", "DataTransfer-Out-Bytes", ""),
    (
        Some("EUW2"),
        "AmazonRDS",
        "EUW2-InstanceUsage:db.t3.small",
        "db.t3.small",
    ),
    (
        Some("APS1"),
        "AmazonCloudWatch",
        "APS1-CW:MetricMonitorUsage",
        "",
    ),
    (Some("EU"), "AWSLambda", "EU-Lambda-GB-Second", ""),
];

struct Inner {
    config: SimConfig,
    faults: Mutex<VecDeque<Fault>>,
    restated: Mutex<HashMap<(String, NaiveDate), u64>>,
    seen: Mutex<Vec<SeenRequest>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: deterministic, well spread.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn day_number(d: NaiveDate) -> u64 {
    u64::try_from(d.num_days_from_ce()).unwrap_or_default()
}

fn to_i64(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

impl Inner {
    fn lines(&self, account: &str, day: NaiveDate) -> Vec<SimLine> {
        if !self.config.data.contains(day) {
            return vec![];
        }
        let version = lock(&self.restated)
            .get(&(account.to_owned(), day))
            .copied()
            .unwrap_or(0);
        let base = mix(self.config.seed ^ fnv(account))
            ^ mix(day_number(day))
            ^ mix(version.wrapping_mul(0x1234_5678_9ABC));
        let mut out = Vec::new();
        for (i, (region, service, usage_type, instance_type)) in CATALOGUE.iter().enumerate() {
            let h = mix(base ^ (i as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            if h.is_multiple_of(5) {
                continue; // not every service is used every day
            }
            out.push(SimLine {
                account: account.to_owned(),
                date: day,
                region_code: *region,
                service,
                usage_type,
                instance_type,
                // Up to 499.9999999999 with 10 decimals.
                cost: Decimal::new(to_i64((h >> 8) % 5_000_000_000_000), 10),
                quantity: Decimal::new(to_i64((h >> 3) % 100_000_000), 4),
            });
        }
        if day.day().is_multiple_of(10) {
            let h = mix(base ^ 0x00C4_ED17);
            out.push(SimLine {
                account: account.to_owned(),
                date: day,
                region_code: Some("USE1"),
                service: "AmazonEC2",
                usage_type: "Credit:PromotionalCredit",
                instance_type: "",
                cost: -Decimal::new(to_i64(h % 300_000_000_000), 10),
                quantity: Decimal::ZERO,
            });
        }
        out
    }

    fn client(&self, headers: &HeaderMap) -> Option<&SimClient> {
        let id = headers.get("X-Client-Id")?.to_str().ok()?;
        let secret = headers.get("X-Client-Secret")?.to_str().ok()?;
        self.config
            .clients
            .iter()
            .find(|c| c.email == id && c.key == secret)
    }
}

/// A running simulator. Dropping it shuts the server down.
pub struct Simulator {
    inner: Arc<Inner>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1:0`.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            config,
            faults: Mutex::default(),
            restated: Mutex::default(),
            seen: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback({
            let inner = Arc::clone(&inner);
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let inner = Arc::clone(&inner);
                async move { handle(&inner, &method, &uri, &headers, &body).await }
            }
        });
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            inner,
            addr,
            shutdown: Some(tx),
        })
    }

    /// The base URL to put in credentials, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration served.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Queues `fault` for the next request (faults apply in the order queued).
    pub fn inject(&self, fault: Fault) {
        lock(&self.inner.faults).push_back(fault);
    }

    /// Restates `day` of `account`: every later request sees new costs for that day.
    pub fn restate(&self, account: &str, day: NaiveDate) {
        *lock(&self.inner.restated)
            .entry((account.to_owned(), day))
            .or_insert(0) += 1;
    }

    /// The lines the simulator serves for `account` over `range`, in served order.
    pub fn expected_lines(&self, account: &str, range: DateRange) -> Vec<SimLine> {
        range
            .iter_days()
            .flat_map(|d| self.inner.lines(account, d))
            .collect()
    }

    /// The exact total cost of `account` over `range`.
    pub fn expected_total(&self, account: &str, range: DateRange) -> Decimal {
        self.expected_lines(account, range)
            .iter()
            .map(|l| l.cost)
            .sum()
    }

    /// The exact total cost of `account` per day over `range` (days without data left out).
    pub fn expected_daily(&self, account: &str, range: DateRange) -> BTreeMap<NaiveDate, Decimal> {
        let mut out = BTreeMap::new();
        for line in self.expected_lines(account, range) {
            *out.entry(line.date).or_insert(Decimal::ZERO) += line.cost;
        }
        out
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.inner.seen).clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.inner.seen).clear();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        serde_json::json!({ "message": message }).to_string(),
    )
}

#[derive(Default)]
struct Parsed {
    accounts: Vec<String>,
    start: Option<String>,
    end: Option<String>,
    token: Option<String>,
}

fn parse_filter(body: &[u8]) -> Result<Parsed, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not JSON: {e}"))?;
    let filter = value.get("Filter").ok_or("missing Filter")?;
    let accounts = filter
        .get("LinkedAccount")
        .and_then(serde_json::Value::as_array)
        .ok_or("Filter.LinkedAccount must be an array")?
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or("LinkedAccount entries must be strings")
        })
        .collect::<Result<Vec<_>, _>>()?;
    if filter
        .get("Granularity")
        .and_then(serde_json::Value::as_str)
        != Some("DAILY")
    {
        return Err("Filter.Granularity must be DAILY".into());
    }
    let period = filter
        .get("TimePeriod")
        .ok_or("missing Filter.TimePeriod")?;
    let field = |k: &str| {
        period
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let token = filter
        .get("NextDataToken")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let group_by = value.get("GroupBy").and_then(serde_json::Value::as_array);
    if group_by.is_none_or(|g| g.len() != 5) {
        return Err(
            "GroupBy must list USAGE_DATE, REGION, SERVICE_CODE, USAGE_TYPE, INSTANCE_TYPE".into(),
        );
    }
    Ok(Parsed {
        accounts,
        start: field("Start"),
        end: field("End"),
        token,
    })
}

fn render_page(lines: &[SimLine], next: Option<&str>) -> String {
    let mut out = String::with_capacity(lines.len() * 260 + 64);
    out.push_str("{\"Results\":[");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let region = l.region_code.map_or_else(
            || "null".to_owned(),
            |r| serde_json::Value::from(r).to_string(),
        );
        let _ = write!(
            out,
            "{{\"GroupBy\":{{\"USAGE_DATE\":\"{}\",\"REGION\":{},\"SERVICE_CODE\":{},\"USAGE_TYPE\":{},\"INSTANCE_TYPE\":{}}},\"Value\":{{\"USAGE_COST\":{},\"USAGE_QUANTITY\":{}}}}}",
            l.date.format("%Y-%m-%d"),
            region,
            serde_json::Value::from(l.service),
            serde_json::Value::from(l.usage_type),
            serde_json::Value::from(l.instance_type),
            l.cost,
            l.quantity,
        );
    }
    out.push(']');
    if let Some(t) = next {
        let _ = write!(out, ",\"NextDataToken\":\"{t}\"");
    }
    out.push('}');
    out
}

async fn handle(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let parsed = if uri.path() == "/v1/search/billing" {
        parse_filter(body)
    } else {
        Ok(Parsed::default())
    };
    let fault = lock(&inner.faults).pop_front();
    // Recorded on arrival (status 0 until answered): a client that times out still counts.
    let index = {
        let p = parsed.as_ref().ok();
        let mut seen = lock(&inner.seen);
        seen.push(SeenRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            client_id: headers
                .get("X-Client-Id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            accounts: p.map(|p| p.accounts.clone()).unwrap_or_default(),
            start: p.and_then(|p| p.start.clone()),
            end: p.and_then(|p| p.end.clone()),
            token: p.and_then(|p| p.token.clone()),
            status: 0,
        });
        seen.len() - 1
    };
    let (status, response) = answer(inner, method, uri, headers, &parsed, fault.as_ref()).await;
    if let Some(seen) = lock(&inner.seen).get_mut(index) {
        seen.status = status.as_u16();
    }
    response
}

async fn answer(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    parsed: &Result<Parsed, String>,
    fault: Option<&Fault>,
) -> (StatusCode, Response) {
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let r = (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                "slow down",
            )
                .into_response();
            return (StatusCode::TOO_MANY_REQUESTS, r);
        }
        Some(Fault::Unavailable) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable"),
            )
        }
        Some(Fault::Unauthorized) => {
            return (
                StatusCode::UNAUTHORIZED,
                error(StatusCode::UNAUTHORIZED, "invalid client"),
            )
        }
        Some(Fault::BadRequest) => {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    StatusCode::BAD_REQUEST,
                    "simulated: unsupported GroupBy key",
                ),
            )
        }
        Some(Fault::MalformedJson) => {
            return (
                StatusCode::OK,
                json_response(StatusCode::OK, "{\"Results\":[{\"GroupBy\":".into()),
            )
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(*delay).await,
        Some(Fault::DropConnection) | None => {}
    }
    let (status, body) = route(inner, method, uri, headers, parsed);
    if matches!(fault, Some(Fault::DropConnection)) && status == StatusCode::OK {
        let half = body.len() / 2;
        let first = Bytes::from(body.into_bytes()).slice(..half);
        let stream = futures::stream::iter(vec![
            Ok(first),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated connection drop",
            )),
        ]);
        let r = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        return (StatusCode::OK, r);
    }
    let r = if status == StatusCode::NO_CONTENT {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_response(status, body)
    };
    (status, r)
}

fn route(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    parsed: &Result<Parsed, String>,
) -> (StatusCode, String) {
    let msg = |m: &str| serde_json::json!({ "message": m }).to_string();
    let Some(client) = inner.client(headers) else {
        return (StatusCode::UNAUTHORIZED, msg("invalid client id or secret"));
    };
    match (method, uri.path()) {
        (&Method::GET, "/v1/search/linkedaccount") => (
            StatusCode::OK,
            serde_json::json!({ "Results": client.accounts }).to_string(),
        ),
        (&Method::POST, "/v1/search/billing") => {
            let p = match parsed {
                Ok(p) => p,
                Err(e) => return (StatusCode::BAD_REQUEST, msg(e)),
            };
            if p.accounts.is_empty() {
                return (
                    StatusCode::BAD_REQUEST,
                    msg("Filter.LinkedAccount is empty"),
                );
            }
            if let Some(a) = p.accounts.iter().find(|a| !client.accounts.contains(a)) {
                return (
                    StatusCode::FORBIDDEN,
                    msg(&format!(
                        "linked account {a} is not readable by this client"
                    )),
                );
            }
            let date = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            };
            let (Some(start), Some(end)) = (date(&p.start), date(&p.end)) else {
                return (
                    StatusCode::BAD_REQUEST,
                    msg("TimePeriod.Start and End must be YYYY-MM-DD"),
                );
            };
            if end < start {
                return (
                    StatusCode::BAD_REQUEST,
                    msg("TimePeriod.End is before Start"),
                );
            }
            // End is inclusive.
            if (end - start).num_days() + 1 > i64::from(MAX_WINDOW_DAYS) {
                return (
                    StatusCode::BAD_REQUEST,
                    msg(&format!(
                        "TimePeriod may span at most {MAX_WINDOW_DAYS} days"
                    )),
                );
            }
            let offset = match p.token.as_deref() {
                None => 0,
                Some(t) => match t.strip_prefix("tok-").and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => n,
                    None => return (StatusCode::BAD_REQUEST, msg("invalid NextDataToken")),
                },
            };
            let mut lines = Vec::new();
            for day in start.iter_days().take_while(|d| *d <= end) {
                for account in &p.accounts {
                    lines.extend(inner.lines(account, day));
                }
            }
            if lines.is_empty() {
                return (StatusCode::NO_CONTENT, String::new());
            }
            let page_size = inner.config.page_size.max(1);
            let page: Vec<SimLine> = lines.iter().skip(offset).take(page_size).cloned().collect();
            let next_offset = offset + page.len();
            let next = (next_offset < lines.len()).then(|| format!("tok-{next_offset}"));
            (StatusCode::OK, render_page(&page, next.as_deref()))
        }
        (_, "/v1/search/linkedaccount" | "/v1/search/billing") => {
            (StatusCode::METHOD_NOT_ALLOWED, msg("method not allowed"))
        }
        _ => (StatusCode::NOT_FOUND, msg("not found")),
    }
}
