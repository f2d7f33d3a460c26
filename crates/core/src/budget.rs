//! Budgets, their thresholds, the channels notifications go to, and the events and deliveries
//! of the notification outbox.

use std::fmt;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    AccountId, BudgetId, ChannelId, DeliveryId, DomainId, EventId, GroupId, Money, Name, ProjectId,
    ValidationError,
};

/// The most notifications one budget has.
pub const MAX_NOTIFICATIONS: usize = 10;

/// The smallest budget amount: a hundredth of the currency's unit.
pub const MIN_BUDGET_AMOUNT: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// The most channels one notification names (each is told once, however often it is named).
pub const MAX_NOTIFICATION_CHANNELS: usize = 10;

fn setting(what: &'static str, value: &str, reason: impl Into<String>) -> ValidationError {
    ValidationError::Setting {
        what,
        value: crate::cut(value, 80).into_owned(),
        reason: reason.into(),
    }
}

/// A calendar period a budget (or a forecast) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// The calendar month (the default).
    #[default]
    Monthly,
    /// The calendar quarter.
    Quarterly,
    /// The calendar year.
    Yearly,
}

impl Period {
    /// `monthly`, `quarterly` or `yearly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Monthly => "monthly",
            Period::Quarterly => "quarterly",
            Period::Yearly => "yearly",
        }
    }

    /// The period holding `day`: its first day and the day after its last.
    pub fn bounds(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let (start, months) = match self {
            Period::Monthly => (day.with_day(1), 1),
            Period::Quarterly => (
                NaiveDate::from_ymd_opt(day.year(), (day.month0() / 3) * 3 + 1, 1),
                3,
            ),
            Period::Yearly => (NaiveDate::from_ymd_opt(day.year(), 1, 1), 12),
        };
        let start = start.unwrap_or(day);
        (
            start,
            start
                .checked_add_months(Months::new(months))
                .unwrap_or(start),
        )
    }
}

impl std::str::FromStr for Period {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "monthly" => Ok(Period::Monthly),
            "quarterly" => Ok(Period::Quarterly),
            "yearly" => Ok(Period::Yearly),
            _ => Err(ValidationError::Unknown {
                what: "period",
                value: crate::cut(s, 40).into_owned(),
                expected: "monthly, quarterly, yearly",
            }),
        }
    }
}

/// Which cost is summed: a report's or a budget's metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostMetric {
    /// FOCUS BilledCost (the default).
    #[default]
    Billed,
    /// FOCUS EffectiveCost (amortized; a record without one counts its billed cost).
    Effective,
}

impl CostMetric {
    /// `billed` or `effective`.
    pub fn as_str(self) -> &'static str {
        match self {
            CostMetric::Billed => "billed",
            CostMetric::Effective => "effective",
        }
    }
}

impl std::str::FromStr for CostMetric {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "billed" => Ok(CostMetric::Billed),
            "effective" => Ok(CostMetric::Effective),
            _ => Err(ValidationError::Unknown {
                what: "metric",
                value: crate::cut(s, 40).into_owned(),
                expected: "billed, effective",
            }),
        }
    }
}

/// What a threshold compares: spend so far, or the period-end forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdBasis {
    /// Spend recorded in the period so far.
    Actual,
    /// The forecast of the period's spend at its end.
    Forecast,
}

impl ThresholdBasis {
    /// `actual` or `forecast`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdBasis::Actual => "actual",
            ThresholdBasis::Forecast => "forecast",
        }
    }
}

/// A threshold's level: a share of the budget or an amount in its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdValue {
    /// Percent of the budget amount (`80` for 80%), above 0 and at most 1000.
    Percent(Decimal),
    /// An amount in the budget's currency, above 0.
    Amount(Decimal),
}

/// One notification level of a budget: `actual:80%`, `forecast:100%`, `actual:5000`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Threshold {
    /// What is compared.
    pub basis: ThresholdBasis,
    /// Against what.
    pub value: ThresholdValue,
}

