//! Cost anomalies in a daily series: robust, deterministic, exact decimal arithmetic.
//!
//! For each judged day: **expected** is the median of the previous [`Settings::history_days`]
//! days (a day without spend counts as 0), **spread** is 1.4826 × their median absolute
//! deviation (MAD), the **score** is (actual − expected) / spread. When the window has no
//! spread (MAD 0: a flat series), the spread is 1% of the expected, at least 0.01, so the
//! amount and percentage thresholds decide. A day is a **spike** when the score ≥
//! [`Settings::z`], the excess over expected ≥ [`Settings::min_amount`] and ≥
//! [`Settings::min_percent`] % of expected — **and** the same holds against the median of the
//! same weekday in the window (so a weekly pattern, a Monday peak, is not an anomaly: Mondays
//! are compared with Mondays too). With [`Direction::Both`], a **drop** is the mirror image. A
//! value with spend after a window of zeros is **new** (at least `min_amount`). Consecutive
//! anomalous days of one kind merge into one anomaly (a new value's following spike days join
//! it): expected and actual summed, impact = actual − expected, score the largest.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cloudbill_core::Decimal;

use crate::QueryError;

/// Which way spend must move to be an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Rises only (the default).
    #[default]
    Spikes,
    /// Rises and falls.
    Both,
}

/// Detection settings (defaults: z 3.5, 10 units of the currency, 20%, 28 days, spikes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The least robust z-score of an anomalous day.
    pub z: Decimal,
    /// The least excess over expected, in the currency.
    pub min_amount: Decimal,
    /// The least excess over expected, in percent of expected.
    pub min_percent: Decimal,
    /// Days of history before each judged day.
    pub history_days: i64,
    /// Rises, or rises and falls.
    pub direction: Direction,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            z: Decimal::new(35, 1),
            min_amount: Decimal::TEN,
            min_percent: Decimal::from(20),
            history_days: 28,
            direction: Direction::Spikes,
        }
    }
}

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Spend well above expected.
    Spike,
    /// Spend well below expected.
    Drop,
    /// Spend where there was none.
    New,
}

impl Kind {
    /// `spike`, `drop` or `new`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spike => "spike",
            Kind::Drop => "drop",
            Kind::New => "new",
        }
    }
}

/// One anomaly: consecutive anomalous days of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Spike, drop or new.
    pub kind: Kind,
    /// First day.
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Expected spend over the days.
    pub expected: Decimal,
    /// Actual spend over the days (exact).
    pub actual: Decimal,
    /// `actual − expected`.
    pub impact: Decimal,
    /// The largest robust z-score of the days (rounded to 2 places; 0 for `new`).
    pub score: Decimal,
}

/// 1.4826: the MAD of a normal distribution's σ.
const MAD_SCALE: Decimal = Decimal::from_parts(14826, 0, 0, false, 4);

/// The median of `values` (reordered in place; 0 for none; the mean of the middle two for an
/// even count).
pub fn median(values: &mut [Decimal]) -> Decimal {
    let n = values.len();
    if n == 0 {
        return Decimal::ZERO;
    }
    // Selection, not a sort: the middle value in place, the lower half left of it.
    let (lower, mid, _) = values.select_nth_unstable(n / 2);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let below = lower.iter().max().copied().unwrap_or(mid);
        // When the sum would leave the decimal range (never for real data) the two have one
        // sign, so their difference fits: the midpoint from the lower one.
        below
            .checked_add(mid)
            .map(|sum| sum / Decimal::TWO)
            .or_else(|| {
                mid.checked_sub(below)
                    .and_then(|d| below.checked_add(d / Decimal::TWO))
            })
            .unwrap_or(mid)
    }
}

/// The `history` days before `day` in `series`, nearest first (a day without spend: 0).
pub fn window(series: &BTreeMap<NaiveDate, Decimal>, day: NaiveDate, history: i64) -> Vec<Decimal> {
    (1..=history)
        .map(|k| {
            series
                .get(&(day - chrono::Duration::days(k)))
                .copied()
                .unwrap_or_default()
        })
        .collect()
}

