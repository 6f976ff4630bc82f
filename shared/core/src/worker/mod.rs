//! The worker: executes a run under its lease and commits what happened.
//!
//! One delivery (start, resume, an answer for a waiting step, a cancellation)
//! is handled in three kinds of transition:
//!
//! 1. **take the lease**, together with everything decided before user code
//!    runs: the waiting step's answer and the waiter's removal, or the run's
//!    end (cancellation, timeouts) — so answering a wait and resuming the run
//!    are one commit;
//! 2. one **checkpoint** per step the handler finishes, fenced by the lease;
//! 3. the **conclusion**: suspended (with its timer), retrying, or finished
//!    (with its waiters removed, its parent told, its failure event sent).
//!
//! Each transition's outbox is delivered before the next step and before the
//! delivery is acknowledged, and a delivery first finishes any outbox a
//! crashed predecessor left, so no message a transition produced is lost.

mod answers;
mod conclude;
pub(crate) mod executor;
mod session;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::clock::{Clock, duration_ms};
use crate::error::Result;
use crate::event::new_id;
use crate::function::{Function, Registry};
use crate::run::{
    Envelope, Lease, Message, Resolution, Run, RunStatus, StepRecord, StepStatus, Target,
};
use crate::store::{EventLog, FlowStore, LoadedRun, Outbox, RunStore, StoredEvent};
use crate::transition::{Conflict, Fence, Outgoing, Transition};

use self::conclude::conclude;
use self::executor::{Ending, execute};
use self::session::{Deferred, Interrupt, LeaseTerms, Session};

/// How far back a suspended run looks for events that arrived while its
/// waiters were being registered (the longest a Lambda holds a run), and at
/// least back to when its execution began.
pub const CATCH_UP_HORIZON: Duration = Duration::from_secs(15 * 60);
/// Attempts at a commit whose flow-control records keep changing under it.
const FLOW_ATTEMPTS: usize = 16;
/// The same for a conclusion, which carries the last step's record: giving
/// up there means running that step again, so it tries longer.
const CONCLUDE_ATTEMPTS: usize = 64;

/// What handling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done; acknowledge (delete) the message.
    Done,
    /// Another worker holds the run (or too little time is left): deliver
    /// the message again later.
    Busy,
}

/// Lease settings of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// A lease lasts this long from its last extension.
    pub lease: Duration,
    /// How often a running execution extends its lease (and notices a
    /// requested cancellation); `None` never extends it (a lease as long as
    /// the longest execution).
    pub heartbeat: Option<Duration>,
    /// How long an execution that put its lease off may run before the lease
    /// keeper writes it (sooner with a shorter heartbeat); until then only
    /// its first commit would.
    pub lease_deferral: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            heartbeat: Some(Duration::from_secs(20)),
            lease_deferral: Duration::from_secs(1),
        }
    }
}

/// Why a delivery reached a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Its first start; `due` is the time the start was sent for, when flow
    /// control put it off (the envelope's `not_before`).
    Start {
        /// When this start message was due.
        due: Option<i64>,
        /// The routed event the run was created for, when the message
        /// carried it (see [`RunStore::load_started_run`]).
        trigger: Option<Box<StoredEvent>>,
    },
    /// A timer: sleep end, retry, wait timeout, finish timeout.
    Resume,
    /// An answer for a waiting step.
    Resolve {
        /// The waiting step.
        step_id: String,
        /// The answer.
        with: Resolution,
    },
    /// A requested cancellation.
    Cancel {
        /// Why.
        reason: String,
    },
}

impl Cause {
    /// True if `message` is the one that brought this cause.
    fn is_delivery_of(&self, run_id: &str, message: &Outgoing) -> bool {
        let envelope = match message {
            Outgoing::Send { envelope } | Outgoing::Later { envelope, .. } => envelope,
            Outgoing::Events { .. } => return false,
        };
        match (self, &envelope.message) {
            (Self::Start { .. }, Message::Start { run_id: id, .. })
            | (Self::Resume, Message::Resume { run_id: id }) => id == run_id,
            _ => false,
        }
    }
}

/// The worker role: generic over only the store capabilities it uses.
pub struct Worker<S> {
    store: S,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
}

impl<S: Clone> Clone for Worker<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            settings: self.settings,
        }
    }
}

