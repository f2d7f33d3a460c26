//! Exchange rates and reports in one currency: rates imported (the European Central Bank's
//! reference-rate CSV, or `date,base,quote,rate`) or set by hand, and every (day, currency)
//! cell of a report converted with a stated rate before summing. A missing rate is an error
//! that names the currency and the day, never a guess.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use cloudbill_aggregate::{
    Amount, Bucket, Conversion, GroupKey, Query, RatesUsed, Report, ReportRow, Sort,
};
use cloudbill_core::{Currency, Decimal, FxRate, Granularity};
use serde::Serialize;

use crate::{Billing, Principal, ServiceError};

/// How far back the `daily` and `period-end` policies look for a rate (a weekend or a
/// holiday uses the last business day's).
pub const MAX_RATE_LOOKBACK_DAYS: i64 = 7;
/// The most rates one file may hold.
pub const MAX_RATES_PER_FILE: usize = 1_000_000;
/// Decimal places a converted cell is rounded to (half to even), before any sum.
pub const CONVERTED_SCALE: u32 = 10;

/// Which rate converts a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxPolicy {
    /// The rate of the cell's day, or the latest within [`MAX_RATE_LOOKBACK_DAYS`] before it.
    Daily,
    /// The rate of the last day of the cell's bucket (month, year), looked up the same way.
    PeriodEnd,
    /// The rates of the named fixed set (`fx set … --source NAME` or a file imported under
    /// that source): the latest dated on or before the cell's day, however old.
    Fixed(String),
}

impl FxPolicy {
    /// `daily`, `period-end` or `fixed:NAME`.
    pub fn name(&self) -> String {
        match self {
            FxPolicy::Daily => "daily".into(),
            FxPolicy::PeriodEnd => "period-end".into(),
            FxPolicy::Fixed(n) => format!("fixed:{n}"),
        }
    }
}

impl std::str::FromStr for FxPolicy {
    type Err = ServiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "daily" => Ok(FxPolicy::Daily),
            "period-end" => Ok(FxPolicy::PeriodEnd),
            other => match other.strip_prefix("fixed:") {
                Some(name) if !name.trim().is_empty() && name.len() <= 64 => {
                    Ok(FxPolicy::Fixed(name.trim().to_owned()))
                }
                _ => Err(ServiceError::Invalid(format!(
                    "fx policy {:?}: expected daily, period-end or fixed:NAME",
                    cloudbill_core::cut(other, 40)
                ))),
            },
        }
    }
}

/// What a rate import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateImport {
    /// The file.
    pub file: String,
    /// `ecb` or `pairs`.
    pub layout: &'static str,
    /// Rates read.
    pub rates: usize,
    /// Rates not stored before.
    pub new: usize,
    /// First and last date.
    pub first: Option<NaiveDate>,
    /// Last date.
    pub last: Option<NaiveDate>,
}

fn bad(file: &str, line: usize, what: &str, value: &str) -> ServiceError {
    ServiceError::Invalid(format!(
        "{file}:{line}: {what} ({:?}); nothing was written",
        cloudbill_core::cut(value, 60)
    ))
}

fn rate_value(file: &str, line: usize, raw: &str) -> Result<Decimal, ServiceError> {
    let rate = cloudbill_core::parse_decimal(raw.trim())
        .map_err(|_| bad(file, line, "the rate is not a decimal number", raw))?;
    if rate <= Decimal::ZERO {
        return Err(bad(file, line, "a rate is above 0", raw));
    }
    if rate >= cloudbill_core::MAX_ENTERED_AMOUNT {
        return Err(bad(file, line, "a rate is below 10^18", raw));
    }
    Ok(rate)
}

fn date_value(file: &str, line: usize, raw: &str) -> Result<NaiveDate, ServiceError> {
    cloudbill_core::parse_date(raw).map_err(|e| {
        bad(
            file,
            line,
            &format!("not a date cloudbill takes ({e})"),
            raw,
        )
    })
}

