//! Budget and channel settings as users type them: thresholds (`actual:80%`, …), webhook URLs,
//! e-mail addresses, SMTP servers, periods and metrics. Any text is a value or an error,
//! quickly; a threshold prints back to text that parses to the same threshold; what is
//! accepted keeps its promises (http(s) URLs without credentials, addresses without spaces or
//! header-breaking characters, ports above 0).
#![no_main]

use cloudbill_core::{check_email, check_http_url, CostMetric, Period, SmtpSettings, Threshold};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Ok(t) = Threshold::parse(text) {
                let again = Threshold::parse(&t.to_string()).expect("a printed threshold parses");
                assert_eq!(again, t);
            }
        }
        1 => {
            if let Ok(url) = check_http_url("webhook URL", text) {
                assert!(matches!(url.scheme(), "http" | "https"));
                assert!(url.username().is_empty() && url.password().is_none());
            }
        }
        2 => {
            if let Ok(addr) = check_email(text) {
                assert!(addr.contains('@'));
                assert!(!addr.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>'));
            }
        }
        3 => {
            if let Ok(s) = SmtpSettings::parse(text, true, None) {
                assert!(s.port > 0 && !s.host.is_empty());
            }
        }
        _ => {
            let _ = text.parse::<Period>();
            let _ = text.parse::<CostMetric>();
        }
    }
});
