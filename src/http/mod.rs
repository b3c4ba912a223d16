//! Shared HTTP pieces with no dependency on the rest of the crate: the problem+json
//! error shape every surface answers with (API, dashboard, simulator, limiter).

pub mod problem;

pub use problem::{FieldError, PROBLEM_JSON, Problem};