fn currency_value(file: &str, line: usize, raw: &str) -> Result<Currency, ServiceError> {
    Currency::parse(raw.trim()).map_err(|_| bad(file, line, "not an ISO 4217 currency code", raw))
}

#[allow(clippy::too_many_lines)] // Two layouts, each line checked in order.
/// Parses a rate file: the ECB layout (`Date,USD,JPY,…`, units per 1 EUR, `N/A` for none) or
/// `date,base,quote,rate`. Every error names the file, the line and the value.
pub fn parse_rates(
    file: &str,
    text: &str,
    source: &str,
) -> Result<(Vec<FxRate>, &'static str), ServiceError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(ServiceError::Invalid(format!("{file}: the file is empty")));
    };
    let header: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    let mut seen: HashMap<(NaiveDate, Currency, Currency), Decimal> = HashMap::new();
    let mut push = |rate: FxRate, line: usize, out: &mut Vec<FxRate>| -> Result<(), ServiceError> {
        match seen.insert((rate.date, rate.base, rate.quote), rate.rate) {
            Some(before) if before != rate.rate => Err(bad(
                file,
                line,
                &format!(
                    "{} {}/{} is given twice with different rates ({before} and {})",
                    rate.date, rate.base, rate.quote, rate.rate
                ),
                &rate.rate.to_string(),
            )),
            Some(_) => Ok(()),
            None => {
                if out.len() >= MAX_RATES_PER_FILE {
                    return Err(ServiceError::Invalid(format!(
                        "{file}: more than {MAX_RATES_PER_FILE} rates"
                    )));
                }
                out.push(rate);
                Ok(())
            }
        }
    };
    let layout = if header.first().map(String::as_str) == Some("date")
        && header.get(1).map(String::as_str) != Some("base")
    {
        // ECB: one column per quote currency, units per 1 EUR.
        let eur = Currency::parse("EUR").map_err(ServiceError::from)?;
        let quotes: Vec<Option<Currency>> = header[1..]
            .iter()
            .map(|c| {
                if c.is_empty() {
                    Ok(None) // the ECB's trailing comma
                } else {
                    currency_value(file, 1, c).map(Some)
                }
            })
            .collect::<Result<_, _>>()?;
        let width = header.len();
        let trailing = header.last().is_some_and(String::is_empty);
        for (i, line) in lines {
            let n = i + 1;
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != width && !(trailing && cells.len() + 1 == width) {
                return Err(bad(
                    file,
                    n,
                    &format!(
                        "expected {} cells like the header, found {}",
                        width - usize::from(trailing),
                        cells.len()
                    ),
                    line,
                ));
            }
            let date = date_value(file, n, cells[0])?;
            for (quote, raw) in quotes.iter().zip(cells.iter().skip(1)) {
                let raw = raw.trim();
                let Some(quote) = quote else { continue };
                if raw.is_empty() || raw.eq_ignore_ascii_case("n/a") {
                    continue;
                }
                let rate = rate_value(file, n, raw)?;
                push(
                    FxRate {
                        date,
                        base: eur,
                        quote: *quote,
                        rate,
                        source: source.to_owned(),
                    },
                    n,
                    &mut out,
                )?;
            }
        }
        "ecb"
    } else if header == ["date", "base", "quote", "rate"] {
        for (i, line) in lines {
            let n = i + 1;
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != 4 {
                return Err(bad(file, n, "expected date,base,quote,rate", line));
            }
            let (base, quote) = (
                currency_value(file, n, cells[1])?,
                currency_value(file, n, cells[2])?,
            );
            if base == quote {
                return Err(bad(file, n, "base and quote are the same currency", line));
            }
            let rate = FxRate {
                date: date_value(file, n, cells[0])?,
                base,
                quote,
                rate: rate_value(file, n, cells[3])?,
                source: source.to_owned(),
            };
            push(rate, n, &mut out)?;
        }
        "pairs"
    } else {
        return Err(ServiceError::Invalid(format!(
            "{file}:1: expected the ECB layout (Date,USD,JPY,…) or date,base,quote,rate, not {:?}",
            cloudbill_core::cut(&header.join(","), 60)
        )));
    };
    Ok((out, layout))
}

