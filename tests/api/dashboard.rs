//! The ops dashboard over HTTP: complete pages, the live event stream, the
//! operator controls (session, same origin, CSRF) and escaping.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::redirect::Policy;
use serde_json::json;
use tally::breaker::BreakerState;
use tally::config::{AdminTokens, Settings};
use tally::upstream::SimulatorMode;

use crate::helpers::{
    TestApp, TestRedis, assert_problem, header, metric, spawn_app_with, test_settings,
};

const TOKEN: &str = "ops-dashboard-token-0123456789";
const PAGES: [&str; 5] = [
    "/dashboard",
    "/dashboard/breakers",
    "/dashboard/cache",
    "/dashboard/limits",
    "/dashboard/metrics",
];

async fn app_with(f: impl FnOnce(&mut Settings)) -> TestApp {
    let redis = TestRedis::start().await;
    let mut s = test_settings(&redis);
    s.admin.tokens = AdminTokens(vec![("ops".into(), TOKEN.into())]);
    s.upstream.simulator_failure_rate = 0.0;
    s.upstream.simulator_latency_ms = 0;
    f(&mut s);
    spawn_app_with(redis, s).await
}

/// A client that keeps cookies and shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn text(client: &reqwest::Client, url: String) -> String {
    let resp = client.get(url).send().await.expect("sent");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("body")
}

/// The page's CSRF token (present only when signed in).
fn csrf(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..at + 64].to_owned())
}

async fn sign_in(app: &TestApp, client: &reqwest::Client) -> String {
    let resp = client
        .post(app.url("/dashboard/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 303);
    assert_eq!(header(&resp, "location"), "/dashboard?done=signed_in");
    let cookie = header(&resp, "set-cookie");
    for attr in [
        "tally_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
    ] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let page = text(client, app.url("/dashboard/breakers")).await;
    csrf(&page).expect("signed-in pages carry a CSRF token")
}

/// Reads SSE `update` events until `until` holds for one, or `within` passes.
async fn wait_for_update(
    resp: reqwest::Response,
    within: Duration,
    until: impl Fn(&str) -> bool,
) -> (usize, Option<String>) {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut updates = 0;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            _ => return (updates, None),
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if !event.lines().any(|l| l == "event: update") {
                continue;
            }
            updates += 1;
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                .collect();
            let html = data.join("\n");
            if until(&html) {
                return (updates, Some(html));
            }
        }
    }
}

