//! Single flight: one computation per key at a time, per instance. The first
//! caller starts it in its own task (so it finishes even if that caller goes
//! away); everyone else waits for its result.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::entry::SharedEntry;

pub type Outcome = Result<SharedEntry, String>;
type Slot = watch::Receiver<Option<Outcome>>;

#[derive(Default)]
pub struct Flights {
    running: Mutex<HashMap<String, Slot>>,
}

/// Whether this caller started the computation or joined one in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Waiter,
}

impl Flights {
    /// Joins the computation for `key`, starting `work` if none is running.
    pub fn join<F>(self: &Arc<Self>, key: &str, work: F) -> (Role, Slot)
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let mut running = self.running.lock();
        if let Some(slot) = running.get(key) {
            return (Role::Waiter, slot.clone());
        }
        let (tx, rx) = watch::channel(None);
        running.insert(key.to_owned(), rx.clone());
        drop(running);
        let running = Running {
            flights: Arc::clone(self),
            key: key.to_owned(),
        };
        tokio::spawn(async move {
            let outcome = work.await;
            // Remove first: a caller arriving after this sees the cached entry.
            drop(running);
            let _ = tx.send(Some(outcome));
        });
        (Role::Leader, rx)
    }

    /// Starts `work` unless a computation for `key` is already running.
    /// Returns whether it started one.
    pub fn start_if_idle<F>(self: &Arc<Self>, key: &str, work: F) -> bool
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        if self.running.lock().contains_key(key) {
            return false;
        }
        matches!(self.join(key, work).0, Role::Leader)
    }
}

/// A computation's place in `running`, given up when it ends, also by a
/// panic (or its task being dropped): otherwise the key would stay taken,
/// every later miss would join a computation that never answers, and no
/// refresh would start for it again.
struct Running {
    flights: Arc<Flights>,
    key: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.flights.running.lock().remove(&self.key);
    }
}

/// Waits for a computation's result.
pub async fn wait(mut slot: Slot) -> Outcome {
    match slot.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or_else(|| Err("no result".into())),
        Err(_) => Err("the computation was dropped".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_computation() {
        let flights = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut slots = Vec::new();
        for _ in 0..50 {
            let runs = Arc::clone(&runs);
            let (role, slot) = flights.join("k", async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err("boom".to_string())
            });
            slots.push((role, slot));
        }
        let leaders = slots.iter().filter(|(r, _)| *r == Role::Leader).count();
        assert_eq!(leaders, 1);
        for (_, slot) in slots {
            assert_eq!(wait(slot).await, Err("boom".to_string()));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Finished: the next caller leads a new computation.
        let (role, _) = flights.join("k", async { Err("again".to_string()) });
        assert_eq!(role, Role::Leader);
    }

    #[tokio::test]
    async fn a_computation_that_panics_frees_its_key() {
        let flights = Arc::new(Flights::default());
        let (role, slot) = flights.join("k", async { panic!("in the computation") });
        assert_eq!(role, Role::Leader);
        assert_eq!(wait(slot).await, Err("the computation was dropped".into()));
        let (role, slot) = flights.join("k", async { Err("answered".to_string()) });
        assert_eq!(role, Role::Leader, "the key stayed taken");
        assert_eq!(wait(slot).await, Err("answered".into()));
    }
}