impl Threshold {
    /// Parses `actual:P%`, `forecast:P%`, `actual:AMOUNT` or `forecast:AMOUNT`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let expected = "expected actual:P%, forecast:P%, actual:AMOUNT or forecast:AMOUNT";
        let (basis, level) = raw
            .trim()
            .split_once(':')
            .ok_or_else(|| setting("threshold", raw, expected))?;
        let basis = match basis.trim().to_ascii_lowercase().as_str() {
            "actual" => ThresholdBasis::Actual,
            "forecast" => ThresholdBasis::Forecast,
            _ => return Err(setting("threshold", raw, expected)),
        };
        let level = level.trim();
        let (number, percent) = match level.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (level, false),
        };
        let amount = crate::parse_decimal(number).map_err(|_| {
            setting(
                "threshold",
                raw,
                format!("{number:?} is not a number; {expected}"),
            )
        })?;
        if amount <= Decimal::ZERO {
            return Err(setting("threshold", raw, "the level must be above 0"));
        }
        let value = if percent {
            if amount > Decimal::from(1000) {
                return Err(setting("threshold", raw, "a percentage is at most 1000%"));
            }
            if amount.normalize().scale() > 2 {
                return Err(setting(
                    "threshold",
                    raw,
                    "a percentage has at most 2 decimals (the smallest is 0.01%)",
                ));
            }
            ThresholdValue::Percent(amount.normalize())
        } else {
            crate::check_entered_amount(amount, "threshold")
                .map_err(|e| setting("threshold", raw, e.to_string()))?;
            ThresholdValue::Amount(amount)
        };
        Ok(Self { basis, value })
    }

    /// The level as text: `80%` or the amount.
    pub fn level(&self) -> String {
        match self.value {
            ThresholdValue::Percent(p) => format!("{p}%"),
            ThresholdValue::Amount(a) => a.to_string(),
        }
    }

    /// The amount at which the threshold is crossed, for a budget of `budget` (`P%` of it:
    /// `actual:1000%` is ten times the budget). A limit no decimal holds is `Decimal::MAX`
    /// (never reached); only a budget stored before amounts were bounded can have one.
    pub fn limit(&self, budget: Decimal) -> Decimal {
        match self.value {
            ThresholdValue::Percent(p) => budget
                .checked_mul(p)
                .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                // Past the range multiplied first: divided first (exact for any budget
                // above 10^26, whose cents no threshold tells apart).
                .or_else(|| (budget / Decimal::ONE_HUNDRED).checked_mul(p))
                .unwrap_or(Decimal::MAX),
            ThresholdValue::Amount(a) => a,
        }
    }

    /// Whether `value` (spend or forecast) crosses this threshold of a budget of `budget`:
    /// at or above a limit above zero. A limit of zero or less (a budget stored before
    /// amounts were bounded, so small that its share rounds to nothing) is never crossed.
    pub fn crossed_by(&self, budget: Decimal, value: Decimal) -> bool {
        let limit = self.limit(budget);
        limit > Decimal::ZERO && value >= limit
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.basis.as_str(), self.level())
    }
}

/// Whose spend a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum BudgetScope {
    /// The whole domain.
    Domain,
    /// One project.
    Project(ProjectId),
    /// A project group with its sub-groups.
    Group(GroupId),
    /// One billing account.
    Account(AccountId),
}

/// One notification of a budget: a threshold and the channels told when it is crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// When.
    pub threshold: Threshold,
    /// Whom (at least one).
    pub channels: Vec<ChannelId>,
}

/// A spending limit per period, with its notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Identifier.
    pub id: BudgetId,
    /// Owning domain.
    pub domain: DomainId,
    /// Unique in the domain.
    pub name: Name,
    /// Whose spend.
    pub scope: BudgetScope,
    /// Further report filters (`KEY=VALUE`, keys as in reports, `tag:KEY` included), each
    /// key's values OR-ed, keys AND-ed.
    pub filters: Vec<(String, String)>,
    /// Month, quarter or year.
    pub period: Period,
    /// The amount per period; only records in its currency count.
    pub amount: Money,
    /// Billed or effective cost.
    pub metric: CostMetric,
    /// At most [`MAX_NOTIFICATIONS`].
    pub notifications: Vec<Notification>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Budget {
    /// Checks what a constructor cannot: the amount from [`MIN_BUDGET_AMOUNT`] to below
    /// 10^18 with at most 10 decimals, at most 10 notifications (none: a budget only
    /// watched), each with a channel, no threshold twice.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.amount.amount() < MIN_BUDGET_AMOUNT {
            return Err(setting(
                "budget amount",
                &self.amount.amount().to_string(),
                "it must be at least 0.01",
            ));
        }
        crate::check_entered_amount(self.amount.amount(), "budget amount")?;
        if self.notifications.len() > MAX_NOTIFICATIONS {
            return Err(setting(
                "notifications",
                &self.notifications.len().to_string(),
                format!("a budget has at most {MAX_NOTIFICATIONS}"),
            ));
        }
        for (i, n) in self.notifications.iter().enumerate() {
            if n.channels.is_empty() {
                return Err(setting(
                    "notification",
                    &n.threshold.to_string(),
                    "it needs at least one channel",
                ));
            }
            if self.notifications[..i]
                .iter()
                .any(|m| m.threshold == n.threshold)
            {
                return Err(setting(
                    "notification",
                    &n.threshold.to_string(),
                    "the same threshold is given twice",
                ));
            }
        }
        Ok(())
    }
}

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// An HTTP POST of the event's JSON, signed with HMAC-SHA256.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// An e-mail over SMTP.
    Email,
}

