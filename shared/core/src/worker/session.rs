//! One execution of a run under its lease: step checkpoints committed as
//! fenced transitions, and the lease keeper that extends the lease while a
//! long step runs and notices a requested cancellation.
//!
//! A delivery may put off writing its lease ([`Deferred`]): the execution's
//! first commit takes it ([`Fence::Begin`], at the version the worker read),
//! or the keeper does once the execution has run for a while
//! (`WorkerSettings::lease_deferral`, a second), whichever comes first. A
//! run whose first step is quick so costs one write less; two deliveries
//! that both read the run before either wrote the lease may both run the
//! step they start with, and only the first commit goes through.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::clock::{Clock, duration_ms};
use crate::error::Result;
use crate::run::{Lease, Run, StepRecord};
use crate::step::{Change, Checkpoints, Halt};
use crate::store::{Outbox, RunStore};
use crate::transition::{Committed, Conflict, Fence, Outgoing, Transition};

/// Why an execution must stop before its next new step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The lease lapsed or was taken.
    LeaseLost,
    /// A cancellation was requested.
    Cancel(String),
}

/// How long a lease lasts and when it must end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseTerms {
    /// A lease lasts this long from its last extension.
    pub(crate) lease: Duration,
    /// The worker must be done by then (a Lambda invocation's deadline).
    pub(crate) deadline: Option<i64>,
}

/// Leases shorter than this are not worth taking: the run is left for a
/// delivery with more time.
const MIN_LEASE_MS: i64 = 1_000;

/// A first commit with more records than this writes a deferred lease on its
/// own first, so that no backend commits it in parts unfenced by a lease
/// (DynamoDB splits at 99 items or 3.5 MB; an inline record is at most
/// 64 KiB).
const FIRST_COMMIT_RECORDS: usize = 32;

/// The lease keeper's pause after a failed write of a deferred lease.
const KEEPER_RETRY: Duration = Duration::from_millis(100);

/// A lease the worker has not written yet, and what writing it carries.
#[derive(Debug, Clone)]
pub(crate) struct Deferred {
    /// The run's version when the worker read it.
    pub(crate) version: u64,
    /// What taking the lease sends (a finish timeout's timer).
    pub(crate) outbox: Vec<Outgoing>,
    /// The run's first start, when this delivery starts it (for metrics).
    pub(crate) first_start: Option<i64>,
}

impl LeaseTerms {
    /// When a lease taken or extended at `now` lapses, if that leaves enough time.
    pub(crate) fn until(&self, now: i64) -> Option<i64> {
        let until = now.saturating_add(duration_ms(self.lease));
        let until = self.deadline.map_or(until, |d| until.min(d));
        (until - now >= MIN_LEASE_MS).then_some(until)
    }
}

