//! Period-end spend forecasts from a daily series: deterministic, exact decimal arithmetic
//! (no floating point), every step documented in docs/FORECAST.md.
//!
//! 1. History: the complete days only — up to [`MAX_HISTORY_DAYS`] days ending the day before
//!    `as_of` minus the days the provider may still restate; a day without records is a day of
//!    zero spend, but days before the series' first day with spend are not history.
//! 2. Outliers: days outside `[Q1 − 1.5·IQR, Q3 + 1.5·IQR]` are left out (quartiles by
//!    linear interpolation between closest ranks): with [`WEEKLY_HISTORY_DAYS`]+ days, each
//!    weekday against its own quartiles (a Monday peak is a pattern), else all days together.
//! 3. Fewer than [`MIN_HISTORY_DAYS`] days left: no forecast ("insufficient history").
//! 4. Model: an ordinary-least-squares line over the day index; with
//!    [`WEEKLY_HISTORY_DAYS`]+ days, plus one effect per weekday (Monday the baseline), fitted
//!    together (the normal equations solved exactly, Gaussian elimination).
//! 5. Period end = the actual spend of the period's complete days + the model's prediction for
//!    every other day of the period (today, the restatable days and the days to come), each
//!    prediction floored at 0.
//! 6. 80% interval: ± 1.2816 · s · √k, where s is the residual standard deviation and k the
//!    number of predicted days; the lower bound floored at the complete days' actual spend
//!    (and so at 0 for a period with none yet).

use chrono::{Datelike, NaiveDate};
use cloudbill_core::Decimal;

/// The most days of history a forecast uses.
pub const MAX_HISTORY_DAYS: i64 = 90;
/// The fewest days of history (after outliers) a forecast needs.
pub const MIN_HISTORY_DAYS: usize = 8;
/// The days of history from which day-of-week effects are fitted.
pub const WEEKLY_HISTORY_DAYS: usize = 28;
/// The default number of days before `as_of` that the provider may still restate.
pub const DEFAULT_RESTATE_DAYS: i64 = 2;
/// z for a two-sided 80% interval of a normal distribution.
const Z80: Decimal = Decimal::from_parts(12816, 0, 0, false, 4);

/// How a forecast was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// A least-squares line.
    LinearTrend,
    /// A least-squares line plus the mean residual of each weekday.
    LinearTrendWithWeekday,
}

impl Method {
    /// Its name in answers (`linear_trend`, `linear_trend_weekday`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::LinearTrend => "linear_trend",
            Method::LinearTrendWithWeekday => "linear_trend_weekday",
        }
    }
}

/// A period-end forecast for one currency's daily series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    /// The expected spend of the whole period.
    pub amount: Decimal,
    /// The 80% interval of `amount`.
    pub low: Decimal,
    /// The 80% interval of `amount`.
    pub high: Decimal,
    /// The spend of the period's complete days (in `amount` as is).
    pub actual_complete: Decimal,
    /// The model.
    pub method: Method,
    /// Days of history the model was fitted on.
    pub days_used: usize,
    /// Days of history left out as outliers.
    pub outliers: Vec<NaiveDate>,
    /// The days predicted (the period's days after the last complete day).
    pub days_predicted: usize,
}

/// Why there is no forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoForecast {
    /// Fewer than [`MIN_HISTORY_DAYS`] usable days.
    InsufficientHistory {
        /// The usable days there were.
        days: usize,
    },
    /// The series' amounts, or the forecast of them, leave what an exact decimal holds
    /// (about ±7.9 × 10^28).
    OutOfRange,
}

/// Days of history whose magnitude reaches this are fitted in units of a power of ten below
/// it (exact for the data, the forecast rescaled), so that squares and products of the fit
/// stay far inside the decimal range whatever the data holds.
const FIT_BOUND: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// The power of ten that brings every value of `history` below [`FIT_BOUND`] (1 for any
/// ordinary bill).
fn fit_unit(history: &[(NaiveDate, Decimal)]) -> Decimal {
    let max = history
        .iter()
        .map(|(_, v)| v.abs())
        .max()
        .unwrap_or_default();
    let mut unit = Decimal::ONE;
    while FIT_BOUND.checked_mul(unit).is_some_and(|b| max >= b) {
        unit *= Decimal::TEN;
    }
    unit
}

