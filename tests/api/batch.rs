use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields, metric, spawn_app};

#[tokio::test]
async fn a_valid_batch_is_stored_whole() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..500).map(|i| metric("batch", f64::from(i))).collect();
    let resp = app.post_batch(&json!(batch)).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"accepted": 500})
    );
    let summary = app.summary("batch", "all").await;
    assert_eq!(summary["count"], 500);
    assert_eq!(summary["sum"], 124_750.0);
    assert_eq!(summary["min_value"], 0.0);
    assert_eq!(summary["max_value"], 499.0);
}

#[tokio::test]
async fn one_bad_item_rejects_the_whole_batch_naming_each_by_index() {
    let app = spawn_app().await;
    let mut batch: Vec<Value> = (0..10).map(|i| metric("atomic", f64::from(i))).collect();
    batch[3]["value"] = json!("three");
    batch[7]["type"] = json!("<bad>");
    batch[7]["timestamp"] = json!("yesterday");
    let problem = assert_problem(app.post_batch(&json!(batch)).await, 422).await;
    assert_eq!(
        error_fields(&problem),
        [
            (Some(3), "value".to_owned()),
            (Some(7), "timestamp".to_owned()),
            (Some(7), "type".to_owned()),
        ]
    );
    assert_eq!(
        app.summary("atomic", "all").await["count"],
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn batch_size_bounds() {
    let app = spawn_app().await;
    assert_problem(app.post_batch(&json!([])).await, 422).await;
    assert_problem(app.post_batch(&json!({"not": "an array"})).await, 422).await;
    let item = metric("big", 1.0);
    let too_many: Vec<Value> = std::iter::repeat_n(item.clone(), 10_001).collect();
    assert_problem(app.post_batch(&json!(too_many)).await, 422).await;
    let max: Vec<Value> = std::iter::repeat_n(item, 10_000).collect();
    let resp = app.post_batch(&json!(max)).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(app.summary("big", "all").await["count"], 10_000);
}
