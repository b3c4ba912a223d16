//! `Idempotency-Key` on ingest, with the embedded store: a retry is answered again and
//! stores nothing, another request with the key is refused, a request still in flight
//! with it gets 409.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, error_fields, header, metric, spawn_app};

async fn post_with_key(app: &TestApp, path: &str, body: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_retry_with_the_same_key_is_answered_again_and_stores_nothing() {
    let app = spawn_app().await;
    let body = metric("idem", 4.5).to_string();
    let first = post_with_key(&app, "/api/metrics", &body, "9c1f-retry-1").await;
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "idempotent-replayed"), "");
    let answer: Value = first.json().await.expect("json");
    // The same request, spaced and ordered differently: the same request all the same.
    let parsed: Value = serde_json::from_str(&body).expect("json");
    let respaced = format!(
        "{{ \"type\" : {}, \"value\": {}, \"timestamp\": {} }}",
        parsed["type"], parsed["value"], parsed["timestamp"]
    );
    for retry in [body.as_str(), respaced.as_str()] {
        let again = post_with_key(&app, "/api/metrics", retry, "\"9c1f-retry-1\"").await;
        assert_eq!(again.status(), 201);
        assert_eq!(header(&again, "idempotent-replayed"), "true");
        assert_eq!(again.json::<Value>().await.expect("json"), answer);
    }
    assert_eq!(app.summary("idem", "all").await["count"], 1);

    let batch = json!([metric("idem.batch", 1.0), metric("idem.batch", 2.0)]).to_string();
    for _ in 0..3 {
        let resp = post_with_key(&app, "/api/metrics/batch", &batch, "batch-key-7").await;
        assert_eq!(resp.status(), 201);
        assert_eq!(
            resp.json::<Value>().await.expect("json"),
            json!({"accepted": 2})
        );
    }
    assert_eq!(app.summary("idem.batch", "all").await["count"], 2);
}

#[tokio::test]
async fn the_key_of_another_request_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let body = metric("reuse", 1.0).to_string();
    assert_eq!(
        post_with_key(&app, "/api/metrics", &body, "k-reused")
            .await
            .status(),
        201
    );
    for (path, other) in [
        ("/api/metrics", metric("reuse", 2.0).to_string()),
        (
            "/api/metrics/batch",
            json!([metric("reuse", 1.0)]).to_string(),
        ),
    ] {
        let resp = post_with_key(&app, path, &other, "k-reused").await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["type"], "urn:tally:problem:idempotency-key-reused");
        assert_eq!(
            error_fields(&problem),
            [(None, "Idempotency-Key".to_owned())]
        );
    }
    assert_eq!(app.summary("reuse", "all").await["count"], 1);
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let app = spawn_app().await;
    let body = metric("badkey", 1.0).to_string();
    for key in ["", "with space", "x".repeat(256).as_str(), "caf\u{e9}"] {
        let resp = app
            .client
            .post(app.url("/api/metrics"))
            .header("content-type", "application/json")
            .header("idempotency-key", key.as_bytes())
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        assert!(status == 400 || status == 422, "{key:?}: {status}");
        assert_problem(resp, status).await;
    }
    assert_eq!(app.summary("badkey", "all").await["count"], 0);
}

#[tokio::test]
async fn a_retry_while_the_first_is_being_stored_gets_409() {
    use crate::faulty_store::FaultyStore;
    use crate::helpers::{TestRedis, spawn_app_with_store, test_settings};
    let redis = TestRedis::start().await;
    let settings = test_settings(&redis);
    let store = FaultyStore::new();
    store.insert_delay_ms.store(500, Ordering::SeqCst);
    let app = spawn_app_with_store(redis, settings, store.clone()).await;
    let body = metric("slow", 1.0).to_string();
    let (first, second) = tokio::join!(
        post_with_key(&app, "/api/metrics", &body, "in-flight-1"),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            post_with_key(&app, "/api/metrics", &body, "in-flight-1").await
        }
    );
    assert_eq!(first.status(), 201);
    let problem = assert_problem(second, 409).await;
    assert_eq!(problem["type"], "urn:tally:problem:idempotency-key-in-use");
    // Once the first is answered, the retry gets its answer.
    let again = post_with_key(&app, "/api/metrics", &body, "in-flight-1").await;
    assert_eq!(again.status(), 201);
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(app.summary("slow", "all").await["count"], 1);
}