impl<S> Worker<S>
where
    S: RunStore + EventLog + FlowStore + Outbox + Clone + 'static,
{
    /// A worker running the functions of `registry` over `store`.
    pub fn new(
        store: S,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        settings: WorkerSettings,
    ) -> Self {
        Self {
            store,
            registry,
            clock,
            settings,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Handles a delivery for run `run_id`; `deadline` (ms) is when this
    /// process must be done (a Lambda invocation's), which bounds the lease.
    ///
    /// # Errors
    /// Storage errors: the message should be delivered again.
    pub async fn handle(
        &self,
        run_id: &str,
        cause: Cause,
        deadline: Option<i64>,
    ) -> Result<Handled> {
        let loaded = match &cause {
            Cause::Start {
                trigger: Some(trigger),
                ..
            } => self.store.load_started_run(run_id, trigger).await?,
            _ => self.store.load_run(run_id).await?,
        };
        let Some(loaded) = loaded else {
            tracing::warn!(run.id = %run_id, "run not found; message dropped");
            return Ok(Handled::Done);
        };
        // Finish what a crashed predecessor committed but did not deliver,
        // except the message being handled: it evidently arrived.
        let pending: Vec<Outgoing> = loaded
            .undelivered
            .iter()
            .filter(|message| !cause.is_delivery_of(run_id, message))
            .cloned()
            .collect();
        self.store.deliver(&pending).await?;
        if loaded.run.status.is_terminal() {
            return Ok(Handled::Done);
        }
        let now = self.now();
        if let Cause::Start { due: Some(due), .. } = cause
            && loaded.run.not_before != Some(due)
        {
            // A start superseded by flow control (a debounce pushed it back,
            // a batch filled before its timeout): the decision that did so
            // sent the start for the new time.
            tracing::debug!(run.id = %run_id, "superseded start; dropped");
            return Ok(Handled::Done);
        }
        let terms = LeaseTerms {
            lease: self.settings.lease,
            deadline,
        };
        let Some(until) = terms.until(now) else {
            return Ok(Handled::Busy);
        };
        let token = new_id();
        let function = self.registry.get(&loaded.run.function_id).cloned();
        match self
            .acquire(loaded, function.as_deref(), cause, &token, until, now)
            .await?
        {
            Acquired::Busy => Ok(Handled::Busy),
            Acquired::Gone => Ok(Handled::Done),
            Acquired::Ready {
                run,
                journal,
                deferred,
            } => {
                let Some(function) = function else {
                    return Ok(Handled::Done); // unreachable: concluded at acquisition
                };
                let session = Arc::new(Session::new(
                    self.store.clone(),
                    self.clock.clone(),
                    terms,
                    token,
                    (*run, deferred),
                    &journal,
                ));
                self.run_leased(&function, session, journal).await
            }
        }
    }

    /// Takes the lease in one transition with what is decided before user
    /// code runs, and with the run's concurrency slots; when a slot is not
    /// free, records the run's place in line instead (with a waiting step's
    /// answer, which must not be lost) and leaves the run unleased. A start
    /// or a timer's resume (a wait's timeout too) that decides nothing else
    /// puts the lease off to
    /// the execution's first commit ([`Deferred`]), which then writes it.
    async fn acquire(
        &self,
        loaded: LoadedRun,
        function: Option<&Function>,
        cause: Cause,
        token: &str,
        until: i64,
        now: i64,
    ) -> Result<Acquired> {
        let LoadedRun {
            run, mut journal, ..
        } = loaded;
        let mut next = run.clone();
        next.lease = Some(Lease {
            token: token.to_owned(),
            until,
        });
        let fence = Fence::Acquire {
            now,
            version: run.version,
        };
        let limited = function.is_some_and(slots::limited);
        if let Some((status, error)) = ended_before_start(&run, function, &cause, now) {
            next.error = Some(error.clone());
            let base = conclude(
                fence,
                next,
                &journal,
                crate::step::Change::default(),
                status,
                now,
            );
            for _ in 0..FLOW_ATTEMPTS {
                let mut transition = base.clone();
                if let (true, Some(function)) = (limited, function) {
                    // Cancelled while in line (or holding a slot): leave it.
                    let (writes, outbox) =
                        slots::give_back(&self.store, function, &run, now, self.lease_ms()).await?;
                    transition.flow = writes;
                    transition.outbox.extend(outbox);
                }
                return Ok(match self.store.commit(&transition).await? {
                    Ok(committed) => {
                        crate::observe::run_ended(&transition.run);
                        self.store.deliver(&committed.undelivered).await?;
                        tracing::info!(run.id = %run.id, status = status.as_str(), error, "run ended before its handler ran");
                        Acquired::Gone
                    }
                    Err(Conflict::FlowChanged) => {
                        back_off(token).await;
                        continue;
                    }
                    Err(Conflict::Leased | Conflict::Changed) => Acquired::Busy,
                    Err(_) => Acquired::Gone,
                });
            }
            return Ok(Acquired::Busy);
        }
        let mut answered = Transition::new(fence, run.clone());
        if let Cause::Resolve { step_id, with } = &cause
            && let Some((step, removed)) = self.resolve(&run, &journal, step_id, with, now).await?
        {
            journal.retain(|s| s.id != step.id);
            journal.push(step.clone());
            journal.sort_by_key(|s| s.position);
            answered.steps.push(step);
            answered.waiters_removed.extend(removed);
        }
        let mut transition = answered.clone();
        transition.run = next;
        let run_state = &mut transition.run;
        run_state.status = RunStatus::Running;
        run_state.wake_at = None;
        let first_start = run_state.started_at.is_none();
        let started_at = *run_state.started_at.get_or_insert(now);
        if first_start && let Some(limit) = function.and_then(|f| f.finish_timeout) {
            transition
                .outbox
                .push(resume_at(&run, started_at + duration_ms(limit)));
        }
        // Not a start flow control put off: a debounce fold or a batch join
        // may still change that run (at the version read) until its lease
        // is written, and its first step must see the final event. A wait's
        // timeout may: the handler's first commit is the timeout's answer,
        // fenced at the version read, so it and an event that answers the
        // wait meanwhile (a commit of its own) cannot both win, and no user
        // code runs on the timeout before that commit.
        // But not when another branch of a waiting run is due too (a retry,
        // a sleep's end): a retried step's code runs before any commit, and
        // an event's answer committed meanwhile would run it as well.
        let other_branch_due = run.status == RunStatus::Waiting
            && journal.iter().any(|step| {
                matches!(step.status, StepStatus::Retrying | StepStatus::Sleeping)
                    && step.wake_at.is_some_and(|at| at <= now)
            });
        let defer = !limited
            && answered.steps.is_empty()
            && !other_branch_due
            && matches!(cause, Cause::Start { due: None, .. } | Cause::Resume);
        if defer {
            if run.lease.as_ref().is_some_and(|lease| lease.until > now) {
                return Ok(Acquired::Busy); // what taking it would find
            }
            return Ok(Acquired::Ready {
                run: Box::new(transition.run),
                journal,
                deferred: Some(Deferred {
                    version: run.version,
                    outbox: transition.outbox,
                    first_start: first_start.then_some(now),
                }),
            });
        }
        for _ in 0..FLOW_ATTEMPTS {
            let mut attempt = transition.clone();
            if let (true, Some(function)) = (limited, function) {
                match slots::take(
                    &self.store,
                    function,
                    &run,
                    token,
                    until,
                    now,
                    self.lease_ms(),
                )
                .await?
                {
                    slots::Take::Granted { writes, outbox } => {
                        attempt.flow = writes;
                        attempt.outbox.extend(outbox);
                    }
                    slots::Take::Wait {
                        writes,
                        outbox,
                        why,
                    } => {
                        let mut waiting = answered.clone();
                        waiting.run.note = Some(why);
                        waiting.flow = writes;
                        waiting.outbox.extend(outbox);
                        match self.store.commit(&waiting).await? {
                            Ok(committed) => {
                                self.store.deliver(&committed.undelivered).await?;
                                tracing::debug!(run.id = %run.id, "waiting for a concurrency slot");
                                return Ok(Acquired::Gone);
                            }
                            Err(Conflict::FlowChanged) => {
                                back_off(token).await;
                                continue;
                            }
                            Err(Conflict::Leased | Conflict::Changed) => return Ok(Acquired::Busy),
                            Err(_) => return Ok(Acquired::Gone),
                        }
                    }
                }
            }
            return match self.store.commit(&attempt).await? {
                Ok(committed) => {
                    if first_start {
                        crate::observe::run_started(&attempt.run, now);
                    }
                    self.store.deliver(&committed.undelivered).await?;
                    Ok(Acquired::Ready {
                        run: Box::new(attempt.run),
                        journal,
                        deferred: None,
                    })
                }
                Err(Conflict::FlowChanged) => {
                    back_off(token).await;
                    continue;
                }
                // Changed: another worker committed since the run was read; the
                // delivery comes back and reads it again.
                Err(Conflict::Leased | Conflict::Changed) => Ok(Acquired::Busy),
                Err(_) => Ok(Acquired::Gone),
            };
        }
        Ok(Acquired::Busy)
    }

    /// The events a run handles: its batch, or its trigger alone. A batched
    /// event no longer stored (past the event log's retention) is left out.
    async fn events_of(&self, run: &Run) -> Result<Vec<crate::event::Event>> {
        if run.batch.is_empty() {
            return Ok(vec![run.event.clone()]);
        }
        let mut events = Vec::with_capacity(run.batch.len());
        for id in &run.batch {
            if *id == run.event.id {
                events.push(run.event.clone());
            } else if let Some(stored) = self.store.get_event(id).await? {
                events.push(stored.event);
            } else {
                tracing::warn!(run.id = %run.id, event.id = %id, "batched event no longer stored; left out");
            }
        }
        Ok(events)
    }

    fn lease_ms(&self) -> i64 {
        duration_ms(self.settings.lease)
    }

    /// Runs the handler under the lease and commits its conclusion.
    async fn run_leased(
        &self,
        function: &Function,
        session: Arc<Session<S>>,
        journal: Vec<StepRecord>,
    ) -> Result<Handled> {
        let run = session.run();
        let finish_by = function
            .finish_timeout
            .zip(run.started_at)
            .map(|(limit, started)| started + duration_ms(limit));
        let keeper = session.keep_lease(self.settings.heartbeat, self.settings.lease_deferral);
        let span = tracing::info_span!("run", run.id = %run.id, function = %run.function_id);
        let events = self.events_of(&run).await?;
        let began = self.now();
        let execution = execute(function, &run, journal, session.clone(), finish_by, events)
            .instrument(span)
            .await;
        if let Some(keeper) = keeper {
            session.stop(keeper).await;
        }
        let execution = match execution {
            Ok(execution) => execution,
            Err(err) => {
                self.release(&session).await;
                return Err(err);
            }
        };
        let ending = match execution.ending {
            Ending::LeaseLost => return Ok(Handled::Busy),
            ending => ending,
        };
        self.finish(function, &session, ending, execution.pending, began)
            .await
    }

    /// Commits the execution's conclusion (retrying as a cancellation when
    /// one was requested meanwhile), delivers its outbox, then catches up on
    /// events its new waiters may have missed.
    async fn finish(
        &self,
        function: &Function,
        session: &Session<S>,
        ending: Ending,
        pending: crate::step::Change,
        began: i64,
    ) -> Result<Handled> {
        let token = session.token().to_owned();
        let mut ending = ending;
        if let Some(Interrupt::Cancel(reason)) = session.interruption()
            && !matches!(ending, Ending::Completed(_) | Ending::Failed(_))
        {
            ending = Ending::Cancelled(reason);
        }
        for _ in 0..CONCLUDE_ATTEMPTS {
            let now = self.now();
            let cancelling = matches!(ending, Ending::Cancelled(_));
            let run = session.run();
            let journal = session.journal_with(&pending.steps);
            let fence = session.fence(now, cancelling);
            let mut transition =
                conclude_ending(fence, run, &journal, pending.clone(), &ending, now);
            if slots::limited(function) {
                let (writes, outbox) =
                    slots::give_back(&self.store, function, &transition.run, now, self.lease_ms())
                        .await?;
                transition.flow = writes;
                transition.outbox.extend(outbox);
            }
            match session
                .commit_next(&mut transition, now, cancelling)
                .await?
            {
                Ok(committed) => {
                    transition
                        .steps
                        .iter()
                        .for_each(crate::observe::step_recorded);
                    crate::observe::run_ended(&transition.run);
                    self.store.deliver(&committed.undelivered).await?;
                    let run = &transition.run;
                    tracing::debug!(run.id = %run.id, status = run.status.as_str(), wake_at = run.wake_at, "run concluded");
                    if run.status == RunStatus::Waiting {
                        let horizon = began.min(now - duration_ms(CATCH_UP_HORIZON));
                        self.catch_up(run, &journal, horizon, now).await?;
                    }
                    return Ok(Handled::Done);
                }
                Err(Conflict::CancelRequested(reason)) => ending = Ending::Cancelled(reason),
                Err(Conflict::FlowChanged) => back_off(&token).await,
                Err(_) => return Ok(Handled::Busy),
            }
        }
        Ok(Handled::Busy)
    }

    /// Gives the lease back after a failed execution, so the next delivery
    /// need not wait for it to lapse (best effort). Messages the last commit
    /// may not have delivered stay in the outbox.
    async fn release(&self, session: &Session<S>) {
        if session.deferred() {
            return; // nothing written, nothing to give back
        }
        let mut run = session.run();
        run.lease = None;
        let fence = Fence::Hold {
            token: session.token().to_owned(),
            now: self.now(),
        };
        let mut transition = Transition::new(fence, run);
        transition.outbox = session.undelivered();
        if let Err(err) = self.store.commit(&transition).await {
            tracing::warn!(error = %err, "lease release failed; it will lapse");
        }
    }
}

/// Waits a few milliseconds before deciding again when a flow-control
/// record changed under a commit, so workers contending for one key spread
/// out instead of colliding again (`seed`, a lease token, differs per worker).
pub(crate) async fn back_off(seed: &str) {
    let spread = seed
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    tokio::time::sleep(Duration::from_millis(1 + spread % 20)).await;
}

/// What taking the lease led to.
enum Acquired {
    /// Another worker holds the run.
    Busy,
    /// The run is finished or gone: nothing to do.
    Gone,
    /// The lease is ours: the run (as committed, or as the lease's first
    /// commit will write it) and its journal.
    Ready {
        run: Box<Run>,
        journal: Vec<StepRecord>,
        /// The lease is not written yet.
        deferred: Option<Deferred>,
    },
}

/// How a run ends before its handler runs, if it does: a requested
/// cancellation, an unregistered function, or a start or finish timeout.
fn ended_before_start(
    run: &Run,
    function: Option<&Function>,
    cause: &Cause,
    now: i64,
) -> Option<(RunStatus, String)> {
    if let Cause::Cancel { reason } = cause {
        return Some((RunStatus::Cancelled, reason.clone()));
    }
    if let Some(reason) = &run.cancel_requested {
        return Some((RunStatus::Cancelled, reason.clone()));
    }
    let Some(function) = function else {
        return Some((
            RunStatus::Failed,
            format!("function `{}` is no longer registered", run.function_id),
        ));
    };
    if run.started_at.is_none()
        && let Some(limit) = function.start_timeout
        && now - run.created_at > duration_ms(limit)
    {
        return Some((
            RunStatus::Cancelled,
            format!("not started within the {limit:?} start timeout"),
        ));
    }
    if let (Some(started), Some(limit)) = (run.started_at, function.finish_timeout)
        && now >= started + duration_ms(limit)
    {
        return Some((RunStatus::Cancelled, "finish timeout exceeded".to_owned()));
    }
    None
}

fn conclude_ending(
    fence: Fence,
    run: Run,
    journal: &[StepRecord],
    pending: crate::step::Change,
    ending: &Ending,
    now: i64,
) -> Transition {
    match ending {
        Ending::Suspended { wake_at, waiting } => {
            conclude::suspend(fence, run, pending, *wake_at, *waiting)
        }
        Ending::RetryAt { at, error } => conclude::retry(fence, run, pending, *at, error),
        Ending::Completed(output) => {
            let mut run = run;
            run.output = Some(output.clone());
            run.error = None;
            conclude(fence, run, journal, pending, RunStatus::Completed, now)
        }
        Ending::Failed(error) | Ending::Cancelled(error) => {
            let status = if matches!(ending, Ending::Failed(_)) {
                RunStatus::Failed
            } else {
                RunStatus::Cancelled
            };
            let mut run = run;
            run.error = Some(error.clone());
            conclude(fence, run, journal, pending, status, now)
        }
        Ending::LeaseLost => Transition::new(fence, run),
    }
}

/// A timer that resumes `run` at `at`.
pub(crate) fn resume_at(run: &Run, at: i64) -> Outgoing {
    Outgoing::Later {
        envelope: Envelope::new(
            Target::Function(run.function_id.clone()),
            Message::Resume {
                run_id: run.id.clone(),
            },
        ),
        at,
    }
}
