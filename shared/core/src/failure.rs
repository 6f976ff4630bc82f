//! How user code tells the engine what a failure means.
//!
//! Step and handler code returns `anyhow::Result`. A plain error is retried with
//! backoff; an error carrying [`NonRetriable`] fails at once; one carrying
//! [`RetryAfter`] is retried at that time. A step that exhausts its retries
//! surfaces to the handler as a [`StepError`], which the handler may catch.

use std::time::Duration;

use crate::event::derived_id;

/// Marks a failure as final: no retries. Attach with [`Failure::non_retriable`]
/// or return `Err(NonRetriable::new("card declined").into())`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NonRetriable(pub String);

impl NonRetriable {
    /// A final failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Asks for a retry at a given delay (e.g. a provider's `Retry-After`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("retry after {after:?}: {reason}")]
pub struct RetryAfter {
    /// How long to wait before the next attempt.
    pub after: Duration,
    /// Why.
    pub reason: String,
}

impl RetryAfter {
    /// Retry after `after`.
    pub fn new(after: Duration, reason: impl Into<String>) -> Self {
        Self {
            after,
            reason: reason.into(),
        }
    }
}

/// A step that failed for good (retries exhausted or a final error). Returned by
/// the step call, so the handler can catch it and compensate (e.g. refund).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step `{step}` failed after {attempts} attempt(s): {message}")]
pub struct StepError {
    /// The step id (with its `:n` suffix when repeated).
    pub step: String,
    /// How many times it ran.
    pub attempts: u32,
    /// The last error, as text (journaled, so replays see the same failure).
    pub message: String,
}

/// Extension for `Result`s in step code: mark the error as final or timed.
pub trait Failure<T> {
    /// Fails without retries if this is an error.
    ///
    /// # Errors
    /// The original error with [`NonRetriable`] attached.
    fn non_retriable(self) -> anyhow::Result<T>;
    /// Retries after `after` if this is an error.
    ///
    /// # Errors
    /// The original error with [`RetryAfter`] attached.
    fn retry_after(self, after: Duration) -> anyhow::Result<T>;
}

impl<T, E> Failure<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn non_retriable(self) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(NonRetriable::new("non-retriable")))
    }

    fn retry_after(self, after: Duration) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(RetryAfter::new(after, "retry requested")))
    }
}

/// What the engine does about a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Retry with the backoff schedule.
    Retry,
    /// Retry after exactly this long.
    RetryAfter(Duration),
    /// Do not retry.
    Final,
}

/// Classifies an error by the markers anywhere in its chain.
#[must_use]
pub fn classify(err: &anyhow::Error) -> Verdict {
    // Context attached with `Failure` is found by anyhow's downcast; errors that
    // wrap a marker as their `source` are found by walking the chain.
    if err.downcast_ref::<NonRetriable>().is_some() || err.downcast_ref::<StepError>().is_some() {
        return Verdict::Final;
    }
    if let Some(retry) = err.downcast_ref::<RetryAfter>() {
        return Verdict::RetryAfter(retry.after);
    }
    for cause in err.chain() {
        if cause.is::<NonRetriable>() || cause.is::<StepError>() {
            return Verdict::Final;
        }
        if let Some(retry) = cause.downcast_ref::<RetryAfter>() {
            return Verdict::RetryAfter(retry.after);
        }
    }
    Verdict::Retry
}

/// Default number of retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 4;
/// Delay before the first retry.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Longest delay between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60 * 60);

/// Delay before retry number `retry` (1-based): `10 s × 2^(retry-1)`, capped at
/// one hour, with ±20 % jitter derived from `seed` (so it is spread across runs
/// yet the same on every replay). Default schedule: ~10 s, 20 s, 40 s, 80 s.
#[must_use]
pub fn backoff(retry: u32, seed: &str) -> Duration {
    let exp = retry.saturating_sub(1).min(20);
    let base = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_CAP);
    let hash = derived_id(&[seed, &retry.to_string()]);
    let bucket = u64::from_str_radix(&hash[..4], 16).unwrap_or(0) % 401; // 0..=400
    // factor in [0.8, 1.2]
    base.mul_f64(0.8 + bucket as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_anywhere_in_the_chain() {
        let plain = anyhow::anyhow!("boom");
        assert_eq!(classify(&plain), Verdict::Retry);
        let fin: anyhow::Error = Err::<(), _>(std::io::Error::other("declined"))
            .non_retriable()
            .unwrap_err()
            .context("charging");
        assert_eq!(classify(&fin), Verdict::Final);
        let later = Err::<(), _>(anyhow::anyhow!("429"))
            .retry_after(Duration::from_secs(30))
            .unwrap_err();
        assert_eq!(
            classify(&later),
            Verdict::RetryAfter(Duration::from_secs(30))
        );
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        for retry in 1..=4u32 {
            let d = backoff(retry, "run-1/step").as_secs_f64();
            let nominal = 10.0 * f64::from(1u32 << (retry - 1));
            assert!(
                d >= nominal * 0.8 && d <= nominal * 1.2,
                "retry {retry}: {d}"
            );
        }
        assert!(backoff(30, "x") <= BACKOFF_CAP.mul_f64(1.2));
        assert_eq!(backoff(2, "same"), backoff(2, "same"));
    }
}
