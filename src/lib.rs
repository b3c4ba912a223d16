//! tally: a real-time analytics API.
pub mod domain;
pub mod store;
