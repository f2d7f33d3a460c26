//! Exact decimal parsing: any text is a value or an error, quickly; a value prints back to
//! text that parses to the same value.
#![no_main]

use cloudbill_core::parse_decimal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = parse_decimal(text) {
        let again = parse_decimal(&value.to_string()).expect("a printed value parses");
        assert_eq!(again, value);
        assert_eq!(again.scale(), value.scale());
    }
});