/// The inputs of a forecast.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Spend per day (any order; a day absent is zero spend once the series has begun).
    pub daily: &'a [(NaiveDate, Decimal)],
    /// The period: first day and the day after its last.
    pub period: (NaiveDate, NaiveDate),
    /// Today: the first day that is not complete.
    pub as_of: NaiveDate,
    /// Days before `as_of` the provider may still restate (left out of the history).
    pub restate_days: i64,
}

/// The first day of history that is not complete: `as_of − restate_days`.
pub fn first_incomplete(as_of: NaiveDate, restate_days: i64) -> NaiveDate {
    as_of - chrono::Duration::days(restate_days.max(0))
}

/// The history window a forecast reads: `[start, end)`.
pub fn history_window(as_of: NaiveDate, restate_days: i64) -> (NaiveDate, NaiveDate) {
    let end = first_incomplete(as_of, restate_days);
    (end - chrono::Duration::days(MAX_HISTORY_DAYS), end)
}

/// The forecast of `series` (see the module documentation for the method).
pub fn forecast(series: &Series<'_>) -> Result<Forecast, NoForecast> {
    let (hist_start, hist_end) = history_window(series.as_of, series.restate_days);
    let mut by_day = std::collections::BTreeMap::<NaiveDate, Decimal>::new();
    for (d, v) in series.daily {
        let slot = by_day.entry(*d).or_default();
        *slot = slot.checked_add(*v).ok_or(NoForecast::OutOfRange)?;
    }
    // History: from the first day with spend in the window, every day (zero when absent).
    let first = by_day
        .iter()
        .find(|(d, v)| **d >= hist_start && **d < hist_end && !v.is_zero())
        .map(|(d, _)| *d);
    let mut history: Vec<(NaiveDate, Decimal)> = Vec::new();
    if let Some(first) = first {
        let mut d = first;
        while d < hist_end {
            history.push((d, by_day.get(&d).copied().unwrap_or_default()));
            d = d.succ_opt().unwrap_or(hist_end);
        }
    }
    // The fit in units of `unit` (1 for any ordinary bill); the forecast is scaled back.
    let unit = fit_unit(&history);
    if unit != Decimal::ONE {
        for (_, v) in &mut history {
            *v /= unit;
        }
    }
    let outliers = drop_outliers(&mut history);
    if history.len() < MIN_HISTORY_DAYS {
        return Err(NoForecast::InsufficientHistory {
            days: history.len(),
        });
    }
    let model = Model::fit(&history, history.len() >= WEEKLY_HISTORY_DAYS);

    // The period: actual for its complete days, predictions for the rest.
    let (p_start, p_end) = series.period;
    let complete_end = first_incomplete(series.as_of, series.restate_days).clamp(p_start, p_end);
    let mut actual_complete = Decimal::ZERO;
    for (_, v) in by_day.range(p_start..complete_end) {
        actual_complete = actual_complete
            .checked_add(*v)
            .ok_or(NoForecast::OutOfRange)?;
    }
    let mut predicted = Decimal::ZERO;
    let mut k = 0usize;
    let mut d = complete_end;
    while d < p_end {
        predicted += model.predict(d).max(Decimal::ZERO);
        k += 1;
        d = d.succ_opt().unwrap_or(p_end);
    }
    let in_range = |v: Option<Decimal>| v.ok_or(NoForecast::OutOfRange);
    let predicted = in_range(predicted.checked_mul(unit))?;
    let amount = in_range(actual_complete.checked_add(predicted))?;
    let half = in_range((Z80 * model.sigma * sqrt(Decimal::from(k as u64))).checked_mul(unit))?;
    let round = |v: Decimal| v.round_dp(10).normalize();
    Ok(Forecast {
        amount: round(amount),
        low: round(
            in_range(amount.checked_sub(half))?
                .max(actual_complete)
                .max(Decimal::ZERO),
        ),
        high: round(in_range(amount.checked_add(half))?),
        actual_complete,
        method: if model.weekday.is_some() {
            Method::LinearTrendWithWeekday
        } else {
            Method::LinearTrend
        },
        days_used: history.len(),
        outliers,
        days_predicted: k,
    })
}

