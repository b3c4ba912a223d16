//! The metrics page's chart, kept live: a stream of `chart` events beside the page's
//! `update` events, for a stream opened with the chart's query.

use std::sync::Arc;

use futures_util::Stream;
use poem::web::sse::Event;
use tokio::time::Instant;

use super::METRICS_REFRESH;
use crate::dashboard::Dashboard;
use crate::dashboard::views::series::{SeriesForm, SeriesView};
use crate::series::SeriesQuery;

/// `chart` events: the chart re-rendered every `METRICS_REFRESH` through the series
/// service (whose cache answers streams asking the same), until shutdown. None at once:
/// the page came with it, so opening a stream runs no lookup. A stream of its own, so
/// the `update` pushes never cut a lookup short.
pub(super) fn events(
    dashboard: Arc<Dashboard>,
    chart: Option<(SeriesForm, SeriesQuery)>,
) -> impl Stream<Item = Event> + Send + 'static {
    let state = chart.map(|chart| {
        let mut tick = tokio::time::interval_at(Instant::now() + METRICS_REFRESH, METRICS_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (dashboard, chart, tick)
    });
    futures_util::stream::unfold(state, |state| async move {
        let (dashboard, (form, query), mut tick) = state?;
        tokio::select! {
            _ = tick.tick() => {}
            () = dashboard.state.lifecycle.stopped() => return None,
        }
        let html = SeriesView::refresh(&dashboard.state, &form, &query)
            .await
            .html();
        let event = Event::message(html).event_type("chart");
        Some((event, Some((dashboard, (form, query), tick))))
    })
}
