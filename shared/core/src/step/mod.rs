//! The durable step API a handler uses: `run`, `sleep`, `sleep_until`,
//! `wait_for_event`, `send_event`, `invoke`, and `idempotency_key`.
//!
//! Every step follows one protocol, written once in [`Step::step`]:
//!
//! 1. **claim** its id (repeats get `:1`, `:2`, ...): a journaled step
//!    keeps its recorded position and must be of the recorded kind; a new
//!    step waits until every journaled step has been reached again, then
//!    takes the next position. Parallel branches may reach steps in another
//!    order on replay (a replayed step returns at once), but a deterministic
//!    handler reaches every journaled step again before any new one; if it
//!    stops with a new step waiting and a journaled one never reached, the
//!    code changed under the run, which fails as non-deterministic;
//! 2. **replay** a journaled record, or, for a new step, check that the run
//!    may go on (finish timeout, lost lease, requested cancellation);
//! 3. let the step's kind decide ([`Next`]): return a result, after
//!    **checkpointing** what it did, or **suspend** the run, adding what it
//!    recorded to the run's suspension transition. A checkpoint that is only
//!    a step's record is committed before the next new `run` step's code
//!    runs, or with the next commit or the execution's ending (end,
//!    suspension, retry) if that comes first; one with waiters or messages
//!    is committed at once.
//!
//! Each kind (`run.rs`, `sleep.rs`, `wait.rs`, `send.rs`, `invoke.rs`)
//! supplies only that decision. A step that suspends never resolves; the
//! executor drops the handler once no step is still in flight.

mod invoke;
mod run;
mod send;
mod sleep;
mod wait;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Notify;

use crate::error::Error;
use crate::event::derived_id;
use crate::failure::StepError;
use crate::limits::MAX_STEPS_PER_RUN;
use crate::run::{StepKind, StepRecord, StepStatus, Waiter, WaiterKey};
use crate::transition::Outgoing;

pub use self::wait::WaitFor;

pub use crate::limits::MAX_STEP_OUTPUT_BYTES;
/// Default `wait_for_event` timeout (7 days).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

tokio::task_local! {
    static CURRENT_STEP: String;
}

/// What one step adds to a transition of its run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Change {
    /// Step records to write.
    pub(crate) steps: Vec<StepRecord>,
    /// Waiters to register.
    pub(crate) waiters_added: Vec<Waiter>,
    /// Waiters to remove.
    pub(crate) waiters_removed: Vec<WaiterKey>,
    /// Messages to send.
    pub(crate) outbox: Vec<Outgoing>,
}

impl Change {
    /// A change that writes one step record.
    pub(crate) fn record(step: StepRecord) -> Self {
        Self {
            steps: vec![step],
            ..Self::default()
        }
    }

    /// Adds `other` to this change.
    pub(crate) fn merge(&mut self, other: Self) {
        self.steps.extend(other.steps);
        self.waiters_added.extend(other.waiters_added);
        self.waiters_removed.extend(other.waiters_removed);
        self.outbox.extend(other.outbox);
    }
}

/// How the run commits a step's change, object-safe so handlers are not
/// generic over the backend. Implemented by the worker for each execution.
pub(crate) trait Checkpoints: Send + Sync {
    /// The current time (ms).
    fn now(&self) -> i64;
    /// Commits `change` as one transition under the run's lease.
    fn commit(&self, change: Change) -> BoxFuture<'_, Result<(), Halt>>;
    /// Why the run must not start another step, if it must not (the lease
    /// was lost, or a cancellation was requested).
    fn interrupted(&self) -> Option<Halt>;
}

/// Why the handler was stopped before finishing.
#[derive(Debug)]
pub(crate) enum Halt {
    /// Cancelled (requested, `cancel_on`, or the finish timeout).
    Cancelled(String),
    /// The run fails for good: the code no longer matches the journal, or
    /// the run went over a limit.
    Fail(String),
    /// Another worker may hold the run: stop without writing anything.
    LeaseLost,
    /// Storage failed; the delivery should be retried.
    Store(Error),
}

