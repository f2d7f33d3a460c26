//! An in-process simulator of what the GCP connector calls: Google's OAuth token endpoint
//! (the JWT bearer grant, its RS256 signature checked against the service account's public
//! key) and BigQuery's `jobs.query` / `jobs.getQueryResults` over one billing export table.
//!
//! Faithful where the connector depends on it: tokens expire and are required; the table
//! must be the one queried; `@start`/`@end` (`DATE`, end exclusive) and `@billing_account`
//! select the rows; answers page by `maxResults` and `pageToken`; a job may answer
//! `jobComplete: false` first; rows use BigQuery's `f`/`v` JSON with repeated records for
//! credits and labels, NUMERIC values as exact decimal text. The rows may be replaced at any
//! time (a restatement). The key it hands out is a fixed test key (`sim_key.pem`), not a secret.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};

/// The simulator's service account.
pub const EMAIL: &str = "cloudbill-reader@sim-project.iam.gserviceaccount.com";

const KEY_PEM: &str = include_str!("sim_key.pem");

/// One row of the export table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRow {
    /// The UTC day of usage_start_time.
    pub day: NaiveDate,
    /// `invoice.month` (`YYYYMM`).
    pub invoice_month: String,
    /// `billing_account_id`.
    pub billing_account: String,
    /// `project.id`.
    pub project: String,
    /// `service.description`.
    pub service: String,
    /// `sku.description`.
    pub sku: String,
    /// `location.region`.
    pub region: String,
    /// `currency`.
    pub currency: String,
    /// `cost` as NUMERIC text.
    pub cost: String,
    /// Each credit's amount as NUMERIC text (negative).
    pub credits: Vec<String>,
    /// `usage.amount_in_pricing_units` as NUMERIC text.
    pub quantity: String,
    /// `labels`.
    pub labels: Vec<(String, String)>,
    /// `cost_type`.
    pub cost_type: String,
    /// `cost_at_list` as NUMERIC text.
    pub list_cost: String,
    /// `project.labels`.
    pub project_labels: Vec<(String, String)>,
    /// `system_labels`.
    pub system_labels: Vec<(String, String)>,
}

#[derive(Default)]
struct Inner {
    /// Each row with its `export_time` (seconds): the export appends, so a row already in the
    /// table keeps its time and a new one gets the next.
    rows: Vec<(SimRow, i64)>,
    clock: i64,
    tokens: Vec<String>,
    jobs: HashMap<String, (Vec<Value>, u32)>,
    next: u64,
    queries: u32,
    revision_queries: u32,
    /// Answer the next this-many BigQuery calls with this status (429, 503…).
    failures: (u32, u16),
}

