use super::*;

const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

fn rules() -> SeriesRules {
    SeriesRules {
        retention: Duration::from_secs(7 * DAY),
        max_points: 1_440,
    }
}

fn parse(period: &str, step: Option<&str>) -> Result<SeriesQuery, Refused> {
    SeriesQuery::parse("cpu", Some(period), step, &rules())
}

#[test]
fn steps_are_spelled_in_their_largest_whole_unit() {
    let s = |secs| spell(Duration::from_secs(secs));
    assert_eq!(s(1), "1s");
    assert_eq!(s(90), "90s");
    assert_eq!(s(60), "1m");
    assert_eq!(s(90 * 60), "90m");
    assert_eq!(s(HOUR), "1h");
    assert_eq!(s(DAY), "1d");
    assert_eq!(s(36 * HOUR), "36h");
}

#[test]
fn a_chosen_step_gives_a_chart_sized_answer() {
    let r = rules();
    for period in [
        "1m", "5m", "15m", "hourly", "6h", "daily", "2d", "all", "3d7h",
    ] {
        let q = parse(period, None).expect("valid");
        assert!(q.step_chosen);
        let n = r.steps(q.period, q.step);
        assert!(
            (60..=300).contains(&n),
            "{period}: {n} steps of {:?}",
            q.step
        );
        assert!(r.check_step(&spell(q.step), q.step, q.period).is_ok());
    }
    let q = parse("hourly", None).expect("valid");
    assert_eq!(
        q.step,
        Duration::from_secs(60),
        "an hour is drawn by the minute"
    );
    // Shorter than 60 of the shortest step: as many as there are.
    let q = parse("30s", None).expect("valid");
    assert_eq!(
        (q.step, r.steps(q.period, q.step)),
        (Duration::from_secs(1), 30)
    );
}

#[test]
fn too_many_steps_name_the_smallest_allowed() {
    let refused = parse("all", Some("1m")).expect_err("10,080 steps");
    assert!(!refused.unparseable);
    assert_eq!(refused.fields[0].0, "step");
    assert!(
        refused.fields[0].1.contains("smallest step allowed is 7m"),
        "{refused:?}"
    );
    assert!(parse("all", Some("7m")).is_ok());
    assert!(
        parse("daily", Some("1m")).is_ok(),
        "a day at 1m is 1,440 steps"
    );
    let r = rules();
    assert_eq!(
        r.smallest_step(Period::Last(Duration::from_secs(HOUR))),
        Duration::from_secs(3)
    );
    assert_eq!(
        r.smallest_step(Period::Last(Duration::from_secs(3 * HOUR))),
        Duration::from_secs(10)
    );
}

#[test]
fn unparseable_is_400_and_a_broken_rule_422() {
    for (period, step) in [
        ("soon", None),
        ("all", Some("fast")),
        ("all", Some("")),
        ("1h", Some("1 m")),
    ] {
        let refused = parse(period, step).expect_err("unparseable");
        assert!(refused.unparseable, "{period} {step:?}");
    }
    for step in ["0s", "7s", "90s", "500ms", "1m30s", "3651d"] {
        let refused = parse("30m", Some(step)).expect_err("a rule is broken");
        assert!(!refused.unparseable, "{step}");
        assert_eq!(refused.fields[0].0, "step");
    }
    for step in ["1s", "15s", "30s", "1m", "2m", "1h30m", "1d", "7d"] {
        assert!(parse("20m", Some(step)).is_ok(), "{step}");
    }
    let refused = SeriesQuery::parse("<b>", Some("0s"), Some("x"), &rules()).expect_err("all");
    let fields: Vec<_> = refused.fields.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, ["type", "period", "step"]);
    assert!(refused.unparseable);
}

#[test]
fn the_window_is_whole_steps_aligned_to_the_epoch_ending_with_now() {
    let r = rules();
    let now = DateTime::from_timestamp(1_700_000_123, 456_000).expect("now");
    let q = parse("hourly", Some("5m")).expect("valid");
    let w = series_window(now, &q, &r);
    let (first, step, n) = w.steps();
    assert_eq!(step, 300_000_000);
    assert_eq!(n, 12);
    assert_eq!(first % step, 0);
    assert_eq!(w.from.timestamp_micros(), first, "a full first step");
    assert!(w.to > now && w.to.timestamp_micros() - step <= now.timestamp_micros());
    // `all` reaches back to retention, which may cut the first step.
    let kept = now - chrono::TimeDelta::days(7);
    for minutes in 7..=12 {
        let q = parse("all", Some(&format!("{minutes}m"))).expect("valid");
        let w = series_window(now, &q, &r);
        let (first, step, n) = w.steps();
        assert_eq!(n as u64, (7 * 1_440u64).div_ceil(minutes));
        assert_eq!(
            w.from.timestamp_micros(),
            first.max(kept.timestamp_micros())
        );
        assert!(
            first + step > kept.timestamp_micros(),
            "only the first step is cut"
        );
    }
}

#[test]
fn a_broken_type_does_not_hide_a_broken_step() {
    let refused =
        SeriesQuery::parse("<b>", Some("hourly"), Some("7s"), &rules()).expect_err("both");
    let fields: Vec<_> = refused.fields.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, ["type", "step"]);
    assert!(!refused.unparseable);
    let refused =
        SeriesQuery::parse("cpu", Some("hourly"), Some("fast"), &rules()).expect_err("step");
    assert!(refused.unparseable);
}
