use serde_json::json;

use crate::helpers::{TestRedis, assert_problem, metric, spawn_app, spawn_app_with, test_settings};

#[tokio::test]
async fn content_type_must_be_json() {
    let app = spawn_app().await;
    let body = metric("ct", 1.0).to_string();
    let no_type = app
        .client
        .post(app.url("/api/metrics"))
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_problem(no_type, 415).await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "<script>",
    ] {
        let resp = app
            .client
            .post(app.url("/api/metrics/batch"))
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        assert_problem(resp, 415).await;
    }
    let ok = app
        .client
        .post(app.url("/api/metrics"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(ok.status(), 201);
    assert_eq!(
        app.summary("ct", "all").await["count"],
        1,
        "only the JSON one stored"
    );
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for raw in ["{", "", "{\"timestamp\": }", "[1,]", "nul", "\u{1}"] {
        let resp = app
            .client
            .post(app.url("/api/metrics"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("sent");
        assert_problem(resp, 400).await;
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_whether_declared_or_streamed() {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    settings.server.max_body_bytes = 1024;
    let app = spawn_app_with(redis, settings).await;
    let batch: Vec<_> = (0..50).map(|i| metric("big", f64::from(i))).collect();
    let body = json!(batch).to_string();
    assert!(body.len() > 1024);
    assert_problem(app.post_batch(&json!(batch)).await, 413).await;

    // No Content-Length: the limit holds while streaming.
    let chunks: Vec<Result<String, std::io::Error>> = body
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let resp = app
        .client
        .post(app.url("/api/metrics/batch"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, 413).await;
    assert_eq!(app.summary("big", "all").await["count"], 0);

    let small = app.post_batch(&json!(batch[..5])).await;
    assert_eq!(small.status(), 201);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let app = spawn_app().await;
    assert_problem(app.get("/nope").await, 404).await;
    assert_problem(app.get("/api/metrics/nope").await, 404).await;
    assert_problem(app.get("/api/<script>").await, 404).await;
    let delete = app
        .client
        .delete(app.url("/api/metrics"))
        .send()
        .await
        .expect("sent");
    // A 405 says what the route does answer (RFC 9110).
    assert_eq!(crate::helpers::header(&delete, "allow"), "GET, POST");
    assert_problem(delete, 405).await;
    let put = app
        .client
        .put(app.url("/health"))
        .send()
        .await
        .expect("sent");
    assert_eq!(crate::helpers::header(&put, "allow"), "GET");
    assert_problem(put, 405).await;
}
