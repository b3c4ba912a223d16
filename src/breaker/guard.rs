//! The guard: runs one call through the breaker, bounded by a timeout,
//! timed for slowness, and classified by the caller.

use std::time::Duration;

use super::Breaker;
use super::admission::Rejection;
use super::outcome::{BreakerState, Outcome};

/// Why a guarded call did not return the dependency's answer.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker turned the call away without running it.
    #[error("circuit breaker is {state}; retry after {retry_after:?}")]
    Open {
        retry_after: Duration,
        state: BreakerState,
    },
    /// The call ran past its timeout and was dropped.
    #[error("call timed out")]
    Timeout,
    /// The call finished with the dependency's own error.
    #[error(transparent)]
    Inner(E),
}

impl<E> From<Rejection> for BreakerError<E> {
    fn from(rejection: Rejection) -> Self {
        BreakerError::Open {
            retry_after: rejection.retry_after,
            state: rejection.state,
        }
    }
}

impl Breaker {
    /// Runs `fut` if the breaker permits, for at most `timeout`, and feeds
    /// the outcome back. `classify` decides what the result means for the
    /// dependency (a 4xx is usually `Success`: the dependency answered);
    /// a `Success` slower than `slow_call` is counted as `Slow`.
    ///
    /// A rejected call never polls `fut`. If this future is dropped midway,
    /// the permit is returned unused.
    pub async fn call<T, E, F>(
        &self,
        timeout: Duration,
        fut: F,
        classify: impl Fn(&Result<T, E>) -> Outcome,
    ) -> Result<T, BreakerError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        match tokio::time::timeout(timeout, fut).await {
            Ok(result) => {
                permit.record(classify(&result));
                result.map_err(BreakerError::Inner)
            }
            Err(_elapsed) => {
                permit.record(Outcome::Timeout);
                Err(BreakerError::Timeout)
            }
        }
    }
}
