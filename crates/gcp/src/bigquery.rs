//! BigQuery's query API as the billing export needs it: the query, `jobs.query` and
//! `jobs.getQueryResults` paging, the `f`/`v` row encoding, and rows as FOCUS CSV.

use std::io::Cursor;
use std::time::Duration;

use cloudbill_core::{parse_decimal, CostRecord, DateRange, Decimal};
use cloudbill_focus::{for_each_record, BillFormat, ImportOptions};
use cloudbill_provider::{FetchScope, ProviderError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{unavailable, Account, KIND, PROVIDER_NAME};

/// Rows asked for per page.
pub(crate) const PAGE_ROWS: u32 = 10_000;

/// The largest page answer read (64 MiB).
const MAX_PAGE_BYTES: usize = 64 << 20;

/// How long a query may run before the fetch gives up.
const QUERY_DEADLINE: Duration = Duration::from_secs(600);

/// The query's columns, in SELECT order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The UTC day of `usage_start_time`.
    Day,
    /// `invoice.month` (`YYYYMM`).
    InvoiceMonth,
    /// `billing_account_id`.
    BillingAccount,
    /// `project.id`.
    Project,
    /// `service.description`.
    Service,
    /// `sku.description`.
    Sku,
    /// `location.region`.
    Region,
    /// `currency`.
    Currency,
    /// `cost`, as NUMERIC.
    Cost,
    /// `credits[].amount`, each as NUMERIC (a repeated record).
    Credits,
    /// `usage.amount_in_pricing_units`, as NUMERIC.
    Quantity,
    /// `usage.pricing_unit`.
    Unit,
    /// `labels` (a repeated record of key, value).
    Labels,
    /// `cost_type` (`regular`, `tax`, `adjustment`, `rounding error`).
    CostType,
    /// `cost_at_list`, as NUMERIC.
    ListCost,
    /// `project.labels` (key, value).
    ProjectLabels,
    /// `system_labels` (key, value).
    SystemLabels,
}

/// Each column with its SQL.
pub const COLUMNS: [(Column, &str); 17] = [
    (
        Column::Day,
        "FORMAT_TIMESTAMP('%F', usage_start_time, 'UTC') AS usage_day",
    ),
    (Column::InvoiceMonth, "invoice.month AS invoice_month"),
    (Column::BillingAccount, "billing_account_id"),
    (Column::Project, "project.id AS project_id"),
    (Column::Service, "service.description AS service"),
    (Column::Sku, "sku.description AS sku"),
    (Column::Region, "location.region AS region"),
    (Column::Currency, "currency"),
    (Column::Cost, "CAST(cost AS NUMERIC) AS cost"),
    (
        Column::Credits,
        "ARRAY(SELECT AS STRUCT CAST(c.amount AS NUMERIC) AS amount FROM UNNEST(credits) AS c) AS credits",
    ),
    (
        Column::Quantity,
        "CAST(usage.amount_in_pricing_units AS NUMERIC) AS quantity",
    ),
    (Column::Unit, "usage.pricing_unit AS unit"),
    (
        Column::Labels,
        "ARRAY(SELECT AS STRUCT l.key, l.value FROM UNNEST(labels) AS l) AS labels",
    ),
    (Column::CostType, "cost_type"),
    (Column::ListCost, "CAST(cost_at_list AS NUMERIC) AS list_cost"),
    (
        Column::ProjectLabels,
        "ARRAY(SELECT AS STRUCT l.key, l.value FROM UNNEST(project.labels) AS l) AS project_labels",
    ),
    (
        Column::SystemLabels,
        "ARRAY(SELECT AS STRUCT l.key, l.value FROM UNNEST(system_labels) AS l) AS system_labels",
    ),
];

/// `project.dataset.table` as the account gives it, checked (it is quoted into the SQL).
pub(crate) fn checked_table(table: &str) -> Result<String, String> {
    let parts: Vec<&str> = table.trim().trim_matches('`').split('.').collect();
    let ok = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 1024
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(parts.join("."))
    } else {
        Err("expected project.dataset.table (letters, digits, '_' and '-')".into())
    }
}

/// The query of one window (`@start` inclusive, `@end` exclusive; `@billing_account` when
/// the account reads one billing account).
pub fn query_for(table: &str, one_billing_account: bool) -> String {
    let columns: Vec<&str> = COLUMNS.iter().map(|(_, sql)| *sql).collect();
    let mut sql = format!(
        "SELECT {} FROM `{table}` WHERE usage_start_time >= TIMESTAMP(@start) AND usage_start_time < TIMESTAMP(@end)",
        columns.join(", ")
    );
    if one_billing_account {
        sql.push_str(" AND billing_account_id = @billing_account");
    }
    sql
}