impl ChannelKind {
    /// `webhook`, `slack` or `email`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
        }
    }
}

impl std::str::FromStr for ChannelKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "webhook" => Ok(ChannelKind::Webhook),
            "slack" => Ok(ChannelKind::Slack),
            "email" => Ok(ChannelKind::Email),
            _ => Err(ValidationError::Unknown {
                what: "channel kind",
                value: crate::cut(s, 40).into_owned(),
                expected: "webhook, slack, email",
            }),
        }
    }
}

/// Where an e-mail channel's SMTP server is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Whether to upgrade with STARTTLS (required when set).
    pub starttls: bool,
    /// The user to log in as (the password is the channel's secret).
    pub user: Option<String>,
}

impl SmtpSettings {
    /// Parses `HOST:PORT`.
    pub fn parse(raw: &str, starttls: bool, user: Option<String>) -> Result<Self, ValidationError> {
        let (host, port) = raw
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| setting("SMTP server", raw, "expected HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| setting("SMTP server", raw, "the port must be 1 to 65535"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || host.len() > 253
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(setting("SMTP server", raw, "not a host name or address"));
        }
        if let Some(u) = &user {
            if u.is_empty() || u.len() > 256 || u.chars().any(char::is_control) {
                return Err(setting("SMTP user", u, "1 to 256 printable characters"));
            }
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            starttls,
            user,
        })
    }
}

/// A place notifications go. Its secret (a webhook's signing secret, a Slack webhook URL, an
/// SMTP password) is kept apart, sealed by the store, and never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Identifier.
    pub id: ChannelId,
    /// Owning domain.
    pub domain: DomainId,
    /// Unique in the domain.
    pub name: Name,
    /// How it delivers.
    pub kind: ChannelKind,
    /// What may be shown of where it delivers: a webhook's URL, the host of a Slack URL, an
    /// e-mail address.
    pub target: String,
    /// An e-mail channel's server.
    pub smtp: Option<SmtpSettings>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Checks an http(s) URL a channel posts to (a webhook's): absolute, with a host, no
/// credentials in it. An error shows the URL with any credentials in it replaced by `***`.
pub fn check_http_url(what: &'static str, raw: &str) -> Result<url::Url, ValidationError> {
    check_url(what, raw, &shown_url(raw))
}

/// [`check_http_url`] for a URL that is itself a credential (a Slack incoming webhook's): an
/// error never shows it.
pub fn check_secret_url(what: &'static str, raw: &str) -> Result<url::Url, ValidationError> {
    check_url(what, raw, "(not shown: the URL is a credential)")
}

/// `raw` with the user and password of a URL replaced by `***`.
fn shown_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            // A URL that cannot hold a user refuses the change: then nothing of it is shown.
            if u.set_username("***").is_err() || u.set_password(None).is_err() {
                return "***".into();
            }
            u.to_string()
        }
        Ok(_) => raw.to_owned(),
        // Unparsed: whatever precedes an `@` may be credentials.
        Err(_) => match raw.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => raw.to_owned(),
        },
    }
}

fn check_url(what: &'static str, raw: &str, shown: &str) -> Result<url::Url, ValidationError> {
    if raw.len() > 2048 {
        return Err(setting(what, shown, "longer than 2,048 characters"));
    }
    if !crate::net::plain_url(raw.trim()) {
        return Err(setting(
            what,
            shown,
            "expected http(s)://HOST[:PORT][/PATH]: a host name of letters, digits, '.' and '-', no user, query or fragment",
        ));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| setting(what, shown, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(setting(what, shown, "it must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(setting(what, shown, "it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(setting(what, shown, "credentials do not belong in the URL"));
    }
    Ok(url)
}

/// Checks an e-mail address (one `@`, a dotted or bracketed domain, no spaces or controls).
pub fn check_email(raw: &str) -> Result<String, ValidationError> {
    let addr = raw.trim();
    let ok = addr.len() <= 254
        && addr.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !addr.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
                })
        });
    if ok {
        Ok(addr.to_owned())
    } else {
        Err(setting("e-mail address", raw, "expected local@domain"))
    }
}

