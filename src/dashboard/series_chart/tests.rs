use chrono::{DateTime, Duration, TimeZone, Utc};

use super::axis::{MAX_TIME_TICKS, time_ticks, value_ticks};
use super::*;
use crate::domain::{SeriesPoint, SeriesReport};

/// 2026-03-14 09:00:00 UTC, on every nice boundary up to an hour.
fn nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap()
}

/// A step with points: (min, average, max, p95).
fn filled(min: f64, avg: f64, max: f64, p95: f64) -> Option<Aggregates> {
    Some(Aggregates {
        count: 3,
        sum: Some(avg * 3.0),
        average: Some(avg),
        min: Some(min),
        max: Some(max),
        latest: Some(avg),
        p50: Some(avg),
        p90: Some(p95),
        p95: Some(p95),
        p99: Some(max),
    })
}

fn report(from: DateTime<Utc>, step_secs: i64, steps: Vec<Option<Aggregates>>) -> SeriesReport {
    let step = Duration::seconds(step_secs);
    let n = steps.len() as i32;
    SeriesReport {
        metric_type: "cpu".into(),
        period: "hourly".into(),
        step: format!("{step_secs}s"),
        step_chosen: false,
        from,
        to: from + step * n,
        points: steps
            .into_iter()
            .enumerate()
            .map(|(i, a)| SeriesPoint {
                start: from + step * i as i32,
                partial: false,
                aggregates: a.unwrap_or_default(),
            })
            .collect(),
    }
}