/// The revision query of one window (same filter as [`query_for`]): the time of the last export
/// that wrote its rows and how many rows it has. The export only appends (a correction is a
/// new row), so while both stay the same, the window's rows do.
pub(crate) fn revision_query_for(table: &str, one_billing_account: bool) -> String {
    let mut sql = format!(
        "SELECT MAX(export_time) AS last_export, COUNT(*) AS row_count FROM `{table}` WHERE usage_start_time >= TIMESTAMP(@start) AND usage_start_time < TIMESTAMP(@end)"
    );
    if one_billing_account {
        sql.push_str(" AND billing_account_id = @billing_account");
    }
    sql
}

/// The window's revision: the revision query's answer as text (never parsed: only compared).
pub(crate) async fn revision(
    client: &reqwest::Client,
    account: &Account,
    window: DateRange,
) -> Result<String, ProviderError> {
    let sql = revision_query_for(&account.table, account.billing_filter.is_some());
    let mut answer = None;
    run(
        client,
        account,
        window,
        &sql,
        &mut EachRow(|row: Row| {
            let cell = |i: usize| {
                row.0
                    .get(i)
                    .and_then(|c| c.get("v"))
                    .and_then(Value::as_str)
                    .unwrap_or("null")
                    .to_owned()
            };
            answer = Some(format!("{}/{}", cell(0), cell(1)));
            Ok(())
        }),
    )
    .await?;
    answer.ok_or_else(|| ProviderError::InvalidResponse {
        provider: PROVIDER_NAME,
        detail: "the revision query answered no row".into(),
    })
}

/// One row: its cells in [`COLUMNS`] order.
#[derive(Debug)]
pub(crate) struct Row(Vec<Value>);

impl Row {
    fn index(column: Column) -> usize {
        COLUMNS.iter().position(|(c, _)| *c == column).unwrap_or(0)
    }

    /// A scalar cell's text (`None`: null).
    pub(crate) fn get(&self, column: Column) -> Option<&str> {
        self.0.get(Self::index(column))?.get("v")?.as_str()
    }

