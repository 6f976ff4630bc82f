//! One execution of a run under its lease: step checkpoints committed as
//! fenced transitions, and the lease keeper that extends the lease while a
//! long step runs and notices a requested cancellation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::clock::{Clock, duration_ms};
use crate::run::{Lease, Run, StepRecord};
use crate::step::{Change, Checkpoints, Halt};
use crate::store::{Outbox, RunStore};
use crate::transition::{Conflict, Fence, Outgoing, Transition};

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
    /// Messages of the last commit not yet known to be delivered.
    undelivered: Mutex<Vec<Outgoing>>,
    serial: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: RunStore + Outbox + Clone + 'static> Session<S> {
    /// A session for `run`, whose lease (`token`) the worker just took.
    pub(crate) fn new(
        store: S,
        clock: Arc<dyn Clock>,
        terms: LeaseTerms,
        token: String,
        run: Run,
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
        let transition = Transition {
            fence: Fence::Hold {
                token: self.token.clone(),
                now,
            },
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
        match self.store.commit(&transition).await {
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

    /// Extends the lease every `every` until dropped; records a lost lease
    /// or a requested cancellation for the steps to see.
    pub(crate) fn keep_lease(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let session = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(session) = session.upgrade() else {
                    return;
                };
                let now = session.clock.now_ms();
                let Some(until) = session.terms.until(now) else {
                    return; // the deadline is near: the lease ends with it
                };
                let run_id = session.run().id;
                let result = {
                    let _one_at_a_time = session.serial.lock().await;
                    session
                        .store
                        .extend_lease(&run_id, &session.token, now, until)
                        .await
                };
                match result {
                    Ok(Ok(())) => {
                        if let Some(lease) = lock(&session.run).lease.as_mut() {
                            lease.until = until;
                        }
                    }
                    Ok(Err(Conflict::CancelRequested(reason))) => {
                        session.interrupt(Interrupt::Cancel(reason));
                    }
                    Ok(Err(_)) => {
                        session.interrupt(Interrupt::LeaseLost);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(run.id = %run_id, error = %err, "lease extension failed; will retry");
                    }
                }
            }
        })
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
