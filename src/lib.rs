//! tally: a real-time analytics API that stays up when its dependencies don't.
pub mod api;
pub mod breaker;
pub mod cache;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod http;
pub mod limiter;
pub mod redis;
pub mod series;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod upstream;
