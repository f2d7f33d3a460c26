//! The codec's contract: lossless round trips, a directory that tolerates missing and unknown
//! columns, damaged blobs refused, and the previous format converted exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use cloudbill_columnar::{encode_partition, legacy, Column, Partition};
use cloudbill_core::{
    parse_decimal, AccountId, ChargeCategory, CostRecord, Currency, Decimal, DomainId, Money,
    NaiveDate, ProviderKind,
};
use proptest::prelude::*;

fn rec(day: u32, cost: &str, service: &str, currency: &str) -> CostRecord {
    CostRecord {
        domain: DomainId::new(),
        service_account: AccountId::new(),
        provider: ProviderKind::File,
        cloud_account: "111".into(),
        date: NaiveDate::from_ymd_opt(2025, 3, day).unwrap(),
        region: "eu-west-1".into(),
        service: service.into(),
        usage_type: "u".into(),
        instance_type: None,
        usage_quantity: Decimal::ONE,
        cost: Money::new(
            parse_decimal(cost).unwrap(),
            Currency::parse(currency).unwrap(),
        ),
        effective_cost: None,
        list_cost: None,
        charge_category: ChargeCategory::Credit,
        tags: std::collections::BTreeMap::new(),
        attributes: std::collections::BTreeMap::new(),
        measures: std::collections::BTreeMap::new(),
        extensions: std::collections::BTreeMap::new(),
    }
}

fn owned(records: &mut [CostRecord]) -> (DomainId, AccountId) {
    let (domain, account) = (DomainId::new(), AccountId::new());
    for r in records {
        r.domain = domain;
        r.service_account = account;
    }
    (domain, account)
}

fn march() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()
}

#[test]
fn round_trips_every_field_exactly() {
    let mut records = vec![
        rec(31, "-0.0000000001", "EC2", "USD"),
        rec(1, "123456789012.12345678901", "S3 \"x\"", "EUR"),
        rec(2, "9.6E-6", "EC2", "USD"),
        rec(2, "1.50", "EC2", "USD"),
    ];
    records[1].instance_type = Some("m5.large".into());
    records[1].effective_cost = Some(parse_decimal("-0.12345678901234").unwrap());
    records[1].list_cost = Some(Decimal::ZERO);
    records[1].tags.insert("team".into(), "a,\"b\"".into());
    records[2].provider = ProviderKind::HyperbillingAws;
    records[2].usage_quantity = parse_decimal("1e-20").unwrap();
    records[3].charge_category = ChargeCategory::Tax;
    let (domain, account) = owned(&mut records);
    let refs: Vec<&CostRecord> = records.iter().collect();
    let blob = encode_partition(march(), &refs);
    assert_eq!((blob.month(), blob.rows()), (march(), 4));
    let p = Partition::decode(blob.as_bytes()).unwrap();
    assert_eq!(p.month, march());
    assert_eq!(p.rows, 4);
    assert_eq!(p.costs().unwrap().scale, 11);
    p.validate().unwrap();
    let back = p.records(domain, account).unwrap();
    assert_eq!(back, records);
    assert_eq!(back[3].cost.amount().to_string(), "1.50", "scale kept");
    // Providers and categories are dictionary text like any other dimension.
    assert_eq!(
        p.text(Column::Provider).unwrap().values,
        ["file", "hyperbilling-aws"]
    );
    assert_eq!(
        p.text(Column::ChargeCategory).unwrap().values,
        ["Credit", "Tax"]
    );
    let names: Vec<&str> = p.column_names().collect();
    assert_eq!(names, Column::ALL.map(Column::name));
    let mut totals = p.daily_totals().unwrap();
    totals.sort();
    assert_eq!(
        totals
            .iter()
            .map(|(d, c, a)| format!("{d} {c} {a}"))
            .collect::<Vec<_>>(),
        [
            "2025-03-01 EUR 123456789012.12345678901",
            "2025-03-02 USD 1.50000960000",
            "2025-03-31 USD -0.00000000010",
        ]
    );
}

