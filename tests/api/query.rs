use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields, metric, spawn_app};

#[tokio::test]
async fn recent_points_come_newest_first_and_respect_the_limit() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..150)
        .map(|i| {
            let ts = Utc::now() - TimeDelta::seconds(i64::from((i * 13) % 150));
            json!({"timestamp": ts.to_rfc3339(), "value": f64::from(i), "type": "recent"})
        })
        .collect();
    assert_eq!(app.post_batch(&json!(batch)).await.status(), 201);

    let body: Value = app
        .get("/api/metrics?type=recent")
        .await
        .json()
        .await
        .expect("json");
    let points = body["metrics"].as_array().expect("metrics");
    assert_eq!(points.len(), 100, "default limit");
    let stamps: Vec<&str> = points
        .iter()
        .map(|p| p["timestamp"].as_str().expect("ts"))
        .collect();
    let parsed: Vec<_> = stamps
        .iter()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).expect("ts"))
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let body: Value = app
        .get("/api/metrics?type=recent&limit=5")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["metrics"].as_array().expect("metrics").len(), 5);
    assert_eq!(
        body["metrics"][0]["value"], 0.0,
        "value 0 has the newest stamp"
    );
}

#[tokio::test]
async fn limit_bounds() {
    let app = spawn_app().await;
    for limit in ["0", "1001"] {
        let problem = assert_problem(
            app.get(&format!("/api/metrics?type=a&limit={limit}")).await,
            422,
        )
        .await;
        assert_eq!(error_fields(&problem), [(None, "limit".to_owned())]);
    }
    assert_problem(app.get("/api/metrics?type=a&limit=ten").await, 400).await;
    assert_problem(app.get("/api/metrics?type=a&limit=-1").await, 400).await;
    assert_eq!(
        app.get("/api/metrics?type=a&limit=1000").await.status(),
        200
    );
}

#[tokio::test]
async fn types_lists_every_type_with_count_and_last_timestamp() {
    let app = spawn_app().await;
    let batch = json!([
        metric("b.type", 1.0),
        metric("a.type", 2.0),
        metric("b.type", 3.0)
    ]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    let body: Value = app
        .get("/api/metrics/types")
        .await
        .json()
        .await
        .expect("json");
    let types = body["types"].as_array().expect("types");
    let names: Vec<&str> = types
        .iter()
        .map(|t| t["type"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a.type", "b.type"]);
    assert_eq!(types[1]["count"], 2);
    assert!(types[0]["last_timestamp"].is_string());
}

/// The listing is paged: `limit` a page, `next_cursor` to go on, absent on the last page;
/// a limit out of range or a cursor the listing did not give out is a 422.
#[tokio::test]
async fn types_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..7).map(|i| metric(&format!("t{i}"), 1.0)).collect();
    assert_eq!(app.post_batch(&json!(batch)).await.status(), 201);
    let mut seen = Vec::new();
    let mut path = "/api/metrics/types?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let body = app.get_json(&path).await;
        pages += 1;
        for t in body["types"].as_array().expect("types") {
            seen.push(t["type"].as_str().expect("name").to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/metrics/types?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
    let whole = app.get_json("/api/metrics/types?limit=7").await;
    assert!(whole.get("next_cursor").is_none(), "{whole}");
    assert_eq!(whole["types"].as_array().map(Vec::len), Some(7));
    for bad in ["limit=0", "limit=1001", "cursor=%3Cscript%3E", "cursor="] {
        let problem =
            assert_problem(app.get(&format!("/api/metrics/types?{bad}")).await, 422).await;
        let field = bad.split('=').next().unwrap_or_default().to_owned();
        assert_eq!(error_fields(&problem), [(None, field)], "{bad}");
    }
}
