//! A transition: everything one decision of the engine changes, as one value
//! that a backend commits atomically (one SQLite transaction, one DynamoDB
//! `TransactWriteItems`), or not at all.
//!
//! The engine never writes state piecemeal: creating a run, taking its lease,
//! checkpointing a step, suspending, finishing and cancelling are each one
//! [`Transition`]. Messages the decision produces (start a run, resume it
//! later, tell a parent, send events) are part of the transition as its
//! **outbox**, so they exist exactly when the state change does.
//!
//! Implementations must check the transition's [`Fence`] in the same atomic
//! write, count every committed transition in the run's version, and must either enqueue the outbox in that write (the embedded
//! backend, whose queue is a table) or keep it with the run and return it as
//! [`Committed::undelivered`] for the caller to [`crate::store::Outbox::deliver`];
//! a pending outbox must also be returned by `load_run` until the run's next
//! transition replaces it, so a delivery cut short by a crash is finished by
//! whoever next handles the run.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::flow::FlowWrite;
use crate::run::{Envelope, Message, Run, StepRecord, Waiter, WaiterKey};

/// The condition under which a transition may commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fence")]
pub enum Fence {
    /// The run is new: no run with its id may exist.
    Create,
    /// Takes the run's lease: the run exists, is not finished, is still at
    /// `version` (nothing committed since the taker read it), and its lease
    /// is free or lapsed at `now`. (A requested cancellation does not stop
    /// this: the new holder applies it.)
    Acquire {
        /// The writer's time (ms).
        now: i64,
        /// The run's version when the taker read it.
        version: u64,
    },
    /// Takes the lease a worker put off until the first commit of its
    /// execution (a checkpoint, the conclusion, or the lease keeper's first
    /// tick): like [`Fence::Acquire`], and, like [`Fence::Hold`], refused
    /// when a cancellation has been requested.
    Begin {
        /// The writer's time (ms).
        now: i64,
        /// The run's version when the worker read it.
        version: u64,
    },
    /// The writer holds the lease `token`, it has not lapsed at `now`, and no
    /// cancellation has been requested since.
    Hold {
        /// The lease token.
        token: String,
        /// The writer's time (ms).
        now: i64,
    },
    /// Like [`Fence::Hold`], but commits even though a cancellation was
    /// requested: the transition that applies it.
    HoldCancelling {
        /// The lease token.
        token: String,
        /// The writer's time (ms).
        now: i64,
    },
}

/// Claims a function's idempotency key for the run being created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyClaim {
    /// The function.
    pub function_id: String,
    /// The key's value.
    pub key: String,
    /// When the claim lapses (ms).
    pub expires_at: i64,
    /// The writer's time (ms): a claim that lapsed by then is free.
    pub now: i64,
}

/// A message a transition sends once it is committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Outgoing {
    /// Deliver now.
    Send {
        /// The message.
        envelope: Envelope,
    },
    /// Deliver at `at` (ms) or soon after: a timer.
    Later {
        /// The message.
        envelope: Envelope,
        /// When.
        at: i64,
    },
    /// Store these events (deduplicated by id) and route each one.
    Events {
        /// The events, already validated, with their ids and times set.
        events: Vec<Event>,
        /// When they were sent (ms): they are stored as received then, so
        /// the same outbox delivered again, however much later (a stray
        /// message loads a finished run and sends its outbox once more), is
        /// a duplicate that starts nothing new. 0 (an outbox written before
        /// this field): when delivered.
        #[serde(default)]
        sent_at: i64,
    },
}

impl Outgoing {
    /// The time events sent by this message are stored as received at:
    /// when they were sent, or `now` for a message that does not say.
    #[must_use]
    pub fn events_received_at(sent_at: i64, now: i64) -> i64 {
        if sent_at > 0 { sent_at } else { now }
    }

    /// The message as an outbox keeps it: without the event a start carries
    /// only to spare its receiver a read (a redelivery from the outbox has
    /// the receiver read it instead), so the run's item stays small.
    #[must_use]
    pub fn as_kept(&self) -> Self {
        let mut kept = self.clone();
        if let Self::Send { envelope } | Self::Later { envelope, .. } = &mut kept
            && let Message::Start { trigger, .. } = &mut envelope.message
        {
            *trigger = None;
        }
        kept
    }
}

