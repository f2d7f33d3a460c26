//! Exact money: a decimal amount with its ISO 4217 currency.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Active ISO 4217 codes (plus the precious-metal and fund codes banks use); XTS and XXX are left out.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB \
BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP \
DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK \
JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP \
MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD \
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD \
TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR \
XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL";

/// The ISO 4217 codes as sorted byte triples, built once.
/// The codes as sorted integers (see [`Currency::key`]): a binary search of integers, no
/// byte-slice comparisons, keeps per-row parsing of large bills cheap.
fn iso_codes() -> &'static [u32] {
    static CODES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    CODES.get_or_init(|| {
        let mut codes: Vec<u32> = ISO_4217
            .split(' ')
            .filter_map(|c| <[u8; 3]>::try_from(c.as_bytes()).ok())
            .map(|c| Currency(c).key())
            .collect();
        codes.sort_unstable();
        codes
    })
}

/// An ISO 4217 currency code such as `USD`.
///
/// ```
/// use cloudbill_core::Currency;
/// assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
/// assert!(Currency::parse("ABC").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The code as one integer, ordered like the code's text (compares without `memcmp`:
    /// currencies key the per-day totals of every write).
    fn key(self) -> u32 {
        u32::from_be_bytes([0, self.0[0], self.0[1], self.0[2]])
    }
}

impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Currency {
    /// US dollars, the currency Hyperbilling for AWS reports in.
    pub const USD: Currency = Currency(*b"USD");

    /// Digits after the decimal point of the currency's minor unit (ISO 4217): 0 for JPY,
    /// KRW and the other currencies without one, 3 for BHD, JOD, KWD and the others with
    /// thousandths, 2 for the rest.
    pub fn minor_units(self) -> u32 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG"
            | b"RWF" | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            _ => 2,
        }
    }

    /// `amount` for display: rounded half-even to the minor unit, with thousands separators
    /// (`1,234,567.89`). Display only: reports and exports keep every digit.
    pub fn display(self, amount: rust_decimal::Decimal) -> String {
        let rounded = amount.round_dp_with_strategy(
            self.minor_units(),
            rust_decimal::RoundingStrategy::MidpointNearestEven,
        );
        let text = format!("{:.*}", self.minor_units() as usize, rounded.abs());
        let (int, frac) = text
            .split_once('.')
            .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
        let mut out = String::with_capacity(text.len() + int.len() / 3 + 1);
        if rounded.is_sign_negative() && !rounded.is_zero() {
            out.push('-');
        }
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if let Some(f) = frac {
            out.push('.');
            out.push_str(f);
        }
        out
    }

    /// Every code [`Currency::parse`] takes, in order.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        let mut codes: Vec<&'static str> = ISO_4217.split(' ').collect();
        codes.sort_unstable();
        codes.into_iter()
    }

    /// Validates an ISO 4217 code (case-insensitive, surrounding spaces ignored).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim().as_bytes();
        let code: [u8; 3] = match trimmed {
            [a, b, c] => [
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ],
            _ => return Err(ValidationError::Currency(raw.to_owned())),
        };
        if !code.iter().all(u8::is_ascii_uppercase)
            || iso_codes().binary_search(&Self(code).key()).is_err()
        {
            return Err(ValidationError::Currency(raw.to_owned()));
        }
        Ok(Self(code))
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        // The bytes were checked to be ASCII uppercase letters on construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl FromStr for Currency {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

