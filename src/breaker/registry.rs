//! The registry: one breaker per dependency name, shared by everyone who
//! calls that dependency.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::Breaker;
use super::history::AuditEntry;
use crate::config::BreakerConfig;

#[derive(Debug, Default)]
pub struct Breakers {
    // Sorted, so `all` comes back in name order for free.
    by_name: RwLock<BTreeMap<String, Arc<Breaker>>>,
}

impl Breakers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The breaker called `name`, created with `config` if it does not exist
    /// yet. An existing breaker keeps the configuration it was created with.
    pub fn get_or_create(&self, name: &str, config: BreakerConfig) -> Arc<Breaker> {
        if let Some(breaker) = self.get(name) {
            return breaker;
        }
        let mut by_name = self.by_name.write();
        Arc::clone(
            by_name
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(Breaker::new(name, config))),
        )
    }

    pub fn get(&self, name: &str) -> Option<Arc<Breaker>> {
        self.by_name.read().get(name).map(Arc::clone)
    }

    /// Every breaker, sorted by name.
    pub fn all(&self) -> Vec<Arc<Breaker>> {
        self.by_name.read().values().map(Arc::clone).collect()
    }

    /// Every breaker's audit log merged, newest first.
    pub fn audit_log(&self) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = self
            .all()
            .iter()
            .flat_map(|breaker| breaker.audit_log())
            .collect();
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.at));
        entries
    }
}
