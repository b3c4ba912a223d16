//! Inline SVG drawn by the server: line charts over the history, sparklines
//! and breaker state timelines. Only numbers reach the SVG; labels are
//! escaped by the templates. Presentation lives in the stylesheet (the CSP
//! allows no inline styles).

use super::format;
use super::history::HISTORY_SECONDS;
use crate::breaker::BreakerState;

/// Chart canvas, in SVG user units.
pub const WIDTH: f64 = 360.0;
pub const HEIGHT: f64 = 80.0;
/// Seconds per plotted point on the 15-minute charts.
pub const BUCKET_SECONDS: usize = 5;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `x,y` pairs for `<polyline points=…>`.
    pub points: String,
    /// Stylesheet class (`s0`, `s1`, …) and the legend's words.
    pub class: &'static str,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub lines: Vec<Line>,
    /// The top of the y axis, formatted.
    pub max: String,
    /// The newest value of the first line, formatted.
    pub latest: String,
}

const CLASSES: [&str; 4] = ["s0", "s1", "s2", "s3"];

impl Chart {
    /// A 15-minute chart of per-second series, averaged per `BUCKET_SECONDS`
    /// and right-aligned at now. `unit` formats the numbers (e.g. "/s", "%").
    pub fn over_history(title: &str, unit: Unit, series: &[(&str, Vec<f64>)]) -> Self {
        let bucketed: Vec<Vec<f64>> = series.iter().map(|(_, s)| buckets(s)).collect();
        let top = bucketed
            .iter()
            .flatten()
            .copied()
            .fold(0.0_f64, f64::max)
            .max(unit.floor());
        let slots = HISTORY_SECONDS / BUCKET_SECONDS;
        let lines = bucketed
            .iter()
            .zip(series)
            .enumerate()
            .map(|(i, (values, (label, _)))| Line {
                points: polyline(values, slots, top),
                class: CLASSES[i % CLASSES.len()],
                label: (*label).to_owned(),
            })
            .collect();
        let latest = bucketed
            .first()
            .and_then(|v| v.last().copied())
            .unwrap_or(0.0);
        Self {
            title: title.to_owned(),
            lines,
            max: unit.format(top),
            latest: unit.format(latest),
        }
    }

    /// A small chart of raw values (oldest first), scaled between their own
    /// minimum and maximum.
    pub fn sparkline(values: &[f64]) -> Line {
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let shifted: Vec<f64> = values.iter().map(|v| v - lo).collect();
        let n = values.len().max(2);
        let points = shifted
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = i as f64 * 100.0 / (n - 1) as f64;
                let y = 20.0 - (v / span) * 18.0 - 1.0;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ");
        Line {
            points,
            class: "s0",
            label: String::new(),
        }
    }
}

/// How a chart's numbers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSecond,
    /// 0..1 shown as a percentage.
    Ratio,
}

impl Unit {
    fn format(self, v: f64) -> String {
        match self {
            Unit::PerSecond => format!("{}/s", format::number(v)),
            Unit::Ratio => format::percent(v),
        }
    }

    /// Smallest y-axis top, so a quiet chart is a flat line at the bottom.
    fn floor(self) -> f64 {
        match self {
            Unit::PerSecond => 1.0,
            Unit::Ratio => 1.0,
        }
    }
}

fn buckets(series: &[f64]) -> Vec<f64> {
    // Align buckets to the newest second so the last point is always complete.
    let skip = series.len() % BUCKET_SECONDS;
    series[skip..]
        .chunks(BUCKET_SECONDS)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect()
}

fn polyline(values: &[f64], slots: usize, top: f64) -> String {
    let step = WIDTH / (slots.max(2) - 1) as f64;
    let offset = slots.saturating_sub(values.len());
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = (offset + i) as f64 * step;
            let y = HEIGHT - (v / top).clamp(0.0, 1.0) * (HEIGHT - 2.0) - 1.0;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One run of a breaker's state on its timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub x: String,
    pub width: String,
    /// The state's key (`closed`, `open`, …), also its stylesheet class.
    pub state: &'static str,
    /// Tooltip, e.g. "OPEN for 30 s".
    pub title: String,
}

/// A breaker's states over the history, right-aligned at now; `runs` are
/// `(first second, seconds, state)` counted from the history's start.
pub fn timeline(runs: &[(usize, usize, BreakerState)], kept: usize) -> Vec<Segment> {
    let unit = WIDTH / HISTORY_SECONDS as f64;
    let offset = HISTORY_SECONDS.saturating_sub(kept);
    runs.iter()
        .map(|(start, len, state)| Segment {
            x: format!("{:.1}", (offset + start) as f64 * unit),
            width: format!("{:.1}", *len as f64 * unit),
            state: state.as_str(),
            title: format!(
                "{} for {}",
                format::state_label(*state),
                format::seconds(*len as f64)
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_history_spans_the_width_and_scales_to_the_peak() {
        let mut s = vec![0.0; HISTORY_SECONDS];
        s[HISTORY_SECONDS - 1] = 10.0;
        let c = Chart::over_history("req", Unit::PerSecond, &[("all", s)]);
        let pts: Vec<&str> = c.lines[0].points.split(' ').collect();
        assert_eq!(pts.len(), HISTORY_SECONDS / BUCKET_SECONDS);
        assert_eq!(pts[0], "0.0,79.0");
        // The last bucket averages 10 over 5 s = 2/s, the peak: the top.
        assert_eq!(*pts.last().unwrap(), "360.0,1.0");
        assert_eq!(c.max, "2/s");
        assert_eq!(c.latest, "2/s");
    }

    #[test]
    fn a_short_history_is_right_aligned() {
        let c = Chart::over_history("req", Unit::PerSecond, &[("all", vec![1.0; 10])]);
        let pts: Vec<&str> = c.lines[0].points.split(' ').collect();
        assert_eq!(pts.len(), 2);
        assert!(pts[1].starts_with("360.0,"), "{pts:?}");
    }

    #[test]
    fn timeline_segments_cover_their_seconds() {
        let runs = [
            (0, 450, BreakerState::Closed),
            (450, 450, BreakerState::Open),
        ];
        let segs = timeline(&runs, HISTORY_SECONDS);
        assert_eq!(segs[0].x, "0.0");
        assert_eq!(segs[0].width, "180.0");
        assert_eq!(segs[1].x, "180.0");
        assert_eq!(segs[1].state, "open");
        assert_eq!(segs[1].title, "OPEN for 7m 30s");
    }

    #[test]
    fn sparkline_of_a_constant_is_flat() {
        let l = Chart::sparkline(&[3.0, 3.0, 3.0]);
        assert_eq!(l.points, "0.0,19.0 50.0,19.0 100.0,19.0");
    }
}