/// The directory of a blob: (name, kind, offset of its bytes, length).
fn directory(blob: &[u8]) -> (usize, Vec<(String, u8, usize, usize)>) {
    let count = usize::from(u16::from_le_bytes([blob[12], blob[13]]));
    let mut at = 14;
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = usize::from(blob[at]);
        let name = String::from_utf8(blob[at + 1..at + 1 + len].to_vec()).unwrap();
        let kind = blob[at + 1 + len];
        let size = u32::from_le_bytes(blob[at + 2 + len..at + 6 + len].try_into().unwrap());
        entries.push((name, kind, 0, size as usize));
        at += 6 + len;
    }
    let mut offset = at;
    for e in &mut entries {
        e.2 = offset;
        offset += e.3;
    }
    (at, entries)
}

/// `blob` rebuilt with its directory edited by `edit` (name, kind, bytes).
fn rebuilt(blob: &[u8], edit: impl FnOnce(&mut Vec<(String, u8, Vec<u8>)>)) -> Vec<u8> {
    let (_, entries) = directory(blob);
    let mut columns: Vec<(String, u8, Vec<u8>)> = entries
        .into_iter()
        .map(|(n, k, at, len)| (n, k, blob[at..at + len].to_vec()))
        .collect();
    edit(&mut columns);
    let mut out = blob[..12].to_vec();
    out.extend_from_slice(&u16::try_from(columns.len()).unwrap().to_le_bytes());
    for (name, kind, bytes) in &columns {
        out.push(u8::try_from(name.len()).unwrap());
        out.extend_from_slice(name.as_bytes());
        out.push(*kind);
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
    }
    for (_, _, bytes) in &columns {
        out.extend_from_slice(bytes);
    }
    out
}

#[test]
fn a_missing_column_reads_as_no_value_and_an_unknown_one_is_skipped() {
    let mut records = vec![rec(5, "1.25", "EC2", "USD"), rec(6, "2", "S3", "USD")];
    records[0].list_cost = Some(parse_decimal("3").unwrap());
    records[0].instance_type = Some("t3.micro".into());
    let (domain, account) = owned(&mut records);
    let refs: Vec<&CostRecord> = records.iter().collect();
    let blob = encode_partition(march(), &refs).into_bytes();
    let older = rebuilt(&blob, |cols| {
        cols.retain(|(n, _, _)| n != "list_cost" && n != "instance_type");
        // A column of a kind this version does not know (a newer writer's).
        cols.push(("x_future".into(), 99, vec![1, 2, 3]));
    });
    let p = Partition::decode(&older).unwrap();
    p.validate().unwrap();
    let back = p.records(domain, account).unwrap();
    for (b, r) in back.iter().zip(&records) {
        assert_eq!(b.list_cost, None);
        assert_eq!(b.instance_type, None);
        assert_eq!(b.cost, r.cost);
        assert_eq!(b.service, r.service);
    }
    let mut ids = Vec::new();
    p.text(Column::InstanceType)
        .unwrap()
        .map_into(&[7u32], &mut ids, p.rows);
    assert_eq!(ids, [7, 7]);
}

#[test]
fn damaged_blobs_are_refused() {
    let records = [rec(5, "1", "EC2", "USD"), rec(6, "2", "S3", "USD")];
    let refs: Vec<&CostRecord> = records.iter().collect();
    let blob = encode_partition(march(), &refs).into_bytes();
    assert!(Partition::decode(&blob[..blob.len() - 1]).is_err());
    assert!(Partition::decode(b"nope").is_err());
    let mut extra = blob.clone();
    extra.push(0);
    assert!(Partition::decode(&extra).is_err());
    let (_, entries) = directory(&blob);
    let at = |name: &str| entries.iter().find(|e| e.0 == name).unwrap().2;
    // A day beyond the month.
    let mut bad_day = blob.clone();
    bad_day[at("day")] = 32;
    assert!(Partition::decode(&bad_day).is_err());
    // A text id beyond its dictionary: the service column's last byte is the last row's id.
    let (_, _, service_at, service_len) = entries.iter().find(|e| e.0 == "service").unwrap();
    let mut bad_id = blob.clone();
    bad_id[service_at + service_len - 1] = 9;
    let p = Partition::decode(&bad_id).unwrap();
    assert!(p.text(Column::Service).is_err());
    assert!(p.validate().is_err());
    assert!(p.records(DomainId::new(), AccountId::new()).is_err());
    // A known column with the wrong kind, a duplicate column, no cost column.
    let wrong_kind = rebuilt(&blob, |cols| {
        cols.iter_mut().find(|c| c.0 == "service").unwrap().1 = 4;
    });
    assert!(Partition::decode(&wrong_kind).unwrap().validate().is_err());
    let duplicate = rebuilt(&blob, |cols| {
        let again = cols[1].clone();
        cols.push(again);
    });
    assert!(Partition::decode(&duplicate).is_err());
    let no_cost = rebuilt(&blob, |cols| cols.retain(|c| c.0 != "cost"));
    assert!(Partition::decode(&no_cost).unwrap().validate().is_err());
    // A provider text that is no provider name (any well-formed name is one), an unknown
    // category.
    let unknown_provider = rebuilt(&blob, |cols| {
        let provider = cols.iter_mut().find(|c| c.0 == "provider").unwrap();
        let text = String::from_utf8_lossy(&provider.2).replace("file", "f le");
        provider.2 = text.into_bytes();
    });
    assert!(Partition::decode(&unknown_provider)
        .unwrap()
        .validate()
        .is_err());
    // The previous format is named, not misread.
    let legacy = std::fs::read("tests/fixtures/cbp2.bin").unwrap();
    let err = Partition::decode(&legacy).unwrap_err().to_string();
    assert!(err.contains("older format"), "{err}");
}