/// Something that happened and is told to channels: a budget threshold crossed or cleared,
/// an anomaly detected. Kept for good; its `payload` is the exact JSON a webhook receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Identifier; the same on every delivery attempt (receivers dedupe on it).
    pub id: EventId,
    /// Owning domain.
    pub domain: DomainId,
    /// `budget.threshold_crossed`, `budget.threshold_cleared`, …
    pub kind: String,
    /// The budget (or other object) it is about.
    pub subject: uuid::Uuid,
    /// That object's name when it happened.
    pub subject_name: String,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// What caused it (`sync`, `import`, `scheduler`, `evaluate`).
    pub cause: String,
    /// The event as JSON (the webhook body).
    pub payload: String,
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    /// The receiver accepted it.
    Sent,
    /// Given up on.
    Failed,
}

impl DeliveryState {
    /// `pending`, `sent` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }

    /// Parses [`DeliveryState::as_str`]'s text.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(DeliveryState::Pending),
            "sent" => Some(DeliveryState::Sent),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event to one channel: a row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Identifier.
    pub id: DeliveryId,
    /// Owning domain.
    pub domain: DomainId,
    /// The event.
    pub event: EventId,
    /// The event's kind.
    pub event_kind: String,
    /// The channel.
    pub channel: ChannelId,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When it is tried next (pending ones).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued (with its event, in the same transaction).
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_and_print() {
        let t = Threshold::parse("actual:80%").unwrap();
        assert_eq!(t.basis, ThresholdBasis::Actual);
        assert_eq!(t.value, ThresholdValue::Percent(Decimal::from(80)));
        assert_eq!(t.to_string(), "actual:80%");
        assert_eq!(t.limit(Decimal::from(1000)), Decimal::from(800));
        let t = Threshold::parse("forecast:1234.50").unwrap();
        assert_eq!(t.to_string(), "forecast:1234.50");
        assert_eq!(t.limit(Decimal::from(1)), "1234.50".parse().unwrap());
        assert_eq!(
            Threshold::parse(" FORECAST : 12.5% ").unwrap().to_string(),
            "forecast:12.5%"
        );
        for bad in [
            "80",
            "80%",
            "-5%",
            "actual:abc",
            "actual:-5%",
            "actual:0%",
            "actual:",
            "budget:80%",
            "actual:1001%",
            "actual:5e99999",
        ] {
            let err = Threshold::parse(bad).unwrap_err().to_string();
            assert!(err.contains("threshold"), "{bad}: {err}");
        }
    }

    #[test]
    fn periods_have_bounds() {
        let d = NaiveDate::from_ymd_opt(2025, 5, 17).unwrap();
        let ymd = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            Period::Monthly.bounds(d),
            (ymd(2025, 5, 1), ymd(2025, 6, 1))
        );
        assert_eq!(
            Period::Quarterly.bounds(d),
            (ymd(2025, 4, 1), ymd(2025, 7, 1))
        );
        assert_eq!(Period::Yearly.bounds(d), (ymd(2025, 1, 1), ymd(2026, 1, 1)));
        assert!("weekly".parse::<Period>().is_err());
    }

    #[test]
    fn urls_and_addresses_are_checked() {
        assert!(check_http_url("webhook URL", "https://example.com/hook").is_ok());
        assert!(check_http_url("webhook URL", "http://127.0.0.1:9/x").is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "https://user:pw@example.com/",
            "javascript:alert(1)",
            "",
        ] {
            assert!(check_http_url("webhook URL", bad).is_err(), "{bad}");
        }
        // #30: no error shows a URL's credentials, and a secret URL not at all.
        let e = check_http_url("webhook URL", "https://user:pw@example.com/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw") && e.contains("***"), "{e}");
        for bad in [
            "https://u:SECRET@hooks.slack.com/services/T0/B0/X",
            "ftp://hooks.slack.com/services/T0/B0/SECRET",
            "not a url SECRET",
        ] {
            let e = check_secret_url("Slack webhook URL", bad)
                .unwrap_err()
                .to_string();
            assert!(!e.contains("SECRET"), "{e}");
        }
        assert!(check_email("ops@example.com").is_ok());
        for bad in ["ops", "@x", "a@", "a b@x", "a@b@c", "a@x\r\nBcc: y@z"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(SmtpSettings::parse("127.0.0.1:2525", false, None).is_ok());
        assert!(SmtpSettings::parse("smtp.example.com", false, None).is_err());
        assert!(SmtpSettings::parse("smtp.example.com:0", false, None).is_err());
        assert!(SmtpSettings::parse("bad host:25", false, None).is_err());
    }
}
