//! Integration tests: the real server over HTTP on port 0, each test with its own Redis.
mod batch;
mod cache;
mod dashboard;
mod database;
mod errors;
mod external;
mod faulty_store;
mod health;
mod helpers;
mod ingest;
mod lifecycle;
mod limiter;
mod openapi;
mod postgres;
mod query;
mod summary;
mod telemetry;