/// `tests/fixtures/cbp2.bin` was written by the previous codec (session 3's
/// `cloudbill-core::partition`); `cbp2.txt` lists its records as that codec read them back.
#[test]
fn the_previous_format_converts_exactly() {
    let blob = std::fs::read("tests/fixtures/cbp2.bin").unwrap();
    assert!(legacy::is_legacy(&blob));
    let upgraded = legacy::upgrade(&blob).unwrap();
    let p = Partition::decode(upgraded.as_bytes()).unwrap();
    p.validate().unwrap();
    let records = p.records(DomainId::new(), AccountId::new()).unwrap();
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {} {} {} {} {} {:?} {} {} {:?} {:?} {:?} {:?}",
                r.date,
                r.provider.as_str(),
                r.cloud_account,
                r.region,
                r.service,
                r.usage_type,
                r.usage_quantity,
                r.instance_type,
                r.cost.amount(),
                r.currency(),
                r.effective_cost.map(|d| d.to_string()),
                r.list_cost.map(|d| d.to_string()),
                r.charge_category.as_str(),
                r.tags
            )
        })
        .collect();
    let expected = std::fs::read_to_string("tests/fixtures/cbp2.txt").unwrap();
    assert_eq!(lines.join("\n") + "\n", expected);
    assert!(legacy::upgrade(upgraded.as_bytes()).is_err());
    assert!(legacy::upgrade(&blob[..blob.len() - 2]).is_err());
}

