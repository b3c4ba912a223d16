use crate::helpers::spawn_app;

#[tokio::test]
async fn the_committed_spec_is_the_generated_spec() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi.json at the repository root");
    let generated = tally::api::spec_json();
    assert!(
        committed == generated,
        "openapi.json is stale: regenerate it with `cargo run -- openapi > openapi.json`"
    );

    let app = spawn_app().await;
    let served = app.get("/openapi.json").await.text().await.expect("spec");
    assert_eq!(served, generated, "served spec matches");
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let app = spawn_app().await;
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("html");
    assert!(html.contains("swagger"), "Swagger UI page");
}

/// Each path is one key of the document, with all its operations: a JSON
/// reader keeps only the last of two equal keys, which hid POST /api/metrics
/// (ingest) from Swagger UI and schemathesis behind GET /api/metrics.
#[tokio::test]
async fn each_path_is_one_key_with_all_its_operations() {
    let text = tally::api::spec_json();
    let spec: serde_json::Value = serde_json::from_str(&text).expect("json");
    let paths = spec["paths"].as_object().expect("paths");
    for path in paths.keys() {
        let key = format!("{}:", serde_json::to_string(path).expect("key"));
        assert_eq!(
            text.matches(&key).count(),
            1,
            "{path} is a key more than once"
        );
    }
    let metrics = paths["/api/metrics"].as_object().expect("/api/metrics");
    assert!(metrics.contains_key("post"), "ingest is documented");
    assert!(metrics.contains_key("get"), "the listing is documented");
}
