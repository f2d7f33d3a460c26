//! FOCUS / CUR CSV mapping: any bytes give records or an error, never a panic; both readers
//! (records, ready-encoded partitions) agree on what they accept.
#![no_main]

use cloudbill_core::{AccountId, DomainId};
use cloudbill_focus::{encode_bill, read, BillFormat, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 { BillFormat::Focus } else { BillFormat::Cur };
    let options = ImportOptions {
        skip_invalid: selector & 2 != 0,
        ..ImportOptions::default()
    };
    let records = read(bytes, "fuzz.csv", format, DomainId::new(), AccountId::new(), options);
    let mut blobs = Vec::new();
    let encoded = encode_bill(bytes, "fuzz.csv", format, options, 1 << 16, |b| {
        blobs.push(b);
        true
    });
    assert_eq!(records.is_ok(), encoded.is_ok(), "the two readers disagree");
    if let (Ok(bill), Ok(_)) = (&records, &encoded) {
        let mut rows = 0;
        for blob in &blobs {
            let p = cloudbill_columnar::Partition::decode(blob.as_bytes()).expect("our own partition decodes");
            p.validate().expect("our own partition validates");
            rows += p.rows;
        }
        assert_eq!(rows, bill.records.len());
    }
});
