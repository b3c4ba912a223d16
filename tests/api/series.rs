//! `GET /api/metrics/series`: each step against brute force over what was posted, the
//! chosen step, the cache shared by spellings of one series, alignment across calls.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, header, metric, spawn_app};

pub async fn series(app: &TestApp, query: &str) -> Response {
    app.get(&format!("/api/metrics/series?{query}")).await
}

/// The 200 body of a series request.
pub async fn series_ok(app: &TestApp, query: &str) -> Value {
    let resp = series(app, query).await;
    assert_eq!(resp.status(), 200, "{query}");
    resp.json().await.expect("series JSON")
}

pub fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

pub fn points(body: &Value) -> &Vec<Value> {
    body["points"].as_array().expect("points")
}

/// The steps holding points (a point posted now may land in the step before the
/// running one, should a step boundary pass before the request).
pub fn filled(body: &Value) -> Vec<&Value> {
    points(body).iter().filter(|p| p["count"] != 0).collect()
}

/// Checks the shape every series has: `n` consecutive steps of `step_secs` aligned to
/// the epoch, `from` the first start, `to` the last end, the last one partial.
pub fn assert_shape(body: &Value, n: usize, step_secs: i64) {
    let pts = points(body);
    assert_eq!(pts.len(), n, "{body}");
    let starts: Vec<i64> = pts.iter().map(|p| ts(&p["start"]).timestamp()).collect();
    for (i, s) in starts.iter().enumerate() {
        assert_eq!(
            s.rem_euclid(step_secs),
            0,
            "start {i} aligned to {step_secs}s"
        );
        assert_eq!(ts(&pts[i]["start"]).timestamp_subsec_micros(), 0);
        if i > 0 {
            assert_eq!(s - starts[i - 1], step_secs, "consecutive steps");
        }
    }
    assert_eq!(ts(&body["from"]).timestamp(), starts[0]);
    assert_eq!(ts(&body["to"]).timestamp(), starts[n - 1] + step_secs);
    assert_eq!(pts[n - 1]["partial"], true, "the running step");
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(f64::MIN_POSITIVE)
}

#[tokio::test]
async fn each_step_matches_brute_force_over_the_posted_points() {
    let app = spawn_app().await;
    let base = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    // Groups of points a few minutes apart over the last 48 minutes; minute 40 holds
    // only 42s, with nothing else within 8 minutes of it.
    let mut posted: Vec<(DateTime<Utc>, f64)> = Vec::new();
    for minute in [1_i64, 2, 3, 4, 14, 15, 16, 27, 28, 40, 48] {
        for j in 0..6_i64 {
            let at = base - TimeDelta::seconds(minute * 60 + j * 7);
            let value = match minute {
                40 => 42.0,
                _ => 1.0 + ((minute * 31 + j * 17) % 50) as f64 * 1.5,
            };
            posted.push((at, value));
        }
    }
    let batch: Vec<Value> = posted
        .iter()
        .map(|(at, v)| {
            let stamp = at.to_rfc3339_opts(SecondsFormat::Secs, true);
            json!({"timestamp": stamp, "value": v, "type": "steps"})
        })
        .collect();
    assert_eq!(app.post_batch(&json!(batch)).await.status(), 201);

    let resp = series(&app, "type=steps&period=hourly&step=5m").await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "ratelimit-policy").starts_with("\"read\""));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        (
            &body["type"],
            &body["period"],
            &body["step"],
            &body["step_chosen"]
        ),
        (
            &json!("steps"),
            &json!("hourly"),
            &json!("5m"),
            &json!(false)
        )
    );
    assert_shape(&body, 12, 300);
    let pts = points(&body);
    assert!(pts[..11].iter().all(|p| p["partial"] == false), "{body}");

    let (mut empty, mut constant, mut total) = (0, 0, 0);
    for p in pts {
        let start = ts(&p["start"]);
        let end = start + TimeDelta::minutes(5);
        let mut inside: Vec<&(DateTime<Utc>, f64)> = posted
            .iter()
            .filter(|(at, _)| *at >= start && *at < end)
            .collect();
        assert_eq!(p["count"], inside.len(), "count of step {start}");
        total += inside.len();
        if inside.is_empty() {
            empty += 1;
            for key in [
                "sum",
                "average_value",
                "min_value",
                "max_value",
                "latest_value",
                "p50",
                "p90",
                "p95",
                "p99",
            ] {
                assert_eq!(p[key], Value::Null, "{key} of empty step {start}");
            }
            continue;
        }
        let latest = inside.iter().max_by_key(|(at, _)| *at).expect("a point").1;
        inside.sort_by(|a, b| a.1.total_cmp(&b.1));
        let values: Vec<f64> = inside.iter().map(|(_, v)| *v).collect();
        let n = values.len();
        let sum: f64 = values.iter().sum();
        let num = |key: &str| p[key].as_f64().unwrap_or_else(|| panic!("{key}: {p}"));
        assert!(close(num("sum"), sum, 1e-12), "sum of {start}: {p}");
        assert!(close(num("average_value"), sum / n as f64, 1e-12), "{p}");
        assert_eq!(num("min_value"), values[0], "{p}");
        assert_eq!(num("max_value"), values[n - 1], "{p}");
        assert_eq!(num("latest_value"), latest, "{p}");
        let mut previous = f64::MIN;
        for (key, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
            let got = num(key);
            let lo = values[(q * (n - 1) as f64).floor() as usize];
            let hi = values[(q * (n - 1) as f64).ceil() as usize];
            assert!(
                close(got, lo, 0.01) || close(got, hi, 0.01),
                "{key} of {start}: {got} vs exact {lo}..{hi}"
            );
            assert!(got >= previous, "percentiles grow: {p}");
            previous = got;
        }
        // A step of one value (minute 40's 42s, or a group's edge cut off alone by a
        // step boundary): every percentile is that value.
        if values[0] == values[n - 1] {
            constant += usize::from(values[0] == 42.0);
            assert!(
                close(num("p50"), values[0], 0.01) && close(num("p99"), values[0], 0.01),
                "percentiles of a step holding only {}: {p}",
                values[0]
            );
        }
    }
    assert_eq!(total, posted.len(), "every posted point is in one step");
    assert!(
        empty >= 3,
        "gaps of 9 minutes or more leave empty steps: {body}"
    );
    assert!(constant >= 1, "minute 40's step holds only 42s: {body}");
    assert_eq!(app.summary("steps", "hourly").await["count"], total);
}

