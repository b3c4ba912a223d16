use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields, spawn_app};

fn at(minutes_ago: i64, value: f64, metric_type: &str) -> Value {
    let ts = Utc::now() - TimeDelta::minutes(minutes_ago);
    json!({"timestamp": ts.to_rfc3339(), "value": value, "type": metric_type})
}

#[tokio::test]
async fn aggregates_and_percentiles_match_the_exact_values() {
    let app = spawn_app().await;
    // Skewed values spread over the last 5 hours, posted out of order.
    let values: Vec<f64> = (0..5_000)
        .map(|i| 1.0 + f64::from((i * 7919) % 5_000).powf(1.7))
        .collect();
    let batch: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| at(((i * 37) % 300) as i64, *v, "lat"))
        .collect();
    assert_eq!(app.post_batch(&json!(batch)).await.status(), 201);

    let s = app.summary("lat", "all").await;
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    assert_eq!(s["count"], n);
    let sum: f64 = values.iter().sum();
    assert!((s["sum"].as_f64().expect("sum") - sum).abs() <= sum * 1e-12);
    assert!((s["average_value"].as_f64().expect("avg") - sum / n as f64).abs() <= 1e-9 * sum);
    assert_eq!(s["min_value"], sorted[0]);
    assert_eq!(s["max_value"], sorted[n - 1]);
    for (key, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
        let got = s[key].as_f64().expect("percentile");
        // Accept either neighbour of the exact rank (rank conventions differ).
        let lo = sorted[((q * (n - 1) as f64).floor()) as usize];
        let hi = sorted[((q * (n - 1) as f64).ceil()) as usize];
        let err = ((got - lo) / lo).abs().min(((got - hi) / hi).abs());
        assert!(
            err <= 0.01,
            "{key}: {got} vs exact {lo}..{hi} (error {err:.4})"
        );
    }
}

#[tokio::test]
async fn periods_select_the_right_window() {
    let app = spawn_app().await;
    let batch = json!([
        at(0, 1.0, "win"),
        at(20, 2.0, "win"),
        at(90, 4.0, "win"),
        at(60 * 30, 8.0, "win"),
        at(60 * 24 * 3, 16.0, "win"),
    ]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    for (period, count, sum) in [
        ("all", 5, 31.0),
        ("15m", 1, 1.0),
        ("hourly", 2, 3.0),
        ("2h", 3, 7.0),
        ("daily", 3, 7.0),
        ("2d", 4, 15.0),
        ("7d", 5, 31.0),
    ] {
        let s = app.summary("win", period).await;
        assert_eq!(s["count"], count, "{period}");
        assert_eq!(s["sum"], sum, "{period}");
        assert_eq!(s["period"], period);
        assert_eq!(s["latest_value"], 1.0, "{period}");
    }
}

#[tokio::test]
async fn an_unknown_type_gives_count_zero_and_null_aggregates() {
    let app = spawn_app().await;
    let s = app.summary("nothing.here", "hourly").await;
    assert_eq!(s["count"], 0);
    for key in [
        "sum",
        "average_value",
        "min_value",
        "max_value",
        "latest_value",
        "p50",
        "p99",
    ] {
        assert_eq!(s[key], Value::Null, "{key}");
    }
    let from = chrono::DateTime::parse_from_rfc3339(s["from"].as_str().expect("from")).expect("ts");
    let to = chrono::DateTime::parse_from_rfc3339(s["to"].as_str().expect("to")).expect("ts");
    assert!(to - from >= TimeDelta::hours(1));
}

#[tokio::test]
async fn huge_values_never_overflow_the_aggregates() {
    let app = spawn_app().await;
    let batch = json!([
        at(1, 1e308, "huge"),
        at(2, 1e308, "huge"),
        at(3, f64::MAX, "huge")
    ]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    let s = app.summary("huge", "all").await;
    let sum = s["sum"].as_f64().expect("sum is a number, not null");
    assert!(sum.is_finite() && sum == f64::MAX, "sum saturates: {sum}");
    let avg = s["average_value"].as_f64().expect("average");
    let exact = (1e308 / 3.0) * 2.0 + f64::MAX / 3.0;
    assert!(
        ((avg - exact) / exact).abs() < 1e-12,
        "average {avg} vs {exact}"
    );

    let batch = json!([at(1, -1e308, "neg"), at(2, -1e308, "neg")]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    let s = app.summary("neg", "all").await;
    assert_eq!(s["sum"], -f64::MAX);
    assert_eq!(s["average_value"], -1e308);
}

#[tokio::test]
async fn bad_query_parameters() {
    let app = spawn_app().await;
    let problem = assert_problem(app.get("/api/metrics/summary").await, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("type")
    );
    for (query, fields) in [
        ("type=cpu&period=fortnight", vec!["period"]),
        ("type=cpu&period=0s", vec!["period"]),
        ("type=cpu&period=-5m", vec!["period"]),
        ("type=%3Cscript%3E&period=all", vec!["type"]),
        ("type=a%20b&period=soon", vec!["type", "period"]),
    ] {
        let resp = app.get(&format!("/api/metrics/summary?{query}")).await;
        let problem = assert_problem(resp, 422).await;
        let named: Vec<String> = error_fields(&problem).into_iter().map(|(_, f)| f).collect();
        assert_eq!(named, fields, "{query}");
    }
}

/// A retention or skew past what a date holds is a valid setting: the
/// summary's window is clamped (1970 to year 9999), never a panic that
/// leaves the request with a 503.
#[tokio::test]
async fn a_retention_of_a_million_years_still_summarizes() {
    use crate::helpers::{TestRedis, spawn_app_with, test_settings};
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.store.retention = std::time::Duration::from_secs(1_000_000 * 365 * 86_400);
    settings.store.max_future_skew = std::time::Duration::from_secs(1_000_000 * 365 * 86_400);
    let app = spawn_app_with(redis, settings).await;
    assert_eq!(app.post_metric(&at(5, 7.0, "eons")).await.status(), 201);
    let s = app.summary("eons", "all").await;
    assert_eq!(s["count"], 1, "{s}");
    assert_eq!(s["from"], "1970-01-01T00:00:00+00:00");
    assert_eq!(s["to"], "9999-12-31T23:59:59+00:00");
}
