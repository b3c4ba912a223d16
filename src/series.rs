//! The series lookup: one metric type's recent window cut into steps, each step's
//! aggregates, through the read-through cache like the summary. The API and the
//! dashboard's chart both ask here, with the same rules for type, period and step.
//!
//! A series is the last `ceil(period / step)` steps, ending with the step that holds
//! now. Steps are aligned to multiples of `step` since the Unix epoch, in UTC (as
//! PostgreSQL's `date_bin` with origin 1970-01-01), so two calls a minute apart share
//! their full steps. The last step is still running (partial); the first is partial when
//! retention cuts it. Steps of a minute or more are whole minutes, so the stores merge
//! minute buckets and rollups; below a minute a step divides the minute, and the stores
//! read the raw points of each step (exact, as they keep every point's microsecond).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::cache::{CacheKey, Lookup, ReadCache, Report};
use crate::domain::{
    MetricType, Period, SeriesPoint, SeriesReport, SeriesWindow, bound_micros, parse_duration,
};
use crate::store::{MetricStore, StoreError};
use crate::summary::window;

mod rules;
pub use rules::{CHOSEN_MIN_POINTS, MAX_STEP_SECS, SeriesRules, spell};

/// A series request, checked.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub metric_type: MetricType,
    pub period: Period,
    /// The period as the caller spelled it (`all` when absent).
    pub period_raw: String,
    /// Whole seconds: a divisor of a minute, or whole minutes.
    pub step: Duration,
    /// No `step` was asked for: the service chose it.
    pub step_chosen: bool,
}

/// Why a request was refused: 400 when a parameter cannot be parsed, 422 when it breaks
/// a rule; each broken field named, with what to send instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub unparseable: bool,
    pub fields: Vec<(&'static str, String)>,
}

impl SeriesQuery {
    /// `period` defaults to `all`, `step` to a chosen one. Every broken field is
    /// reported; any unparseable one makes the whole refusal a 400.
    pub fn parse(
        metric_type: &str,
        period: Option<&str>,
        step: Option<&str>,
        rules: &SeriesRules,
    ) -> Result<Self, Refused> {
        let mut refused = Refused {
            unparseable: false,
            fields: Vec::new(),
        };
        let metric_type = MetricType::parse(metric_type)
            .map_err(|e| refused.fields.push(("type", e)))
            .ok();
        let period_raw = period.unwrap_or("all");
        let period = match Period::parse(period_raw) {
            Ok(p) => Some(p),
            Err(e) => {
                refused.unparseable |= parse_duration(period_raw).is_err();
                refused.fields.push(("period", e));
                None
            }
        };
        let step = match step.map(|raw| (raw, parse_duration(raw))) {
            None => None,
            Some((raw, Ok(d))) => Some((raw, d)),
            Some((_, Err(_))) => {
                refused.unparseable = true;
                let e = "must be a duration such as '1m', '5m', '1h' or '1d'";
                refused.fields.push(("step", e.into()));
                None
            }
        };
        let step = match (step, period) {
            (Some((raw, step)), Some(period)) => match rules.check_step(raw, step, period) {
                Ok(()) => Some((step, false)),
                Err(e) => {
                    refused.fields.push(("step", e));
                    None
                }
            },
            (None, Some(period)) => Some((rules.choose_step(period), true)),
            (_, None) => None,
        };
        let (Some(metric_type), Some(period), Some((step, step_chosen))) =
            (metric_type, period, step)
        else {
            return Err(refused);
        };
        if !refused.fields.is_empty() {
            return Err(refused);
        }
        Ok(Self {
            metric_type,
            period,
            period_raw: period_raw.to_owned(),
            step,
            step_chosen,
        })
    }
}

/// The service: the cache in front of the store, and the window rules.
pub struct TimeSeries {
    cache: Arc<ReadCache>,
    store: Arc<dyn MetricStore>,
    rules: SeriesRules,
}

impl TimeSeries {
    pub fn new(cache: Arc<ReadCache>, store: Arc<dyn MetricStore>, rules: SeriesRules) -> Self {
        Self {
            cache,
            store,
            rules,
        }
    }

    pub fn rules(&self) -> &SeriesRules {
        &self.rules
    }

    /// The series asked for, from the cache or computed once for every caller asking.
    pub async fn lookup(&self, query: &SeriesQuery) -> Result<Lookup, StoreError> {
        let key = CacheKey::series(&query.metric_type, query.period, query.step);
        let (store, query) = (Arc::clone(&self.store), query.clone());
        let rules = self.rules;
        self.cache
            .read_through(&key, move || compute(store, query, rules, Utc::now()))
            .await
    }
}

/// The window of a series asked at `now`: the last `ceil(period / step)` steps, ending
/// with the one that holds `now`, cut by retention (and the epoch) at the start.
pub fn series_window(now: DateTime<Utc>, query: &SeriesQuery, rules: &SeriesRules) -> SeriesWindow {
    let step = i64::try_from(query.step.as_micros())
        .unwrap_or(i64::MAX)
        .max(1);
    let n = i64::try_from(rules.steps(query.period, query.step)).unwrap_or(i64::MAX);
    let now_us = bound_micros(now);
    let last = now_us.div_euclid(step).saturating_mul(step);
    let first = last.saturating_sub(step.saturating_mul(n - 1));
    let (kept, _) = window(now, Period::All, rules.retention, Duration::ZERO);
    let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MAX_UTC);
    SeriesWindow {
        from: at(first.max(bound_micros(kept))),
        to: at(last.saturating_add(step)),
        step: query.step,
    }
}

/// What the cache runs on a miss: each step's aggregates, from the store in one call.
async fn compute(
    store: Arc<dyn MetricStore>,
    query: SeriesQuery,
    rules: SeriesRules,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let window = series_window(now, &query, &rules);
    let aggregates = store
        .series(&query.metric_type, window)
        .instrument(tracing::info_span!(
            "store.series",
            metric.type.len = query.metric_type.as_str().len(),
            series.steps = window.steps().2,
        ))
        .await?;
    let (first, step, _) = window.steps();
    let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let (from_us, now_us) = (bound_micros(window.from), bound_micros(now));
    let points: Vec<SeriesPoint> = aggregates
        .into_iter()
        .enumerate()
        .map(|(i, aggregates)| {
            let start = first.saturating_add(step.saturating_mul(i as i64));
            SeriesPoint {
                start: at(start),
                partial: start < from_us || start.saturating_add(step) > now_us,
                aggregates,
            }
        })
        .collect();
    let end = first.saturating_add(step.saturating_mul(points.len() as i64));
    Ok(Report::Series(SeriesReport {
        metric_type: query.metric_type.as_str().to_owned(),
        period: query.period_raw,
        step: spell(query.step),
        step_chosen: query.step_chosen,
        from: at(first),
        to: at(end),
        points,
    }))
}

#[cfg(test)]
mod tests;