/// What a step's kind decided.
pub(crate) enum Next<T> {
    /// Return this to the handler, after committing the change (if any).
    Return(Result<T, StepError>, Option<Change>),
    /// Suspend the run until `wake`; the change joins its suspension.
    Suspend(Option<Change>, Wake),
    /// Stop the handler.
    Halt(Halt),
}

/// When a suspended run wants to be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wake {
    /// At this time (sleep end, retry, wait timeout), if any.
    pub(crate) at: Option<i64>,
    /// True while the step waits for an event or a child run.
    pub(crate) waiting: bool,
}

impl Wake {
    pub(crate) fn at(at: i64) -> Self {
        Self {
            at: Some(at),
            waiting: false,
        }
    }

    pub(crate) fn waiting(at: Option<i64>) -> Self {
        Self { at, waiting: true }
    }
}

/// What the executor finds when the handler stops.
#[derive(Default)]
pub(crate) struct State {
    seen: HashMap<String, u32>,
    /// Journaled steps reached in this execution.
    reached: HashSet<String>,
    /// New steps waiting for every journaled step to be reached first.
    parked: Vec<String>,
    /// Replayed steps letting the other branches be polled, by a number
    /// each takes (`next_yield`).
    yielding: HashSet<u64>,
    next_yield: u64,
    /// The position the next new step takes.
    next_position: u32,
    in_flight: usize,
    pub(crate) suspended: bool,
    pub(crate) waiting: bool,
    pub(crate) wake_at: Option<i64>,
    pub(crate) halt: Option<Halt>,
    /// Changes of suspending steps, for the run's suspension transition.
    pub(crate) pending: Change,
    /// Records of steps that returned, not yet committed: committed before
    /// the next new `run` step's code runs, or with the next commit or the
    /// execution's ending.
    deferred: Change,
}

struct Inner {
    run_id: String,
    function_id: String,
    /// The event names the function declares it waits for.
    waits_for: Vec<String>,
    trigger: Value,
    retries: u32,
    finish_by: Option<i64>,
    checkpoints: Arc<dyn Checkpoints>,
    journal: HashMap<String, StepRecord>,
    state: Mutex<State>,
    notify: Notify,
    /// Wakes the parked new steps once every journaled step was reached.
    released: Notify,
}

/// The durable step API, handed to a handler in its [`crate::Ctx`]. Cheap to clone.
#[derive(Clone)]
pub struct Step {
    inner: Arc<Inner>,
}

/// A step's id and position in this run, with its journaled record if any.
pub(crate) struct Claim {
    pub(crate) key: String,
    pub(crate) position: u32,
    pub(crate) record: Option<StepRecord>,
}

impl Claim {
    /// A fresh record for this step.
    pub(crate) fn new_record(&self, kind: StepKind, status: StepStatus, now: i64) -> StepRecord {
        StepRecord {
            id: self.key.clone(),
            position: self.position,
            kind,
            status,
            attempts: 0,
            output: None,
            error: None,
            started_at: now,
            ended_at: None,
            wake_at: None,
            detail: None,
        }
    }
}

/// The context a step kind decides in.
pub(crate) struct Scope<'a> {
    pub(crate) step: &'a Step,
    pub(crate) now: i64,
}

