use serde_json::json;

use crate::helpers::{metric, spawn_app};

#[tokio::test]
async fn metrics_are_exposed_by_route_template_without_client_controlled_labels() {
    let app = spawn_app().await;
    let secret = "client.chosen.type.name";
    assert_eq!(app.post_metric(&metric(secret, 1.0)).await.status(), 201);
    assert_eq!(
        app.post_batch(&json!([metric(secret, 2.0)])).await.status(),
        201
    );
    app.summary(secret, "all").await;
    app.get(&format!("/api/metrics?type={secret}")).await;
    app.get("/api/metrics/types").await;
    app.get("/api/external").await;
    app.get("/no/such/route/for/a/label").await;
    app.client
        .post(app.url("/admin/breakers/upstream"))
        .send()
        .await
        .expect("sent");
    // Gauges are sampled once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = resp.text().await.expect("text");
    for series in [
        r#"http_server_request_duration_seconds_count{method="POST",route="/api/metrics",status="201"}"#,
        r#"route="/api/metrics/summary""#,
        // As documented, not as poem-openapi numbers path parameters (`:param0`).
        r#"route="/admin/breakers/{name}",status="401""#,
        r#"route="unmatched",status="404""#,
        "http_server_active_requests",
        "tally_rate_limit_decisions_total{",
        "tally_cache_requests_total{",
        "tally_cache_hit_ratio{",
        "tally_breaker_state{",
        "tally_breaker_calls_total{",
        "tally_upstream_request_duration_seconds_count{",
        "tally_redis_command_duration_seconds_count{",
        "tally_metrics_ingested_total",
        "tally_store_points",
        "tally_store_points_evicted_total{",
        "tally_build_info{",
    ] {
        assert!(body.contains(series), "missing {series}");
    }
    assert!(!body.contains(secret), "a metric type became a label value");
    assert!(
        !body.contains("/no/such/route"),
        "a raw path became a label value"
    );
    assert!(
        !body.contains("127.0.0.1"),
        "an address became a label value"
    );
    // Every series is described.
    for line in body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap_or_default();
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
    }
}
