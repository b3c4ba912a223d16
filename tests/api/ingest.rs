use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields, metric, spawn_app};

#[tokio::test]
async fn a_valid_metric_is_stored_and_echoed_in_utc() {
    let app = spawn_app().await;
    let ts = (chrono::Utc::now() - chrono::TimeDelta::minutes(1))
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"));
    let body = json!({"timestamp": ts.to_rfc3339(), "value": 42.5, "type": "cpu.load"});
    let resp = app.post_metric(&body).await;
    assert_eq!(resp.status(), 201);
    let stored: Value = resp.json().await.expect("json");
    let echoed = chrono::DateTime::parse_from_rfc3339(stored["timestamp"].as_str().expect("ts"))
        .expect("rfc3339");
    assert_eq!(echoed.offset().local_minus_utc(), 0, "normalised to UTC");
    assert_eq!(echoed.timestamp_millis(), ts.timestamp_millis());
    assert_eq!(stored["value"], 42.5);
    assert_eq!(stored["type"], "cpu.load");

    let summary = app.summary("cpu.load", "all").await;
    assert_eq!(summary["count"], 1);
    assert_eq!(summary["latest_value"], 42.5);
}

#[tokio::test]
async fn wrong_value_types_are_422_and_store_nothing() {
    let app = spawn_app().await;
    for value in [
        json!("1.5"),
        json!(true),
        json!(null),
        json!([1]),
        json!({"v": 1}),
    ] {
        let mut body = metric("strict", 0.0);
        body["value"] = value.clone();
        let problem = assert_problem(app.post_metric(&body).await, 422).await;
        assert_eq!(
            error_fields(&problem),
            [(None, "value".to_owned())],
            "{value}"
        );
    }
    assert_eq!(app.summary("strict", "all").await["count"], 0);
}