#[tokio::test]
async fn root_redirects_and_every_page_renders_complete_behind_a_strict_csp() {
    let app = app_with(|_| {}).await;
    let client = browser();
    let resp = client.get(app.url("/")).send().await.expect("sent");
    assert_eq!(resp.status(), 303);
    assert_eq!(header(&resp, "location"), "/dashboard");
    for page in PAGES {
        let resp = client.get(app.url(page)).send().await.expect("sent");
        assert_eq!(resp.status(), 200, "{page}");
        assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
        let csp = header(&resp, "content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header(&resp, "x-frame-options"), "DENY");
        assert_eq!(header(&resp, "cache-control"), "no-store");
        let body = resp.text().await.expect("body");
        // Complete without JavaScript: the live region is already filled in.
        assert!(body.contains("<div id=\"live\""), "{page}");
        assert!(
            body.contains("data-stream=\"/dashboard/stream?page="),
            "{page}"
        );
        assert!(!body.contains("<script>"), "no inline script on {page}");
        assert!(!body.contains("style=\""), "no inline style on {page}");
        assert!(
            !body.contains("https://"),
            "nothing from another origin on {page}"
        );
    }
    let overview = text(&client, app.url("/dashboard")).await;
    assert!(overview.contains("data-breaker=\"upstream\""));
    assert!(overview.contains("data-state=\"closed\""));
    assert!(overview.contains("data-dependency=\"Redis\""));
    for (asset, content_type) in [
        ("live.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let resp = client
            .get(app.url(&format!("/dashboard/assets/{asset}")))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200, "{asset}");
        assert_eq!(header(&resp, "content-type"), content_type);
    }
    assert_problem(app.get("/dashboard/assets/../Cargo.toml").await, 404).await;
    assert_problem(app.get("/dashboard/stream?page=secrets").await, 400).await;
}

#[tokio::test]
async fn the_stream_pushes_fresh_fragments_every_second_and_shows_a_forced_breaker() {
    let app = app_with(|_| {}).await;
    let resp = app.get("/dashboard/stream?page=overview").await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type").starts_with("text/event-stream"));
    let started = Instant::now();
    let (updates, _) = wait_for_update(resp, Duration::from_millis(3_300), |_| false).await;
    assert!(
        updates >= 3,
        "{updates} updates in {:?}: at least one a second",
        started.elapsed()
    );

    let resp = app.get("/dashboard/stream?page=overview").await;
    app.state.upstream.breaker.force_open("test");
    let (_, html) = wait_for_update(resp, Duration::from_secs(3), |html| {
        html.contains("data-state=\"forced_open\">FORCED OPEN")
    })
    .await;
    let html = html.expect("the forced breaker shows within 3 s, without a reload");
    assert!(html.contains("data-breaker=\"upstream\""));
}

#[tokio::test]
async fn streams_are_bounded_and_end_when_the_service_shuts_down() {
    let app = app_with(|s| s.dashboard.max_streams = 2).await;
    let first = app.get("/dashboard/stream?page=cache").await;
    let second = app.get("/dashboard/stream?page=limits").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let refused = app.get("/dashboard/stream?page=cache").await;
    assert_eq!(header(&refused, "retry-after"), "5");
    assert_problem(refused, 503).await;

    // A client that leaves gives its slot back (noticed at the next push).
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    let third = loop {
        let resp = app.get("/dashboard/stream?page=metrics").await;
        if resp.status() == 200 {
            break resp;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Shutdown ends open streams instead of waiting out the drain timeout.
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut body = first.bytes_stream();
        while let Some(Ok(_)) = body.next().await {}
    });
    app.shutdown().await.expect("clean shutdown");
    tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .expect("the stream ended")
        .expect("reader");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(third);
}

#[tokio::test]
async fn operator_controls_need_a_session_the_same_origin_and_its_csrf_token() {
    let app = app_with(|_| {}).await;
    let anonymous = browser();
    let page = text(&anonymous, app.url("/dashboard/breakers")).await;
    assert!(
        !page.contains("data-breaker-action"),
        "read-only without a session"
    );
    assert!(csrf(&page).is_none());

    let wrong = anonymous
        .post(app.url("/dashboard/login"))
        .form(&[("token", "not-the-token-at-all-0000")])
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 403);
    assert!(header(&wrong, "set-cookie").is_empty());

    let action = |client: &reqwest::Client, csrf: &str, origin: Option<&str>| {
        let mut req = client
            .post(app.url("/dashboard/breakers/upstream"))
            .form(&[("csrf", csrf), ("action", "force_open")]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let resp = action(&anonymous, "whatever", None).await.expect("sent");
    assert_problem(resp, 401).await;

    let operator = browser();
    let token = sign_in(&app, &operator).await;
    let resp = action(&operator, &"0".repeat(64), None)
        .await
        .expect("sent");
    assert_problem(resp, 403).await;
    let resp = action(&operator, &token, Some("http://evil.example"))
        .await
        .expect("sent");
    assert_problem(resp, 403).await;
    assert_eq!(app.state.upstream.breaker.state(), BreakerState::Closed);

    let origin = app.address.clone();
    let resp = action(&operator, &token, Some(&origin))
        .await
        .expect("sent");
    assert_eq!(resp.status(), 303);
    assert_eq!(
        header(&resp, "location"),
        "/dashboard/breakers?done=breaker"
    );
    assert_eq!(app.state.upstream.breaker.state(), BreakerState::ForcedOpen);
    let page = text(&operator, app.url("/dashboard/breakers")).await;
    assert!(page.contains("data-breaker-action=\"reset\" data-breaker-name=\"upstream\""));
    let audit = &page[page.find("id=\"audit\"").expect("audit list")..];
    assert!(
        audit.contains("<b>ops</b> · breaker upstream · force_open"),
        "{audit}"
    );

    let resp = operator
        .post(app.url("/dashboard/simulator"))
        .form(&[
            ("csrf", token.as_str()),
            ("failure_rate", "0.25"),
            ("latency_ms", "5"),
            ("mode", "flapping"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&resp, "location"), "/dashboard?done=simulator");
    let sim = app.state.upstream.simulator.config();
    assert_eq!(
        (sim.failure_rate, sim.latency_ms, sim.mode),
        (0.25, 5, SimulatorMode::Flapping)
    );
    let page = text(&operator, app.url("/dashboard/breakers")).await;
    assert!(
        page.contains("<b>ops</b> · simulator · mode flapping"),
        "the audit shows it"
    );

    // Out-of-range values change nothing.
    let resp = operator
        .post(app.url("/dashboard/simulator"))
        .form(&[
            ("csrf", token.as_str()),
            ("failure_rate", "NaN"),
            ("latency_ms", "5"),
            ("mode", "healthy"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&resp, "location"), "/dashboard?done=invalid");
    assert_eq!(
        app.state.upstream.simulator.config().mode,
        SimulatorMode::Flapping
    );

    // A JSON body is not a form; an oversized one is refused unread.
    let resp = operator
        .post(app.url("/dashboard/breakers/upstream"))
        .json(&json!({"csrf": token, "action": "reset"}))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, 415).await;
    let resp = operator
        .post(app.url("/dashboard/breakers/upstream"))
        .form(&[("csrf", token.as_str()), ("action", &"x".repeat(10_000))])
        .send()
        .await
        .expect("sent");
    assert_problem(resp, 413).await;

    let resp = operator
        .post(app.url("/dashboard/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 303);
    let resp = action(&operator, &token, None).await.expect("sent");
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn without_admin_tokens_the_dashboard_is_read_only() {
    let app = app_with(|s| s.admin.tokens = AdminTokens::default()).await;
    let client = browser();
    let page = text(&client, app.url("/dashboard/login")).await;
    assert!(page.contains("Admin is off"));
    assert!(!page.contains("id=\"login\""));
    let resp = client
        .post(app.url("/dashboard/login"))
        .form(&[("token", "")])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn metrics_page_lists_types_and_summarises_with_the_api_numbers_escaping_input() {
    let app = app_with(|_| {}).await;
    for v in [1.0, 2.0, 6.0] {
        assert_eq!(app.post_metric(&metric("cpu", v)).await.status(), 201);
    }
    let client = browser();
    let page = text(&client, app.url("/dashboard/metrics")).await;
    let row = &page[page.find("data-type=\"cpu\"").expect("cpu row")..];
    assert!(
        row.contains("<td>3</td><td>6</td>"),
        "count and latest value"
    );
    assert!(row.contains("<polyline"), "a sparkline");

    let api = app.summary("cpu", "all").await;
    let page = text(&client, app.url("/dashboard/metrics?type=cpu&period=all")).await;
    assert_eq!(api["average_value"], 3.0);
    assert!(
        page.contains("<dt>average</dt><dd>3</dd>"),
        "same numbers as the API"
    );
    assert!(page.contains("<dt>count</dt><dd>3</dd>"));

    let hostile = "<script>alert(1)</script>";
    let url = reqwest::Url::parse_with_params(
        &app.url("/dashboard/metrics"),
        &[
            ("type", hostile),
            ("period", "\"><img src=x onerror=alert(2)>"),
        ],
    )
    .expect("url");
    let page = text(&client, url.to_string()).await;
    assert!(!page.contains("<script>alert"), "escaped");
    assert!(!page.contains("<img src=x"), "escaped");
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
}

#[tokio::test]
async fn limits_page_shows_decisions_and_masks_limited_clients() {
    let app = app_with(|s| s.limiter.write_requests = 2).await;
    for _ in 0..4 {
        app.post_metric(&metric("cpu", 1.0)).await;
    }
    let page = text(&browser(), app.url("/dashboard/limits")).await;
    let write = &page[page.find("data-policy=\"write\"").expect("write policy")..];
    assert!(
        write.contains("<td>2 requests per 1m</td><td>2</td><td>2</td>"),
        "{write}"
    );
    assert!(
        page.contains("<td>127.0.0.x</td><td>write</td>"),
        "masked client"
    );
    assert!(!page.contains("127.0.0.1"), "no whole address");
    assert!(page.contains("Redis (shared, exact)"));
}

#[tokio::test]
async fn the_metrics_stream_still_pushes_every_second_between_data_refreshes() {
    let app = app_with(|_| {}).await;
    assert_eq!(app.post_metric(&metric("cpu", 1.0)).await.status(), 201);
    let resp = app.get("/dashboard/stream?page=metrics").await;
    let (updates, _) = wait_for_update(resp, Duration::from_millis(3_300), |_| false).await;
    assert!(updates >= 3, "{updates} updates in 3.3 s");
}

/// The security headers are on the dashboard's refusals and errors too (a
/// problem+json 404, 400 or 401), not only on its pages.
#[tokio::test]
async fn dashboard_errors_carry_the_security_headers() {
    let app = app_with(|_| {}).await;
    let client = browser();
    for (path, status) in [("/dashboard/nope", 404), ("/dashboard/stream", 400)] {
        let resp = client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(resp.status(), status, "{path}");
        assert_eq!(
            header(&resp, "content-type"),
            "application/problem+json",
            "{path}"
        );
        assert!(
            header(&resp, "content-security-policy").contains("default-src 'none'"),
            "{path}"
        );
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&resp, "x-frame-options"), "DENY", "{path}");
    }
    let refused = client
        .post(app.url("/dashboard/breakers/upstream"))
        .form(&[("action", "open")])
        .send()
        .await
        .expect("sent");
    assert!(refused.status().is_client_error(), "{}", refused.status());
    assert_eq!(header(&refused, "x-frame-options"), "DENY");
}

/// The summary explorer runs the API's summaries for anyone who asks: it
/// counts under the read policy like `GET /api/metrics/summary`, while the
/// other pages are never limited.
#[tokio::test]
async fn the_summary_explorer_is_rate_limited_like_the_api() {
    let app = app_with(|s| {
        s.limiter.read_requests = 2;
        s.limiter.read_window_seconds = 60;
    })
    .await;
    let client = browser();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let resp = client
            .get(app.url(&format!("/dashboard/metrics?type=explore{i}&period=1h")))
            .send()
            .await
            .expect("sent");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    for _ in 0..3 {
        let resp = client
            .get(app.url("/dashboard"))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200, "the overview is not limited");
    }
}

/// A client may hold a few streams (`DASHBOARD_MAX_STREAMS_PER_CLIENT`); past them it
/// gets 429, while another client still gets its own.
#[tokio::test]
async fn streams_are_capped_per_client() {
    let app = app_with(|s| s.dashboard.max_streams_per_client = 3).await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
            .build()
            .expect("client")
    };
    let one = from("127.0.0.7");
    let mut open = Vec::new();
    for _ in 0..3 {
        let resp = one
            .get(app.url("/dashboard/stream?page=overview"))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200);
        open.push(resp);
    }
    let refused = one
        .get(app.url("/dashboard/stream?page=metrics"))
        .send()
        .await
        .expect("sent");
    assert!(!header(&refused, "retry-after").is_empty());
    let problem = assert_problem(refused, 429).await;
    assert_eq!(problem["type"], "urn:tally:problem:too-many-streams");
    let other = from("127.0.0.8")
        .get(app.url("/dashboard/stream?page=metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status(), 200);
    drop(open);
}

/// The metrics page's data comes from the store once per refresh for everyone: a crowd
/// of page loads and stream opens runs no store query of its own.
#[tokio::test]
async fn page_loads_and_streams_share_one_store_query() {
    use crate::faulty_store::FaultyStore;
    use crate::helpers::spawn_app_with_store;
    let redis = TestRedis::start().await;
    let mut s = test_settings(&redis);
    s.limiter.enabled = false;
    s.dashboard.max_streams_per_client = 100;
    let store = FaultyStore::new();
    let app = spawn_app_with_store(redis, s, store.clone()).await;
    assert_eq!(
        app.post_metric(&json!({"timestamp": crate::helpers::now(), "value": 1.0, "type": "x"}))
            .await
            .status(),
        201
    );
    let client = browser();
    let started = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..12 {
        let page = text(&client, app.url("/dashboard/metrics")).await;
        assert!(page.contains("data-type=\"x\""), "the page shows the data");
        let resp = client
            .get(app.url("/dashboard/stream?page=metrics"))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200);
        streams.push(resp);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let listings = store.listings.load(std::sync::atomic::Ordering::SeqCst);
    // One gathering a METRICS_REFRESH (5 s), plus the first.
    let allowed = 2 + (elapsed / 5.0) as u64;
    assert!(listings <= allowed, "{listings} listings in {elapsed:.1} s");
    drop(streams);
}

/// The metrics page shows the store against its limits and the newest types.
#[tokio::test]
async fn the_metrics_page_shows_the_store_against_its_limits() {
    let app = app_with(|s| s.store.max_types = 4).await;
    for name in ["old.one", "mid.one", "new.one", "newest.one"] {
        assert_eq!(app.post_metric(&metric(name, 1.0)).await.status(), 201);
    }
    assert_eq!(
        app.post_metric(&metric("one.too.many", 1.0)).await.status(),
        409
    );
    // The live task gathers once a second at most; wait for a fresh fragment.
    let deadline = Instant::now() + Duration::from_secs(8);
    let page = loop {
        let page = text(&browser(), app.url("/dashboard/metrics")).await;
        if page.contains("4 of 4") && page.contains("data-newest-type=\"newest.one\"") {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(page.contains("data-near-cap"), "flagged near the cap");
    assert!(page.contains("of TALLY_MAX_MEMORY"));
    let newest = page
        .find("data-newest-type=\"newest.one\"")
        .expect("newest");
    let oldest = page.find("data-newest-type=\"old.one\"").expect("old");
    assert!(newest < oldest, "newest first");
}

/// Reads SSE events named `name` until one arrives, or `within` passes.
async fn next_event(resp: reqwest::Response, name: &str, within: Duration) -> Option<String> {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + within;
    let wanted = format!("event: {name}");
    loop {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            _ => return None,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.lines().any(|l| l == wanted) {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                    .collect();
                return Some(data.join("\n"));
            }
        }
    }
}

/// The metrics page charts one type through the series service `GET /api/metrics/series`
/// answers from (same steps, same rules, same messages when it refuses), keeps the
/// summary under the chart, and its stream re-renders the chart.
#[tokio::test]
async fn metrics_page_charts_a_series_by_the_api_rules_and_refreshes_it_live() {
    let app = app_with(|_| {}).await;
    for v in [1.0, 2.0, 6.0] {
        assert_eq!(app.post_metric(&metric("cpu", v)).await.status(), 201);
    }
    let client = browser();
    let page = text(
        &client,
        app.url("/dashboard/metrics?type=cpu&period=hourly&step=5m"),
    )
    .await;
    assert!(page.contains("<svg viewBox=\"0 0 960 300\" role=\"img\" aria-label=\"Average of cpu per 5m step over hourly"), "{page}");
    for part in [
        "<path class=\"avg\" d=\"M",
        "<path class=\"band\" d=\"M",
        "<path class=\"p95\" d=\"M",
        "<text class=\"x-tick\"",
        "<text class=\"y-tick\"",
    ] {
        assert!(page.contains(part), "no {part}");
    }
    assert!(
        page.contains("Step <b>5m</b> · 12 steps, 1 with points"),
        "the caption: {page}"
    );
    assert!(page.contains("Cache-Status: <code>tally;"));
    assert!(
        page.contains("<dt>count</dt><dd>3</dd>"),
        "the summary stays"
    );
    assert!(page.contains(
        "data-stream=\"/dashboard/stream?page=metrics&#38;type=cpu&#38;period=hourly&#38;step=5m\""
    ));
    let api = app
        .get("/api/metrics/series?type=cpu&period=hourly&step=5m")
        .await;
    let api: serde_json::Value = api.json().await.expect("json");
    assert_eq!(api["points"].as_array().map(Vec::len), Some(12));

    // The API's refusals, in its words, on a page that still answers 200.
    for (query, status, words) in [
        ("period=hourly&step=7s", "422", "must be 1s, 2s, 3s"),
        (
            "period=7d&step=1m",
            "422",
            "the smallest step allowed is 7m",
        ),
        (
            "period=hourly&step=soon",
            "400",
            "must be a duration such as",
        ),
    ] {
        let url = app.url(&format!("/dashboard/metrics?type=cpu&{query}"));
        let page = text(&client, url).await;
        assert!(
            page.contains(&format!("data-series-refused=\"{status}\"")),
            "{query}: {page}"
        );
        assert!(page.contains(words), "{query}: {page}");
        assert!(!page.contains("<svg viewBox"), "{query}");
        assert!(page.contains("data-stream=\"/dashboard/stream?page=metrics\""));
    }

    // The chart's stream sends it again within METRICS_REFRESH (5 s).
    let resp = app
        .get("/dashboard/stream?page=metrics&type=cpu&period=hourly&step=5m")
        .await;
    assert_eq!(resp.status(), 200);
    let chart = next_event(resp, "chart", Duration::from_secs(7))
        .await
        .expect("a chart event within 7 s");
    assert!(chart.contains("data-series-chart"), "{chart}");
    assert!(chart.contains("Step <b>5m</b> · 12 steps"), "{chart}");
    // A chart the API would refuse gets no chart events; the page's updates go on.
    let resp = app
        .get("/dashboard/stream?page=metrics&type=cpu&period=hourly&step=7s")
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        next_event(resp, "chart", Duration::from_secs(6))
            .await
            .is_none()
    );
}
