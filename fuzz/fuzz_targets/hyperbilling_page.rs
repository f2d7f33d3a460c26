//! The Hyperbilling page decoder: any body gives records or an error, never a panic.
#![no_main]

use cloudbill_core::{AccountId, DateRange, DomainId};
use cloudbill_hyperbilling::bench_support::decode_page;
use cloudbill_provider::FetchScope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scope = FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    };
    let Ok(window) = DateRange::parse("2025-01-01", "2025-02-01") else {
        return;
    };
    let mut out = Vec::new();
    if decode_page(data, scope, "111111111111", window, &mut out).is_ok() {
        for r in &out {
            assert!(window.contains(r.date), "a record outside the window was accepted");
        }
    }
});
