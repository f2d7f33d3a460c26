//! Hyperbilling rows to cost records: region codes, exact numbers, dates.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};

use cloudbill_core::{
    aws::service_category, parse_decimal, Attribute, ChargeCategory, CostRecord, Currency,
    DateRange, Decimal, Money, NaiveDate, ProviderKind,
};
use cloudbill_provider::{FetchScope, ProviderError};
use serde_json::value::RawValue;

use crate::wire::{BillingPage, WireRow};
use crate::PROVIDER_NAME;

/// The region a missing, null or empty REGION maps to.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The AWS region for a Hyperbilling billing-region code. Missing, null or `""` is
/// `us-east-1`; an unknown code is kept as given (and logged once).
///
/// ```
/// use cloudbill_hyperbilling::region_for_code;
/// assert_eq!(region_for_code(Some("APN2")), "ap-northeast-2");
/// assert_eq!(region_for_code(None), "us-east-1");
/// assert_eq!(region_for_code(Some("MARS1")), "MARS1");
/// ```
pub fn region_for_code(code: Option<&str>) -> Cow<'_, str> {
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Cow::Borrowed(DEFAULT_REGION);
    };
    let region = match code {
        "APN1" => "ap-northeast-1",
        "APN2" => "ap-northeast-2",
        "APN3" => "ap-northeast-3",
        "APS1" => "ap-southeast-1",
        "APS2" => "ap-southeast-2",
        "APS3" => "ap-south-1",
        "CAN1" => "ca-central-1",
        "EUC1" => "eu-central-1",
        "EU" | "EUW1" => "eu-west-1",
        "EUW2" => "eu-west-2",
        "EUW3" => "eu-west-3",
        "EUN1" => "eu-north-1",
        "SAE1" => "sa-east-1",
        "USE1" => "us-east-1",
        "USE2" => "us-east-2",
        "USW1" => "us-west-1",
        "USW2" => "us-west-2",
        "UGW1" => "us-gov-west-1",
        unknown => {
            log_unknown_region_once(unknown);
            return Cow::Borrowed(unknown);
        }
    };
    Cow::Borrowed(region)
}

fn log_unknown_region_once(code: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.insert(code.to_owned()) {
        tracing::warn!(code, "unknown Hyperbilling region code, kept as given");
    }
}

fn malformed(detail: impl Into<String>) -> ProviderError {
    ProviderError::InvalidResponse {
        provider: PROVIDER_NAME,
        detail: detail.into(),
    }
}

/// A bare JSON number (or, leniently, a numeric string) read exactly.
fn exact_number(raw: Option<&RawValue>, field: &str) -> Result<Decimal, ProviderError> {
    let text = raw.map_or("null", RawValue::get);
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    parse_decimal(unquoted)
        .map_err(|e| e.to_string())
        .and_then(cloudbill_core::check_bill_amount)
        .map_err(|e| malformed(format!("{field}: {e}")))
}

fn parse_date(raw: &str) -> Result<NaiveDate, ProviderError> {
    let day = raw.get(..10).unwrap_or(raw);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| malformed(format!("USAGE_DATE {raw:?} is not a YYYY-MM-DD date")))
}

/// Converts one wire row. Dates outside `window` are a provider error (we asked for `window`).
fn to_record(
    row: &WireRow<'_>,
    scope: FetchScope,
    cloud_account: &str,
    window: DateRange,
    dates: &mut BTreeMap<String, NaiveDate>,
) -> Result<CostRecord, ProviderError> {
    let g = &row.group_by;
    let date = match dates.get(g.usage_date.as_ref()) {
        Some(d) => *d,
        None => {
            let d = parse_date(&g.usage_date)?;
            dates.insert(g.usage_date.to_string(), d);
            d
        }
    };
    if !window.contains(date) {
        return Err(malformed(format!(
            "row dated {date} outside the requested window {window}"
        )));
    }
    let cost = exact_number(row.value.usage_cost, "USAGE_COST")?;
    let usage_quantity = match row.value.usage_quantity {
        None => Decimal::ZERO,
        raw => exact_number(raw, "USAGE_QUANTITY")?,
    };
    let service = g.service_code.as_deref().unwrap_or_default().to_owned();
    Ok(CostRecord {
        domain: scope.domain,
        service_account: scope.service_account,
        provider: ProviderKind::HyperbillingAws,
        cloud_account: cloud_account.to_owned(),
        date,
        region: region_for_code(g.region.as_deref()).into_owned(),
        usage_type: g.usage_type.as_deref().unwrap_or_default().to_owned(),
        instance_type: g
            .instance_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        usage_quantity,
        cost: Money::new(cost, Currency::USD),
        effective_cost: None,
        list_cost: None,
        charge_category: if cost.is_sign_negative() && !cost.is_zero() {
            ChargeCategory::Credit
        } else {
            ChargeCategory::Usage
        },
        tags: BTreeMap::new(),
        attributes: BTreeMap::from([
            (
                Attribute::ServiceCategory,
                service_category(&service).to_owned(),
            ),
            (Attribute::PublisherName, PUBLISHER.to_owned()),
            // The AWS account Hyperbilling bills is the billing account.
            (Attribute::BillingAccountId, cloud_account.to_owned()),
            (Attribute::ProviderName, RESELLER.to_owned()),
            (Attribute::InvoiceIssuerName, RESELLER.to_owned()),
        ]),
        measures: BTreeMap::new(),
        extensions: BTreeMap::new(),
        service,
    })
}

