//! The metrics page's series chart as inline SVG geometry: per step, the average as a
//! line, the min–max band as a filled area around it and the p95 as a second line, with
//! a time axis and a value axis. Steps without points are gaps (nothing is drawn for
//! them, never a zero). Only numbers and tick labels this module formats reach the SVG;
//! the templates escape everything anyway. The chart keeps its aspect ratio (its text
//! must not stretch), so sizes here are in user units of a fixed `WIDTH` × `HEIGHT`.

mod axis;
#[cfg(test)]
mod tests;

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::format;
use crate::domain::{Aggregates, SeriesReport};

/// The canvas, in SVG user units.
pub const WIDTH: f64 = 960.0;
pub const HEIGHT: f64 = 300.0;
/// Room above the plot, right of it (half a time label) and under it (the time labels).
const TOP: f64 = 12.0;
const RIGHT: f64 = 40.0;
const BOTTOM: f64 = 28.0;
/// Axis text size, and the width of one of its characters (digits are about 0.6 em).
pub const FONT: f64 = 11.0;
const CHAR_WIDTH: f64 = 6.6;
/// Least room between two time labels.
const LABEL_GAP: f64 = 8.0;
/// Narrowest a step alone between gaps is drawn (a 1m step of a day is 0.6 wide).
const MIN_DASH: f64 = 4.0;

/// One axis tick: where its mark is, where its label goes, and the label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: String,
    pub text_at: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesChart {
    /// `0 0 WIDTH HEIGHT`.
    pub view_box: String,
    /// The plot area's edges.
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    /// Path data (`d`) of the average, the min–max band and the p95; empty with no points.
    pub avg: String,
    pub band: String,
    pub p95: String,
    /// Time ticks (x) and value ticks (y); labels of the first go under the plot at
    /// `x_label_y`, of the second left of it, ending at `y_label_x`.
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub x_label_y: String,
    pub y_label_x: String,
    /// The middle of the plot (for the "no points" note).
    pub middle: (String, String),
    /// Steps, and steps with points.
    pub steps: usize,
    pub filled: usize,
    /// The lowest and highest value drawn (formatted), when any step has points.
    pub range: Option<(String, String)>,
}

/// The plot area and the scales mapping times (µs) and values onto it.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    from: i64,
    to: i64,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn x(&self, at: i64) -> f64 {
        let share = (at - self.from) as f64 / (self.to - self.from) as f64;
        self.left + share.clamp(0.0, 1.0) * (self.right - self.left)
    }

    fn y(&self, v: f64) -> f64 {
        // Halves: `v - lo` overflows for values near ±f64::MAX.
        let share = (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0);
        let share = if share.is_finite() { share } else { 0.5 };
        self.bottom - share.clamp(0.0, 1.0) * (self.bottom - self.top)
    }
}

/// One step on the x axis: its edges (at least `MIN_DASH` apart) and middle, and its
/// aggregates.
struct Slot<'a> {
    x0: f64,
    mid: f64,
    x1: f64,
    agg: &'a Aggregates,
}