#[tokio::test]
async fn without_a_step_the_service_chooses_one() {
    let app = spawn_app().await;
    assert_eq!(app.post_metric(&metric("auto", 3.0)).await.status(), 201);
    for (period, step, secs, n) in [
        ("hourly", "1m", 60, 60),
        ("daily", "15m", 900, 96),
        ("all", "2h", 7_200, 84),
    ] {
        let body = series_ok(&app, &format!("type=auto&period={period}")).await;
        assert_eq!(body["step_chosen"], true, "{period}");
        assert_eq!(body["step"], step, "{period}");
        assert!((60..=300).contains(&points(&body).len()), "{period}");
        assert_shape(&body, n, secs);
        let filled = filled(&body);
        assert_eq!(filled.len(), 1, "{body}");
        assert_eq!(
            (&filled[0]["count"], &filled[0]["latest_value"]),
            (&json!(1), &json!(3.0))
        );
    }
    // Without `period`: `all`, as the summary.
    let body = series_ok(&app, "type=auto").await;
    assert_eq!(
        (&body["period"], &body["step"]),
        (&json!("all"), &json!("2h"))
    );
}

#[tokio::test]
async fn spellings_of_one_series_share_its_cache_entry() {
    let app = spawn_app().await;
    for t in ["cached", "chosen"] {
        assert_eq!(app.post_metric(&metric(t, 5.0)).await.status(), 201);
    }
    // (query, X-Cache, period, step_chosen) in order.
    let mut bodies = Vec::new();
    for (query, x_cache, period, chosen) in [
        ("type=cached&period=hourly&step=5m", "MISS", "hourly", false),
        ("type=cached&period=hourly&step=5m", "HIT", "hourly", false),
        ("type=cached&period=60m&step=5m", "HIT", "60m", false),
        ("type=chosen&period=hourly", "MISS", "hourly", true),
        ("type=chosen&period=hourly&step=1m", "HIT", "hourly", false),
        ("type=chosen&period=1h&step=60s", "HIT", "1h", false),
        ("type=chosen&period=hourly", "HIT", "hourly", true),
    ] {
        let resp = series(&app, query).await;
        assert_eq!(resp.status(), 200, "{query}");
        let cache_status = header(&resp, "cache-status");
        assert_eq!(header(&resp, "x-cache"), x_cache, "{query}: {cache_status}");
        match x_cache {
            "MISS" => assert!(cache_status.contains("fwd=miss"), "{cache_status}"),
            _ => assert!(cache_status.contains("; hit"), "{cache_status}"),
        }
        assert!(header(&resp, "age").parse::<u64>().is_ok(), "Age header");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["period"], period, "{query}");
        assert_eq!(body["step_chosen"], chosen, "{query}");
        bodies.push(body);
    }
    // A hit is the computed series: same steps, same window.
    assert_eq!(bodies[0]["points"], bodies[2]["points"]);
    assert_eq!(bodies[0]["from"], bodies[2]["from"]);
    assert_eq!(bodies[3]["points"], bodies[4]["points"]);
    assert_eq!(bodies[4]["step"], "1m");
    assert_eq!(bodies[5]["step"], "1m");
    // A point posted after the entry was stored is not in the hit.
    assert_eq!(app.post_metric(&metric("cached", 9.0)).await.status(), 201);
    let again = series_ok(&app, "type=cached&period=hourly&step=5m").await;
    let filled = filled(&again);
    assert_eq!(filled.len(), 1, "served from the cache: {again}");
    assert_eq!(filled[0]["latest_value"], 5.0);
}

#[tokio::test]
async fn steps_of_different_periods_share_their_starts() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..5)
        .map(|h| {
            let at = Utc::now() - TimeDelta::minutes(h * 75);
            json!({"timestamp": at.to_rfc3339(), "value": h as f64 + 1.0, "type": "hours"})
        })
        .collect();
    assert_eq!(app.post_batch(&json!(batch)).await.status(), 201);
    // Retried once, over other periods (the first answers are cached), should the two
    // calls straddle the hour.
    for (attempt, (short_period, n_short, long_period, n_long)) in
        [("6h", 6, "daily", 24), ("5h", 5, "23h", 23)]
            .into_iter()
            .enumerate()
    {
        let short = series_ok(&app, &format!("type=hours&period={short_period}&step=1h")).await;
        let long = series_ok(&app, &format!("type=hours&period={long_period}&step=1h")).await;
        if short["to"] != long["to"] && attempt == 0 {
            continue;
        }
        assert_shape(&short, n_short, 3_600);
        assert_shape(&long, n_long, 3_600);
        assert_eq!(short["to"], long["to"]);
        let shared = &points(&long)[n_long - n_short..];
        assert_eq!(points(&short)[..], *shared, "shared steps agree");
        let counts: Vec<&Value> = filled(&long).iter().map(|p| &p["count"]).collect();
        assert_eq!(
            counts,
            [&json!(1); 5],
            "75 minutes apart: one point an hour"
        );
        return;
    }
}