#[tokio::test]
async fn non_finite_numbers_are_rejected() {
    let app = spawn_app().await;
    // NaN and Infinity are not JSON; 1e400 does not fit a double.
    for raw in ["NaN", "Infinity", "-Infinity", "1e400"] {
        let body = format!(
            r#"{{"timestamp":"{}","value":{raw},"type":"nf"}}"#,
            crate::helpers::now()
        );
        let resp = app
            .client
            .post(app.url("/api/metrics"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_problem(resp, 400).await;
    }
    assert_eq!(app.summary("nf", "all").await["count"], 0);
}

#[tokio::test]
async fn timestamp_rules_are_enforced() {
    let app = spawn_app().await;
    let future = (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339();
    let ancient = (chrono::Utc::now() - chrono::TimeDelta::days(8)).to_rfc3339();
    for ts in [
        json!("2026-01-01T00:00:00"),
        json!("1969-12-31T23:59:59Z"),
        json!(future),
        json!(ancient),
        json!("not a time"),
        json!(1_700_000_000),
    ] {
        let mut body = metric("ts", 1.0);
        body["timestamp"] = ts.clone();
        let problem = assert_problem(app.post_metric(&body).await, 422).await;
        assert_eq!(
            error_fields(&problem),
            [(None, "timestamp".to_owned())],
            "{ts}"
        );
    }
    assert_eq!(app.summary("ts", "all").await["count"], 0);
}

#[tokio::test]
async fn hostile_type_names_are_rejected_and_never_stored() {
    let app = spawn_app().await;
    for t in [
        "<script>alert(1)</script>",
        "x'; DROP TABLE metrics; --",
        "new\nline",
        "nul\u{0}byte",
        "tab\there",
        "",
        &"a".repeat(101),
        "ünïcode",
    ] {
        let problem = assert_problem(app.post_metric(&metric(t, 1.0)).await, 422).await;
        assert_eq!(error_fields(&problem), [(None, "type".to_owned())], "{t:?}");
    }
    let types: Value = app
        .get("/api/metrics/types")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(types["types"], json!([]));
}

#[tokio::test]
async fn unknown_fields_and_non_objects_are_rejected() {
    let app = spawn_app().await;
    let mut body = metric("extra", 1.0);
    body["unit"] = json!("ms");
    let problem = assert_problem(app.post_metric(&body).await, 422).await;
    assert_eq!(error_fields(&problem), [(None, "unit".to_owned())]);
    for body in [json!([]), json!("metric"), json!(3)] {
        assert_problem(app.post_metric(&body).await, 422).await;
    }
    assert_eq!(app.summary("extra", "all").await["count"], 0);
}

/// A full store makes room before a write, so what it acknowledges is kept,
/// even a point older than everything it holds; a batch larger than the
/// whole store is refused and nothing of it stored.
#[tokio::test]
async fn a_full_store_keeps_what_it_acknowledges() {
    use crate::helpers::{TestRedis, spawn_app_with, test_settings};
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.store.max_points = 3;
    let app = spawn_app_with(redis, settings).await;
    for i in 0..3 {
        assert_eq!(
            app.post_metric(&metric("cap", f64::from(i))).await.status(),
            201
        );
    }
    let two_hours_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc3339();
    let old = json!({"timestamp": two_hours_ago, "value": 99.0, "type": "cap"});
    assert_eq!(app.post_metric(&old).await.status(), 201);
    let listed = app.get_json("/api/metrics?type=cap&limit=10").await;
    let values: Vec<f64> = listed["metrics"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["value"].as_f64().expect("value"))
        .collect();
    assert_eq!(values.len(), 3);
    assert!(
        values.contains(&99.0),
        "the acknowledged point was dropped: {values:?}"
    );

    let five: Vec<Value> = (0..5).map(|i| metric("cap5", f64::from(i))).collect();
    let problem = assert_problem(app.post_batch(&json!(five)).await, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("TALLY_MAX_POINTS"),
        "{problem}"
    );
    assert_eq!(
        app.get_json("/api/metrics?type=cap5").await["metrics"],
        json!([]),
        "nothing of the refused batch was stored"
    );
}

/// Past `TALLY_MAX_TYPES` a write that creates a type is refused whole with a 409 naming
/// the first item of each new type; writes to the types held go on; `/metrics` counts it.
#[tokio::test]
async fn the_type_cap_refuses_new_types_with_a_409() {
    use crate::helpers::{TestRedis, spawn_app_with, test_settings};
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.store.max_types = 2;
    let app = spawn_app_with(redis, settings).await;
    for name in ["one", "two"] {
        assert_eq!(app.post_metric(&metric(name, 1.0)).await.status(), 201);
    }
    let batch = json!([
        metric("one", 2.0),
        metric("three", 1.0),
        metric("four", 1.0),
        metric("three", 2.0)
    ]);
    let problem = assert_problem(app.post_batch(&batch).await, 409).await;
    assert_eq!(problem["type"], "urn:tally:problem:type-limit");
    assert_eq!(
        error_fields(&problem),
        [(Some(1), "type".to_owned()), (Some(2), "type".to_owned())]
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("TALLY_MAX_TYPES"),
        "{problem}"
    );
    assert_eq!(
        app.summary("one", "all").await["count"],
        1,
        "nothing stored"
    );
    assert_eq!(app.summary("three", "all").await["count"], 0);
    let single = assert_problem(app.post_metric(&metric("five", 1.0)).await, 409).await;
    assert_eq!(error_fields(&single), [(None, "type".to_owned())]);
    assert_eq!(app.post_metric(&metric("two", 3.0)).await.status(), 201);

    // The gauges are sampled once a second.
    let wanted = [
        "tally_store_writes_refused_total{reason=\"type_limit\"} 2",
        "tally_store_types_max 2",
        "tally_store_types 2",
    ];
    let mut scrape = String::new();
    for _ in 0..40 {
        scrape = app.get("/metrics").await.text().await.expect("metrics");
        if wanted.iter().all(|w| scrape.contains(w)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for w in wanted {
        assert!(scrape.contains(w), "{w} missing from\n{scrape}");
    }
}

/// A leap second (`23:59:60`) is normalised once, to the instant stored (the next day's
/// `00:00:00`), and the answer shows that instant, as the stored point does.
#[tokio::test]
async fn a_leap_second_is_answered_as_the_instant_stored() {
    let app = spawn_app().await;
    let day = (chrono::Utc::now() - chrono::TimeDelta::days(2)).date_naive();
    let next = day.succ_opt().expect("a next day");
    let body = json!({"timestamp": format!("{day}T23:59:60.250Z"), "value": 1.0, "type": "leap"});
    let resp = app.post_metric(&body).await;
    assert_eq!(resp.status(), 201);
    let stored: Value = resp.json().await.expect("json");
    let want = format!("{next}T00:00:00.250");
    let answered = stored["timestamp"].as_str().expect("timestamp");
    assert!(
        answered.starts_with(&want) && !answered.contains(":60"),
        "{answered}"
    );
    let listed = app.get_json("/api/metrics?type=leap").await;
    assert_eq!(listed["metrics"][0]["timestamp"], stored["timestamp"]);
    let batch = json!([{"timestamp": format!("{day}T23:59:60Z"), "value": 2.0, "type": "leap"}]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    let listed = app.get_json("/api/metrics?type=leap").await;
    let newest = listed["metrics"][0]["timestamp"]
        .as_str()
        .expect("timestamp");
    assert!(newest.starts_with(&format!("{next}T00:00:00")), "{newest}");
}
