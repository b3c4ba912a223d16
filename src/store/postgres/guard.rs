//! Every database call goes through the `database` breaker's guard, bounded by
//! `DATABASE_TIMEOUT`.

use std::time::Duration;

use super::StoreError;
use crate::breaker::{Breaker, BreakerError, Outcome};

/// Runs one database call through the `database` breaker's guard with a timeout. An
/// open breaker refuses at once.
pub(super) async fn guarded<T>(
    breaker: &Breaker,
    timeout: Duration,
    what: &str,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    breaker
        .call(timeout, call, |result| match result {
            // A data exception (SQLSTATE class 22, e.g. a float overflow) is
            // the database answering, not failing.
            Err(e) if !is_data_exception(e) => Outcome::Failure,
            _ => Outcome::Success,
        })
        .await
        .map_err(|e| {
            StoreError::Unavailable(match e {
                BreakerError::Open { retry_after, .. } => format!(
                    "the database is unavailable (breaker open; retry in {} s)",
                    crate::domain::ceil_secs(retry_after)
                ),
                BreakerError::Timeout => format!(
                    "database {what} took longer than {} ms",
                    timeout.as_millis()
                ),
                BreakerError::Inner(e) => format!("database {what} failed: {e}"),
            })
        })
}

fn is_data_exception(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code.starts_with("22"))
}
