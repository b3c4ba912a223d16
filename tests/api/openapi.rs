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