/// Leaves out the days outside `[Q1 − 1.5·IQR, Q3 + 1.5·IQR]` (per weekday once weekday
/// effects are fitted); returns them.
fn drop_outliers(history: &mut Vec<(NaiveDate, Decimal)>) -> Vec<NaiveDate> {
    // Outliers by 1.5 × IQR: per weekday once weekday effects are fitted (a Monday peak is
    // a pattern, not an outlier), else over all days.
    let weekly = history.len() >= WEEKLY_HISTORY_DAYS;
    let group = |d: NaiveDate| {
        if weekly {
            d.weekday().num_days_from_monday()
        } else {
            0
        }
    };
    let mut fences = [None; 7];
    for (g, fence) in fences.iter_mut().enumerate() {
        let mut sorted: Vec<Decimal> = history
            .iter()
            .filter(|(d, _)| group(*d) as usize == g)
            .map(|(_, v)| *v)
            .collect();
        if sorted.len() >= 4 {
            sorted.sort();
            let (q1, q3) = (quantile(&sorted, 1, 4), quantile(&sorted, 3, 4));
            let width = (q3 - q1) * Decimal::new(15, 1);
            *fence = Some((q1 - width, q3 + width));
        }
    }
    let mut outliers = Vec::new();
    history.retain(|(d, v)| {
        let keep = fences[group(*d) as usize].is_none_or(|(lo, hi)| *v >= lo && *v <= hi);
        if !keep {
            outliers.push(*d);
        }
        keep
    });
    outliers
}

/// The `num/den` quantile of sorted values, interpolating between closest ranks (R's type 7).
fn quantile(sorted: &[Decimal], num: u64, den: u64) -> Decimal {
    let n = sorted.len() as u64;
    let pos = Decimal::from((n - 1) * num) / Decimal::from(den);
    let lower = pos.floor();
    let i = usize::try_from(lower.mantissa()).unwrap_or(0) / 10usize.pow(lower.scale());
    let frac = pos - lower;
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + (*next - sorted[i]) * frac,
        None => sorted[i],
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting (`None`: singular).
fn solve(mut a: Vec<Vec<Decimal>>, mut b: Vec<Decimal>) -> Option<Vec<Decimal>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by_key(|r| a[*r][col].abs())?;
        if a[pivot][col].abs() < Decimal::new(1, 20) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let factor = a[row][col] / a[col][col];
            if factor.is_zero() {
                continue;
            }
            let (upper, lower) = a.split_at_mut(row);
            for (x, p) in lower[0][col..].iter_mut().zip(&upper[col][col..]) {
                *x -= factor * *p;
            }
            let delta = factor * b[col];
            b[row] -= delta;
        }
    }
    let mut x = vec![Decimal::ZERO; n];
    for row in (0..n).rev() {
        let rest: Decimal = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    Some(x)
}

/// Square root by Newton's method (exact decimals, to 20 places).
fn sqrt(v: Decimal) -> Decimal {
    if v <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let mut x = if v > Decimal::ONE {
        v / Decimal::TWO
    } else {
        Decimal::ONE
    };
    for _ in 0..100 {
        let next = (x + v / x) / Decimal::TWO;
        if (next - x).abs() < Decimal::new(1, 20) {
            return next;
        }
        x = next;
    }
    x
}

/// A fitted line (and weekday effects) over day numbers.
struct Model {
    origin: NaiveDate,
    intercept: Decimal,
    slope: Decimal,
    /// Mean residual per weekday (Monday first), when fitted.
    weekday: Option<[Decimal; 7]>,
    /// Residual standard deviation.
    sigma: Decimal,
}

