//! `GET /api/metrics/series` over PostgreSQL: the same answers as the embedded store for
//! the same points, step by step, at steps that read day, hour and minute rollups, raw
//! rows (below a minute) and steps no rollup divides evenly (7m); and every step's count
//! against brute force over what was posted.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::database::on_postgres;
use crate::helpers::{TestApp, spawn_app};
use crate::series::{points, series_ok, ts};

/// 3,000 points of `pgseries`, one every 37 s back from now (about 31 hours), values
/// cycling through 0 to 12; posted to every app given.
async fn post_points(apps: &[&TestApp]) -> Vec<(DateTime<Utc>, f64)> {
    let now = Utc::now();
    let posted: Vec<(DateTime<Utc>, f64)> = (0..3_000_i64)
        .map(|i| (now - TimeDelta::seconds(60 + i * 37), (i % 13) as f64))
        .collect();
    let batch: Vec<Value> = posted
        .iter()
        .map(|(at, v)| {
            let stamp = at.to_rfc3339_opts(SecondsFormat::Millis, true);
            json!({"timestamp": stamp, "value": v, "type": "pgseries"})
        })
        .collect();
    for app in apps {
        assert_eq!(app.post_batch(&json!(batch)).await.status(), 201);
    }
    posted
}

fn close(a: &Value, b: &Value, rel: f64) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= rel * x.abs().max(y.abs()).max(f64::MIN_POSITIVE),
        _ => a == b,
    }
}

#[tokio::test]
async fn postgres_answers_every_step_as_the_embedded_store_does() {
    let (_pg, _url, postgres) = on_postgres("series").await;
    let embedded = spawn_app().await;
    let posted = post_points(&[&postgres, &embedded]).await;
    for (query, step_secs) in [
        ("period=2d&step=1d", 86_400),
        ("period=daily&step=1h", 3_600),
        ("period=daily", 900),
        ("period=6h&step=7m", 420),
        ("period=hourly&step=30s", 30),
    ] {
        // Both calls within one step: not in the last 2 s before a boundary.
        if step_secs - Utc::now().timestamp().rem_euclid(step_secs) < 2 {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let query = format!("type=pgseries&{query}");
        let (pg, mem) = (
            series_ok(&postgres, &query).await,
            series_ok(&embedded, &query).await,
        );
        let (pg_points, mem_points) = (points(&pg), points(&mem));
        assert_eq!(
            (&pg["from"], &pg["to"], &pg["step"], pg_points.len()),
            (&mem["from"], &mem["to"], &mem["step"], mem_points.len()),
            "{query}: the same steps"
        );
        let step = (ts(&pg["to"]) - ts(&pg["from"])) / pg_points.len() as i32;
        for (p, m) in pg_points.iter().zip(mem_points) {
            let start = ts(&p["start"]);
            let inside = posted
                .iter()
                .filter(|(at, _)| *at >= start && *at < start + step)
                .count();
            assert_eq!(p["count"], inside, "{query}: count of the step at {start}");
            for key in ["count", "min_value", "max_value", "latest_value", "partial"] {
                assert_eq!(p[key], m[key], "{query}: {key} at {start}");
            }
            for key in ["sum", "average_value"] {
                assert!(close(&p[key], &m[key], 1e-12), "{query}: {key} at {start}");
            }
            for key in ["p50", "p90", "p95", "p99"] {
                assert!(close(&p[key], &m[key], 0.01), "{query}: {key} at {start}");
            }
        }
    }
}