/// The state of one execution, shared by its steps and its lease keeper.
pub(crate) struct Session<S> {
    store: S,
    clock: Arc<dyn Clock>,
    terms: LeaseTerms,
    token: String,
    run: Mutex<Run>,
    journal: Mutex<BTreeMap<String, StepRecord>>,
    interrupt: Mutex<Option<Interrupt>>,
    /// The lease, while it is not written yet.
    deferred: Mutex<Option<Deferred>>,
    /// Messages of the last commit not yet known to be delivered.
    undelivered: Mutex<Vec<Outgoing>>,
    serial: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: RunStore + Outbox + Clone + 'static> Session<S> {
    /// A session for `run`, whose lease (`token`) the worker just took, or
    /// takes with its first commit (`deferred`).
    pub(crate) fn new(
        store: S,
        clock: Arc<dyn Clock>,
        terms: LeaseTerms,
        token: String,
        (run, deferred): (Run, Option<Deferred>),
        journal: &[StepRecord],
    ) -> Self {
        Self {
            store,
            clock,
            terms,
            token,
            run: Mutex::new(run),
            journal: Mutex::new(journal.iter().map(|s| (s.id.clone(), s.clone())).collect()),
            interrupt: Mutex::new(None),
            deferred: Mutex::new(deferred),
            undelivered: Mutex::new(Vec::new()),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// The lease token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The run as last committed.
    pub(crate) fn run(&self) -> Run {
        lock(&self.run).clone()
    }

    /// The journal as last committed, in position order, with `pending` on top.
    pub(crate) fn journal_with(&self, pending: &[StepRecord]) -> Vec<StepRecord> {
        let mut journal = lock(&self.journal).clone();
        for step in pending {
            journal.insert(step.id.clone(), step.clone());
        }
        let mut steps: Vec<StepRecord> = journal.into_values().collect();
        steps.sort_by_key(|s| s.position);
        steps
    }

    /// Messages the last commit produced that may not have been delivered:
    /// a later transition of the run must carry them on.
    pub(crate) fn undelivered(&self) -> Vec<Outgoing> {
        lock(&self.undelivered).clone()
    }

    /// True while the lease is not written yet.
    pub(crate) fn deferred(&self) -> bool {
        lock(&self.deferred).is_some()
    }

    /// The fence of the execution's next commit at `now` (`cancelling`: the
    /// commit applies a requested cancellation): while the lease is
    /// deferred, one that takes it.
    pub(crate) fn fence(&self, now: i64, cancelling: bool) -> Fence {
        match (lock(&self.deferred).as_ref(), cancelling) {
            // The cancellation is what this commit applies.
            (Some(deferred), true) => Fence::Acquire {
                now,
                version: deferred.version,
            },
            (Some(deferred), false) => Fence::Begin {
                now,
                version: deferred.version,
            },
            (None, true) => Fence::HoldCancelling {
                token: self.token.clone(),
                now,
            },
            (None, false) => Fence::Hold {
                token: self.token.clone(),
                now,
            },
        }
    }

    /// Records that a commit fenced by [`Self::fence`] went through, as
    /// `run`: the lease is written now.
    pub(crate) fn committed(&self, run: &Run) {
        if let Some(Deferred {
            first_start: Some(at),
            ..
        }) = lock(&self.deferred).take()
        {
            crate::observe::run_started(run, at);
        }
    }

    /// Why the execution must stop, if it must.
    pub(crate) fn interruption(&self) -> Option<Interrupt> {
        lock(&self.interrupt).clone()
    }

    fn interrupt(&self, why: Interrupt) {
        let mut slot = lock(&self.interrupt);
        if slot.is_none() || why == Interrupt::LeaseLost {
            *slot = Some(why);
        }
    }

    async fn commit_change(&self, change: Change) -> Result<(), Halt> {
        let _one_at_a_time = self.serial.lock().await;
        let now = self.clock.now_ms();
        let mut run = self.run();
        if let Some(until) = self.terms.until(now) {
            run.lease = Some(Lease {
                token: self.token.clone(),
                until,
            });
        }
        let mut transition = Transition {
            fence: self.fence(now, false),
            run: run.clone(),
            steps: change.steps,
            waiters_added: change.waiters_added,
            waiters_removed: change.waiters_removed,
            idempotency: None,
            flow: Vec::new(),
            replaces_event: false,
            event_recorded_at: None,
            also_create: Vec::new(),
            outbox: change.outbox,
            keep_pending: Vec::new(),
        };
        match self.commit_next(&mut transition, now, false).await {
            Ok(Ok(committed)) => {
                transition
                    .steps
                    .iter()
                    .for_each(crate::observe::step_recorded);
                *lock(&self.run) = run;
                {
                    let mut journal = lock(&self.journal);
                    for step in transition.steps {
                        journal.insert(step.id.clone(), step);
                    }
                }
                lock(&self.undelivered).clone_from(&committed.undelivered);
                self.store
                    .deliver(&committed.undelivered)
                    .await
                    .map_err(Halt::Store)?;
                lock(&self.undelivered).clear();
                Ok(())
            }
            Ok(Err(Conflict::CancelRequested(reason))) => {
                self.interrupt(Interrupt::Cancel(reason.clone()));
                Err(Halt::Cancelled(reason))
            }
            Ok(Err(_)) => {
                self.interrupt(Interrupt::LeaseLost);
                Err(Halt::LeaseLost)
            }
            Err(err) => Err(Halt::Store(err)),
        }
    }

    /// Commits `t` as the execution's next commit at `now` (`cancelling`:
    /// it applies a requested cancellation), under [`Self::fence`] (set
    /// here again: the lease may have been written since `t` was built):
    /// fenced by the lease, or, while the lease is deferred, taking it with
    /// what taking it sends. A first commit refused as though the run had
    /// moved on, while the run holds this execution's lease, was this
    /// execution's own (a write that applied but answered late, or the
    /// keeper's): it is made again under the lease, which rewrites the same
    /// records. The caller holds `serial`, or the keeper is stopped.
    pub(crate) async fn commit_next(
        &self,
        t: &mut Transition,
        now: i64,
        cancelling: bool,
    ) -> Result<Result<Committed, Conflict>> {
        if self.deferred() && t.record_count() > FIRST_COMMIT_RECORDS {
            // Large enough that a backend might commit it in parts: write
            // the lease alone first, so every part is fenced by it.
            // (the transition's own run may already give the lease up)
            let until = self.terms.until(now).unwrap_or_else(|| {
                lock(&self.run)
                    .lease
                    .as_ref()
                    .map_or(now, |lease| lease.until)
            });
            if let Err(conflict) = Box::pin(self.write_lease(now, until)).await? {
                return Ok(Err(conflict));
            }
            if self.interruption() == Some(Interrupt::LeaseLost) {
                return Ok(Err(Conflict::LeaseLost));
            }
        }
        // While the lease is deferred, this commit takes it, with what
        // taking it sends.
        let carried = lock(&self.deferred).as_ref().map(|d| d.outbox.clone());
        let first = carried.is_some();
        t.fence = self.fence(now, cancelling);
        t.outbox.extend(carried.into_iter().flatten());
        match self.store.commit(t).await? {
            Ok(committed) => {
                self.committed(&t.run);
                Ok(Ok(committed))
            }
            Err(Conflict::Changed | Conflict::Leased) if first && self.holds_lease().await? => {
                self.committed(&t.run);
                t.fence = self.fence(now, cancelling);
                self.store.commit(t).await
            }
            Err(conflict) => Ok(Err(conflict)),
        }
    }

    /// Whether the stored run holds this execution's lease.
    async fn holds_lease(&self) -> Result<bool> {
        let run_id = self.run().id;
        let stored = self.store.get_run(&run_id).await?;
        Ok(stored
            .and_then(|run| run.lease)
            .is_some_and(|lease| lease.token == self.token))
    }

    /// Stops the lease keeper, waiting out a write it has begun, so the
    /// commits that follow see what it wrote.
    pub(crate) async fn stop(&self, keeper: tokio::task::JoinHandle<()>) {
        let _one_at_a_time = self.serial.lock().await;
        keeper.abort();
        let _ = keeper.await;
    }

    /// Writes a deferred lease once the execution has run for `deferral`
    /// (or one heartbeat, if sooner), then extends it every `heartbeat`
    /// until dropped; records a lost lease or a requested cancellation for
    /// the steps to see. `None` when there is nothing to do.
    pub(crate) fn keep_lease(
        self: &Arc<Self>,
        heartbeat: Option<Duration>,
        deferral: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let first = if self.deferred() {
            heartbeat.map_or(deferral, |every| every.min(deferral))
        } else {
            heartbeat?
        };
        let session = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut wait = first;
            loop {
                tokio::time::sleep(wait).await;
                let Some(session) = session.upgrade() else {
                    return;
                };
                if session.keep().await.is_break() {
                    return;
                }
                wait = match heartbeat {
                    // The store failed: try again soon.
                    _ if session.deferred() => first.max(KEEPER_RETRY),
                    Some(every) => every,
                    None => return,
                };
            }
        }))
    }

    /// One tick of the lease keeper: writes the deferred lease, or extends
    /// the lease held. Breaks when there is no lease to keep.
    async fn keep(&self) -> ControlFlow<()> {
        let now = self.clock.now_ms();
        let Some(until) = self.terms.until(now) else {
            return ControlFlow::Break(()); // the deadline is near: the lease ends with it
        };
        let _one_at_a_time = self.serial.lock().await;
        let run_id = self.run().id;
        let result = if self.deferred() {
            self.write_lease(now, until).await
        } else {
            self.store
                .extend_lease(&run_id, &self.token, now, until)
                .await
        };
        match result {
            Ok(Ok(())) => {
                if let Some(lease) = lock(&self.run).lease.as_mut() {
                    lease.until = until;
                }
                ControlFlow::Continue(())
            }
            Ok(Err(Conflict::CancelRequested(reason))) => {
                self.interrupt(Interrupt::Cancel(reason));
                // Not written: the conclusion takes the run to cancel it.
                if self.deferred() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            Ok(Err(_)) => {
                self.interrupt(Interrupt::LeaseLost);
                ControlFlow::Break(())
            }
            Err(err) => {
                tracing::warn!(run.id = %run_id, error = %err, "lease extension failed; will retry");
                ControlFlow::Continue(())
            }
        }
    }

    /// Writes the deferred lease alone, lasting until `until`, with what
    /// taking it sends. A message it cannot deliver stops the execution
    /// (as a lost lease): the run's next delivery finds it in the outbox.
    async fn write_lease(&self, now: i64, until: i64) -> Result<Result<(), Conflict>> {
        let mut run = self.run();
        run.lease = Some(Lease {
            token: self.token.clone(),
            until,
        });
        let mut transition = Transition::new(self.fence(now, false), run.clone());
        let committed = match self.commit_next(&mut transition, now, false).await? {
            Ok(committed) => committed,
            Err(conflict) => return Ok(Err(conflict)),
        };
        *lock(&self.run) = run;
        if let Err(err) = self.store.deliver(&committed.undelivered).await {
            tracing::warn!(run.id = %transition.run.id, error = %err, "delivery failed; the run's next delivery makes it");
            self.interrupt(Interrupt::LeaseLost);
        }
        Ok(Ok(()))
    }
}

impl<S: RunStore + Outbox + Clone + 'static> Checkpoints for Session<S> {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn commit(&self, change: Change) -> BoxFuture<'_, Result<(), Halt>> {
        Box::pin(self.commit_change(change))
    }

    fn interrupted(&self) -> Option<Halt> {
        self.interruption().map(|why| match why {
            Interrupt::LeaseLost => Halt::LeaseLost,
            Interrupt::Cancel(reason) => Halt::Cancelled(reason),
        })
    }
}