/// Parses a decimal amount exactly: plain (`-123.4567890123`) or scientific (`9.6E-6`).
///
/// No digit is ever rounded away: text that does not fit `Decimal` exactly is an error.
///
/// ```
/// use cloudbill_core::parse_decimal;
/// assert_eq!(parse_decimal("9.6E-6").unwrap().to_string(), "0.0000096");
/// assert_eq!(parse_decimal("0.12345678901").unwrap().to_string(), "0.12345678901");
/// assert!(parse_decimal("1.2.3").is_err());
/// ```
pub fn parse_decimal(raw: &str) -> Result<Decimal, ValidationError> {
    let text = raw.trim();
    // The value in the error is cut to 64 characters: an error never carries a whole
    // hostile cell.
    let err = |reason: &str| ValidationError::Decimal {
        value: crate::cut(raw, 64).into_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(err("empty"));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.contains(['e', 'E']) {
        let (mantissa, exponent) = text
            .split_once(['e', 'E'])
            .ok_or_else(|| err("malformed exponent"))?;
        if !is_plain_number(mantissa) {
            return Err(err("not a number"));
        }
        let mantissa = Decimal::from_str_exact(mantissa).map_err(|e| err(&e.to_string()))?;
        let exponent: i32 = exponent
            .strip_prefix('+')
            .unwrap_or(exponent)
            .parse()
            .map_err(|_| err("malformed exponent"))?;
        // Bounded before any work: `0e2147483647` must cost nothing (a Decimal spans at most
        // 10^-28 ..= 7.9 × 10^28, so no exact value needs a larger exponent).
        if exponent.unsigned_abs() > MAX_EXPONENT {
            return Err(err(&format!(
                "exponent out of range (at most ±{MAX_EXPONENT})"
            )));
        }
        scale_by_power_of_ten(mantissa, exponent).ok_or_else(|| err("out of exact range"))
    } else {
        if !is_plain_number(text) {
            return Err(err("not a number"));
        }
        Decimal::from_str_exact(text).map_err(|e| err(&e.to_string()))
    }
}

/// The largest exponent magnitude `parse_decimal` accepts in scientific notation.
pub const MAX_EXPONENT: u32 = 60;

/// Digits, at most one `.`, an optional leading `-`: what `Decimal::from_str_exact` may see
/// (it would also take `_` separators).
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().any(|b| b.is_ascii_digit())
}

/// `value × 10^exponent`, exactly, or `None` when the result does not fit.
fn scale_by_power_of_ten(value: Decimal, exponent: i32) -> Option<Decimal> {
    let mut result = value;
    if exponent >= 0 {
        if result.is_zero() {
            return Some(result);
        }
        // At most MAX_EXPONENT rounds (the caller bounds it); an overflow ends it sooner.
        for _ in 0..exponent {
            result = result.checked_mul(Decimal::TEN)?;
        }
    } else {
        let new_scale = result.scale().checked_add(exponent.unsigned_abs())?;
        if new_scale > Decimal::MAX_SCALE {
            return None;
        }
        result.set_scale(new_scale).ok()?;
    }
    Some(result)
}

/// The bound on an amount a person enters (a budget, a threshold, an invoice total or tax, a
/// rate): its magnitude is below 10^18 — more than any bill in any currency — so that the
/// arithmetic a page does on it (percentages, differences, scaled positions) stays far inside
/// what an exact decimal holds (about ±7.9 × 10^28).
pub const MAX_ENTERED_AMOUNT: Decimal = Decimal::from_parts(0xA764_0000, 0x0DE0_B6B3, 0, false, 0);

/// The most decimal places of an amount a person enters.
pub const MAX_ENTERED_SCALE: u32 = 10;

/// Checks an amount read from a bill or a provider (a cost, a price, a quantity): its
/// magnitude is below 10^18 ([`MAX_ENTERED_AMOUNT`]; any number of decimals). No bill holds
/// more, and with it a day's total of any bill stays an exact decimal: a 256 GiB bill has
/// fewer than 3 × 10^9 rows, whose sum stays below 3 × 10^27.
///
/// # Errors
/// A message saying why (for the reader's file, line and column).
pub fn check_bill_amount(value: Decimal) -> Result<Decimal, String> {
    if value.abs() >= MAX_ENTERED_AMOUNT {
        Err(format!(
            "{value} is not an amount of a bill: its magnitude must be below 10^18"
        ))
    } else {
        Ok(value)
    }
}

/// Parses an amount a person enters (`what`: "budget amount", "invoice total", …): exact, of
/// magnitude below [`MAX_ENTERED_AMOUNT`], with at most [`MAX_ENTERED_SCALE`] decimals.
///
/// ```
/// use cloudbill_core::parse_entered_amount;
/// assert_eq!(parse_entered_amount("5000.50", "budget amount").unwrap().to_string(), "5000.50");
/// assert!(parse_entered_amount("4e26", "budget amount").is_err());
/// assert!(parse_entered_amount("0.00000000001", "budget amount").is_err());
/// ```
pub fn parse_entered_amount(raw: &str, what: &'static str) -> Result<Decimal, ValidationError> {
    let value = parse_decimal(raw).map_err(|e| ValidationError::Setting {
        what,
        value: crate::cut(raw, 64).into_owned(),
        reason: e.to_string(),
    })?;
    check_entered_amount(value, what)?;
    Ok(value)
}