impl SeriesChart {
    pub fn draw(report: &SeriesReport) -> Self {
        let from = micros(report.from);
        let to = micros(report.to).max(from.saturating_add(1));
        let steps = report.points.len();
        let step = ((to - from) / steps.max(1) as i64).max(1);
        let range = value_range(report);
        let (lo, hi) = range.unwrap_or((0.0, 1.0));
        let values = axis::value_ticks(lo, hi);
        let labels: Vec<String> = values.iter().map(|v| format::value(*v)).collect();
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
        let frame = Frame {
            left: (widest as f64 * CHAR_WIDTH + 12.0).clamp(36.0, 160.0),
            right: WIDTH - RIGHT,
            top: TOP,
            bottom: HEIGHT - BOTTOM,
            from,
            to,
            lo: values.first().copied().unwrap_or(lo),
            hi: values.last().copied().unwrap_or(hi),
        };
        let slots: Vec<Slot> = report
            .points
            .iter()
            .map(|p| {
                let start = micros(p.start);
                let (x0, x1) = (frame.x(start), frame.x(start.saturating_add(step)));
                let (mid, half) = ((x0 + x1) / 2.0, ((x1 - x0) / 2.0).max(MIN_DASH / 2.0));
                Slot {
                    x0: mid - half,
                    mid,
                    x1: mid + half,
                    agg: &p.aggregates,
                }
            })
            .collect();
        Self {
            view_box: format!("0 0 {WIDTH} {HEIGHT}"),
            left: coord(frame.left),
            right: coord(frame.right),
            top: coord(frame.top),
            bottom: coord(frame.bottom),
            avg: line(&slots, &frame, |a| a.average),
            band: band(&slots, &frame),
            p95: line(&slots, &frame, |a| a.p95),
            x_ticks: time_ticks(&frame, step),
            y_ticks: values
                .iter()
                .zip(labels)
                .map(|(v, label)| Tick {
                    at: coord(frame.y(*v)),
                    text_at: coord(frame.y(*v) + FONT / 3.0),
                    label,
                })
                .collect(),
            x_label_y: coord(frame.bottom + FONT + 6.0),
            y_label_x: coord(frame.left - 6.0),
            middle: (
                coord((frame.left + frame.right) / 2.0),
                coord((frame.top + frame.bottom) / 2.0),
            ),
            steps,
            filled: slots.iter().filter(|s| s.agg.count > 0).count(),
            range: range.map(|(lo, hi)| (format::value(lo), format::value(hi))),
        }
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn coord(v: f64) -> String {
    format!("{v:.1}")
}

/// The lowest and highest of every drawn number (the p95 comes from a sketch and may
/// lie a little past the max), over the steps with points.
fn value_range(report: &SeriesReport) -> Option<(f64, f64)> {
    report
        .points
        .iter()
        .map(|p| &p.aggregates)
        .filter(|a| a.count > 0)
        .flat_map(|a| [a.min, a.max, a.average, a.p95])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(None, |range, v| match range {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

/// The runs of consecutive steps that have points and the value(s) `has` asks for:
/// each run is drawn on its own, so an empty step leaves a gap.
fn runs<'s, 'a>(
    slots: &'s [Slot<'a>],
    has: impl Fn(&Aggregates) -> bool + 's,
) -> impl Iterator<Item = &'s [Slot<'a>]> {
    slots
        .split(move |s| s.agg.count == 0 || !has(s.agg))
        .filter(|run| !run.is_empty())
}

/// A line through the steps' middles; a step alone between gaps is a dash across it.
fn line(slots: &[Slot], frame: &Frame, value: impl Fn(&Aggregates) -> Option<f64>) -> String {
    let mut d = String::new();
    let y = |s: &Slot| frame.y(value(s.agg).unwrap_or_default());
    for run in runs(slots, |a| value(a).is_some()) {
        if let [alone] = run {
            let _ = write!(d, "M{:.1},{:.1}H{:.1}", alone.x0, y(alone), alone.x1);
            continue;
        }
        for (i, s) in run.iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{:.1},{:.1}", s.mid, y(s));
        }
    }
    d
}

/// The area between the max (along the top) and the min (back along the bottom); a step
/// alone between gaps is a rectangle across it.
fn band(slots: &[Slot], frame: &Frame) -> String {
    let mut d = String::new();
    let (top, low) = (
        |s: &Slot| frame.y(s.agg.max.unwrap_or_default()),
        |s: &Slot| frame.y(s.agg.min.unwrap_or_default()),
    );
    for run in runs(slots, |a| a.min.is_some() && a.max.is_some()) {
        if let [s] = run {
            let _ = write!(
                d,
                "M{:.1},{:.1}H{:.1}V{:.1}H{:.1}Z",
                s.x0,
                top(s),
                s.x1,
                low(s),
                s.x0
            );
            continue;
        }
        for (i, s) in run.iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{:.1},{:.1}", s.mid, top(s));
        }
        for s in run.iter().rev() {
            let _ = write!(d, "L{:.1},{:.1}", s.mid, low(s));
        }
        d.push('Z');
    }
    d
}

/// Time ticks with labels that fit the canvas and do not run into each other.
fn time_ticks(frame: &Frame, step: i64) -> Vec<Tick> {
    let (every, at) = axis::time_ticks(frame.from, frame.to, step);
    let format = axis::time_format(frame.to - frame.from, every);
    let mut ticks = Vec::with_capacity(at.len());
    let mut free_from = 0.0;
    for t in at {
        let (x, label) = (frame.x(t), axis::time_label(t, format));
        let half = label.chars().count() as f64 * CHAR_WIDTH / 2.0;
        if x - half < free_from || x + half > WIDTH {
            continue;
        }
        free_from = x + half + LABEL_GAP;
        ticks.push(Tick {
            at: coord(x),
            text_at: coord(x),
            label,
        });
    }
    ticks
}
