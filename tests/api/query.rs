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