impl Scope<'_> {
    pub(crate) fn run_id(&self) -> &str {
        &self.step.inner.run_id
    }

    pub(crate) fn function_id(&self) -> &str {
        &self.step.inner.function_id
    }

    /// Whether the function declares that it waits for events named `name`.
    pub(crate) fn waits_for(&self, name: &str) -> bool {
        self.step.inner.waits_for.iter().any(|n| n == name)
    }

    pub(crate) fn trigger(&self) -> &Value {
        &self.step.inner.trigger
    }

    pub(crate) fn retries(&self) -> u32 {
        self.step.inner.retries
    }

    /// The time now (after user code ran), rather than when the step was reached.
    pub(crate) fn clock(&self) -> i64 {
        self.step.inner.checkpoints.now()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Step {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        run_id: &str,
        function_id: &str,
        waits_for: &[String],
        trigger: Value,
        retries: u32,
        finish_by: Option<i64>,
        journal: Vec<StepRecord>,
        checkpoints: Arc<dyn Checkpoints>,
    ) -> Self {
        let next_position = journal.iter().map(|r| r.position + 1).max().unwrap_or(0);
        let journal = journal.into_iter().map(|r| (r.id.clone(), r)).collect();
        Self {
            inner: Arc::new(Inner {
                run_id: run_id.to_owned(),
                function_id: function_id.to_owned(),
                waits_for: waits_for.to_vec(),
                trigger,
                retries,
                finish_by,
                checkpoints,
                journal,
                state: Mutex::new(State {
                    next_position,
                    ..State::default()
                }),
                notify: Notify::new(),
                released: Notify::new(),
            }),
        }
    }

    /// The run this step API belongs to.
    #[must_use]
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// A key for external APIs (e.g. Stripe's `Idempotency-Key`) that is the
    /// same on every attempt and replay of the current `run` step, and
    /// different for every other step and run. Outside a step: per run.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        let step = CURRENT_STEP.try_with(Clone::clone).unwrap_or_default();
        format!("hf-{}", derived_id(&[&self.inner.run_id, &step]))
    }

    /// The step protocol: claim, replay or check, let the kind decide in
    /// `decide`, then checkpoint and return, or suspend.
    pub(crate) async fn step<'s, T, D, Fut>(
        &'s self,
        id: &str,
        kind: StepKind,
        decide: D,
    ) -> Result<T, StepError>
    where
        D: FnOnce(Claim, Scope<'s>) -> Fut,
        Fut: Future<Output = Next<T>>,
    {
        // Boxed: a step's future is in every handler's, and a parked claim
        // holds a wait of its own.
        let claim = match Box::pin(self.claim(id, kind)).await {
            Ok(claim) => claim,
            Err(halt) => return self.halt(halt).await,
        };
        if claim.record.is_some() {
            // A replayed step lets the handler's other branches be polled,
            // as its first execution did while it ran: a race (`select`) is
            // then not over before its other branches reach their
            // journaled steps again. (Counted apart from the flights: a
            // race that leaves this branch never polls it again.)
            let _yielding = Yielding::new(self);
            tokio::task::yield_now().await;
        }
        let flight = self.flight();
        if claim.record.is_none() {
            if let Err(halt) = self.before_new_step() {
                return self.halt(halt).await;
            }
            // What earlier steps did is durable before user code runs
            // again (the other kinds carry it in their own commit or in the
            // suspension).
            if kind == StepKind::Run
                && let Err(halt) = self.commit(Change::default()).await
            {
                return self.halt(halt).await;
            }
        }
        let scope = Scope {
            step: self,
            now: self.inner.checkpoints.now(),
        };
        match decide(claim, scope).await {
            Next::Return(result, change) => {
                match change {
                    // A record alone waits for the next new `run` step, the
                    // next commit or the execution's ending, whichever comes
                    // first: a step just before the handler returns (or
                    // suspends) costs no commit of its own.
                    Some(change)
                        if change.waiters_added.is_empty()
                            && change.waiters_removed.is_empty()
                            && change.outbox.is_empty() =>
                    {
                        self.inner.lock().deferred.merge(change);
                    }
                    Some(change) => {
                        if let Err(halt) = self.commit(change).await {
                            return self.halt(halt).await;
                        }
                    }
                    None => {}
                }
                result
            }
            Next::Suspend(change, wake) => {
                if let Some(change) = change {
                    self.inner.lock().pending.merge(change);
                }
                self.suspend(flight, wake).await
            }
            Next::Halt(halt) => self.halt(halt).await,
        }
    }

    async fn claim(&self, id: &str, kind: StepKind) -> Result<Claim, Halt> {
        let key = {
            let mut state = self.inner.lock();
            let seen = state.seen.entry(id.to_owned()).or_insert(0);
            let key = if *seen == 0 {
                id.to_owned()
            } else {
                format!("{id}:{seen}")
            };
            *seen += 1;
            key
        };
        if let Some(rec) = self.inner.journal.get(&key) {
            if rec.kind != kind {
                return Err(Halt::Fail(format!(
                    "non-deterministic: the journal has step `{key}` as {:?}, but the code reached it as {kind:?}",
                    rec.kind
                )));
            }
            let all_reached = {
                let mut state = self.inner.lock();
                state.reached.insert(key.clone());
                state.reached.len() == self.inner.journal.len()
            };
            if all_reached {
                self.inner.released.notify_waiters();
            }
            return Ok(Claim {
                key,
                position: rec.position,
                record: Some(rec.clone()),
            });
        }
        // A new step: not before every journaled step was reached again (a
        // sibling branch may not have been polled yet), so that its code
        // never runs in a run whose code changed.
        let mut parked = Parked {
            step: self,
            key: None,
        };
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut state = self.inner.lock();
                if state.reached.len() == self.inner.journal.len() {
                    let was_parked = parked.key.take().is_some();
                    state.parked.retain(|k| k != &key);
                    let position = state.next_position;
                    state.next_position += 1;
                    drop(state);
                    if position >= MAX_STEPS_PER_RUN {
                        return Err(Halt::Fail(format!(
                            "the run reached step {}, over the {MAX_STEPS_PER_RUN}-step limit per run",
                            position + 1
                        )));
                    }
                    if was_parked {
                        // The executor looks again: this step runs now.
                        self.inner.notify.notify_one();
                    }
                    return Ok(Claim {
                        key,
                        position,
                        record: None,
                    });
                }
                if parked.key.is_none() {
                    state.parked.push(key.clone());
                    parked.key = Some(key.clone());
                }
            }
            // The executor looks at whether the handler can still go on.
            self.inner.notify.notify_one();
            released.await;
        }
    }

    /// Why the handler cannot go on, if it cannot: a new step waits for a
    /// journaled step no branch reaches any more.
    fn stuck(&self, state: &State) -> Option<String> {
        let new = state.parked.first()?;
        let missing = self
            .inner
            .journal
            .values()
            .filter(|rec| !state.reached.contains(&rec.id))
            .min_by_key(|rec| rec.position)?;
        Some(format!(
            "non-deterministic: the code reached new step `{new}`, but not the journal's step `{}` (position {})",
            missing.id, missing.position
        ))
    }

    /// A new step may start only before the finish timeout, while the run's
    /// lease holds and no cancellation was requested. No I/O: the lease
    /// keeper and failed commits report the last two.
    fn before_new_step(&self) -> Result<(), Halt> {
        if let Some(finish_by) = self.inner.finish_by
            && self.inner.checkpoints.now() >= finish_by
        {
            return Err(Halt::Cancelled("finish timeout exceeded".into()));
        }
        match self.inner.checkpoints.interrupted() {
            Some(halt) => Err(halt),
            None => Ok(()),
        }
    }

    /// Decodes a journaled output; a mismatch with `T` is non-determinism.
    pub(crate) fn decode<T: DeserializeOwned>(key: &str, output: Option<Value>) -> Result<T, Halt> {
        serde_json::from_value(output.unwrap_or(Value::Null)).map_err(|e| {
            Halt::Fail(format!(
                "non-deterministic: the journaled output of step `{key}` no longer fits its type: {e}"
            ))
        })
    }

    fn flight(&self) -> Flight<'_> {
        self.inner.lock().in_flight += 1;
        Flight(self)
    }

    fn exit(&self) {
        let mut state = self.inner.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.inner.notify.notify_one();
    }

    /// Asks the executor to suspend, releases this step's flight, and never resolves.
    async fn suspend<T>(&self, flight: Flight<'_>, wake: Wake) -> T {
        {
            let mut state = self.inner.lock();
            state.suspended = true;
            state.waiting |= wake.waiting;
            if let Some(at) = wake.at {
                state.wake_at = Some(state.wake_at.map_or(at, |w| w.min(at)));
            }
        }
        drop(flight);
        self.inner.notify.notify_one();
        futures::future::pending().await
    }

    /// Stops the handler for good and never resolves.
    async fn halt<T>(&self, halt: Halt) -> T {
        {
            let mut state = self.inner.lock();
            if state.halt.is_none() {
                state.halt = Some(halt);
            }
        }
        self.inner.notify.notify_one();
        futures::future::pending().await
    }

    /// Resolves once the handler should be dropped: halted, suspended with
    /// no step still running, or stuck (see [`Self::claim`]). Looked at
    /// between polls of the handler (both run in the executor's task), so a
    /// parked step is seen only once the handler can do nothing more.
    pub(crate) async fn stopped(&self) {
        // What was about to go on at the last look, when nothing was in
        // flight: still there after a handler poll, a race left it.
        let mut seen_parked: Vec<String> = Vec::new();
        let mut seen_yielding: HashSet<u64> = HashSet::new();
        loop {
            let notified = self.inner.notify.notified();
            let defer = {
                let mut state = self.inner.lock();
                if state.halt.is_some() {
                    return;
                }
                let mut defer = false;
                if state.in_flight == 0 {
                    let stuck = self.stuck(&state);
                    if stuck.is_none() {
                        state.parked.retain(|k| !seen_parked.contains(k));
                    }
                    state.yielding.retain(|id| !seen_yielding.contains(id));
                    // Released steps, and replayed ones letting the others
                    // be polled, are about to go on: look again once the
                    // handler has been polled.
                    let releasing = !state.parked.is_empty() && stuck.is_none();
                    defer = releasing || !state.yielding.is_empty();
                    if defer {
                        seen_parked = if releasing {
                            state.parked.clone()
                        } else {
                            Vec::new()
                        };
                        seen_yielding.clone_from(&state.yielding);
                    } else {
                        if state.suspended {
                            return;
                        }
                        if let Some(reason) = stuck {
                            state.halt = Some(Halt::Fail(reason));
                            return;
                        }
                    }
                }
                if !defer {
                    seen_parked.clear();
                    seen_yielding.clear();
                }
                defer
            };
            if defer {
                tokio::task::yield_now().await;
            } else {
                notified.await;
            }
        }
    }

    /// The executor's findings; records not yet committed join `pending`.
    pub(crate) fn take_state(&self) -> State {
        let mut state = std::mem::take(&mut *self.inner.lock());
        let mut pending = std::mem::take(&mut state.deferred);
        pending.merge(std::mem::take(&mut state.pending));
        state.pending = pending;
        state
    }

    /// Commits the deferred records with `change` (nothing when both are
    /// empty).
    async fn commit(&self, change: Change) -> Result<(), Halt> {
        let mut all = std::mem::take(&mut self.inner.lock().deferred);
        all.merge(change);
        if all == Change::default() {
            return Ok(());
        }
        self.inner.checkpoints.commit(all).await
    }
}