#[derive(Clone)]
struct Sim {
    table: String,
    page_size: usize,
    pending_polls: u32,
    endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

/// A running simulator (stops when dropped).
pub struct Simulator {
    addr: SocketAddr,
    sim: Sim,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// Serves `table` (`project.dataset.table`) holding `rows`, `page_size` rows per page, each
    /// job answering `jobComplete: false` `pending_polls` times first.
    ///
    /// # Errors
    /// The loopback port could not be bound.
    pub async fn start(
        table: &str,
        rows: Vec<SimRow>,
        page_size: usize,
        pending_polls: u32,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sim = Sim {
            table: table.to_owned(),
            page_size: page_size.max(1),
            pending_polls,
            endpoint: format!("http://{addr}"),
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let app = Router::new()
            .route("/token", post(token))
            .route("/bigquery/v2/projects/{project}/queries", post(start_query))
            .route(
                "/bigquery/v2/projects/{project}/queries/{job}",
                get(results),
            )
            .with_state(sim.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let simulator = Self { addr, sim, task };
        simulator.set_rows(rows);
        Ok(simulator)
    }

    /// The BigQuery API root (`endpoint` setting).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service account key file whose tokens this simulator accepts.
    pub fn key_json(&self) -> String {
        json!({
            "type": "service_account", "project_id": "sim-project",
            "private_key_id": "sim", "private_key": KEY_PEM, "client_email": EMAIL,
            "token_uri": format!("{}/token", self.endpoint()),
        })
        .to_string()
    }

    /// Replaces the table's rows (a restatement): rows already there keep their
    /// `export_time`, new ones are exported now (a later time than any before).
    pub fn set_rows(&self, rows: Vec<SimRow>) {
        let mut inner = self.sim.lock();
        inner.clock += 3600;
        let now = 1_700_000_000 + inner.clock;
        let mut old = std::mem::take(&mut inner.rows);
        inner.rows = rows
            .into_iter()
            .map(|row| match old.iter().position(|(r, _)| *r == row) {
                Some(i) => old.swap_remove(i),
                None => (row, now),
            })
            .collect();
    }

    /// Revision queries (`MAX(export_time)`) run so far.
    pub fn revision_queries(&self) -> u32 {
        self.sim.lock().revision_queries
    }

    /// Answers the next `count` BigQuery calls with HTTP `status` (a 429 or a 503).
    pub fn fail_next(&self, count: u32, status: u16) {
        self.sim.lock().failures = (count, status);
    }

    /// Queries run so far.
    pub fn queries(&self) -> u32 {
        self.sim.lock().queries
    }
}

impl Sim {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An injected failure, if one is due.
    fn failure(&self) -> Option<Response> {
        let mut inner = self.lock();
        let (count, status) = inner.failures;
        if count == 0 {
            return None;
        }
        inner.failures.0 -= 1;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        Some(error(status, "injected by the simulator"))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        given.is_some_and(|t| self.lock().tokens.iter().any(|k| k == t))
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message, "status": "ERROR"}})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Grant {
    grant_type: String,
    assertion: String,
}

/// Checks an RS256 JWT against the simulator key's public half and its claims.
fn check_assertion(sim: &Sim, jwt: &str) -> Result<(), String> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let der = crate::auth::pkcs8(KEY_PEM)?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
    );
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "bad signature encoding")?;
    public
        .verify(format!("{header}.{claims}").as_bytes(), &signature)
        .map_err(|_| "invalid JWT signature")?;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| "bad header")?)
            .map_err(|_| "bad header")?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256".into());
    }
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|_| "bad claims")?)
            .map_err(|_| "bad claims")?;
    let now = chrono::Utc::now().timestamp();
    let aud = format!("{}/token", sim.endpoint);
    if claims["iss"] != EMAIL
        || claims["aud"] != aud.as_str()
        || !claims["scope"].as_str().unwrap_or("").contains("bigquery")
        || claims["exp"].as_i64().unwrap_or(0) <= now
        || claims["iat"].as_i64().unwrap_or(i64::MAX) > now + 60
    {
        return Err("wrong iss, aud, scope or time".into());
    }
    Ok(())
}

async fn token(State(sim): State<Sim>, Form(grant): Form<Grant>) -> Response {
    if grant.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if let Err(why) = check_assertion(&sim, &grant.assertion) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response();
    }
    let mut inner = sim.lock();
    inner.next += 1;
    let token = format!("ya29.sim-{}-{}", inner.next, fastrand_like(inner.next));
    inner.tokens.push(token.clone());
    Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

