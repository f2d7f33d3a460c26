//! The report query parser, and the engine answering what it accepts: any JSON body is a
//! query or an error, and a query an answer or an error — never a panic.
#![no_main]

use std::sync::OnceLock;

use cloudbill_aggregate::{Catalog, CatalogAccount, CatalogProject, Engine};
use cloudbill_core::{
    AccountId, Assignment, ChargeCategory, CostRecord, Currency, Decimal, DomainId, Money,
    NaiveDate, ProjectId, ProviderKind, MAX_RANGE_DAYS,
};
use cloudbill_service::ReportRequest;
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let project = ProjectId::new();
        let account = AccountId::new();
        let catalog = Catalog {
            accounts: vec![CatalogAccount {
                id: account,
                name: "acme".into(),
                history: vec![Assignment { project, from: None }],
            }],
            projects: vec![CatalogProject { id: project, name: "web".into(), group: None }],
            groups: vec![],
        };
        let domain = DomainId::new();
        let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
        let records: Vec<CostRecord> = (0..60i64)
            .map(|i| CostRecord {
                domain,
                service_account: account,
                provider: ProviderKind::HyperbillingAws,
                cloud_account: "111111111111".into(),
                date: day + chrono::Duration::days(i),
                region: ["us-east-1", "eu-west-1"][(i % 2) as usize].into(),
                service: ["AmazonEC2", "AmazonS3", "AWSLambda"][(i % 3) as usize].into(),
                usage_type: "u".into(),
                instance_type: None,
                usage_quantity: Decimal::ONE,
                cost: Money::new(Decimal::new(i * 12_345 - 100_000, 4), if i % 5 == 0 { Currency::parse("EUR").unwrap_or(Currency::USD) } else { Currency::USD }),
                effective_cost: None,
                list_cost: None,
                charge_category: ChargeCategory::Usage,
                tags: Default::default(),
                attributes: Default::default(),
                measures: Default::default(),
                extensions: Default::default(),
            })
            .collect();
        Engine::build(&records, catalog).unwrap_or_else(|e| panic!("fixture engine: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ReportRequest>(data) else {
        return;
    };
    let Ok(query) = request.to_query() else {
        return;
    };
    // The service refuses longer ranges before the engine sees them.
    if query.range.days() > MAX_RANGE_DAYS {
        return;
    }
    if let Ok(report) = engine().query(&query) {
        let _ = serde_json::to_string(&report).expect("a report serializes");
    }
});
