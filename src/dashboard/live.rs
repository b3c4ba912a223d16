//! Live updates: once a second one task samples the state into the history
//! and, for each page someone is watching, renders that page's live fragment
//! once and publishes it. Every open stream of that page then sends the same
//! bytes, so the work per tick does not grow with the number of viewers.
//! Streams end when the client leaves or the service begins to shut down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::Stream;
use poem::web::sse::Event;
use tokio::sync::watch;

use super::Dashboard;
use super::snapshot::Snapshot;

/// How often the history is sampled and fragments are pushed.
pub const TICK: Duration = Duration::from_secs(1);
/// The metrics page's data (a query per type) is gathered at most this often;
/// in between, its last fragment is pushed again.
pub const METRICS_REFRESH: Duration = Duration::from_secs(5);
/// Browsers reconnect after this long when a stream drops (milliseconds).
pub const RETRY_MS: u64 = 2_000;

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

/// One channel per page holding its newest fragment, and the stream count.
pub struct Live {
    channels: [watch::Sender<Arc<str>>; 5],
    open: Arc<AtomicUsize>,
    max_streams: usize,
}

/// Held by each open stream; gives its slot back when the stream ends.
pub struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Live {
    pub fn new(max_streams: usize) -> Self {
        Self {
            channels: std::array::from_fn(|_| watch::Sender::new(Arc::from(""))),
            open: Arc::default(),
            max_streams,
        }
    }

    /// A slot for one more stream, unless `max_streams` are open.
    pub fn open_stream(&self) -> Option<StreamSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot(Arc::clone(&self.open)))
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
}

/// The once-a-second task: sample, then render each watched page once.
pub async fn run(dashboard: Arc<Dashboard>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut metrics_gathered: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let snapshot = Snapshot::take(&dashboard.state);
        dashboard.history.lock().record(&snapshot);
        for page in Page::ALL {
            if !dashboard.live.watched(page) {
                continue;
            }
            if page == Page::Metrics {
                // Spare the store (a database scans per type): fresh data
                // every METRICS_REFRESH, the same fragment in between.
                if metrics_gathered.is_some_and(|at| at.elapsed() < METRICS_REFRESH) {
                    dashboard.live.republish(page);
                    continue;
                }
                metrics_gathered = Some(tokio::time::Instant::now());
            }
            let html = dashboard.render_live(page, &snapshot).await;
            dashboard.live.publish(page, html);
        }
    }
}

/// The events of one stream: the page's fragment now, then each new one.
pub fn events(
    dashboard: Arc<Dashboard>,
    page: Page,
    first: String,
    slot: StreamSlot,
) -> impl Stream<Item = Event> + Send + 'static {
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
    futures_util::StreamExt::chain(futures_util::stream::iter(start), updates)
}
