//! `/dashboard/metrics`: every stored type with its count, latest value and a
//! sparkline of its newest points, and one type's summary (through the same
//! read-through cache as `GET /api/metrics/summary`, so the same numbers).

use std::time::Duration;

use askama::Template;

use crate::dashboard::charts::{Chart, Line};
use crate::dashboard::format;
use crate::state::AppState;

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

#[derive(Template)]
#[template(path = "dashboard/live/metrics.html")]
pub struct MetricsLive {
    pub types: Vec<TypeRow>,
    pub total: usize,
    /// Set when the store failed or did not answer in time.
    pub error: Option<String>,
}

impl MetricsLive {
    pub async fn gather(state: &AppState) -> Self {
        match tokio::time::timeout(STORE_TIMEOUT, rows(state)).await {
            Ok(Ok((types, total))) => Self {
                types,
                total,
                error: None,
            },
            Ok(Err(e)) => Self::failed(e),
            Err(_) => Self::failed("the store did not answer in time".to_owned()),
        }
    }

    fn failed(error: String) -> Self {
        Self {
            types: Vec::new(),
            total: 0,
            error: Some(error),
        }
    }
}

async fn rows(state: &AppState) -> Result<(Vec<TypeRow>, usize), String> {
    let types = state.store.types().await.map_err(|e| e.to_string())?;
    let total = types.len();
    let mut rows = Vec::with_capacity(total.min(TYPES_SHOWN));
    for info in types.into_iter().take(TYPES_SHOWN) {
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
    Ok((rows, total))
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
