//! Storage capabilities, as small traits. Each role asks only for what it
//! uses ([`crate::Ingest`] an [`EventLog`]; [`crate::Router`] events, runs,
//! waiters and an outbox; [`crate::Worker`] runs and an outbox); each backend
//! (embedded SQLite, AWS) implements all of them, and the generic contract
//! suite in `crate::testkit` checks every implementation the same way.
//!
//! Every state change goes through [`RunStore::commit`], one atomic
//! [`Transition`] whose [`crate::transition::Fence`] the backend checks in the
//! same write. The only other writes are the event log's (idempotent by event
//! id) and [`RunStore::request_cancel`]'s flag (idempotent, applied later by a
//! transition).

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::event::Event;
use crate::flow::{FlowRecord, FlowWrite};
use crate::run::{Run, RunStatus, StepRecord, Waiter};
use crate::transition::{Committed, Conflict, Outgoing, Transition};

/// An event as stored, with the time it was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event.
    pub event: Event,
    /// When it was accepted (ms).
    pub received_at: i64,
    /// Whether its record is already kept as long as a run may live, so
    /// [`EventLog::keep_for_runs`] has nothing to do (a store that knew,
    /// when it stored the event, that its name starts runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept_for_runs: bool,
}

/// The event log: deduplicated storage of every accepted event.
pub trait EventLog: Send + Sync {
    /// Stores each event unless the same id was received less than
    /// `dedupe_ms` before `received_at`, and queues a route for every stored
    /// event (at its `ts` when that is later). Returns, per event, `true` when
    /// stored and `false` for a duplicate. A duplicate may be routed again
    /// (routing is idempotent); a stored event must never be left unrouted
    /// once this returns `Ok`.
    fn append(
        &self,
        events: &[Event],
        received_at: i64,
        dedupe_ms: i64,
    ) -> impl Future<Output = Result<Vec<bool>>> + Send;

    /// The stored event with this id.
    fn get_event(&self, id: &str) -> impl Future<Output = Result<Option<StoredEvent>>> + Send;

    /// Records that `event` is being routed: before the router reads the
    /// waiters of a name something waits for, and before it holds the event
    /// for a paused function. [`EventLog::events_since`] must see it from
    /// then on with a strongly consistent read: that is what lets a new
    /// waiter catch the events routed while it was being registered, and a
    /// resumed function find the events held for it. (A backend whose event
    /// log already reads consistently by name may do nothing here.) With
    /// `held`, the record must last as long as a run may live (a function
    /// may stay paused that long).
    fn record_routed(
        &self,
        event: &StoredEvent,
        held: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes `event`'s own record last as long as a run may live, before the
    /// router creates runs with
    /// [`crate::transition::Transition::event_recorded_at`], which may refer
    /// to it for their trigger event. Nothing to do for an event stored
    /// [`StoredEvent::kept_for_runs`] (or a backend whose runs keep a copy).
    fn keep_for_runs(&self, event: &StoredEvent) -> impl Future<Output = Result<()>> + Send;

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
    /// Only runs created at or after this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Only runs created before this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// A run as a worker needs it: its state, its journal, and any outbox a
/// previous transition left undelivered.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRun {
    /// The run, with its trigger event, lease and cancellation request.
    pub run: Run,
    /// Its steps in position order.
    pub journal: Vec<StepRecord>,
    /// Messages of its last transition not known to be delivered.
    pub undelivered: Vec<Outgoing>,
}

/// Runs and their journals, changed only by transitions.
pub trait RunStore: Send + Sync {
    /// The run with its journal and undelivered outbox.
    fn load_run(&self, id: &str) -> impl Future<Output = Result<Option<LoadedRun>>> + Send;

    /// [`Self::load_run`] for a start message that carried `trigger`, the
    /// routed event the run was created for: a store that keeps a run's
    /// event apart from it uses `trigger` instead of reading the event back
    /// while the run still refers to that very record. Only asked of a store
    /// that [`Self::wants_carried_trigger`].
    fn load_started_run(
        &self,
        id: &str,
        trigger: &StoredEvent,
    ) -> impl Future<Output = Result<Option<LoadedRun>>> + Send {
        let _ = trigger;
        self.load_run(id)
    }