/// The expected spend of `day`: the median of its `history` days before.
pub fn expected_on(series: &BTreeMap<NaiveDate, Decimal>, day: NaiveDate, history: i64) -> Decimal {
    median(&mut window(series, day, history))
}

/// A window's expected value (median) and spread (scaled MAD, or 1% of expected, at least
/// 0.01, when the MAD is 0).
struct Baseline {
    expected: Decimal,
    spread: Decimal,
}

impl Baseline {
    /// `None` when a deviation leaves the decimal range.
    fn of(window: &[Decimal]) -> Option<Self> {
        let expected = median(&mut window.to_vec());
        let mut deviations = window
            .iter()
            .map(|v| v.checked_sub(expected).map(|d| d.abs()))
            .collect::<Option<Vec<Decimal>>>()?;
        let mad = median(&mut deviations);
        let spread = if mad.is_zero() {
            (expected.abs() / Decimal::ONE_HUNDRED).max(Decimal::new(1, 2))
        } else {
            MAD_SCALE.checked_mul(mad)?
        };
        Some(Self { expected, spread })
    }

    /// Whether `actual` passes the thresholds against this baseline (in the `sign` direction:
    /// 1 for a rise, −1 for a fall); the score when it does. `Err` when the excess leaves
    /// the decimal range.
    fn judge(
        &self,
        actual: Decimal,
        settings: &Settings,
        sign: Decimal,
    ) -> Result<Option<Decimal>, ()> {
        let excess = actual
            .checked_sub(self.expected)
            .and_then(|e| e.checked_mul(sign))
            .ok_or(())?;
        // The spread is at least 0.01: the score is at most 100 × the excess, beyond the
        // range only for an excess beyond 10^26 — a score that passes any z.
        let score = excess
            .checked_div(self.spread)
            .unwrap_or(if excess.is_sign_negative() {
                Decimal::MIN
            } else {
                Decimal::MAX
            });
        // excess × 100 ≥ min_percent × |expected|, compared without leaving the range.
        let percent_ok = match (
            excess.checked_mul(Decimal::ONE_HUNDRED),
            settings.min_percent.checked_mul(self.expected.abs()),
        ) {
            (Some(a), Some(b)) => a >= b,
            (None, _) => excess.is_sign_positive(),
            (Some(_), None) => false,
        };
        Ok(
            (score >= settings.z && excess >= settings.min_amount && percent_ok)
                .then(|| score.checked_mul(sign).unwrap_or(score)),
        )
    }
}

/// The error of an anomaly series whose amounts leave the decimal range.
fn out_of_range(day: NaiveDate) -> QueryError {
    QueryError::AmountOutOfRange {
        what: format!("the anomaly baseline of {day}"),
    }
}