    /// The cells of each record of a repeated-record cell.
    fn records(&self, column: Column) -> Vec<Vec<Option<&str>>> {
        let Some(items) = self
            .0
            .get(Self::index(column))
            .and_then(|c| c.get("v"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| item.get("v")?.get("f")?.as_array())
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| f.get("v").and_then(Value::as_str))
                    .collect()
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_field_names)] // BigQuery's names.
struct Page {
    #[serde(default)]
    job_complete: bool,
    job_reference: Option<JobReference>,
    #[serde(default)]
    rows: Vec<RawRow>,
    page_token: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct JobReference {
    job_id: String,
    location: Option<String>,
}

#[derive(Deserialize)]
struct RawRow {
    f: Vec<Value>,
}

/// Receives a query's rows a page at a time.
#[async_trait::async_trait]
pub(crate) trait Pages: Send {
    /// One page's rows; `false` stops the query (whoever wanted the rows went away).
    async fn page(&mut self, rows: Vec<Row>) -> Result<bool, ProviderError>;
}

/// Hands each row to a function.
struct EachRow<F>(F);

#[async_trait::async_trait]
impl<F: FnMut(Row) -> Result<(), ProviderError> + Send> Pages for EachRow<F> {
    async fn page(&mut self, rows: Vec<Row>) -> Result<bool, ProviderError> {
        for row in rows {
            (self.0)(row)?;
        }
        Ok(true)
    }
}

/// Runs the window's query and hands every row to `each`, page by page.
pub(crate) async fn query(
    client: &reqwest::Client,
    account: &Account,
    window: DateRange,
    each: impl FnMut(Row) -> Result<(), ProviderError> + Send,
) -> Result<(), ProviderError> {
    query_pages(client, account, window, &mut EachRow(each)).await
}

/// Runs the window's query and hands its rows to `pages`, a page at a time.
pub(crate) async fn query_pages(
    client: &reqwest::Client,
    account: &Account,
    window: DateRange,
    pages: &mut dyn Pages,
) -> Result<(), ProviderError> {
    let sql = query_for(&account.table, account.billing_filter.is_some());
    run(client, account, window, &sql, pages).await
}

/// Runs `sql` over the window (parameters `@start`, `@end`, `@billing_account`) and hands
/// its rows to `pages`, page by page.
async fn run(
    client: &reqwest::Client,
    account: &Account,
    window: DateRange,
    sql: &str,
    pages: &mut dyn Pages,
) -> Result<(), ProviderError> {
    let who = &account.table;
    let token =
        crate::auth::access_token(client, &account.key, &account.key.token_uri, who).await?;
    let date = |name: &str, day: chrono::NaiveDate| json!({"name": name, "parameterType": {"type": "DATE"}, "parameterValue": {"value": day.to_string()}});
    let mut parameters = vec![date("start", window.start()), date("end", window.end())];
    if let Some(b) = &account.billing_filter {
        parameters.push(json!({"name": "billing_account", "parameterType": {"type": "STRING"}, "parameterValue": {"value": b}}));
    }
    let body = json!({
        "query": sql,
        "useLegacySql": false, "parameterMode": "NAMED", "queryParameters": parameters,
        "maxResults": PAGE_ROWS, "timeoutMs": 60_000,
    });
    let base = format!(
        "{}/bigquery/v2/projects/{}/queries",
        account.endpoint, account.project
    );
    let started = std::time::Instant::now();
    let mut page = send(client.post(&base).bearer_auth(&token).json(&body), who).await?;
    let mut job: Option<JobReference> = None;
    loop {
        if page.job_reference.is_some() {
            job.clone_from(&page.job_reference);
        }
        let rows: Vec<Row> = page.rows.drain(..).map(|raw| Row(raw.f)).collect();
        if !rows.is_empty() && !pages.page(rows).await? {
            return Ok(());
        }
        let more = match (&page.page_token, page.job_complete) {
            (_, false) => None,
            (Some(t), true) => Some(t.clone()),
            (None, true) => return Ok(()),
        };
        if started.elapsed() > QUERY_DEADLINE {
            return Err(unavailable(&format!(
                "the query of {who} took longer than {} s",
                QUERY_DEADLINE.as_secs()
            )));
        }
        let job = job.as_ref().ok_or_else(|| ProviderError::InvalidResponse {
            provider: PROVIDER_NAME,
            detail: "a query answer without its jobReference".into(),
        })?;
        let mut request = client
            .get(format!("{base}/{}", job.job_id))
            .bearer_auth(&token)
            .query(&[
                ("maxResults", PAGE_ROWS.to_string()),
                ("timeoutMs", "60000".into()),
            ]);
        if let Some(location) = &job.location {
            request = request.query(&[("location", location)]);
        }
        if let Some(token) = &more {
            request = request.query(&[("pageToken", token)]);
        }
        page = send(request, who).await?;
    }
}

/// Sends a request (retrying 429 and 5xx twice) and reads its page.
async fn send(request: reqwest::RequestBuilder, who: &str) -> Result<Page, ProviderError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(tried) = request.try_clone() else {
            return Err(unavailable("a request that cannot be retried"));
        };
        let response = match tried.send().await {
            Ok(r) => r,
            Err(_) if attempt < 3 => {
                backoff(attempt).await;
                continue;
            }
            Err(e) => return Err(unavailable(&e.without_url().to_string())),
        };
        let status = response.status();
        let bytes = cloudbill_outbound::read_limited(response, MAX_PAGE_BYTES)
            .await
            .map_err(|e| unavailable(&format!("a query page: {e}")))?;
        let message = || {
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        match status.as_u16() {
            200..=299 => {
                return serde_json::from_slice(&bytes).map_err(|e| ProviderError::InvalidResponse {
                    provider: PROVIDER_NAME,
                    detail: format!("a query page is not readable: {e}"),
                })
            }
            401 | 403 => {
                return Err(ProviderError::Unauthorized {
                    provider: PROVIDER_NAME,
                    account: who.to_owned(),
                })
            }
            429 | 500..=599 if attempt < 3 => backoff(attempt).await,
            429 | 500..=599 => return Err(unavailable(&format!("HTTP {status}: {}", message()))),
            _ => {
                return Err(ProviderError::Rejected {
                    provider: PROVIDER_NAME,
                    status: status.as_u16(),
                    body: message(),
                })
            }
        }
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
}

/// Rows as a FOCUS CSV, read back through the FOCUS reader.
pub(crate) struct FocusRows {
    csv: csv::Writer<Vec<u8>>,
}

const HEADER: [&str; 15] = [
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "BilledCost",
    "BillingCurrency",
    "ServiceName",
    "SubAccountId",
    "BillingAccountId",
    "RegionId",
    "x_UsageType",
    "ConsumedQuantity",
    "Tags",
    "ListCost",
    "ChargeCategory",
];

impl FocusRows {
    pub(crate) fn new() -> Self {
        let mut csv = csv::Writer::from_writer(Vec::new());
        // Writing to memory does not fail.
        let _ = csv.write_record(HEADER);
        Self { csv }
    }