/// One atomic change of the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// When it may commit.
    pub fence: Fence,
    /// The run's new state, including its lease (`None` releases it).
    pub run: Run,
    /// Step checkpoints of this run (inserted or replaced).
    pub steps: Vec<StepRecord>,
    /// Waiters to register.
    pub waiters_added: Vec<Waiter>,
    /// Waiters to remove.
    pub waiters_removed: Vec<WaiterKey>,
    /// The idempotency key to claim (with [`Fence::Create`]).
    pub idempotency: Option<IdempotencyClaim>,
    /// Flow-control records to write, each on the condition that it is
    /// still at the version read.
    pub flow: Vec<FlowWrite>,
    /// The run's trigger event changed (a debounced run takes the newest
    /// event): the backend stores it again, or refers to its record (see
    /// [`Self::event_recorded_at`]).
    pub replaces_event: bool,
    /// The event this transition was decided for is stored, received at
    /// this time, and kept for the runs it starts
    /// ([`crate::store::EventLog::keep_for_runs`]): the run's trigger event with [`Fence::Create`]
    /// or [`Self::replaces_event`], and that of every run of
    /// [`Self::also_create`]. A backend may then refer to that record instead
    /// of storing the event again (DynamoDB does: the event is written once,
    /// not once per run).
    pub event_recorded_at: Option<i64>,
    /// Other runs created with this one, each on the condition that it does
    /// not exist ([`Conflict::Exists`] otherwise): the skipped record of an
    /// event folded into a debounced or batched run.
    pub also_create: Vec<Run>,
    /// Messages to send once committed.
    pub outbox: Vec<Outgoing>,
    /// Messages an earlier transition of the run sent that may not have been
    /// delivered (a crash between its commit and its delivery): a backend
    /// that keeps the outbox with the run keeps these pending too, so the
    /// one that finishes that delivery still finds them; they are not sent
    /// again by this commit. (A debounce or batch fold, which would
    /// otherwise replace the queued run's pending start.)
    pub keep_pending: Vec<Outgoing>,
}

impl Transition {
    /// A transition of `run` under `fence` that changes nothing else yet.
    #[must_use]
    pub fn new(fence: Fence, run: Run) -> Self {
        Self {
            fence,
            run,
            steps: Vec::new(),
            waiters_added: Vec::new(),
            waiters_removed: Vec::new(),
            idempotency: None,
            flow: Vec::new(),
            replaces_event: false,
            event_recorded_at: None,
            also_create: Vec::new(),
            outbox: Vec::new(),
            keep_pending: Vec::new(),
        }
    }

    /// The number of stored records it writes besides the run (what counts
    /// against a backend's per-transaction item limit).
    #[must_use]
    pub fn record_count(&self) -> usize {
        self.steps.len()
            + self.waiters_added.len()
            + self.waiters_removed.len()
            + usize::from(self.idempotency.is_some())
            + self.flow.len()
            + usize::from(self.replaces_event)
            + 2 * self.also_create.len()
    }
}

/// Why a transition was not committed: its fence did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// [`Fence::Create`] (or one of `also_create`): the run already exists.
    #[error("the run already exists")]
    Exists,
    /// [`Fence::Create`]: the idempotency key is held by another run.
    #[error("idempotency key held by run {run_id}")]
    KeyTaken {
        /// The run holding it.
        run_id: String,
    },
    /// [`Fence::Acquire`] or [`Fence::Begin`]: another worker holds the lease.
    #[error("another worker holds the run")]
    Leased,
    /// [`Fence::Acquire`] or [`Fence::Begin`]: the run changed since it was read.
    #[error("the run changed since it was read")]
    Changed,
    /// The run does not exist.
    #[error("no such run")]
    Missing,
    /// The run already finished.
    #[error("the run already finished")]
    Finished,
    /// [`Fence::Hold`]: the lease lapsed or another worker took it.
    #[error("the run's lease was lost")]
    LeaseLost,
    /// A flow-control record changed since it was read: decide again.
    #[error("a flow-control record changed since it was read")]
    FlowChanged,
    /// [`Fence::Hold`] or [`Fence::Begin`]: a cancellation was requested
    /// for this reason.
    #[error("cancellation requested: {0}")]
    CancelRequested(String),
}

/// What a committed transition leaves for its caller to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// Outbox messages the backend did not enqueue in the commit itself; the
    /// caller delivers them (idempotently) before acknowledging its message.
    pub undelivered: Vec<Outgoing>,
}