impl Model {
    /// Fits by least squares: a line over the day index, with `weekly` plus one effect per
    /// weekday (Monday the baseline), all together (the normal equations solved exactly).
    fn fit(history: &[(NaiveDate, Decimal)], weekly: bool) -> Model {
        let origin = history[0].0;
        let features = |d: NaiveDate| -> Vec<Decimal> {
            let mut f = vec![
                Decimal::ONE,
                Decimal::from(d.signed_duration_since(origin).num_days()),
            ];
            if weekly {
                let w = d.weekday().num_days_from_monday();
                f.extend((1..7).map(|k| if w == k { Decimal::ONE } else { Decimal::ZERO }));
            }
            f
        };
        let p = if weekly { 8 } else { 2 };
        let mut xtx = vec![vec![Decimal::ZERO; p]; p];
        let mut xty = vec![Decimal::ZERO; p];
        for (d, v) in history {
            let f = features(*d);
            for i in 0..p {
                xty[i] += f[i] * *v;
                for j in 0..p {
                    xtx[i][j] += f[i] * f[j];
                }
            }
        }
        let beta = solve(xtx, xty).unwrap_or_else(|| {
            // Singular (every day the same weekday index, or one day): the mean, flat.
            let n = Decimal::from(history.len() as u64);
            let mut b = vec![Decimal::ZERO; p];
            b[0] = history.iter().map(|(_, v)| *v).sum::<Decimal>() / n;
            b
        });
        let mut model = Model {
            origin,
            intercept: beta[0],
            slope: beta[1],
            weekday: weekly.then(|| {
                let mut e = [Decimal::ZERO; 7];
                e[1..].copy_from_slice(&beta[2..8]);
                e
            }),
            sigma: Decimal::ZERO,
        };
        let sse: Decimal = history
            .iter()
            .map(|(d, v)| (*v - model.predict(*d)) * (*v - model.predict(*d)))
            .sum();
        let dof = (history.len() as u64).saturating_sub(p as u64).max(1);
        model.sigma = sqrt(sse / Decimal::from(dof));
        model
    }

    fn effect(&self, d: NaiveDate) -> Decimal {
        let w = d.weekday().num_days_from_monday() as usize;
        self.weekday.map_or(Decimal::ZERO, |e| e[w])
    }

    fn line(&self, d: NaiveDate) -> Decimal {
        self.intercept + self.slope * Decimal::from(d.signed_duration_since(self.origin).num_days())
    }