    /// One row: BilledCost = cost + Σ credits, exactly.
    pub(crate) fn push(&mut self, row: &Row) -> Result<(), ProviderError> {
        let bad = |detail: String| ProviderError::InvalidResponse {
            provider: PROVIDER_NAME,
            detail,
        };
        let day = row
            .get(Column::Day)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(|| bad(format!("a row without a usage day: {:?}", row.0.first())))?;
        let amount = |text: Option<&str>| -> Result<Decimal, ProviderError> {
            parse_decimal(text.unwrap_or("0")).map_err(|e| bad(format!("an amount: {e}")))
        };
        let mut billed = amount(row.get(Column::Cost))?;
        for credit in row.records(Column::Credits) {
            billed = billed
                .checked_add(amount(credit.first().copied().flatten())?)
                .ok_or_else(|| bad("cost plus credits overflows".into()))?;
        }
        let period = row
            .get(Column::InvoiceMonth)
            .and_then(|m| chrono::NaiveDate::parse_from_str(&format!("{m}01"), "%Y%m%d").ok())
            .unwrap_or_else(|| chrono::Datelike::with_day(&day, 1).unwrap_or(day));
        let period_end = period
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(period);
        // Labels as they are; project labels as `project:KEY`; system labels as they are
        // (their keys are already qualified, `goog-…` or `compute.googleapis.com/…`).
        let mut labels = serde_json::Map::new();
        for (column, prefix) in [
            (Column::SystemLabels, ""),
            (Column::ProjectLabels, "project:"),
            (Column::Labels, ""),
        ] {
            for kv in row.records(column) {
                if let Some(key) = kv.first().copied().flatten() {
                    let value = kv.get(1).copied().flatten().unwrap_or("");
                    labels.insert(format!("{prefix}{key}"), Value::String(value.to_owned()));
                }
            }
        }
        let category = match row.get(Column::CostType).unwrap_or("regular") {
            "tax" => "Tax",
            "adjustment" | "rounding error" => "Adjustment",
            _ => "Usage",
        };
        let list = match row.get(Column::ListCost) {
            Some(text) => amount(Some(text))?.normalize().to_string(),
            None => String::new(),
        };
        let stamp = |d: chrono::NaiveDate| format!("{d}T00:00:00Z");
        let next = day.succ_opt().unwrap_or(day);
        let cells = [
            stamp(day),
            stamp(next),
            stamp(period),
            stamp(period_end),
            billed.normalize().to_string(),
            row.get(Column::Currency).unwrap_or("").to_owned(),
            row.get(Column::Service).unwrap_or("").to_owned(),
            row.get(Column::Project).unwrap_or("").to_owned(),
            row.get(Column::BillingAccount).unwrap_or("").to_owned(),
            row.get(Column::Region).unwrap_or("").to_owned(),
            row.get(Column::Sku).unwrap_or("").to_owned(),
            row.get(Column::Quantity).unwrap_or("").to_owned(),
            if labels.is_empty() {
                String::new()
            } else {
                Value::Object(labels).to_string()
            },
            list,
            category.to_owned(),
        ];
        self.csv
            .write_record(&cells)
            .map_err(|e| bad(format!("a row: {e}")))
    }

    /// The window's records.
    pub(crate) fn records(
        self,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        let bytes = self
            .csv
            .into_inner()
            .map_err(|e| ProviderError::InvalidResponse {
                provider: PROVIDER_NAME,
                detail: e.to_string(),
            })?;
        let mut out = Vec::new();
        for_each_record(
            Cursor::new(bytes),
            "the BigQuery export",
            BillFormat::Focus,
            scope.domain,
            scope.service_account,
            ImportOptions::default(),
            |mut r| {
                if window.contains(r.date) {
                    r.provider = KIND;
                    out.push(r);
                }
            },
        )
        .map_err(|e| ProviderError::InvalidResponse {
            provider: PROVIDER_NAME,
            detail: e.to_string(),
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_checked_before_they_reach_the_sql() {
        assert_eq!(
            checked_table("p-1.billing.gcp_billing_export_v1_0A").unwrap(),
            "p-1.billing.gcp_billing_export_v1_0A"
        );
        for bad in ["a.b", "a.b.c.d", "a.b.c`; DROP", "a..c", "a.b.c d"] {
            assert!(checked_table(bad).is_err(), "{bad}");
        }
        let sql = query_for("p.d.t", true);
        assert!(sql.contains("FROM `p.d.t`") && sql.contains("@billing_account"));
        assert!(sql.contains("CAST(cost AS NUMERIC)"));
    }
}