fn arb_record() -> impl Strategy<Value = CostRecord> {
    (
        1u32..=31,
        any::<i64>(),
        0u32..=20,
        prop::sample::select(vec!["EC2", "S3", "", "Ünïcode ☁"]),
        prop::sample::select(vec!["USD", "EUR", "JPY"]),
        prop::option::of((any::<i32>(), 0u32..=12)),
        prop::sample::select(vec![
            ChargeCategory::Usage,
            ChargeCategory::Credit,
            ChargeCategory::Tax,
        ]),
        prop::option::of("[a-z]{1,4}"),
        prop::collection::btree_map(
            prop::sample::select(cloudbill_core::Attribute::ALL.to_vec()),
            "[A-Za-z0-9 -]{1,6}",
            0..4,
        ),
        (
            prop::collection::btree_map(
                prop::sample::select(cloudbill_core::Measure::ALL.to_vec()),
                (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
                0..3,
            ),
            prop::collection::btree_map(
                prop::sample::select(vec!["x_Discount", "x_Operation", "x_Ünï"]),
                "[A-Za-z0-9 ]{1,6}",
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                day,
                mantissa,
                scale,
                service,
                currency,
                effective,
                category,
                tag,
                attributes,
                (measures, extensions),
            )| {
                let mut r = rec(day, "0", service, currency);
                r.cost = Money::new(
                    Decimal::new(mantissa, scale),
                    Currency::parse(currency).unwrap(),
                );
                r.effective_cost = effective.map(|(m, s)| Decimal::new(i64::from(m), s));
                r.charge_category = category;
                if let Some(t) = tag {
                    r.tags.insert("team".into(), t);
                }
                r.attributes = attributes;
                r.measures = measures;
                r.extensions = extensions
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                r
            },
        )
}

proptest! {
    #[test]
    fn any_records_round_trip(mut records in prop::collection::vec(arb_record(), 0..60)) {
        let (domain, account) = owned(&mut records);
        let refs: Vec<&CostRecord> = records.iter().collect();
        let blob = encode_partition(march(), &refs);
        let p = Partition::decode(blob.as_bytes()).unwrap();
        p.validate().unwrap();
        prop_assert_eq!(p.records(domain, account).unwrap(), records);
    }
}

#[test]
fn costs_that_share_no_scale_are_kept_wide_and_exact() {
    let mut records = vec![
        rec(1, "79228162514264337593543950335", "EC2", "USD"),
        rec(1, "0.0000000000000000000000000001", "EC2", "USD"),
        rec(2, "-1.50", "EC2", "USD"),
    ];
    let (domain, account) = owned(&mut records);
    let refs: Vec<&CostRecord> = records.iter().collect();
    let blob = encode_partition(march(), &refs);
    let p = Partition::decode(blob.as_bytes()).unwrap();
    p.validate().unwrap();
    let costs = p.costs().unwrap();
    assert!(costs.is_wide());
    assert_eq!(costs.scale, 28);
    assert_eq!(p.records(domain, account).unwrap(), records);
    let totals: Vec<String> = p
        .daily_totals()
        .unwrap()
        .iter()
        .map(|(d, c, a)| format!("{d} {c} {a}"))
        .collect();
    // The first day's sum is beyond any Decimal at scale 28: rust_decimal rounds the smaller
    // addend away, as Decimal addition does; the engine's 256-bit sums keep it.
    assert_eq!(totals.len(), 2);
    assert_eq!(totals[1], "2025-03-02 USD -1.50");
    // A narrow column of the same rows without the extreme one.
    let refs: Vec<&CostRecord> = records[1..].iter().collect();
    let p2 = encode_partition(march(), &refs);
    let p2 = Partition::decode(p2.as_bytes()).unwrap();
    assert!(!p2.costs().unwrap().is_wide());
    assert_eq!(p2.costs().unwrap().scale, 28);
}

/// A partition written before a column existed reads as without a value in it: measures and
/// `x_` columns are directory entries that only records with a value bring.
#[test]
fn measures_and_extensions_are_columns_only_when_present() {
    let mut records = vec![rec(1, "1.5", "EC2", "USD"), rec(2, "2", "S3", "USD")];
    let (domain, account) = owned(&mut records);
    let plain = encode_partition(march(), &records.iter().collect::<Vec<_>>());
    let p = Partition::decode(plain.as_bytes()).unwrap();
    assert!(p
        .column_names()
        .all(|n| n != "pricing_quantity" && !n.starts_with("x_")));
    assert_eq!(
        p.measure(cloudbill_core::Measure::PricingQuantity).unwrap(),
        vec![None, None]
    );
    records[1].measures.insert(
        cloudbill_core::Measure::PricingQuantity,
        "0.0000000001".parse().unwrap(),
    );
    records[1]
        .extensions
        .insert("x_Discount".into(), "EDP".into());
    let richer = encode_partition(march(), &records.iter().collect::<Vec<_>>());
    let p = Partition::decode(richer.as_bytes()).unwrap();
    assert!(p.column_names().any(|n| n == "pricing_quantity"));
    assert!(p.column_names().any(|n| n == "x_Discount"));
    assert_eq!(p.records(domain, account).unwrap(), records);
}

/// A provider cloudbill does not know is dictionary text like any other: it round-trips through
/// a partition unchanged.
#[test]
fn a_provider_not_built_in_round_trips() {
    let mut records = vec![rec(1, "1", "EC2", "USD"), rec(2, "2", "EC2", "USD")];
    let (domain, account) = owned(&mut records);
    records[1].provider = "azure-ea".parse().unwrap();
    let blob = encode_partition(march(), &records.iter().collect::<Vec<_>>());
    let p = Partition::decode(blob.as_bytes()).unwrap();
    p.validate().unwrap();
    let back = p.records(domain, account).unwrap();
    assert_eq!(back, records);
    assert_eq!(back[1].provider.as_str(), "azure-ea");
}