fn fastrand_like(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn param<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body["queryParameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["parameterValue"]["value"]
        .as_str()
}

fn encode(row: &SimRow) -> Value {
    let v = |s: &str| json!({"v": s});
    let records = |items: Vec<Vec<&str>>| json!({"v": items.into_iter().map(|fields| json!({"v": {"f": fields.into_iter().map(|f| json!({"v": f})).collect::<Vec<_>>()}})).collect::<Vec<_>>()});
    json!({"f": [
        v(&row.day.to_string()), v(&row.invoice_month), v(&row.billing_account), v(&row.project),
        v(&row.service), v(&row.sku), v(&row.region), v(&row.currency), v(&row.cost),
        records(row.credits.iter().map(|c| vec![c.as_str()]).collect()),
        v(&row.quantity), v("hour"),
        records(row.labels.iter().map(|(k, val)| vec![k.as_str(), val.as_str()]).collect()),
        v(&row.cost_type), v(&row.list_cost),
        records(row.project_labels.iter().map(|(k, val)| vec![k.as_str(), val.as_str()]).collect()),
        records(row.system_labels.iter().map(|(k, val)| vec![k.as_str(), val.as_str()]).collect()),
    ]})
}

async fn start_query(
    State(sim): State<Sim>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !sim.authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Request is missing valid authentication credential.",
        );
    }
    if let Some(failed) = sim.failure() {
        return failed;
    }
    let query = body["query"].as_str().unwrap_or("");
    if !query.contains(&format!("FROM `{}`", sim.table)) {
        return error(
            StatusCode::NOT_FOUND,
            "Not found: Table (the simulator serves one table)",
        );
    }
    let revision = query.contains("MAX(export_time)") && query.contains("COUNT(*)");
    if body["useLegacySql"] != false || !(revision || query.contains("CAST(cost AS NUMERIC)")) {
        return error(
            StatusCode::BAD_REQUEST,
            "the simulator answers standard SQL with NUMERIC costs only",
        );
    }
    let day =
        |name: &str| param(&body, name).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(start), Some(end)) = (day("start"), day("end")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Query parameter 'start' or 'end' not found",
        );
    };
    let account = param(&body, "billing_account").map(str::to_owned);
    let mut inner = sim.lock();
    let matching = inner
        .rows
        .iter()
        .filter(|(r, _)| r.day >= start && r.day < end)
        .filter(|(r, _)| account.as_ref().is_none_or(|a| *a == r.billing_account));
    let rows: Vec<Value> = if revision {
        // One row: MAX(export_time) as BigQuery sends a TIMESTAMP (float seconds in
        // E notation; null over no rows), COUNT(*) as an INT64 string.
        let (mut last, mut count) = (None::<i64>, 0u64);
        for (_, at) in matching {
            last = last.max(Some(*at));
            count += 1;
        }
        #[allow(clippy::cast_precision_loss)] // Seconds near 1.7e9: exact in an f64.
        let last = last.map_or(Value::Null, |t| json!(format!("{:E}", t as f64)));
        vec![json!({"f": [{"v": last}, {"v": count.to_string()}]})]
    } else {
        matching.map(|(r, _)| encode(r)).collect()
    };
    if revision {
        inner.revision_queries += 1;
    } else {
        inner.queries += 1;
    }
    inner.next += 1;
    let job = format!("job_sim_{}", inner.next);
    inner.jobs.insert(job.clone(), (rows, sim.pending_polls));
    let max = body["maxResults"]
        .as_u64()
        .and_then(|m| usize::try_from(m).ok());
    page(&sim, &mut inner, &project, &job, 0, max)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsQuery {
    page_token: Option<String>,
    max_results: Option<usize>,
}

async fn results(
    State(sim): State<Sim>,
    Path((project, job)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<ResultsQuery>,
) -> Response {
    if !sim.authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Request is missing valid authentication credential.",
        );
    }
    if let Some(failed) = sim.failure() {
        return failed;
    }
    let offset = match q.page_token.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "Invalid page token"),
    };
    let mut inner = sim.lock();
    if !inner.jobs.contains_key(&job) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Not found: Job {project}:{job}"),
        );
    }
    page(&sim, &mut inner, &project, &job, offset, q.max_results)
}

fn page(
    sim: &Sim,
    inner: &mut Inner,
    project: &str,
    job: &str,
    offset: usize,
    max: Option<usize>,
) -> Response {
    let reference = json!({"projectId": project, "jobId": job, "location": "US"});
    let Some((rows, pending)) = inner.jobs.get_mut(job) else {
        return error(StatusCode::NOT_FOUND, "Not found: Job");
    };
    if *pending > 0 {
        *pending -= 1;
        return Json(json!({"kind": "bigquery#queryResponse", "jobReference": reference, "jobComplete": false})).into_response();
    }
    let size = max.unwrap_or(sim.page_size).min(sim.page_size).max(1);
    let end = (offset + size).min(rows.len());
    let slice: Vec<Value> = rows.get(offset..end).unwrap_or(&[]).to_vec();
    let mut answer = json!({
        "kind": "bigquery#queryResponse", "jobReference": reference, "jobComplete": true,
        "totalRows": rows.len().to_string(), "rows": slice,
        "schema": {"fields": crate::COLUMNS.iter().map(|(_, sql)| json!({"name": sql.rsplit(' ').next().unwrap_or(sql)})).collect::<Vec<_>>()},
    });
    if end < rows.len() {
        answer["pageToken"] = json!(end.to_string());
    }
    Json(answer).into_response()
}
