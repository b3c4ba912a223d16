//! Numbers, durations and times as people read them on the pages.

use chrono::{DateTime, Utc};

use crate::breaker::BreakerState;

/// `1234.5` -> `1,235`; `12.34` -> `12.3`; `0.5` -> `0.5`.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() >= 100.0 {
        grouped(v.round() as i64)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    grouped(n.min(i64::MAX as u64) as i64)
}

fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: `512 B`, `3.4 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A 0..1 ratio as `12.5%`.
pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "–".into();
    }
    format!("{:.1}%", ratio * 100.0)
}

/// A stored value: up to 6 significant digits, exponent when huge or tiny.
pub fn value(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-4) {
        format!("{v:.3e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// `42s`, `7m 30s`, `3h 05m`, `2d 04h`.
pub fn seconds(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s % 60 == 0 => format!("{}m", s / 60),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `2026-11-30 13:45:02 UTC`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `13:45:02`.
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S").to_string()
}

/// `CLOSED`, `HALF OPEN`, `FORCED OPEN`, …
pub fn state_label(state: BreakerState) -> String {
    state.as_str().replace('_', " ").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(number(1234.5), "1,235");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(value(1.5), "1.5");
        assert_eq!(value(1e12), "1.000e12");
        assert_eq!(seconds(450.0), "7m 30s");
        assert_eq!(seconds(3900.0), "1h 05m");
        assert_eq!(state_label(BreakerState::ForcedOpen), "FORCED OPEN");
        assert_eq!(state_label(BreakerState::HalfOpen), "HALF OPEN");
    }
}