/// A replayed step letting the other branches be polled (see
/// [`Step::step`]); counted until it goes on or its branch is dropped.
struct Yielding<'a>(&'a Step, u64);

impl<'a> Yielding<'a> {
    fn new(step: &'a Step) -> Self {
        let mut state = step.inner.lock();
        let id = state.next_yield;
        state.next_yield += 1;
        state.yielding.insert(id);
        drop(state);
        Self(step, id)
    }
}

impl Drop for Yielding<'_> {
    fn drop(&mut self) {
        self.0.inner.lock().yielding.remove(&self.1);
    }
}

/// A new step waiting in [`Step::claim`]: if its branch is dropped (a race
/// lost), it stops waiting, and the executor looks again.
struct Parked<'a> {
    step: &'a Step,
    key: Option<String>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.step.inner.lock().parked.retain(|k| k != &key);
            self.step.inner.notify.notify_one();
        }
    }
}

/// Marks a step as doing work: the executor does not drop the handler while
/// any step holds one, so a checkpoint is never cut in half by a sibling
/// branch suspending. Released on drop or by `suspend`.
struct Flight<'a>(&'a Step);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// The [`StepError`] a failed record returns on every replay.
pub(crate) fn step_error(rec: &StepRecord) -> StepError {
    StepError {
        step: rec.id.clone(),
        attempts: rec.attempts,
        message: rec.error.clone().unwrap_or_default(),
    }
}

/// A completed or failed record's result, as every replay sees it.
pub(crate) fn replayed<T: DeserializeOwned>(rec: &StepRecord) -> Option<Next<T>> {
    match rec.status {
        StepStatus::Completed => Some(match Step::decode(&rec.id, rec.output.clone()) {
            Ok(value) => Next::Return(Ok(value), None),
            Err(halt) => Next::Halt(halt),
        }),
        StepStatus::Failed => Some(Next::Return(Err(step_error(rec)), None)),
        _ => None,
    }
}
