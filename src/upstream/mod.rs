//! The external upstream service: the HTTP client the API calls through the
//! `upstream` breaker, and the built-in simulator that stands in for it.

mod client;
pub mod simulator;

pub use client::{UpstreamClient, UpstreamError};

/// Name of the breaker around the upstream.
pub const BREAKER: &str = "upstream";
pub use simulator::{Simulator, SimulatorConfig, SimulatorMode};