/// The rates of a domain arranged for lookups: per (base, quote), dated rates in order.
/// Dated rates of one pair: (date, rate, source), by date.
type Dated = Vec<(NaiveDate, Decimal, String)>;

struct RateBook {
    pairs: HashMap<(Currency, Currency), Dated>,
    bases: BTreeSet<Currency>,
}

/// What a conversion factor came from.
struct Factor {
    from_rate: Decimal,
    to_rate: Decimal,
    date: NaiveDate,
    source: String,
}

impl RateBook {
    fn new(rates: Vec<FxRate>) -> Self {
        let mut pairs: HashMap<(Currency, Currency), Dated> = HashMap::new();
        let mut bases = BTreeSet::new();
        for r in rates {
            bases.insert(r.base);
            pairs
                .entry((r.base, r.quote))
                .or_default()
                .push((r.date, r.rate, r.source));
        }
        for v in pairs.values_mut() {
            v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
        }
        Self { pairs, bases }
    }

    /// The latest rate of base → quote on or before `day`, at most `lookback` days before
    /// (`None`: any age). A currency against itself is 1.
    fn rate(
        &self,
        base: Currency,
        quote: Currency,
        day: NaiveDate,
        lookback: Option<i64>,
    ) -> Option<(Decimal, NaiveDate, String)> {
        if base == quote {
            return Some((Decimal::ONE, day, String::new()));
        }
        let list = self.pairs.get(&(base, quote))?;
        let at = list.partition_point(|(d, _, _)| *d <= day);
        let (d, r, s) = list.get(at.checked_sub(1)?)?;
        if lookback.is_some_and(|l| (day - *d).num_days() > l) {
            return None;
        }
        Some((*r, *d, s.clone()))
    }

    /// How to turn `from` into `to` on `day`: through a base both are quoted against (the
    /// file's base: `amount / rate(base→from) × rate(base→to)`), `from` or `to` being that base.
    fn factor(
        &self,
        from: Currency,
        to: Currency,
        day: NaiveDate,
        lookback: Option<i64>,
    ) -> Option<Factor> {
        let mut bases: Vec<Currency> = vec![from, to];
        bases.extend(
            self.bases
                .iter()
                .copied()
                .filter(|b| *b != from && *b != to),
        );
        for base in bases {
            let (Some(f), Some(t)) = (
                self.rate(base, from, day, lookback),
                self.rate(base, to, day, lookback),
            ) else {
                continue;
            };
            // The older of the two dates is the one that matters for staleness.
            let (date, source) = if from != base && (to == base || f.1 <= t.1) {
                (f.1, f.2)
            } else {
                (t.1, t.2)
            };
            return Some(Factor {
                from_rate: f.0,
                to_rate: t.0,
                date,
                source,
            });
        }
        None
    }
}

