//! `/dashboard/metrics`: the store's use of its limits (types against the cap,
//! memory against the budget, evictions, refused writes, the newest types), the
//! first types by name with their count, latest value and a sparkline of their
//! newest points, and one type's summary (through the same read-through cache
//! as `GET /api/metrics/summary`, so the same numbers). The live part is
//! gathered by the live task only, at most every `METRICS_REFRESH`.

use std::time::Duration;

use askama::Template;

use super::Stat;
use crate::dashboard::charts::{Chart, Line};
use crate::dashboard::format;
use crate::dashboard::snapshot::Snapshot;
use crate::state::AppState;
use crate::store::StoreStats;
use crate::summary::SummaryQuery;

/// Types listed (sorted by name); the page says how many more there are.
pub const TYPES_SHOWN: usize = 50;
/// Newest points drawn in each sparkline.
pub const SPARK_POINTS: usize = 30;
/// Longest the page waits on the store.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq)]
pub struct TypeRow {
    pub name: String,
    pub count: String,
    pub latest: String,
    pub last_at: String,
    pub spark: Line,
}

/// Newest types listed.
pub const NEWEST_SHOWN: usize = 10;

#[derive(Template)]
#[template(path = "dashboard/live/metrics.html")]
pub struct MetricsLive {
    /// The store against its limits (embedded store only).
    pub limits: Vec<Stat>,
    /// Types nearer the cap than this share are flagged.
    pub near_cap: bool,
    /// (name, created at), newest first.
    pub newest: Vec<(String, String)>,
    pub types: Vec<TypeRow>,
    /// Types stored, when the store knows (`None`: at least `types.len()`).
    pub total: Option<u64>,
    /// Set when the store failed or did not answer in time.
    pub error: Option<String>,
}

impl MetricsLive {
    pub async fn gather(state: &AppState, snapshot: &Snapshot) -> Self {
        let mut live = Self {
            limits: limits(&snapshot.store),
            near_cap: snapshot
                .store
                .limits
                .is_some_and(|l| snapshot.store.types as f64 >= NEAR_CAP * l.max_types as f64),
            newest: Vec::new(),
            types: Vec::new(),
            total: snapshot.store.limits.map(|_| snapshot.store.types),
            error: None,
        };
        match tokio::time::timeout(STORE_TIMEOUT, rows(state)).await {
            Ok(Ok(types)) => live.types = types,
            Ok(Err(e)) => live.error = Some(e),
            Err(_) => live.error = Some("the store did not answer in time".to_owned()),
        }
        live.newest = state
            .store
            .newest_types()
            .await
            .into_iter()
            .take(NEWEST_SHOWN)
            .map(|(name, at)| (name.as_str().to_owned(), format::time(at)))
            .collect();
        live
    }
}

/// The share of the type cap past which the page flags it.
const NEAR_CAP: f64 = 0.9;

/// Tiles for the store's limits (none for a store without them).
fn limits(store: &StoreStats) -> Vec<Stat> {
    let Some(l) = store.limits else {
        return Vec::new();
    };
    let share = |n: u64, of: u64| format::percent(n as f64 / of.max(1) as f64);
    vec![
        Stat::new(
            "Types",
            format!(
                "{} of {}",
                format::count(store.types),
                format::count(l.max_types)
            ),
            format!("{} of TALLY_MAX_TYPES", share(store.types, l.max_types)),
        ),
        Stat::new(
            "Memory",
            format!(
                "{} of {}",
                format::bytes(store.memory_bytes),
                format::bytes(l.max_bytes)
            ),
            format!(
                "{} of TALLY_MAX_MEMORY",
                share(store.memory_bytes, l.max_bytes)
            ),
        ),
        Stat::new(
            "Points",
            format::count(store.points),
            format!(
                "of at most {} (TALLY_MAX_POINTS)",
                format::count(l.max_points)
            ),
        ),
        Stat::new(
            "Evicted",
            format::count(store.evicted_retention + store.evicted_capacity + store.evicted_memory),
            format!(
                "retention {} · points limit {} · memory {}",
                format::count(store.evicted_retention),
                format::count(store.evicted_capacity),
                format::count(store.evicted_memory)
            ),
        ),
        Stat::new(
            "Refused writes",
            format::count(store.refused_type_limit),
            "new types past the cap (409)",
        ),
    ]
}

async fn rows(state: &AppState) -> Result<Vec<TypeRow>, String> {
    let types = state
        .store
        .types_page(None, TYPES_SHOWN)
        .await
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::with_capacity(types.len());
    for info in types {
        let recent = state
            .store
            .recent(&info.metric_type, SPARK_POINTS)
            .await
            .map_err(|e| e.to_string())?;
        // `recent` is newest first; the sparkline runs oldest to newest.
        let values: Vec<f64> = recent.iter().rev().map(|m| m.value).collect();
        rows.push(TypeRow {
            name: info.metric_type.as_str().to_owned(),
            count: format::count(info.count),
            latest: recent
                .first()
                .map_or_else(|| "–".to_owned(), |m| format::value(m.value)),
            last_at: format::time(info.last_timestamp),
            spark: Chart::sparkline(&values),
        });
    }
    Ok(rows)
}

/// One type's summary, for the section under the table.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryView {
    /// As typed by the user (escaped when shown).
    pub requested: String,
    pub period: String,
    /// (aggregate, value) in the API's order.
    pub rows: Vec<(&'static str, String)>,
    /// Cache-Status of the lookup, as the API would send it.
    pub cache_status: String,
    pub error: Option<String>,
}

impl SummaryView {
    /// A type's summary through the same lookup as the API's (cache included).
    pub async fn lookup(state: &AppState, raw_type: &str, raw_period: &str) -> Self {
        let mut view = Self {
            requested: raw_type.to_owned(),
            period: raw_period.to_owned(),
            rows: Vec::new(),
            cache_status: String::new(),
            error: None,
        };
        let query = match SummaryQuery::parse(raw_type, Some(raw_period)) {
            Ok(query) => query,
            Err(invalid) => {
                let said = |(field, e): &(&str, String)| match *field {
                    "type" => format!("not a metric type name: {e}"),
                    _ => format!("not a period: {e}"),
                };
                view.error = Some(invalid.iter().map(said).collect::<Vec<_>>().join("; "));
                return view;
            }
        };
        let lookup = state.summaries.lookup(&query);
        match tokio::time::timeout(STORE_TIMEOUT, lookup).await {
            Ok(Ok(l)) => {
                let Some(report) = l.entry.summary() else {
                    view.error = Some("the cache answered with another kind of entry".into());
                    return view;
                };
                let a = &report.aggregates;
                let f = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), format::value);
                view.rows = vec![
                    ("count", format::count(a.count)),
                    ("sum", f(a.sum)),
                    ("average", f(a.average)),
                    ("min", f(a.min)),
                    ("max", f(a.max)),
                    ("latest", f(a.latest)),
                    ("p50", f(a.p50)),
                    ("p90", f(a.p90)),
                    ("p95", f(a.p95)),
                    ("p99", f(a.p99)),
                ];
                view.cache_status = l.cache_status();
            }
            Ok(Err(e)) => view.error = Some(e.to_string()),
            Err(_) => view.error = Some("the store did not answer in time".to_owned()),
        }
        view
    }
}
