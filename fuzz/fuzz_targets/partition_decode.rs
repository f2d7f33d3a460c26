//! The columnar partition decoder (and the previous format's converter): any bytes are an error
//! or a partition whose every accessor works — never a panic, never an allocation sized by a
//! forged length.
#![no_main]

use cloudbill_columnar::{encode_partition, legacy, Column, Partition};
use cloudbill_core::{AccountId, DomainId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(upgraded) = legacy::upgrade(data) {
        let p = Partition::decode(upgraded.as_bytes()).expect("an upgraded partition decodes");
        p.validate().expect("an upgraded partition is valid");
    }
    let Ok(p) = Partition::decode(data) else {
        return;
    };
    if p.validate().is_err() {
        return;
    }
    let _ = p.daily_totals();
    if let Ok(costs) = p.costs() {
        for row in 0..p.rows {
            let _ = costs.amount(row);
        }
        costs.for_each(|_| {});
    }
    for column in Column::TEXT {
        if let Ok(text) = p.text(column) {
            let mut out = Vec::new();
            text.map_into(&vec![0u8; text.values.len()], &mut out, p.rows);
            assert_eq!(out.len(), p.rows);
        }
    }
    if let Ok(records) = p.records(DomainId::new(), AccountId::new()) {
        assert_eq!(records.len(), p.rows);
        // What decodes re-encodes to a partition with the same records.
        let again = encode_partition(p.month, &records.iter().collect::<Vec<_>>());
        let q = Partition::decode(again.as_bytes()).expect("re-encoded partition decodes");
        assert_eq!(q.records(DomainId::new(), AccountId::new()).map(|r| r.len()).ok(), Some(records.len()));
    }
});