    /// Whether a run's start message should carry its routed trigger event
    /// (up to [`crate::limits::CARRIED_EVENT_BYTES`]) for
    /// [`Self::load_started_run`]; a store that keeps the event with the run
    /// has no use for it.
    fn wants_carried_trigger(&self) -> bool {
        false
    }

    /// The run alone (no journal).
    fn get_run(&self, id: &str) -> impl Future<Output = Result<Option<Run>>> + Send;

    /// Commits `transition` atomically if its fence holds. The outer error is
    /// a storage failure (nothing may be assumed about the outcome: retry
    /// from a fresh read); the inner one says which condition failed (nothing
    /// was written).
    fn commit(
        &self,
        transition: &Transition,
    ) -> impl Future<Output = Result<Result<Committed, Conflict>>> + Send;

    /// Extends the lease `token` of run `run_id` to `until`, if it is still
    /// held and not lapsed at `now`. Reports a requested cancellation as
    /// [`Conflict::CancelRequested`] (the lease is extended anyway).
    fn extend_lease(
        &self,
        run_id: &str,
        token: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<Result<(), Conflict>>> + Send;

    /// Asks for `run` to be cancelled: records `reason` on it (so its holder
    /// stops at its next step boundary) and queues a
    /// [`crate::run::Message::Cancel`] for its function, which a transition
    /// applies. Returns `false` when the run is finished or unknown.
    fn request_cancel(
        &self,
        run_id: &str,
        function_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Runs matching `filter`, newest first.
    fn list_runs(&self, filter: &RunFilter) -> impl Future<Output = Result<Vec<Run>>> + Send;
}

/// Registered waits for future events (`wait_for_event`, `cancel_on`),
/// written only by transitions.
pub trait Waiters: Send + Sync {
    /// Every waiter for events named `event`.
    fn waiters_for(&self, event: &str) -> impl Future<Output = Result<Vec<Waiter>>> + Send;
}

/// Flow-control records ([`crate::flow`]), written only by transitions.
pub trait FlowStore: Send + Sync {
    /// The record under `key` ([`crate::flow::record_key`]).
    fn flow_get(&self, key: &str) -> impl Future<Output = Result<Option<FlowRecord>>> + Send;

    /// Writes a record that no run's transition carries (a function's
    /// pause), on the same condition: [`Conflict::FlowChanged`] unless it is
    /// still at `write.expect`.
    fn flow_put(
        &self,
        write: &FlowWrite,
    ) -> impl Future<Output = Result<Result<(), Conflict>>> + Send;
}

/// Sends messages: queues now, timers later, and events to store and route.
pub trait Outbox: Send + Sync {
    /// Delivers each message at least once. Safe to repeat: a message sent
    /// twice is handled idempotently by its consumer; timers with a dedupe
    /// key are scheduled once per key.
    fn deliver(&self, messages: &[Outgoing]) -> impl Future<Output = Result<()>> + Send;
}

/// Payloads stored once, by content: what backends keep records under the
/// size limits with (see [`crate::limits`]). Records above
/// [`crate::limits::INLINE_BYTES`] hold a blob key instead of their body. A
/// blob lives as long as something refers to it: on S3 by the bucket's
/// lifecycle rule, on SQLite until a prune finds no row referring to it (an
/// hour after it was last stored, at the earliest).
pub trait Blobs: Send + Sync {
    /// Stores `bytes` (idempotently) and returns their key,
    /// [`crate::limits::blob_key`].
    fn put_blob(&self, bytes: &[u8]) -> impl Future<Output = Result<String>> + Send;

    /// The bytes stored under `key`.
    fn get_blob(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}

/// Everything the engine needs; implemented automatically for any type that
/// has all the capabilities.
pub trait Store:
    EventLog + RunStore + Waiters + FlowStore + Outbox + Blobs + Clone + 'static
{
}

impl<T> Store for T where
    T: EventLog + RunStore + Waiters + FlowStore + Outbox + Blobs + Clone + 'static
{
}