    fn predict(&self, d: NaiveDate) -> Decimal {
        self.line(d) + self.effect(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// `n` days ending the day before `end`, valued by `f(i)` (i = 0 for the first day).
    fn series(
        end: &str,
        n: i64,
        f: impl Fn(i64, NaiveDate) -> Decimal,
    ) -> Vec<(NaiveDate, Decimal)> {
        let end = day(end);
        (0..n)
            .map(|i| {
                let d = end - chrono::Duration::days(n - i);
                (d, f(i, d))
            })
            .collect()
    }

    fn june(daily: &[(NaiveDate, Decimal)], as_of: &str) -> Result<Forecast, NoForecast> {
        forecast(&Series {
            daily,
            period: (day("2025-06-01"), day("2025-07-01")),
            as_of: day(as_of),
            restate_days: DEFAULT_RESTATE_DAYS,
        })
    }

    #[test]
    fn a_flat_series_forecasts_its_level_exactly() {
        // 10.00 a day since April; today June 16: complete days June 1–13 (13 × 10 = 130),
        // predicted June 14–30 (17 × 10 = 170): 300, no spread.
        let daily = series("2025-06-16", 60, |_, _| dec("10.00"));
        let f = june(&daily, "2025-06-16").unwrap();
        assert_eq!(f.actual_complete, dec("130"));
        assert_eq!(f.days_predicted, 17);
        assert_eq!(f.amount, dec("300"));
        assert_eq!((f.low, f.high), (dec("300"), dec("300")));
        assert_eq!(f.method, Method::LinearTrendWithWeekday);
        // History: the 58 days before June 14 that have data (the series ends June 15).
        assert_eq!(f.days_used, 58);
    }

    #[test]
    fn a_linear_series_continues_its_line() {
        // Spend i on the i-th day (day 0 = April 17); June 14 is day 58 … June 30 day 74.
        // Complete June 1–13 = days 45..=57: sum 663. Predicted days 58..=74: sum 1122.
        let daily = series("2025-06-16", 60, |i, _| Decimal::from(i));
        let f = june(&daily, "2025-06-16").unwrap();
        assert_eq!(f.actual_complete, dec("663"));
        assert_eq!(f.amount, dec("1785"));
        assert_eq!(
            (f.low, f.high),
            (f.amount, f.amount),
            "a perfect fit has no spread"
        );
    }

    #[test]
    fn a_weekly_pattern_is_kept_once_four_weeks_exist() {
        // 100 on Mondays, 10 on other days, flat: the forecast gives each remaining Monday 100.
        let daily = series("2025-06-16", 63, |_, d| {
            if d.weekday() == chrono::Weekday::Mon {
                dec("100")
            } else {
                dec("10")
            }
        });
        let f = june(&daily, "2025-06-16").unwrap();
        // June 1–13 holds Mondays June 2 and 9: 2 × 100 + 11 × 10 = 310.
        assert_eq!(f.actual_complete, dec("310"));
        // June 14–30 holds Mondays 16, 23, 30: 3 × 100 + 14 × 10 = 440 (the pattern has no
        // trend: the line through the values less their weekday's effect is flat).
        assert_eq!(f.amount, dec("750"));
        assert_eq!((f.low, f.high), (dec("750"), dec("750")));
        // Without weekday effects (fewer than 28 days) the Mondays would be averaged away.
        let short = series("2025-06-16", 20, |_, d| {
            if d.weekday() == chrono::Weekday::Mon {
                dec("100")
            } else {
                dec("10")
            }
        });
        let f = june(&short, "2025-06-16").unwrap();
        assert_eq!(f.method, Method::LinearTrend);
    }

    #[test]
    fn a_spike_is_left_out_as_an_outlier() {
        // Flat 10 with one day at 1000: the spike is an outlier, the forecast stays at 300.
        let daily = series("2025-06-16", 40, |i, _| {
            if i == 10 {
                dec("1000")
            } else {
                dec("10")
            }
        });
        let spike_day = daily[10].0;
        let f = june(&daily, "2025-06-16").unwrap();
        assert_eq!(f.outliers, vec![spike_day]);
        // The spike (May 17) is outside June: June's actual is 13 × 10.
        assert_eq!(f.amount, dec("300"));
    }

    #[test]
    fn fewer_than_eight_days_is_insufficient_history() {
        // 9 days of data, but today minus 2 restatable days leaves 7 complete days.
        let daily = series("2025-06-16", 9, |_, _| dec("1"));
        assert_eq!(
            june(&daily, "2025-06-16"),
            Err(NoForecast::InsufficientHistory { days: 7 })
        );
    }

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let v: Vec<Decimal> = [1, 2, 3, 4, 5].map(Decimal::from).to_vec();
        assert_eq!(quantile(&v, 1, 4), dec("2"));
        let v: Vec<Decimal> = [1, 2, 3, 4].map(Decimal::from).to_vec();
        assert_eq!(quantile(&v, 1, 4), dec("1.75"));
        assert_eq!(quantile(&v, 3, 4), dec("3.25"));
        assert_eq!(sqrt(dec("2")).round_dp(10), dec("1.4142135624"));
    }

    #[test]
    fn amounts_at_the_decimal_limit_are_fitted_scaled_or_refused() {
        // #30: days of 10^20 (squares of 10^40 leave the decimal range) are fitted in units
        // of 10^12 and the forecast scaled back: the flat series forecasts its level.
        let big = Decimal::from_i128_with_scale(10_i128.pow(20), 0);
        let daily = series("2025-06-16", 60, |_, _| big);
        let f = june(&daily, "2025-06-16").unwrap();
        // The fit is in units of 10^12: exact to about 28 significant digits, not to the
        // last decimal (a forecast is an estimate; ordinary bills are fitted unscaled).
        let expected = big * Decimal::from(30);
        assert!(
            (f.amount - expected).abs() < Decimal::new(1, 3),
            "{}",
            f.amount
        );
        assert_eq!(f.actual_complete, big * Decimal::from(13));
        // A period whose forecast leaves the range is refused, never a panic.
        let daily = series("2025-06-16", 60, |_, _| Decimal::MAX / Decimal::TWO);
        assert_eq!(june(&daily, "2025-06-16"), Err(NoForecast::OutOfRange));
        // Two rows of one day that sum beyond the range.
        let mut daily = series("2025-06-16", 60, |_, _| dec("10"));
        daily.push((daily[0].0, Decimal::MAX));
        daily.push((daily[0].0, Decimal::MAX));
        assert_eq!(june(&daily, "2025-06-16"), Err(NoForecast::OutOfRange));
    }
}
