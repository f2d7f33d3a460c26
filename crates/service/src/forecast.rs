//! `Billing::forecast`: the period-end spend of a scope, from its daily history
//! (`cloudbill_aggregate::forecast`, docs/FORECAST.md).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cloudbill_aggregate::forecast::{self, NoForecast, Series};
use cloudbill_aggregate::{GroupKey, Query};
use cloudbill_core::{Currency, DateRange, Decimal, Granularity};
use serde::Serialize;

use crate::{Billing, Principal, ServiceError};

/// The period a forecast is for: the one holding `as_of` (month, quarter or year).
pub use cloudbill_core::Period as ForecastPeriod;

/// What to forecast.
#[derive(Debug, Clone)]
pub struct ForecastRequest {
    /// The scope, as report filters (project, project_group, service_account, any dimension).
    pub filters: BTreeMap<GroupKey, Vec<String>>,
    /// Month, quarter or year.
    pub period: ForecastPeriod,
    /// Today: the first day that is not complete.
    pub as_of: NaiveDate,
    /// Days before `as_of` the provider may still restate (left out of the history).
    pub restate_days: i64,
    /// Billed (default) or effective cost.
    pub metric: cloudbill_core::CostMetric,
    /// With the shares the allocation rules move (docs/ALLOCATION.md).
    pub allocated: bool,
}

impl ForecastRequest {
    /// The month holding `as_of`, the whole domain, the default restatement days.
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            filters: BTreeMap::new(),
            period: ForecastPeriod::Monthly,
            as_of,
            restate_days: forecast::DEFAULT_RESTATE_DAYS,
            metric: cloudbill_core::CostMetric::Billed,
            allocated: false,
        }
    }
}

/// The most restatable days a request may leave out.
pub const MAX_RESTATE_DAYS: i64 = 31;

/// A forecast's period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodBounds {
    /// First day.
    pub start: NaiveDate,
    /// Day after the last.
    pub end: NaiveDate,
}

/// The forecast of one currency's spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyForecast {
    /// The currency (records in other currencies are forecast on their own).
    pub currency: Currency,
    /// Spend recorded in the period so far, today's and restatable days' included.
    pub actual: Decimal,
    /// `ok`, `insufficient_history`, or `out_of_range` (the data's amounts are too large for
    /// an exact decimal forecast).
    pub status: &'static str,
    /// The expected spend of the whole period (`null` without enough history).
    pub forecast: Option<Decimal>,
    /// The 80% interval's lower bound.
    pub low: Option<Decimal>,
    /// The 80% interval's upper bound.
    pub high: Option<Decimal>,
    /// `linear_trend` or `linear_trend_weekday`.
    pub method: Option<&'static str>,
    /// Complete days of history the model was fitted on.
    pub days_used: usize,
    /// Days of history left out as outliers.
    pub days_left_out: Vec<NaiveDate>,
    /// Days of the period predicted rather than read.
    pub days_predicted: usize,
}

/// A forecast answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForecastReport {
    /// The period forecast.
    pub period: PeriodBounds,
    /// The day the forecast was made as of.
    pub as_of: NaiveDate,
    /// The days before `as_of` left out as possibly restated.
    pub restate_days: i64,
    /// One per currency with spend in the history or the period.
    pub currencies: Vec<CurrencyForecast>,
}

impl Billing {
    /// The period-end forecast of the spend `request` scopes, per currency. A member's
    /// forecast covers its projects only (the report's rules).
    pub async fn forecast(
        &self,
        p: &Principal,
        request: &ForecastRequest,
    ) -> Result<ForecastReport, ServiceError> {
        if !(0..=MAX_RESTATE_DAYS).contains(&request.restate_days) {
            return Err(ServiceError::Invalid(format!(
                "restate days must be between 0 and {MAX_RESTATE_DAYS}"
            )));
        }
        let (p_start, p_end) = request.period.bounds(request.as_of);
        let (h_start, _) = forecast::history_window(request.as_of, request.restate_days);
        // The history and the period so far (today included: its actual is reported).
        let range = DateRange::new(
            // The history before the first day cloudbill takes is empty anyway.
            h_start.min(p_start).max(cloudbill_core::FIRST_DAY),
            request.as_of.succ_opt().unwrap_or(request.as_of),
        )?;
        let mut query = Query::new(range, Granularity::Daily);
        query.filters.clone_from(&request.filters);
        query.metric = request.metric;
        query.allocated = request.allocated;
        let report = self.report(p, &query).await?;
        let mut daily: BTreeMap<Currency, Vec<(NaiveDate, Decimal)>> = BTreeMap::new();
        for row in &report.results {
            for b in &row.billing_data {
                let day: NaiveDate = b.date.parse().map_err(|_| {
                    ServiceError::Invalid(format!("unexpected daily bucket {:?}", b.date))
                })?;
                daily.entry(b.currency).or_default().push((day, b.cost));
            }
        }
        let mut currencies = Vec::new();
        for (currency, days) in daily {
            let mut actual = Decimal::ZERO;
            for (_, v) in days
                .iter()
                .filter(|(d, _)| *d >= p_start && *d < p_end && *d <= request.as_of)
            {
                actual = actual.checked_add(*v).ok_or_else(|| {
                    ServiceError::Query(cloudbill_aggregate::QueryError::AmountOutOfRange {
                        what: format!("the period's spend in {currency}"),
                    })
                })?;
            }
            let series = Series {
                daily: &days,
                period: (p_start, p_end),
                as_of: request.as_of,
                restate_days: request.restate_days,
            };
            currencies.push(match forecast::forecast(&series) {
                Ok(f) => CurrencyForecast {
                    currency,
                    actual,
                    status: "ok",
                    forecast: Some(f.amount),
                    low: Some(f.low),
                    high: Some(f.high),
                    method: Some(f.method.as_str()),
                    days_used: f.days_used,
                    days_left_out: f.outliers,
                    days_predicted: f.days_predicted,
                },
                Err(NoForecast::OutOfRange) => CurrencyForecast {
                    currency,
                    actual,
                    status: "out_of_range",
                    forecast: None,
                    low: None,
                    high: None,
                    method: None,
                    days_used: 0,
                    days_left_out: Vec::new(),
                    days_predicted: 0,
                },
                Err(NoForecast::InsufficientHistory { days }) => CurrencyForecast {
                    currency,
                    actual,
                    status: "insufficient_history",
                    forecast: None,
                    low: None,
                    high: None,
                    method: None,
                    days_used: days,
                    days_left_out: Vec::new(),
                    days_predicted: 0,
                },
            });
        }
        Ok(ForecastReport {
            period: PeriodBounds {
                start: p_start,
                end: p_end,
            },
            as_of: request.as_of,
            restate_days: request.restate_days,
            currencies,
        })
    }
}