/// Checks an entered amount against [`MAX_ENTERED_AMOUNT`] and [`MAX_ENTERED_SCALE`].
pub fn check_entered_amount(value: Decimal, what: &'static str) -> Result<(), ValidationError> {
    let refuse = |reason: String| ValidationError::Setting {
        what,
        value: value.to_string(),
        reason,
    };
    if value.abs() >= MAX_ENTERED_AMOUNT {
        return Err(refuse(
            "its magnitude must be below 10^18 (1000000000000000000)".to_owned(),
        ));
    }
    if value.normalize().scale() > MAX_ENTERED_SCALE {
        return Err(refuse(format!(
            "it has more than {MAX_ENTERED_SCALE} decimal places"
        )));
    }
    Ok(())
}

/// `value` or, when an operation on amounts did not fit an exact decimal (`None`), an
/// [`ValidationError::Overflow`] naming `what` — for arithmetic on stored or entered amounts,
/// which must fail one request rather than panic.
pub fn exact(
    value: Option<Decimal>,
    what: impl FnOnce() -> String,
) -> Result<Decimal, ValidationError> {
    value.ok_or_else(|| ValidationError::Overflow(what()))
}

/// An exact amount of one currency.
///
/// ```
/// use cloudbill_core::{Currency, Money, parse_decimal};
/// let a = Money::new(parse_decimal("1.10").unwrap(), Currency::USD);
/// let b = Money::new(parse_decimal("2.0000000001").unwrap(), Currency::USD);
/// assert_eq!(a.checked_add(&b).unwrap().amount().to_string(), "3.1000000001");
/// let eur = Money::new(parse_decimal("1").unwrap(), Currency::parse("EUR").unwrap());
/// assert!(a.checked_add(&eur).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Zero in a currency.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// The exact amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The currency code, borrowed from this value.
    pub fn currency_str(&self) -> &str {
        self.currency.as_str()
    }

    /// Adds two amounts of the same currency; a different currency or an overflow is an error.
    pub fn checked_add(&self, other: &Money) -> Result<Money, ValidationError> {
        if self.currency != other.currency {
            return Err(ValidationError::CurrencyMismatch {
                left: self.currency.to_string(),
                right: other.currency.to_string(),
            });
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or_else(|| ValidationError::Overflow(format!("the sum {self} + {other}")))?;
        Ok(Money::new(amount, self.currency))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entered_amounts_are_bounded() {
        use super::{parse_entered_amount, MAX_ENTERED_AMOUNT};
        assert_eq!(MAX_ENTERED_AMOUNT.to_string(), "1000000000000000000");
        assert!(parse_entered_amount("999999999999999999.9999999999", "x").is_ok());
        assert!(parse_entered_amount("-999999999999999999", "x").is_ok());
        for bad in [
            "1e18",
            "-1000000000000000000",
            "3.96e26",
            "7.9e28",
            "1e-11",
            "abc",
        ] {
            assert!(parse_entered_amount(bad, "budget amount").is_err(), "{bad}");
        }
        let e = parse_entered_amount("4e26", "budget amount").unwrap_err();
        assert!(e.to_string().contains("below 10^18"), "{e}");
    }

    #[test]
    fn amounts_display_in_the_minor_unit_with_separators() {
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        let c = |s: &str| Currency::parse(s).unwrap();
        assert_eq!(c("USD").display(d("1234567.895")), "1,234,567.90");
        assert_eq!(c("USD").display(d("1234567.885")), "1,234,567.88");
        assert_eq!(c("JPY").display(d("1234.5")), "1,234");
        assert_eq!(c("KWD").display(d("-1000.0005")), "-1,000.000");
        assert_eq!(c("EUR").display(d("-0.001")), "0.00");
        assert_eq!(c("USD").display(d("999")), "999.00");
        assert_eq!(c("USD").display(d("100000")), "100,000.00");
    }

    use proptest::prelude::*;

    use super::*;

    fn d(s: &str) -> Decimal {
        parse_decimal(s).unwrap()
    }

    #[test]
    fn parses_plain_scientific_and_long_fractions_exactly() {
        assert_eq!(d("9.6E-6").to_string(), "0.0000096");
        assert_eq!(d("1.5e3").to_string(), "1500.0");
        assert_eq!(d("-2E+2").to_string(), "-200");
        assert_eq!(d("123.4567890123").to_string(), "123.4567890123");
        assert_eq!(d("0.00000000012345").to_string(), "0.00000000012345");
        assert_eq!(
            d("999999999999.99999999999").to_string(),
            "999999999999.99999999999"
        );
        assert_eq!(d("+1.0").to_string(), "1.0");
    }

    #[test]
    fn rejects_what_cannot_be_exact() {
        for bad in ["", "abc", "1.2.3", "1e", "e5", "NaN", "inf", "1,5", "0x10"] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} should be rejected");
        }
        // 30 significant digits do not fit a Decimal exactly: refuse instead of rounding.
        assert!(parse_decimal("1.23456789012345678901234567890").is_err());
        assert!(parse_decimal("1e-40").is_err());
        for bad in ["1_000", "1_0e2", "-", "-e5", ".e2", "--1", "1-"] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn huge_exponents_are_refused_at_once() {
        // Regression (#13): `0e2147483647` cost ~1.5 s of CPU per cell.
        let started = std::time::Instant::now();
        for bad in [
            "0e2147483647",
            "1e2147483647",
            "0e-2147483648",
            "5e61",
            "1e-61",
        ] {
            let err = parse_decimal(bad).unwrap_err().to_string();
            assert!(err.contains("exponent out of range"), "{bad}: {err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(d("0e60"), Decimal::ZERO);
        assert_eq!(d("1e28").to_string(), "10000000000000000000000000000");
        assert!(parse_decimal("1e29").is_err());
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(Currency::parse(" eur ").unwrap().as_str(), "EUR");
        for bad in ["", "US", "USDD", "ABC", "XXX", "U$D"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let json = serde_json::to_string(&Currency::USD).unwrap();
        assert_eq!(json, "\"USD\"");
        assert!(serde_json::from_str::<Currency>("\"ZZZ\"").is_err());
    }

    #[test]
    fn money_never_mixes_currencies() {
        let usd = Money::new(d("1"), Currency::USD);
        let eur = Money::new(d("1"), Currency::parse("EUR").unwrap());
        let err = usd.checked_add(&eur).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot add USD and EUR amounts: different currencies are never summed"
        );
    }

    #[test]
    fn money_serializes_amount_as_string() {
        let m = Money::new(d("123.4567890123"), Currency::USD);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":"123.4567890123","currency":"USD"}"#
        );
    }

    proptest! {
        #[test]
        fn scientific_equals_plain(mantissa in -999_999_999i64..999_999_999, exp in -12i32..6) {
            let sci = format!("{mantissa}E{exp}");
            let parsed = parse_decimal(&sci).unwrap();
            let expected = Decimal::from(mantissa) * Decimal::from_scientific(&format!("1e{exp}")).unwrap();
            prop_assert_eq!(parsed, expected);
        }
    }
}

/// An exchange rate: on `date`, one `base` is worth `rate` `quote` (the European Central
/// Bank's reference rates are `EUR` → each currency). Dated, sourced, above 0.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FxRate {
    /// The day the rate is for.
    pub date: chrono::NaiveDate,
    /// The currency of which one unit is priced.
    pub base: Currency,
    /// The currency it is priced in.
    pub quote: Currency,
    /// Units of `quote` per one `base`; above 0.
    pub rate: Decimal,
    /// Where it comes from (`ecb`, `manual`, a file name, or a fixed set's name).
    pub source: String,
}

/// A provider's invoice for one account, month and currency: what reconciliation compares the
/// stored records with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invoice {
    /// The billing account invoiced.
    pub account: crate::AccountId,
    /// The first day of the month invoiced.
    pub period: chrono::NaiveDate,
    /// The invoice's currency.
    pub currency: Currency,
    /// The provider's invoice id.
    pub invoice_id: String,
    /// The invoice total (tax included), exact.
    pub total: Decimal,
    /// Who issued it.
    pub issuer: Option<String>,
    /// Its tax, when stated.
    pub tax: Option<Decimal>,
}
