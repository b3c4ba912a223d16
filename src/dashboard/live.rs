//! Live updates: once a second one task samples the state into the history
//! and, for each page someone is watching, renders that page's live fragment
//! once and publishes it. Every open stream of that page then sends the same
//! bytes, so the work per tick does not grow with the number of viewers.
//! Streams end when the client leaves or the service begins to shut down.
//!
//! The metrics page's fragment queries the store, so only this task renders
//! it, at most every `METRICS_REFRESH`: page loads and new streams take the
//! newest one (a page load with none yet asks the task for one and waits a
//! moment). Streams are capped in total and per client.
//!
//! A metrics page showing a series chart opens its stream with the chart's query; that
//! stream also sends `chart` events, the chart re-rendered every `METRICS_REFRESH` by
//! the series service (`chart.rs`). Each such stream asks on its own, but at a pace the
//! server sets, behind the stream caps, and the service's cache answers streams asking
//! the same; opening one asks nothing (the page came with its chart).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::Stream;
use parking_lot::Mutex;
use poem::web::sse::Event;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Dashboard;
use super::snapshot::Snapshot;
use super::views::series::SeriesForm;
use crate::limiter::ClientKey;
use crate::series::SeriesQuery;

mod chart;

/// How often the history is sampled and fragments are pushed.
pub const TICK: Duration = Duration::from_secs(1);
/// The metrics page's data (a query per type) is gathered at most this often;
/// in between, its last fragment is pushed again.
pub const METRICS_REFRESH: Duration = Duration::from_secs(5);
/// Browsers reconnect after this long when a stream drops (milliseconds).
pub const RETRY_MS: u64 = 2_000;
/// How long a page load with no metrics fragment yet waits for the first one.
const FIRST_METRICS_WAIT: Duration = Duration::from_secs(2);

/// The pages with a live region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Breakers,
    Cache,
    Limits,
    Metrics,
}