/// The anomalies of one series over the days `[from, to)` (the series must hold the
/// `history_days` before `from` too; absent days are zero spend).
///
/// # Errors
/// [`QueryError::AmountOutOfRange`] when the series' amounts are so large that a deviation
/// or a sum of anomalous days leaves the decimal range.
pub fn detect(
    series: &BTreeMap<NaiveDate, Decimal>,
    from: NaiveDate,
    to: NaiveDate,
    settings: &Settings,
) -> Result<Vec<Anomaly>, QueryError> {
    let value = |d: NaiveDate| series.get(&d).copied().unwrap_or_default();
    let mut days: Vec<(NaiveDate, Kind, Decimal, Decimal)> = Vec::new(); // day, kind, expected, score
    let mut d = from;
    while d < to {
        let window = window(series, d, settings.history_days);
        let actual = value(d);
        if window.iter().all(Decimal::is_zero) {
            if actual >= settings.min_amount && !actual.is_zero() {
                days.push((d, Kind::New, Decimal::ZERO, Decimal::ZERO));
            }
        } else {
            let base = Baseline::of(&window).ok_or_else(|| out_of_range(d))?;
            // The same weekdays of the window (every 7th day back): a weekly pattern is no
            // anomaly.
            let same_weekday: Vec<Decimal> = window.iter().skip(6).step_by(7).copied().collect();
            let weekday = if same_weekday.is_empty() {
                None
            } else {
                Some(Baseline::of(&same_weekday).ok_or_else(|| out_of_range(d))?)
            };
            let mut directions = vec![(Kind::Spike, Decimal::ONE)];
            if settings.direction == Direction::Both {
                directions.push((Kind::Drop, Decimal::NEGATIVE_ONE));
            }
            for (kind, sign) in directions {
                let judged = base
                    .judge(actual, settings, sign)
                    .map_err(|()| out_of_range(d))?;
                if let Some(score) = judged {
                    let by_weekday = match &weekday {
                        Some(w) => w
                            .judge(actual, settings, sign)
                            .map_err(|()| out_of_range(d))?
                            .is_some(),
                        None => true,
                    };
                    if by_weekday {
                        days.push((d, kind, base.expected, score));
                    }
                }
            }
        }
        d = d.succ_opt().unwrap_or(to);
    }
    // Merge consecutive days of one kind.
    let mut out: Vec<Anomaly> = Vec::new();
    for (day, kind, expected, score) in days {
        let actual = value(day);
        match out.last_mut() {
            // One kind's consecutive days, and the days a new value goes on spending.
            Some(a)
                if (a.kind == kind || (a.kind == Kind::New && kind == Kind::Spike))
                    && a.end.succ_opt() == Some(day) =>
            {
                a.end = day;
                a.expected = a
                    .expected
                    .checked_add(expected)
                    .ok_or_else(|| out_of_range(day))?;
                a.actual = a
                    .actual
                    .checked_add(actual)
                    .ok_or_else(|| out_of_range(day))?;
                a.impact = a
                    .actual
                    .checked_sub(a.expected)
                    .ok_or_else(|| out_of_range(day))?;
                if score.abs() > a.score.abs() {
                    a.score = score.round_dp(2);
                }
            }
            _ => out.push(Anomaly {
                kind,
                start: day,
                end: day,
                expected,
                actual,
                impact: actual
                    .checked_sub(expected)
                    .ok_or_else(|| out_of_range(day))?,
                score: score.round_dp(2),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// Days from 2025-01-01, valued by `f(i)`.
    fn series(n: i64, f: impl Fn(i64) -> Decimal) -> BTreeMap<NaiveDate, Decimal> {
        (0..n)
            .map(|i| (day("2025-01-01") + chrono::Duration::days(i), f(i)))
            .collect()
    }

    /// Judges March (days 59–89).
    fn march(s: &BTreeMap<NaiveDate, Decimal>, settings: &Settings) -> Vec<Anomaly> {
        detect(s, day("2025-03-01"), day("2025-04-01"), settings).unwrap()
    }

    #[test]
    fn ordinary_noise_is_no_anomaly() {
        // 100 ± a few, in a repeating pattern of 7 values (median 100, MAD 2).
        let noise = [100, 102, 98, 101, 99, 103, 97];
        let s = series(90, |i| {
            Decimal::from(noise[usize::try_from(i % 7).unwrap()])
        });
        assert_eq!(march(&s, &Settings::default()), vec![]);
    }

    #[test]
    fn a_five_fold_day_is_one_spike_with_its_impact() {
        let noise = [100, 102, 98, 101, 99, 103, 97];
        let s = series(90, |i| {
            if i == 70 {
                dec("500")
            } else {
                Decimal::from(noise[usize::try_from(i % 7).unwrap()])
            }
        });
        let found = march(&s, &Settings::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert_eq!(
            (a.kind, a.start, a.end),
            (Kind::Spike, day("2025-03-12"), day("2025-03-12"))
        );
        // Expected: the median of the 28 days before (the 7 values, 4 times each) = 100;
        // MAD: deviations 0,2,2,1,1,3,3 (×4) → median 2; spread 2.9652; score 400 / 2.9652.
        assert_eq!(a.expected, dec("100"));
        assert_eq!(a.impact, dec("400"));
        assert_eq!(a.score, (dec("400") / dec("2.9652")).round_dp(2));
        // The spike is in the next days' windows, but one day among 28 moves no median.
    }

    #[test]
    fn consecutive_days_merge_and_drops_need_both_directions() {
        let s = series(90, |i| match i {
            70..=72 => dec("400"),
            80 => dec("10"),
            _ => dec("100"),
        });
        let spikes = march(&s, &Settings::default());
        assert_eq!(spikes.len(), 1);
        assert_eq!(
            (spikes[0].start, spikes[0].end),
            (day("2025-03-12"), day("2025-03-14"))
        );
        assert_eq!(spikes[0].actual, dec("1200"));
        assert_eq!(spikes[0].expected, dec("300"));
        assert_eq!(spikes[0].impact, dec("900"));
        let both = march(
            &s,
            &Settings {
                direction: Direction::Both,
                ..Settings::default()
            },
        );
        assert_eq!(both.len(), 2);
        assert_eq!(
            (both[1].kind, both[1].start),
            (Kind::Drop, day("2025-03-22"))
        );
        assert_eq!(both[1].impact, dec("-90"));
    }

    #[test]
    fn spend_after_nothing_is_new() {
        let s = series(90, |i| if i >= 75 { dec("50") } else { Decimal::ZERO });
        let found = march(&s, &Settings::default());
        assert_eq!(found[0].kind, Kind::New);
        assert_eq!(found[0].start, day("2025-03-17"));
        // The days after join it while the baseline (the median of 28 days) is still 0: until
        // March 30; on the 31st half the window has the new level (median 25, MAD 25).
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].end, day("2025-03-30"));
        assert_eq!(found[0].actual, Decimal::from(50 * 14));
    }

    #[test]
    fn a_monday_peak_is_a_pattern_not_an_anomaly() {
        // 100 on Mondays, 10 otherwise: against the 28 days a Monday is far above the median
        // (10), but against the four Mondays before it (median 100) it is ordinary.
        let s = series(90, |i| {
            let d = day("2025-01-01") + chrono::Duration::days(i);
            if d.weekday() == chrono::Weekday::Mon {
                dec("100")
            } else {
                dec("10")
            }
        });
        assert_eq!(march(&s, &Settings::default()), vec![]);
    }

    #[test]
    fn thresholds_keep_small_moves_quiet() {
        // A flat 1.00 a day that doubles: a huge score, but 1.00 of excess is under 10.
        let s = series(90, |i| if i == 70 { dec("2") } else { dec("1") });
        assert_eq!(march(&s, &Settings::default()), vec![]);
        let low = Settings {
            min_amount: dec("0.5"),
            ..Settings::default()
        };
        assert_eq!(march(&s, &low).len(), 1);
    }

    #[test]
    fn amounts_at_the_decimal_limit_fail_the_series_not_the_process() {
        // #30: days of ±7.9e28 (each a valid stored total) make deviations and sums leave
        // the decimal range: an error for this series, never a panic.
        let huge = Decimal::MAX;
        let s = series(90, |i| if i % 2 == 0 { huge } else { -huge });
        let both = Settings {
            direction: Direction::Both,
            ..Settings::default()
        };
        assert!(matches!(
            detect(&s, day("2025-03-01"), day("2025-04-01"), &both),
            Err(QueryError::AmountOutOfRange { .. })
        ));
        // A window near the limit whose deviations still fit: judged as usual.
        let big = Decimal::from_i128_with_scale(10_i128.pow(27), 0);
        let s = series(90, |i| if i == 70 { huge } else { big });
        let found = march(&s, &Settings::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].actual, huge);
        // The median of two values whose sum leaves the range.
        assert_eq!(median(&mut [huge, huge]), huge);
    }
}
