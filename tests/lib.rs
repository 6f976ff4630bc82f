//! Helpers shared by the cross-crate tests.

/// The README's Rust examples, compiled as doctests so they never go stale.
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A shared call counter for handlers and steps.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU32>);

impl Counter {
    /// Adds one and returns the new count.
    #[must_use]
    pub fn bump(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The current count.
    #[must_use]
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `n` days.
#[must_use]
pub const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// `n` seconds.
#[must_use]
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
