//! The series chart's axes: a handful of value ticks at round numbers, and a handful of
//! time ticks at nice UTC times that are also step starts, labelled as briefly as the
//! span allows. How many ticks depends on the span and the range, never on the number of
//! steps, so labels do not crowd at 1,440 steps any more than at 60.

use chrono::{DateTime, Utc};

/// Most intervals between value ticks (so at most seven ticks).
const VALUE_INTERVALS: f64 = 6.0;
/// Fewest and most time ticks.
pub const MIN_TIME_TICKS: usize = 3;
pub const MAX_TIME_TICKS: usize = 7;
/// Tick intervals that read well on a clock or a calendar (seconds).
const NICE_SECONDS: [i64; 22] = [
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    2 * 60,
    5 * 60,
    10 * 60,
    15 * 60,
    30 * 60,
    3_600,
    2 * 3_600,
    3 * 3_600,
    6 * 3_600,
    12 * 3_600,
    86_400,
    2 * 86_400,
    7 * 86_400,
    14 * 86_400,
    28 * 86_400,
];
const MICROS: i64 = 1_000_000;
const DAY_MICROS: i64 = 86_400 * MICROS;

/// Ticks spanning `[lo, hi]` at the finest 1, 2 or 5 × 10ⁿ step giving at most
/// [`VALUE_INTERVALS`] intervals: the first at or below `lo`, the last at or above `hi`, so
/// they are also the axis' ends. A flat range is widened around its value; a range too
/// wide for `f64` arithmetic gets its two ends only.
pub fn value_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = widen(lo, hi);
    // Halves first: `hi - lo` overflows for values near ±f64::MAX.
    let rough = (hi / 2.0 - lo / 2.0) / VALUE_INTERVALS * 2.0;
    let intervals = |step: f64| (hi / step).ceil() - (lo / step).floor();
    let step = nice_steps(rough).find(|s| intervals(*s) <= VALUE_INTERVALS);
    // NaN fails this too.
    let Some(step) = step.filter(|s| *s > 0.0 && s.is_finite()) else {
        return vec![lo, hi];
    };
    let first = (lo / step).floor();
    let ticks: Vec<f64> = (0..=intervals(step) as i64)
        .map(|k| (first + k as f64) * step)
        .collect();
    if ticks.iter().all(|t| t.is_finite()) {
        ticks
    } else {
        vec![lo, hi]
    }
}

/// A range with room in it: a flat one becomes its value ±10% (±1 around zero).
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        return (lo, hi);
    }
    let pad = if lo == 0.0 { 1.0 } else { lo.abs() / 10.0 };
    let (a, b) = (lo - pad, hi + pad);
    if a.is_finite() && b.is_finite() {
        (a, b)
    } else {
        (lo.min(0.0), hi.max(0.0).max(lo + 1.0))
    }
}

/// The 1, 2 or 5 × 10ⁿ steps from the smallest at least `rough` up, a few of them.
fn nice_steps(rough: f64) -> impl Iterator<Item = f64> {
    let magnitude = 10f64.powf(rough.log10().floor());
    let usable = rough.is_finite() && rough > 0.0 && magnitude.is_finite() && magnitude > 0.0;
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        .into_iter()
        .map(move |m| m * magnitude)
        .filter(move |s| usable && *s >= rough * (1.0 - 1e-9))
}

/// Time ticks in `[from, to]` (µs since the epoch) and their interval: the multiples of
/// the shortest nice interval giving [`MIN_TIME_TICKS`] to [`MAX_TIME_TICKS`] ticks,
/// preferring one that is a whole number of steps (every tick a step's start). When no
/// nice interval fits (a span of years, a single step), the fewest steps that do.
pub fn time_ticks(from: i64, to: i64, step: i64) -> (i64, Vec<i64>) {
    let step = step.max(1);
    let within = |every: i64| {
        let first = from.div_euclid(every) + i64::from(from.rem_euclid(every) > 0);
        let last = to.div_euclid(every);
        (first..=last).map(move |k| k * every)
    };
    let count = |every: i64| within(every).take(MAX_TIME_TICKS + 1).count();
    let nice = |whole_steps: bool| {
        NICE_SECONDS
            .iter()
            .map(|s| s * MICROS)
            .filter(|every| *every >= step && (!whole_steps || every % step == 0))
            .find(|every| (MIN_TIME_TICKS..=MAX_TIME_TICKS).contains(&count(*every)))
    };
    let every = nice(true).or_else(|| nice(false)).unwrap_or_else(|| {
        let steps = (to - from).max(step) / step;
        let mut k = (steps / (MAX_TIME_TICKS as i64 - 1)).max(1);
        while count(k.saturating_mul(step)) > MAX_TIME_TICKS {
            k += 1;
        }
        k.saturating_mul(step)
    });
    (every, within(every).collect())
}

/// How a tick reads: `HH:MM` within two days (`HH:MM:SS` when ticks are under a minute
/// apart), `MM-DD` (with `HH:MM` unless ticks fall on midnights) within a year, then
/// `YYYY-MM-DD`. Always UTC.
pub fn time_format(span: i64, every: i64) -> &'static str {
    if every < 60 * MICROS {
        "%H:%M:%S"
    } else if span < 2 * DAY_MICROS {
        "%H:%M"
    } else if span <= 365 * DAY_MICROS {
        if every % DAY_MICROS == 0 {
            "%m-%d"
        } else {
            "%m-%d %H:%M"
        }
    } else {
        "%Y-%m-%d"
    }
}

/// A tick's label in `format` (UTC).
pub fn time_label(at: i64, format: &str) -> String {
    DateTime::<Utc>::from_timestamp_micros(at)
        .map_or_else(String::new, |t| t.format(format).to_string())
}
