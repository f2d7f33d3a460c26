//! The columnar partition decoder: any bytes are an error or a partition whose every accessor
//! works — never a panic, never an allocation sized by a forged length.
#![no_main]

use cloudbill_core::{AccountId, DomainId, Partition};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Partition::decode(data) else {
        return;
    };
    if p.validate().is_err() {
        return;
    }
    let _ = p.daily_totals();
    let _ = p.costs();
    if let Ok(records) = p.records(DomainId::new(), AccountId::new()) {
        assert_eq!(records.len(), p.rows);
        // What decodes re-encodes to a partition with the same records.
        let again = cloudbill_core::encode_partition(p.month, &records.iter().collect::<Vec<_>>());
        let q = Partition::decode(&again).expect("re-encoded partition decodes");
        assert_eq!(q.records(DomainId::new(), AccountId::new()).map(|r| r.len()).ok(), Some(records.len()));
    }
});