/// The numbers of a path's data, as (x, y) pairs of its `M`/`L` commands.
fn pairs(d: &str) -> Vec<(f64, f64)> {
    d.split(['M', 'L'])
        .filter_map(|p| p.split_once(','))
        .map(|(x, y)| {
            let y = y.split(['H', 'V', 'Z']).next().unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn empty_steps_are_gaps_not_zeros() {
    let c = SeriesChart::draw(&report(
        nine(),
        60,
        vec![
            filled(1.0, 2.0, 3.0, 2.9),
            None,
            filled(1.0, 2.0, 3.0, 2.9),
            filled(4.0, 5.0, 6.0, 5.9),
            None,
        ],
    ));
    assert_eq!((c.steps, c.filled), (5, 3));
    // Two runs: the lone first step as a dash across it, then steps 3 and 4.
    assert_eq!(c.avg.matches('M').count(), 2, "{}", c.avg);
    assert_eq!(c.p95.matches('M').count(), 2, "{}", c.p95);
    assert_eq!(c.band.matches('Z').count(), 2, "{}", c.band);
    assert!(c.avg.starts_with("M") && c.avg.contains('H'), "{}", c.avg);
    // Nothing is drawn over the empty steps (the second and the fifth fifths).
    let left: f64 = c.left.parse().unwrap();
    let width = (c.right.parse::<f64>().unwrap() - left) / 5.0;
    for (x, _) in pairs(&c.avg).into_iter().chain(pairs(&c.p95)) {
        let slot = ((x - left) / width).floor() as usize;
        assert!(slot != 1 && slot != 4, "x {x} in an empty step: {}", c.avg);
    }
    // And no point sits on the value axis' zero: zero is not even on it.
    assert!(c.y_ticks.iter().all(|t| t.label != "0"), "{:?}", c.y_ticks);
}

#[test]
fn the_band_runs_along_the_max_and_back_along_the_min_around_the_average() {
    let c = SeriesChart::draw(&report(nine(), 300, vec![filled(1.0, 2.0, 4.0, 3.5); 4]));
    let band = pairs(&c.band);
    assert_eq!(band.len(), 8, "4 along the top, 4 back: {}", c.band);
    let (top, bottom) = (band[0].1, band[7].1);
    assert!(band[..4].iter().all(|p| p.1 == top));
    assert!(band[4..].iter().all(|p| p.1 == bottom));
    assert!(top < bottom, "max above min (SVG y grows downwards)");
    assert_eq!(band[0].0, band[7].0, "back to where it started");
    for (_, y) in pairs(&c.avg).into_iter().chain(pairs(&c.p95)) {
        assert!(top < y && y < bottom, "{y} outside {top}..{bottom}");
    }
    // The p95 is above the average.
    assert!(pairs(&c.p95)[0].1 < pairs(&c.avg)[0].1);
    assert_eq!(c.range, Some(("1".into(), "4".into())));
}

#[test]
fn a_window_without_points_draws_axes_and_nothing_else() {
    let c = SeriesChart::draw(&report(nine(), 60, vec![None; 60]));
    assert_eq!(
        (c.avg.as_str(), c.band.as_str(), c.p95.as_str()),
        ("", "", "")
    );
    assert_eq!((c.filled, c.range.clone()), (0, None));
    assert!(c.x_ticks.len() >= 2 && c.y_ticks.len() >= 2);
}

#[test]
fn value_ticks_are_round_and_cover_the_range() {
    assert_eq!(value_ticks(0.3, 9.7), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(
        value_ticks(-12.0, 37.0),
        vec![-20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0]
    );
    // The finest round step that keeps them few: 20s, not 50s from 0 to 200.
    assert_eq!(
        value_ticks(47.18, 152.35),
        vec![40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0]
    );
    let flat = value_ticks(1.5, 1.5);
    assert!(flat[0] < 1.5 && *flat.last().unwrap() > 1.5, "{flat:?}");
    let labels: Vec<String> = value_ticks(0.0, 0.5)
        .iter()
        .map(|v| format::value(*v))
        .collect();
    assert_eq!(labels, ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
    for (lo, hi) in [(-f64::MAX, f64::MAX), (f64::MAX, f64::MAX), (0.0, 0.0)] {
        let ticks = value_ticks(lo, hi);
        assert!(
            ticks.len() >= 2 && ticks.iter().all(|t| t.is_finite()),
            "{ticks:?}"
        );
    }
    // The chart copes with them too.
    let c = SeriesChart::draw(&report(
        nine(),
        60,
        vec![filled(-f64::MAX, 0.0, f64::MAX, 1.0)],
    ));
    assert!(
        !c.band.contains("NaN") && !c.avg.contains("inf"),
        "{}",
        c.band
    );
}

#[test]
fn time_ticks_fall_on_nice_step_starts() {
    let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap();
    let us = |t: DateTime<Utc>| t.timestamp_micros();
    // An hour at 1m from 09:00: every 10 minutes.
    let (every, ticks) = time_ticks(us(at(9, 0)), us(at(10, 0)), 60_000_000);
    assert_eq!(every, 10 * 60_000_000);
    assert_eq!(ticks.len(), 7);
    assert_eq!(ticks[1], us(at(9, 10)));
    // Shifted by a minute: 09:01 to 10:01 has six of those, still whole steps.
    let (_, ticks) = time_ticks(us(at(9, 1)), us(at(10, 1)), 60_000_000);
    assert_eq!(ticks.first(), Some(&us(at(9, 10))));
    // A 5m step never gets a tick off its steps' starts.
    let (_, ticks) = time_ticks(us(at(9, 5)), us(at(21, 5)), 300_000_000);
    assert!(ticks.iter().all(|t| t % 300_000_000 == 0), "{ticks:?}");
    // A step no nice interval is a multiple of still gets nice times.
    let (_, ticks) = time_ticks(us(at(9, 3)), us(at(9, 3)) + 7 * 86_400_000_000, 420_000_000);
    assert!((3..=MAX_TIME_TICKS).contains(&ticks.len()), "{ticks:?}");
    assert!(ticks.iter().all(|t| t % 86_400_000_000 == 0), "midnights");
}

/// The rules' own sizes, 60 to 1,440 steps: a handful of labels, apart, distinct, in the
/// format the span calls for.
#[test]
fn time_labels_stay_few_and_apart_at_any_number_of_steps() {
    let cases: [(i64, usize, &str); 7] = [
        (60, 60, "09:10"),          // hourly at 1m
        (1, 1_440, "09:05"),        // 24m at 1s
        (60, 1_440, "18:00"),       // daily at 1m
        (300, 288, "18:00"),        // daily at 5m
        (420, 1_440, "03-16"),      // 7d at 7m
        (3_600, 168, "03-16"),      // 7d at 1h
        (86_400 * 7, 60, "2026-0"), // 420d at 7d
    ];
    for (step, steps, sample) in cases {
        let c = SeriesChart::draw(&report(
            nine(),
            step,
            vec![filled(1.0, 2.0, 3.0, 2.5); steps],
        ));
        let labels: Vec<&str> = c.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert!(
            (2..=MAX_TIME_TICKS).contains(&labels.len()),
            "{step}s × {steps}: {labels:?}"
        );
        assert!(
            labels.iter().any(|l| l.starts_with(sample)),
            "{step}s × {steps}: {labels:?}"
        );
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "{step}s × {steps}");
        let xs: Vec<f64> = c.x_ticks.iter().map(|t| t.at.parse().unwrap()).collect();
        for (pair, label) in xs.windows(2).zip(&labels) {
            let room = label.chars().count() as f64 * CHAR_WIDTH + LABEL_GAP;
            assert!(
                pair[1] - pair[0] >= room,
                "{step}s × {steps}: {labels:?} at {xs:?}"
            );
        }
        assert!(xs.iter().all(|x| (0.0..=WIDTH).contains(x)));
    }
}