/// The last day of the `granularity` bucket holding `day`.
fn bucket_end(day: NaiveDate, granularity: Granularity) -> NaiveDate {
    match granularity {
        Granularity::Daily => day,
        Granularity::Monthly => day
            .with_day(1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            .and_then(|d| d.pred_opt())
            .unwrap_or(day),
        Granularity::Yearly => NaiveDate::from_ymd_opt(day.year(), 12, 31).unwrap_or(day),
    }
}

impl Billing {
    /// Imports a rate file (admin only): every rate checked first, then stored in one
    /// transaction; `source` names them (default `ecb` for the ECB layout, the file name for
    /// pairs).
    pub async fn import_rates(
        &self,
        p: &Principal,
        file: &str,
        text: &str,
        source: Option<&str>,
    ) -> Result<RateImport, ServiceError> {
        p.require_admin("import exchange rates")?;
        let default_source = if text
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase()
            .starts_with("date,base")
        {
            file.rsplit('/').next().unwrap_or(file).to_owned()
        } else {
            "ecb".to_owned()
        };
        let source = source.map_or(default_source, str::to_owned);
        check_source(&source)?;
        let (rates, layout) = parse_rates(file, text, &source)?;
        let new = self.fx_store().put_rates(self.domain_id(), &rates).await?;
        Ok(RateImport {
            file: file.to_owned(),
            layout,
            rates: rates.len(),
            new,
            first: rates.iter().map(|r| r.date).min(),
            last: rates.iter().map(|r| r.date).max(),
        })
    }

    /// Sets one rate by hand (admin only; source `manual` unless named, e.g. a fixed set).
    pub async fn set_rate(
        &self,
        p: &Principal,
        date: &str,
        base: &str,
        quote: &str,
        rate: &str,
        source: Option<&str>,
    ) -> Result<FxRate, ServiceError> {
        p.require_admin("set exchange rates")?;
        let source = source.unwrap_or("manual");
        check_source(source)?;
        let rate = FxRate {
            date: date_value("fx set", 1, date)?,
            base: currency_value("fx set", 1, base)?,
            quote: currency_value("fx set", 1, quote)?,
            rate: rate_value("fx set", 1, rate)?,
            source: source.to_owned(),
        };
        if rate.base == rate.quote {
            return Err(ServiceError::Invalid(
                "base and quote are the same currency".into(),
            ));
        }
        self.fx_store()
            .put_rates(self.domain_id(), std::slice::from_ref(&rate))
            .await?;
        Ok(rate)
    }

    /// `amount` of `from` in `to` on `day` (the daily policy's rate: that day's or the latest
    /// of the 7 before), rounded half to even to [`CONVERTED_SCALE`] places.
    pub(crate) async fn convert_amount(
        &self,
        amount: Decimal,
        from: Currency,
        to: Currency,
        day: NaiveDate,
    ) -> Result<Decimal, ServiceError> {
        let book = RateBook::new(self.fx_store().rates(self.domain_id(), None).await?);
        let f = book
            .factor(from, to, day, Some(MAX_RATE_LOOKBACK_DAYS))
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "no {from} → {to} rate for {day} or the {MAX_RATE_LOOKBACK_DAYS} days before it"
                ))
            })?;
        amount
            .checked_div(f.from_rate)
            .and_then(|v| v.checked_mul(f.to_rate))
            .map(|v| {
                v.round_dp_with_strategy(
                    CONVERTED_SCALE,
                    rust_decimal::RoundingStrategy::MidpointNearestEven,
                )
            })
            .ok_or_else(|| ServiceError::Invalid(format!("converting {amount} {from} overflows")))
    }

    /// The stored rates (of one source).
    pub async fn fx_rates(&self, source: Option<&str>) -> Result<Vec<FxRate>, ServiceError> {
        Ok(self.fx_store().rates(self.domain_id(), source).await?)
    }

    /// `query` answered in `currency`: each (day, source currency) cell converted by
    /// `policy`, rounded half to even to [`CONVERTED_SCALE`] places, then summed; the result
    /// states the rates used. A cell without a rate fails the whole report, naming the
    /// currency and the day.
    #[allow(clippy::too_many_lines)] // Read, convert, re-bucket, sort: one pass.
    pub async fn report_in(
        &self,
        p: &Principal,
        query: &Query,
        currency: Currency,
        policy: &FxPolicy,
    ) -> Result<Report, ServiceError> {
        let mut daily = query.clone();
        daily.granularity = Granularity::Daily;
        daily.limit = None;
        let keep_currency = query.group_by.contains(&GroupKey::Currency);
        if !keep_currency {
            daily.group_by.push(GroupKey::Currency);
        }
        let cells = self.report(p, &daily).await?;
        let book = RateBook::new(match policy {
            FxPolicy::Fixed(name) => self.fx_store().rates(self.domain_id(), Some(name)).await?,
            _ => self.fx_store().rates(self.domain_id(), None).await?,
        });
        let lookback = match policy {
            FxPolicy::Fixed(_) => None,
            _ => Some(MAX_RATE_LOOKBACK_DAYS),
        };
        let mut used: BTreeMap<Currency, (NaiveDate, NaiveDate, BTreeSet<String>)> =
            BTreeMap::new();
        let mut rows: BTreeMap<BTreeMap<String, String>, BTreeMap<String, Decimal>> =
            BTreeMap::new();
        for row in &cells.results {
            let mut group = row.group.clone();
            if !keep_currency {
                group.remove(GroupKey::Currency.as_str());
            }
            let buckets = rows.entry(group).or_default();
            for b in &row.billing_data {
                let day: NaiveDate = b.date.parse().map_err(|_| {
                    ServiceError::Internal(format!("unexpected daily bucket {:?}", b.date))
                })?;
                let converted = if b.currency == currency {
                    b.cost
                } else {
                    let rate_day = match policy {
                        FxPolicy::PeriodEnd => bucket_end(day, query.granularity)
                            .min(query.range.end().pred_opt().unwrap_or(day)),
                        _ => day,
                    };
                    let f = book.factor(b.currency, currency, rate_day, lookback).ok_or_else(|| {
                        ServiceError::Invalid(format!(
                            "no {} → {currency} rate for {rate_day}{}: import rates (cloudbill fx import) or set one (cloudbill fx set {rate_day} … )",
                            b.currency,
                            match policy {
                                FxPolicy::Fixed(n) => format!(" in the fixed set {n:?}"),
                                _ => format!(" or the {MAX_RATE_LOOKBACK_DAYS} days before it"),
                            }
                        ))
                    })?;
                    let slot = used
                        .entry(b.currency)
                        .or_insert((f.date, f.date, BTreeSet::new()));
                    slot.0 = slot.0.min(f.date);
                    slot.1 = slot.1.max(f.date);
                    if !f.source.is_empty() {
                        slot.2.insert(f.source.clone());
                    }
                    (b.cost
                        .checked_div(f.from_rate)
                        .and_then(|v| v.checked_mul(f.to_rate)))
                    .ok_or_else(|| {
                        ServiceError::Invalid(format!(
                            "converting {} {} on {day} overflows",
                            b.cost, b.currency
                        ))
                    })?
                    .round_dp_with_strategy(
                        CONVERTED_SCALE,
                        rust_decimal::RoundingStrategy::MidpointNearestEven,
                    )
                };
                let label = query.granularity.label(day);
                let slot = buckets.entry(label).or_default();
                *slot = slot.checked_add(converted).ok_or_else(|| {
                    ServiceError::Invalid(format!("the {currency} total of {day} overflows"))
                })?;
            }
        }
        let mut results: Vec<ReportRow> = rows
            .into_iter()
            .map(|(group, buckets)| {
                let mut total = Decimal::ZERO;
                for v in buckets.values() {
                    total = cloudbill_core::exact(total.checked_add(*v), || {
                        format!("the converted {currency} total of a group")
                    })?;
                }
                Ok(ReportRow {
                    group,
                    billing_data: buckets
                        .into_iter()
                        .map(|(date, cost)| Bucket {
                            date,
                            cost,
                            currency,
                        })
                        .collect(),
                    total: vec![Amount {
                        cost: total,
                        currency,
                    }],
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        match query.sort {
            Sort::Total => results.sort_by(|a, b| {
                b.total[0]
                    .cost
                    .cmp(&a.total[0].cost)
                    .then_with(|| a.group.cmp(&b.group))
            }),
            Sort::Key => results.sort_by(|a, b| a.group.cmp(&b.group)),
        }
        let total_count = results.len();
        results.drain(..(query.offset as usize).min(results.len()));
        if let Some(limit) = query.limit {
            results.truncate(limit as usize);
        }
        Ok(Report {
            start: cells.start,
            end: cells.end,
            granularity: query.granularity,
            group_by: query.group_by.clone(),
            results,
            total_count,
            conversion: Some(Conversion {
                currency,
                policy: policy.name(),
                rates: used
                    .into_iter()
                    .map(|(from, (first, last, sources))| RatesUsed {
                        from,
                        first_rate_date: first,
                        last_rate_date: last,
                        sources: sources.into_iter().collect(),
                    })
                    .collect(),
            }),
        })
    }
}

fn check_source(source: &str) -> Result<(), ServiceError> {
    if source.is_empty() || source.len() > 64 || source.chars().any(|c| c.is_control() || c == ',')
    {
        return Err(ServiceError::Invalid(format!(
            "rate source {:?}: 1 to 64 characters, no commas or control characters",
            cloudbill_core::cut(source, 40)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_ecb_layout_and_pairs_parse_and_errors_name_file_line_and_value() {
        let ecb =
            "Date,USD,JPY,KRW,\n2025-03-14,1.0871,161.03,N/A,\n2025-03-13,1.0854,160.12,1573.4,\n";
        let (rates, layout) = parse_rates("eurofxref.csv", ecb, "ecb").unwrap();
        assert_eq!(layout, "ecb");
        assert_eq!(rates.len(), 5, "N/A is no rate");
        assert!(rates.iter().all(|r| r.base.as_str() == "EUR"));
        let pairs = "date,base,quote,rate\n2025-03-14,USD,JPY,148.1\n";
        assert_eq!(
            parse_rates("p.csv", pairs, "p").unwrap().0[0].rate,
            "148.1".parse().unwrap()
        );
        for (text, needle) in [
            ("Date,USD\n2025-03-14,0\n", "f.csv:2: a rate is above 0"),
            ("Date,USD\n2025-03-14,-1.2\n", "f.csv:2: a rate is above 0"),
            (
                "Date,USD\n2025-03-14,abc\n",
                "f.csv:2: the rate is not a decimal",
            ),
            ("Date,XYZ\n2025-03-14,1\n", "f.csv:1: not an ISO 4217"),
            ("Date,USD\n2025-13-01,1\n", "f.csv:2: not a date"),
            (
                "date,base,quote,rate\n2025-03-14,USD,JPY,1\n2025-03-14,USD,JPY,2\n",
                "f.csv:3: 2025-03-14 USD/JPY is given twice",
            ),
            (
                "date,base,quote,rate\n2025-03-14,USD,USD,1\n",
                "same currency",
            ),
            ("a,b\n1,2\n", "f.csv:1: expected the ECB layout"),
            ("", "empty"),
        ] {
            let err = parse_rates("f.csv", text, "x").unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn cross_rates_go_through_the_base_and_weekends_use_friday() {
        let (rates, _) = parse_rates(
            "ecb.csv",
            "Date,USD,JPY\n2025-03-14,1.0871,161.03\n2025-03-13,1.0854,160.12\n",
            "ecb",
        )
        .unwrap();
        let book = RateBook::new(rates);
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let eur = Currency::parse("EUR").unwrap();
        // Saturday 2025-03-15 uses Friday's rates.
        let f = book.factor(usd, jpy, d("2025-03-15"), Some(7)).unwrap();
        assert_eq!(
            (f.from_rate, f.to_rate, f.date),
            (
                "1.0871".parse().unwrap(),
                "161.03".parse().unwrap(),
                d("2025-03-14")
            )
        );
        let f = book.factor(usd, eur, d("2025-03-13"), Some(7)).unwrap();
        assert_eq!(
            (f.from_rate, f.to_rate),
            ("1.0854".parse().unwrap(), Decimal::ONE)
        );
        // Eight days after the last rate: none.
        assert!(book.factor(usd, eur, d("2025-03-22"), Some(7)).is_none());
        assert!(book.factor(usd, eur, d("2025-03-21"), Some(7)).is_some());
        assert!(
            book.factor(usd, eur, d("2025-03-12"), Some(7)).is_none(),
            "before the first rate"
        );
        assert_eq!(
            bucket_end(d("2025-02-10"), Granularity::Monthly),
            d("2025-02-28")
        );
    }
}
