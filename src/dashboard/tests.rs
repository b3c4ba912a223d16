//! Template rendering: the fragments render what the views hold, and every
//! string that could carry markup is escaped.

use askama::Template;

use super::charts::Chart;
use super::views::BreakerRow;
use super::views::breakers::{AuditRow, BreakerCard, BreakersLive, TransitionRow};
use super::views::limits::LimitsLive;
use super::views::metrics::{MetricsLive, TypeRow};

const HOSTILE: &str = "<script>alert(1)</script>";

fn row(name: &str) -> BreakerRow {
    BreakerRow {
        name: name.to_owned(),
        state: "forced_open",
        state_label: "FORCED OPEN".into(),
        failure_rate: "0.0%".into(),
        slow_rate: "0.0%".into(),
        calls_in_window: "0".into(),
        time_in_state: "5s".into(),
        next_probe: "–".into(),
    }
}

#[test]
fn a_hostile_metric_type_renders_as_text() {
    let html = MetricsLive {
        limits: vec![super::views::Stat::new(
            "Types",
            "1 of 2".into(),
            "<i>hint</i>",
        )],
        near_cap: true,
        newest: vec![(HOSTILE.into(), "<em>now</em>".into())],
        types: vec![TypeRow {
            name: HOSTILE.into(),
            count: "1".into(),
            latest: "2".into(),
            last_at: "now".into(),
            spark: Chart::sparkline(&[1.0, 2.0]),
        }],
        total: Some(1),
        error: Some("<b>store</b>".into()),
    }
    .render()
    .expect("renders");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>store"), "{html}");
    assert!(
        !html.contains("<i>hint") && !html.contains("<em>now"),
        "{html}"
    );
    assert!(
        html.contains("data-newest-type=\"&#60;script&#62;"),
        "{html}"
    );
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    // In an attribute and in a link, too.
    assert!(html.contains("data-type=\"&#60;script&#62;"), "{html}");
    assert!(
        html.contains("?type=%3Cscript%3Ealert%281%29%3C/script%3E"),
        "{html}"
    );
}

#[test]
fn breaker_fragment_escapes_names_reasons_and_operators() {
    let html = BreakersLive {
        cards: vec![BreakerCard {
            row: row("up\"stream"),
            outcomes: vec![("success", "3".into())],
            consecutive_failures: 0,
            probes_in_flight: 0,
            opened_at: "–".into(),
            rules: "rules".into(),
            timeline: Vec::new(),
            transitions: vec![TransitionRow {
                at: "t".into(),
                from: "CLOSED".into(),
                to: "FORCED OPEN".into(),
                reason: format!("forced open by {HOSTILE}"),
            }],
        }],
        audit: vec![AuditRow {
            at: "t".into(),
            who: HOSTILE.into(),
            target: "breaker upstream".into(),
            action: "force_open".into(),
        }],
    }
    .render()
    .expect("renders");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("data-breaker=\"up&#34;stream\""), "{html}");
    assert!(
        html.contains("data-state=\"forced_open\">FORCED OPEN</span>"),
        "{html}"
    );
    assert!(
        html.contains("<li><time>t</time> <b>&#60;script&#62;"),
        "{html}"
    );
}

#[test]
fn limits_fragment_says_when_limiting_is_off() {
    let html = LimitsLive::off().render().expect("renders");
    assert!(html.contains("Rate limiting is off"));
    assert!(!html.contains("<table"));
}

#[test]
fn the_series_chart_escapes_what_was_typed_and_its_stream_url_is_encoded() {
    use super::views::series::{Refusal, SeriesForm, SeriesView};
    let form = SeriesForm::new(HOSTILE, Some("\"><b>1h"), Some("5m&page=x"));
    let view = SeriesView {
        form: form.clone(),
        refused: Some(Refusal {
            status: 422,
            fields: vec![("type", format!("not {HOSTILE}"))],
        }),
        ..SeriesView::default()
    };
    let html = view.html();
    assert!(
        !html.contains("<script>") && !html.contains("<b>1h"),
        "{html}"
    );
    assert!(html.contains("data-series-refused=\"422\""), "{html}");
    assert!(
        html.contains("<code>&#60;script&#62;alert(1)&#60;/script&#62;</code>"),
        "{html}"
    );
    assert_eq!(
        form.stream_url(),
        "/dashboard/stream?page=metrics&type=%3Cscript%3Ealert%281%29%3C%2Fscript%3E\
         &period=%22%3E%3Cb%3E1h&step=5m%26page%3Dx"
    );
    let chosen = SeriesForm::new("cpu", None, Some(""));
    assert_eq!(
        chosen.stream_url(),
        "/dashboard/stream?page=metrics&type=cpu&period=all"
    );
}