impl Page {
    pub const ALL: [Page; 5] = [
        Page::Overview,
        Page::Breakers,
        Page::Cache,
        Page::Limits,
        Page::Metrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::Breakers => "breakers",
            Page::Cache => "cache",
            Page::Limits => "limits",
            Page::Metrics => "metrics",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One channel per page holding its newest fragment, and the stream counts.
pub struct Live {
    channels: [watch::Sender<Arc<str>>; 5],
    open: Arc<AtomicUsize>,
    max_streams: usize,
    per_client: Arc<Mutex<HashMap<ClientKey, usize>>>,
    max_per_client: usize,
    /// A page load wants the metrics fragment and none is fresh.
    metrics_wanted: AtomicBool,
    /// When the metrics fragment was last gathered.
    metrics_at: Mutex<Option<Instant>>,
    /// Wakes the task before its tick (a metrics fragment is wanted).
    kick: Notify,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefused {
    /// `DASHBOARD_MAX_STREAMS` are open.
    Full,
    /// This client has `DASHBOARD_MAX_STREAMS_PER_CLIENT` open.
    PerClient,
}

/// Held by each open stream; gives its slots back when the stream ends.
pub struct StreamSlot {
    open: Arc<AtomicUsize>,
    per_client: Arc<Mutex<HashMap<ClientKey, usize>>>,
    client: ClientKey,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        let mut per_client = self.per_client.lock();
        if let Some(n) = per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

impl Live {
    pub fn new(max_streams: usize, max_per_client: usize) -> Self {
        Self {
            channels: std::array::from_fn(|_| watch::Sender::new(Arc::from(""))),
            open: Arc::default(),
            max_streams,
            per_client: Arc::default(),
            max_per_client,
            metrics_wanted: AtomicBool::new(false),
            metrics_at: Mutex::new(None),
            kick: Notify::new(),
        }
    }

    /// Slots for one more stream of `client`, unless it or everyone has their fill.
    pub fn open_stream(&self, client: ClientKey) -> Result<StreamSlot, StreamRefused> {
        let mut per_client = self.per_client.lock();
        let mine = per_client.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            if *mine == 0 {
                per_client.remove(&client);
            }
            return Err(StreamRefused::PerClient);
        }
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            })
            .is_err()
        {
            if *mine == 0 {
                per_client.remove(&client);
            }
            return Err(StreamRefused::Full);
        }
        *mine += 1;
        Ok(StreamSlot {
            open: Arc::clone(&self.open),
            per_client: Arc::clone(&self.per_client),
            client,
        })
    }

    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn watched(&self, page: Page) -> bool {
        self.channels[page.index()].receiver_count() > 0
    }

    fn publish(&self, page: Page, html: String) {
        self.channels[page.index()].send_replace(Arc::from(html));
    }

    /// Pushes the page's current fragment again.
    fn republish(&self, page: Page) {
        self.channels[page.index()].send_modify(|_| {});
    }

    fn subscribe(&self, page: Page) -> watch::Receiver<Arc<str>> {
        self.channels[page.index()].subscribe()
    }

    /// The newest metrics fragment, as the task gathered it; with none yet (or a stale
    /// one), asks the task for one, and waits for it only when there is none at all.
    pub async fn metrics_fragment(&self) -> Arc<str> {
        let mut rx = self.subscribe(Page::Metrics);
        let fresh = self
            .metrics_at
            .lock()
            .is_some_and(|at| at.elapsed() < 2 * METRICS_REFRESH);
        if !fresh {
            self.metrics_wanted.store(true, Ordering::Release);
            self.kick.notify_one();
            if rx.borrow().is_empty() {
                let _ = tokio::time::timeout(FIRST_METRICS_WAIT, rx.changed()).await;
            }
        }
        rx.borrow().clone()
    }

    /// Whether the metrics fragment is due: watched or wanted, and not gathered within
    /// `METRICS_REFRESH` (unless there is none at all).
    fn metrics_due(&self) -> bool {
        let wanted = self.metrics_wanted.load(Ordering::Acquire);
        if !wanted && !self.watched(Page::Metrics) {
            return false;
        }
        let at = *self.metrics_at.lock();
        at.is_none_or(|at| at.elapsed() >= METRICS_REFRESH)
    }
}

/// Renders and publishes the metrics fragment (the store's queries, once for everyone).
async fn gather_metrics(dashboard: &Dashboard, snapshot: &Snapshot) {
    dashboard
        .live
        .metrics_wanted
        .store(false, Ordering::Release);
    *dashboard.live.metrics_at.lock() = Some(Instant::now());
    let html = dashboard.render_metrics(snapshot).await;
    dashboard.live.publish(Page::Metrics, html);
}

/// The once-a-second task: sample, then render each watched page once. Between ticks it
/// wakes only to gather a wanted metrics fragment.
pub async fn run(dashboard: Arc<Dashboard>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = dashboard.live.kick.notified() => {
                if dashboard.live.metrics_due() {
                    gather_metrics(&dashboard, &Snapshot::take(&dashboard.state)).await;
                }
                continue;
            }
        }
        let snapshot = Snapshot::take(&dashboard.state);
        dashboard.history.lock().record(&snapshot);
        for page in Page::ALL {
            if page == Page::Metrics {
                if dashboard.live.metrics_due() {
                    gather_metrics(&dashboard, &snapshot).await;
                } else if dashboard.live.watched(page) {
                    // Spare the store: the same fragment until METRICS_REFRESH passes.
                    dashboard.live.republish(page);
                }
                continue;
            }
            if !dashboard.live.watched(page) {
                continue;
            }
            let html = dashboard.render_live(page, &snapshot).await;
            dashboard.live.publish(page, html);
        }
    }
}

/// The events of one stream: the page's fragment now, then each new one; with a chart
/// (the metrics page's), its `chart` events too.
pub fn events(
    dashboard: Arc<Dashboard>,
    page: Page,
    first: String,
    slot: StreamSlot,
    chart: Option<(SeriesForm, SeriesQuery)>,
) -> impl Stream<Item = Event> + Send + 'static {
    let charts = chart::events(Arc::clone(&dashboard), chart);
    let rx = dashboard.live.subscribe(page);
    let start = vec![
        Event::retry(RETRY_MS),
        Event::message(first).event_type("update"),
    ];
    let updates = futures_util::stream::unfold(
        (dashboard, rx, slot),
        |(dashboard, mut rx, slot)| async move {
            tokio::select! {
                changed = rx.changed() => {
                    changed.ok()?;
                    let html = rx.borrow_and_update().clone();
                    Some((Event::message(&*html).event_type("update"), (dashboard, rx, slot)))
                }
                () = dashboard.state.lifecycle.stopped() => None,
            }
        },
    );
    let updates = futures_util::StreamExt::chain(futures_util::stream::iter(start), updates);
    futures_util::stream::select(updates, charts)
}
