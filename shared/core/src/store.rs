//! Storage capabilities, as small traits. The engine asks only for what it uses;
//! each backend (embedded SQLite, AWS) implements all of them, and the generic
//! contract suite in [`crate::testkit`] checks every implementation the same way.
//!
//! Implementations must make every state transition atomic: an event id is
//! stored once per dedupe window, a run id is created once, an idempotency key
//! is claimed once, a lease has one owner, and a waiting step is resolved once
//! (whichever of event, child completion or timeout writes first wins).

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use crate::docs::Documents;
use crate::error::Result;
use crate::event::Event;
use crate::run::{Envelope, Run, RunStatus, StepRecord, Waiter};

/// An event as stored, with the time it was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event.
    pub event: Event,
    /// When it was accepted (ms).
    pub received_at: i64,
}

/// The event log: deduplicated storage of every accepted event.
pub trait EventLog: Send + Sync {
    /// Stores `event` unless the same id was received less than `dedupe_ms`
    /// before `received_at`. Returns `true` when stored (new), `false` for a duplicate.
    fn put_event(
        &self,
        event: &Event,
        received_at: i64,
        dedupe_ms: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The stored event with this id.
    fn get_event(&self, id: &str) -> impl Future<Output = Result<Option<StoredEvent>>> + Send;

    /// Records that `event` is being routed, before the router reads waiters.
    /// [`EventLog::events_since`] must see it from then on with a strongly
    /// consistent read: that is what lets a new waiter catch the events routed
    /// while it was being registered. (A backend whose event log already reads
    /// consistently by name may do nothing here.)
    fn record_routed(&self, event: &StoredEvent) -> impl Future<Output = Result<()>> + Send;

    /// Events named `name` received at or after `since` (ms), oldest first, at
    /// most `limit`: at least every event recorded as routed.
    fn events_since(
        &self,
        name: &str,
        since: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only runs of this function.
    pub function_id: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// At most this many (newest first); 0 means the default of 100.
    pub limit: usize,
}

/// Runs, their leases and idempotency keys.
pub trait RunStore: Send + Sync {
    /// Creates `run` unless its id exists. Returns `true` when created.
    fn create_run(&self, run: &Run) -> impl Future<Output = Result<bool>> + Send;

    /// The run with this id.
    fn get_run(&self, id: &str) -> impl Future<Output = Result<Option<Run>>> + Send;

    /// Replaces the run's state unless it is already terminal (so a cancellation
    /// is never overwritten). Returns `true` when written.
    fn update_run(&self, run: &Run) -> impl Future<Output = Result<bool>> + Send;

    /// Runs matching `filter`, newest first.
    fn list_runs(&self, filter: &RunFilter) -> impl Future<Output = Result<Vec<Run>>> + Send;

    /// Takes (or renews) the run's execution lease for `owner` until `until`,
    /// if it is free, expired at `now`, or already held by `owner`.
    fn acquire_lease(
        &self,
        run_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Releases the lease if `owner` holds it.
    fn release_lease(&self, run_id: &str, owner: &str) -> impl Future<Output = Result<()>> + Send;

    /// Claims `key` for `function_id` on behalf of `run_id` until `expires_at`.
    /// Returns `None` when claimed, or the run id already holding a live claim.
    fn claim_idempotency(
        &self,
        function_id: &str,
        key: &str,
        run_id: &str,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
}

/// The per-run step journal: one checkpoint per step.
pub trait Journal: Send + Sync {
    /// All steps of the run, in position order.
    fn load_steps(&self, run_id: &str) -> impl Future<Output = Result<Vec<StepRecord>>> + Send;

    /// One step of the run.
    fn get_step(
        &self,
        run_id: &str,
        step_id: &str,
    ) -> impl Future<Output = Result<Option<StepRecord>>> + Send;

    /// Writes (inserts or replaces) a step record: the checkpoint.
    fn put_step(&self, run_id: &str, step: &StepRecord) -> impl Future<Output = Result<()>> + Send;

    /// Replaces the step only if it is currently `waiting`. Returns `true` for
    /// the one writer that wins the race between event, child and timeout.
    fn resolve_step(
        &self,
        run_id: &str,
        step: &StepRecord,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// Registered waits for future events (`wait_for_event`, `cancel_on`).
pub trait Waiters: Send + Sync {
    /// Registers (or replaces) a waiter.
    fn add_waiter(&self, waiter: &Waiter) -> impl Future<Output = Result<()>> + Send;

    /// Every waiter for events named `event`.
    fn waiters_for(&self, event: &str) -> impl Future<Output = Result<Vec<Waiter>>> + Send;

    /// Removes one waiter.
    fn remove_waiter(
        &self,
        event: &str,
        run_id: &str,
        step_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Sends work now.
pub trait Queue: Send + Sync {
    /// Sends a message for immediate processing.
    fn send(&self, envelope: &Envelope) -> impl Future<Output = Result<()>> + Send;
}

/// Delivers work later.
pub trait Timers: Send + Sync {
    /// Delivers `envelope` at `at` (ms) or soon after. With a dedupe key, a key
    /// already scheduled is not scheduled again.
    fn schedule(&self, envelope: &Envelope, at: i64) -> impl Future<Output = Result<()>> + Send;
}

/// Everything the engine needs, plus the [`Documents`] that handler code
/// keeps its domain records in; implemented automatically for any type that
/// has all the capabilities.
pub trait Store:
    EventLog + RunStore + Journal + Waiters + Queue + Timers + Documents + Clone + 'static
{
}

impl<T> Store for T where
    T: EventLog + RunStore + Journal + Waiters + Queue + Timers + Documents + Clone + 'static
{
}
