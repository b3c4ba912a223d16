//! Failed sign-ins are limited per client: the admin API and the dashboard's form share
//! one count; past it the client gets 429 with `Retry-After`, its right token included,
//! while other clients sign in as usual.

use std::net::IpAddr;
use std::time::Duration;

use tally::config::AdminTokens;

use crate::helpers::{TestApp, TestRedis, assert_problem, header, spawn_app_with, test_settings};

const TOKEN: &str = "ops-token-0123456789abcdef";

async fn app() -> TestApp {
    let redis = TestRedis::start().await;
    let mut s = test_settings(&redis);
    s.admin.tokens = AdminTokens(vec![("ops".into(), TOKEN.into())]);
    spawn_app_with(redis, s).await
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches loopback).
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn audit(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .get(app.url("/admin/audit"))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn ten_wrong_tokens_a_minute_then_429_for_that_client_only() {
    let app = app().await;
    let guesser = from("127.0.0.2");
    for i in 0..10 {
        let resp = audit(&app, &guesser, &format!("guess-{i:020}")).await;
        assert_problem(resp, 403).await;
    }
    let resp = audit(&app, &guesser, "guess-number-eleven-000").await;
    let retry: u64 = header(&resp, "retry-after").parse().expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let problem = assert_problem(resp, 429).await;
    assert_eq!(problem["type"], "urn:tally:problem:sign-in-limited");
    // Not even the right token is compared for this client now.
    assert_problem(audit(&app, &guesser, TOKEN).await, 429).await;
    // The dashboard's form counts the same failures.
    let form = guesser
        .post(app.url("/dashboard/login"))
        .header("origin", &app.address)
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("sent");
    assert!(!header(&form, "retry-after").is_empty());
    assert_problem(form, 429).await;
    // Another client is not affected.
    let other = from("127.0.0.3");
    assert_eq!(audit(&app, &other, TOKEN).await.status(), 200);

    let scrape = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        "tally_sign_in_failures_total{surface=\"admin\"}",
        "tally_sign_in_refused_total{surface=\"admin\"}",
        "tally_sign_in_refused_total{surface=\"dashboard\"}",
    ] {
        assert!(scrape.contains(line), "{line} missing");
    }
}

#[tokio::test]
async fn a_browser_is_shown_the_sign_in_page_with_the_429() {
    let app = app().await;
    let client = from("127.0.0.4");
    for _ in 0..11 {
        let _ = client
            .post(app.url("/dashboard/login"))
            .header("origin", &app.address)
            .header("accept", "text/html")
            .form(&[("token", "not-the-token-at-all")])
            .send()
            .await
            .expect("sent");
    }
    let resp = client
        .post(app.url("/dashboard/login"))
        .header("origin", &app.address)
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 429);
    assert!(!header(&resp, "retry-after").is_empty());
    assert!(header(&resp, "content-type").starts_with("text/html"));
    let page = resp.text().await.expect("page");
    assert!(page.contains("Too many failed sign-ins"), "{page}");
}