/// FOCUS ProviderName and InvoiceIssuerName of everything synced from Hyperbilling for AWS:
/// the reseller that sells and invoices it (FOCUS 1.2 reads a provider other than the invoice
/// issuer as a third party's sale, billed at 0).
pub(crate) const RESELLER: &str = "Hyperbilling";

/// FOCUS PublisherName of everything Hyperbilling for AWS resells.
pub const PUBLISHER: &str = "Amazon Web Services";

/// Decodes one billing page body into records, appending to `out`; returns the next-page token.
pub fn decode_page(
    body: &[u8],
    scope: FetchScope,
    cloud_account: &str,
    window: DateRange,
    out: &mut Vec<CostRecord>,
) -> Result<Option<String>, ProviderError> {
    let page: BillingPage<'_> =
        serde_json::from_slice(body).map_err(|e| malformed(format!("billing page: {e}")))?;
    out.reserve(page.results.len());
    let mut dates = BTreeMap::new();
    for row in &page.results {
        out.push(to_record(row, scope, cloud_account, window, &mut dates)?);
    }
    Ok(page
        .next_data_token
        .map(Cow::into_owned)
        .filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use cloudbill_core::{AccountId, DomainId};

    use super::*;

    fn scope() -> FetchScope {
        FetchScope {
            domain: DomainId::new(),
            service_account: AccountId::new(),
        }
    }

    #[test]
    fn every_documented_region_code_maps() {
        let table = [
            ("APN1", "ap-northeast-1"),
            ("APN2", "ap-northeast-2"),
            ("APN3", "ap-northeast-3"),
            ("APS1", "ap-southeast-1"),
            ("APS2", "ap-southeast-2"),
            ("APS3", "ap-south-1"),
            ("CAN1", "ca-central-1"),
            ("EUC1", "eu-central-1"),
            ("EU", "eu-west-1"),
            ("EUW1", "eu-west-1"),
            ("EUW2", "eu-west-2"),
            ("EUW3", "eu-west-3"),
            ("EUN1", "eu-north-1"),
            ("SAE1", "sa-east-1"),
            ("USE1", "us-east-1"),
            ("USE2", "us-east-2"),
            ("USW1", "us-west-1"),
            ("USW2", "us-west-2"),
            ("UGW1", "us-gov-west-1"),
        ];
        for (code, region) in table {
            assert_eq!(region_for_code(Some(code)), region, "{code}");
        }
        assert_eq!(region_for_code(None), "us-east-1");
        assert_eq!(region_for_code(Some("")), "us-east-1");
        assert_eq!(region_for_code(Some("XYZ9")), "XYZ9");
    }

    #[test]
    fn decodes_exact_numbers_nulls_and_credits() {
        let body = br#"{"Results":[
            {"GroupBy":{"USAGE_DATE":"2025-01-31","REGION":null,"SERVICE_CODE":"AmazonEC2","USAGE_TYPE":"BoxUsage:t3.micro","INSTANCE_TYPE":"t3.micro"},
             "Value":{"USAGE_COST":123.4567890123,"USAGE_QUANTITY":24.0000000001}},
            {"GroupBy":{"USAGE_DATE":"2025-01-01","REGION":"","SERVICE_CODE":"AWSCredit","USAGE_TYPE":"Credit","INSTANCE_TYPE":""},
             "Value":{"USAGE_COST":-0.0000000001,"USAGE_QUANTITY":0}},
            {"GroupBy":{"USAGE_DATE":"2025-01-02","REGION":"APN2","SERVICE_CODE":"AmazonS3","USAGE_TYPE":"Storage","INSTANCE_TYPE":""},
             "Value":{"USAGE_COST":9.6E-6,"USAGE_QUANTITY":1e3}}
        ],"NextDataToken":"abc"}"#;
        let window = DateRange::parse("2025-01-01", "2025-02-01").unwrap();
        let mut out = vec![];
        let next = decode_page(body, scope(), "111111111111", window, &mut out).unwrap();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(out[0].cost.amount().to_string(), "123.4567890123");
        assert_eq!(out[0].usage_quantity.to_string(), "24.0000000001");
        assert_eq!(out[0].region, "us-east-1");
        assert_eq!(out[0].instance_type.as_deref(), Some("t3.micro"));
        assert_eq!(out[1].cost.amount().to_string(), "-0.0000000001");
        assert_eq!(out[1].charge_category, ChargeCategory::Credit);
        assert_eq!(out[1].instance_type, None);
        assert_eq!(out[2].region, "ap-northeast-2");
        assert_eq!(out[2].cost.amount().to_string(), "0.0000096");
        assert_eq!(out[2].cloud_account, "111111111111");
    }

    #[test]
    fn malformed_pages_are_errors_not_panics() {
        let window = DateRange::parse("2025-01-01", "2025-02-01").unwrap();
        let cases: [&[u8]; 5] = [
            b"{not json",
            br#"{"Results":[{"GroupBy":{"USAGE_DATE":"31/01/2025"},"Value":{"USAGE_COST":1}}]}"#,
            br#"{"Results":[{"GroupBy":{"USAGE_DATE":"2025-01-05"},"Value":{"USAGE_COST":"abc"}}]}"#,
            br#"{"Results":[{"GroupBy":{"USAGE_DATE":"2025-01-05"},"Value":{"USAGE_COST":null}}]}"#,
            br#"{"Results":[{"GroupBy":{"USAGE_DATE":"2025-03-05"},"Value":{"USAGE_COST":1}}]}"#,
        ];
        for body in cases {
            let err = decode_page(body, scope(), "1", window, &mut vec![]).unwrap_err();
            assert!(
                matches!(err, ProviderError::InvalidResponse { .. }),
                "{err} for {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
