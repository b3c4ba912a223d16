//! `GET /api/metrics/series`: refusals (400 for what cannot be parsed, 422 for a broken
//! rule, naming the smallest step allowed), `SERIES_MAX_POINTS` and retention.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    TestRedis, assert_problem, error_fields, metric, spawn_app, spawn_app_with, test_settings,
};
use crate::series::{assert_shape, filled, points, series, series_ok};

const UNPARSEABLE: &str = "urn:tally:problem:unparseable-parameter";
const INVALID: &str = "urn:tally:problem:validation-error";

#[tokio::test]
async fn too_many_steps_is_a_422_naming_the_smallest_step() {
    let app = spawn_app().await;
    assert_eq!(app.post_metric(&metric("lim", 2.0)).await.status(), 201);
    // 7 days at 1m: 10,080 steps, over the default 1,440.
    for (query, smallest) in [
        ("type=lim&period=all&step=1m", "7m"),
        ("type=lim&step=6m", "7m"),
        ("type=lim&period=2d&step=1m", "2m"),
        ("type=lim&period=hourly&step=2s", "3s"),
    ] {
        let problem = assert_problem(series(&app, query).await, 422).await;
        assert_eq!(problem["type"], INVALID, "{query}");
        assert_eq!(
            error_fields(&problem),
            [(None, "step".to_owned())],
            "{query}"
        );
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        let want = format!("the smallest step allowed is {smallest}");
        assert!(message.contains(&want), "{query}: {problem}");
    }
    // Exactly SERIES_MAX_POINTS is allowed, and so is the smallest step named.
    let body = series_ok(&app, "type=lim&period=daily&step=1m").await;
    assert_shape(&body, 1_440, 60);
    let body = series_ok(&app, "type=lim&period=all&step=7m").await;
    assert_shape(&body, 1_440, 420);
    let body = series_ok(&app, "type=lim&period=hourly&step=3s").await;
    assert_shape(&body, 1_200, 3);
    let filled = filled(&body);
    assert_eq!(filled.len(), 1, "one step holds the point");
    assert_eq!(
        (&filled[0]["count"], &filled[0]["sum"]),
        (&json!(1), &json!(2.0))
    );
}

#[tokio::test]
async fn bad_parameters_are_problems_and_change_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.post_metric(&metric("bad", 4.0)).await.status(), 201);
    for (query, status, problem_type, fields) in [
        ("type=bad&step=abc", 400, UNPARSEABLE, vec!["step"]),
        ("type=bad&step=", 400, UNPARSEABLE, vec!["step"]),
        ("type=bad&period=soon", 400, UNPARSEABLE, vec!["period"]),
        (
            "type=bad&period=soon&step=abc",
            400,
            UNPARSEABLE,
            vec!["period", "step"],
        ),
        ("type=bad&step=7s", 422, INVALID, vec!["step"]),
        ("type=bad&step=90s", 422, INVALID, vec!["step"]),
        ("type=bad&step=0s", 422, INVALID, vec!["step"]),
        ("type=bad&step=500ms", 422, INVALID, vec!["step"]),
        ("type=bad&step=1.5m", 422, INVALID, vec!["step"]),
        ("type=bad&step=3651d", 422, INVALID, vec!["step"]),
        ("type=bad&period=0s&step=1m", 422, INVALID, vec!["period"]),
        (
            "type=%3Cb%3Ex%3C%2Fb%3E&step=1h",
            422,
            INVALID,
            vec!["type"],
        ),
    ] {
        let problem = assert_problem(series(&app, query).await, status).await;
        assert_eq!(problem["type"], problem_type, "{query}: {problem}");
        let named: Vec<String> = error_fields(&problem).into_iter().map(|(_, f)| f).collect();
        assert_eq!(named, fields, "{query}: {problem}");
    }
    let problem = assert_problem(series(&app, "period=hourly&step=1m").await, 400).await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("type"), "{problem}");

    // The service still answers, with the point posted before the refusals.
    let body = series_ok(&app, "type=bad&period=hourly&step=5m").await;
    assert_shape(&body, 12, 300);
    let filled = filled(&body);
    assert_eq!(filled.len(), 1, "{body}");
    assert_eq!(
        (&filled[0]["count"], &filled[0]["sum"]),
        (&json!(1), &json!(4.0))
    );
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn series_max_points_is_configurable() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.store.series_max_points = 10;
    let app = spawn_app_with(redis, settings).await;
    // 60 minutes in at most 10 steps: 6m at least.
    let problem = assert_problem(series(&app, "type=few&period=hourly&step=5m").await, 422).await;
    assert_eq!(error_fields(&problem), [(None, "step".to_owned())]);
    let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the smallest step allowed is 6m"),
        "{problem}"
    );
    assert!(message.contains("12 steps"), "{problem}");
    let body = series_ok(&app, "type=few&period=hourly&step=6m").await;
    assert_shape(&body, 10, 360);
    // A chosen step keeps within the limit too.
    let body = series_ok(&app, "type=few&period=hourly").await;
    assert_eq!(
        (&body["step"], &body["step_chosen"]),
        (&json!("6m"), &json!(true))
    );
    assert_shape(&body, 10, 360);
}

/// With a retention that is no multiple of the step, `all` starts in a step the
/// retention cuts: that first step is partial too, and `from` is its aligned start.
#[tokio::test]
async fn retention_cuts_the_first_step() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.store.retention = Duration::from_secs(61 * 60);
    let app = spawn_app_with(redis, settings).await;
    assert_eq!(app.post_metric(&metric("cut", 1.0)).await.status(), 201);
    let body = series_ok(&app, "type=cut&period=all&step=1h").await;
    assert_shape(&body, 2, 3_600);
    assert_eq!(points(&body)[0]["partial"], true, "{body}");
    // Periods longer than the retention are clamped to it.
    let clamped = series_ok(&app, "type=cut&period=daily&step=1h").await;
    assert_shape(&clamped, 2, 3_600);
    assert_eq!(clamped["period"], "daily");
    // Chosen: the longest step giving 60 steps over 61 minutes is 1m (61 steps).
    let chosen = series_ok(&app, "type=cut").await;
    assert_eq!(chosen["step"], "1m");
    assert_shape(&chosen, 61, 60);
    assert_eq!(points(&chosen)[0]["partial"], false, "{chosen}");
}
