//! Crash at every write: [`Faulty`] wraps any store and makes one chosen write
//! fail before it happens, or "crashes" the process right after it happened
//! (every later call fails until [`Faulty::restart`]); [`Harness`] drives an
//! engine over it like a queue consumer that redelivers what was not
//! acknowledged, and restarts after each crash.
//!
//! A [`Tape`] records, in one sequence, when each step's checkpoint was
//! committed and when each step's code ran, so a scenario can prove that no
//! checkpointed step ever ran again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::clock::{Clock, FakeClock, duration_ms};
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::function::{Function, Registry};
use crate::run::{Envelope, Run, StepStatus, Waiter};
use crate::store::{EventLog, LoadedRun, Outbox, RunFilter, RunStore, Store, StoredEvent, Waiters};
use crate::testkit::QueueProbe;
use crate::transition::{Committed, Conflict, Outgoing, Transition};
use crate::worker::{Handled, WorkerSettings};

/// Which write to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The n-th write (1-based) fails before anything is written.
    FailBefore(u64),
    /// The n-th write happens, then the process "crashes": that call and
    /// every call after it fail until the harness restarts.
    CrashAfter(u64),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
struct TapeInner {
    seq: u64,
    checkpoints: HashMap<(String, String), u64>,
    runs_of_steps: Vec<(String, String, u64)>,
}

/// A shared record of checkpoints and step executions, in one sequence.
#[derive(Clone, Default)]
pub struct Tape(Arc<Mutex<TapeInner>>);

impl Tape {
    /// Called by a step's code when it runs.
    pub fn ran(&self, run_id: &str, step_id: &str) {
        let mut tape = lock(&self.0);
        tape.seq += 1;
        let seq = tape.seq;
        tape.runs_of_steps
            .push((run_id.to_owned(), step_id.to_owned(), seq));
    }

    fn checkpointed(&self, transition: &Transition) {
        let mut tape = lock(&self.0);
        tape.seq += 1;
        let seq = tape.seq;
        for step in &transition.steps {
            if matches!(step.status, StepStatus::Completed | StepStatus::Failed) {
                tape.checkpoints
                    .entry((transition.run.id.clone(), step.id.clone()))
                    .or_insert(seq);
            }
        }
    }

    /// Steps whose code ran after their checkpoint was committed, as
    /// `run/step` (empty when crash safety holds).
    #[must_use]
    pub fn reruns_after_checkpoint(&self) -> Vec<String> {
        let tape = lock(&self.0);
        tape.runs_of_steps
            .iter()
            .filter(|(run, step, seq)| {
                tape.checkpoints
                    .get(&(run.clone(), step.clone()))
                    .is_some_and(|at| at < seq)
            })
            .map(|(run, step, _)| format!("{run}/{step}"))
            .collect()
    }
}

/// Picks the commit after which the process crashes.
pub type CommitPredicate = Arc<dyn Fn(&Transition) -> bool + Send + Sync>;

struct Plan {
    fault: Option<Fault>,
    crash_after: Option<CommitPredicate>,
    answer_twice: Option<CommitPredicate>,
    writes: u64,
    dead: bool,
    fired: bool,
}

/// A store that breaks one write on purpose. Cheap to clone.
#[derive(Clone)]
pub struct Faulty<S> {
    inner: S,
    plan: Arc<Mutex<Plan>>,
    tape: Tape,
    /// Holds the next `load_run` of one run after it read.
    load_hold: Hold,
    /// Holds the next write of one kind before it is made.
    write_hold: Hold,
}

/// Holds the next call with a given key until released (see
/// [`Faulty::pause_after_load`]).
#[derive(Clone, Default)]
struct Hold(Arc<Mutex<Option<Held>>>);

struct Held {
    key: String,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl Hold {
    /// Holds the next call with `key`: notified when reached, and the
    /// notify that releases it.
    fn set(&self, key: &str) -> (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
        let (reached, release) = (Arc::default(), Arc::<tokio::sync::Notify>::default());
        *lock(&self.0) = Some(Held {
            key: key.to_owned(),
            reached: Arc::clone(&reached),
            release: Arc::clone(&release),
        });
        (reached, release)
    }

    /// Waits to be released if this call, with `key`, is the one held.
    async fn wait_if(&self, key: &str) {
        let held = {
            let mut slot = lock(&self.0);
            if slot.as_ref().is_some_and(|h| h.key == key) {
                slot.take()
            } else {
                None
            }
        };
        if let Some(held) = held {
            held.reached.notify_one();
            held.release.notified().await;
        }
    }
}

impl<S> Faulty<S> {
    /// Wraps `inner`, breaking the write `fault` names (none: a clean run
    /// that counts writes).
    pub fn new(inner: S, fault: Option<Fault>, tape: Tape) -> Self {
        Self {
            inner,
            plan: Arc::new(Mutex::new(Plan {
                fault,
                crash_after: None,
                answer_twice: None,
                writes: 0,
                dead: false,
                fired: false,
            })),
            tape,
            load_hold: Hold::default(),
            write_hold: Hold::default(),
        }
    }

    /// Makes the next write named `what` (e.g. `"record routed"`) wait,
    /// before it is made, until `release` is notified; `reached` is
    /// notified when it is waiting. For interleaving a route with an
    /// operator's request.
    pub fn pause_before_write(
        &self,
        what: &str,
    ) -> (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
        self.write_hold.set(what)
    }

    /// Makes the next `load_run` of `run_id` wait, after reading, until
    /// `release` is notified; `loaded` is notified when it has read. For
    /// interleaving two workers of one run.
    pub fn pause_after_load(
        &self,
        run_id: &str,
    ) -> (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
        self.load_hold.set(run_id)
    }

    /// The wrapped store (no faults).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Writes attempted so far.
    #[must_use]
    pub fn writes(&self) -> u64 {
        lock(&self.plan).writes
    }

    /// True once the fault has fired.
    #[must_use]
    pub fn fired(&self) -> bool {
        lock(&self.plan).fired
    }

    /// Crashes right after the first committed transition that `pick`
    /// chooses (instead of a numbered write).
    pub fn crash_after_commit(&self, pick: impl Fn(&Transition) -> bool + Send + Sync + 'static) {
        lock(&self.plan).crash_after = Some(Arc::new(pick));
    }

    /// Commits the first transition that `pick` chooses a second time once
    /// it went through, and answers with the second commit's result: a
    /// write whose answer was lost and that a client made again.
    pub fn answer_twice(&self, pick: impl Fn(&Transition) -> bool + Send + Sync + 'static) {
        lock(&self.plan).answer_twice = Some(Arc::new(pick));
    }

    /// A new process: calls work again.
    pub fn restart(&self) {
        lock(&self.plan).dead = false;
    }

    /// True while "crashed".
    #[must_use]
    pub fn is_dead(&self) -> bool {
        lock(&self.plan).dead
    }

    fn alive(&self) -> Result<()> {
        if lock(&self.plan).dead {
            return Err(injected("the process crashed"));
        }
        Ok(())
    }

    /// Runs one write through the plan.
    async fn write<T>(&self, what: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        self.write_hold.wait_if(what).await;
        let fault = {
            let mut plan = lock(&self.plan);
            if plan.dead {
                return Err(injected("the process crashed"));
            }
            plan.writes += 1;
            let n = plan.writes;
            match plan.fault {
                Some(Fault::FailBefore(k)) if k == n => {
                    plan.fired = true;
                    return Err(injected(&format!("write {n} ({what}) failed")));
                }
                Some(Fault::CrashAfter(k)) if k == n => Some(n),
                _ => None,
            }
        };
        let out = op.await;
        if let Some(n) = fault {
            let mut plan = lock(&self.plan);
            plan.fired = true;
            plan.dead = true;
            return Err(injected(&format!("crashed after write {n} ({what})")));
        }
        out
    }

    /// Holds a load of run `id` that has read, if a test asked to.
    async fn hold_load_of(&self, id: &str) {
        self.load_hold.wait_if(id).await;
    }
}

fn injected(what: &str) -> Error {
    Error::store(std::io::Error::other(format!("injected fault: {what}")))
}

impl<S: EventLog> EventLog for Faulty<S> {
    async fn append(
        &self,
        events: &[Event],
        received_at: i64,
        dedupe_ms: i64,
    ) -> Result<Vec<bool>> {
        self.write("append", self.inner.append(events, received_at, dedupe_ms))
            .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>> {
        self.alive()?;
        self.inner.get_event(id).await
    }

    async fn record_routed(&self, event: &StoredEvent, held: bool) -> Result<()> {
        self.write("record routed", self.inner.record_routed(event, held))
            .await
    }

    async fn keep_for_runs(&self, event: &StoredEvent) -> Result<()> {
        self.write("keep for runs", self.inner.keep_for_runs(event))
            .await
    }

    async fn events_since(&self, name: &str, since: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.alive()?;
        self.inner.events_since(name, since, limit).await
    }
}

impl<S: RunStore> RunStore for Faulty<S> {
    async fn load_run(&self, id: &str) -> Result<Option<LoadedRun>> {
        self.alive()?;
        let loaded = self.inner.load_run(id).await;
        self.hold_load_of(id).await;
        loaded
    }

    async fn load_started_run(&self, id: &str, trigger: &StoredEvent) -> Result<Option<LoadedRun>> {
        self.alive()?;
        let loaded = self.inner.load_started_run(id, trigger).await;
        self.hold_load_of(id).await;
        loaded
    }

    fn wants_carried_trigger(&self) -> bool {
        self.inner.wants_carried_trigger()
    }

    async fn get_run(&self, id: &str) -> Result<Option<Run>> {
        self.alive()?;
        self.inner.get_run(id).await
    }

    async fn commit(&self, transition: &Transition) -> Result<Result<Committed, Conflict>> {
        self.write("commit", async {
            let out = self.inner.commit(transition).await;
            if matches!(out, Ok(Ok(_))) {
                self.tape.checkpointed(transition);
                let again = {
                    let mut plan = lock(&self.plan);
                    let again = plan
                        .answer_twice
                        .as_ref()
                        .is_some_and(|pick| pick(transition));
                    if again {
                        plan.answer_twice = None;
                        plan.fired = true;
                    }
                    again
                };
                if again {
                    return self.inner.commit(transition).await;
                }
                let mut plan = lock(&self.plan);
                if plan
                    .crash_after
                    .as_ref()
                    .is_some_and(|pick| pick(transition))
                {
                    plan.crash_after = None;
                    plan.fired = true;
                    plan.dead = true;
                    return Err(injected("crashed after the chosen commit"));
                }
            }
            out
        })
        .await
    }

    async fn extend_lease(
        &self,
        run_id: &str,
        token: &str,
        now: i64,
        until: i64,
    ) -> Result<Result<(), Conflict>> {
        self.write(
            "extend lease",
            self.inner.extend_lease(run_id, token, now, until),
        )
        .await
    }

    async fn request_cancel(&self, run_id: &str, function_id: &str, reason: &str) -> Result<bool> {
        self.write(
            "request cancel",
            self.inner.request_cancel(run_id, function_id, reason),
        )
        .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.alive()?;
        self.inner.list_runs(filter).await
    }
}

impl<S: Waiters> Waiters for Faulty<S> {
    async fn waiters_for(&self, event: &str) -> Result<Vec<Waiter>> {
        self.alive()?;
        self.inner.waiters_for(event).await
    }
}

impl<S: crate::store::FlowStore> crate::store::FlowStore for Faulty<S> {
    async fn flow_get(&self, key: &str) -> Result<Option<crate::flow::FlowRecord>> {
        self.alive()?;
        self.inner.flow_get(key).await
    }

    async fn flow_put(
        &self,
        write: &crate::flow::FlowWrite,
    ) -> Result<std::result::Result<(), Conflict>> {
        self.write("flow put", self.inner.flow_put(write)).await
    }
}

impl<S: crate::store::Blobs> crate::store::Blobs for Faulty<S> {
    async fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        self.write("put blob", self.inner.put_blob(bytes)).await
    }

    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.alive()?;
        self.inner.get_blob(key).await
    }
}

impl<S: Outbox> Outbox for Faulty<S> {
    async fn deliver(&self, messages: &[Outgoing]) -> Result<()> {
        if messages.is_empty() {
            return self.alive();
        }
        self.write("deliver", self.inner.deliver(messages)).await
    }
}

/// A run's result as a user sees it, without ids that differ between
/// executions (replays get fresh ids).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Outcome {
    /// The function.
    pub function_id: String,
    /// The final status.
    pub status: String,
    /// The output, as JSON text.
    pub output: String,
    /// Each step's id and status, in order.
    pub steps: Vec<(String, String)>,
}

/// An engine over a [`Faulty`] store with a fake clock, delivering messages
/// like a queue consumer: a delivery that fails or finds the run busy is
/// delivered again later, and a crash is followed by a restart.
pub struct Harness<S> {
    /// The engine (every role in one process).
    pub engine: Engine<Faulty<S>>,
    /// The faulty store.
    pub store: Faulty<S>,
    /// The clock.
    pub clock: FakeClock,
    /// What steps ran and were checkpointed.
    pub tape: Tape,
    later: Mutex<Vec<(i64, Envelope)>>,
}

/// Delay before a failed or busy delivery comes back.
const REDELIVERY: Duration = Duration::from_secs(1);
/// The harness's lease: a crashed worker's lease lapses after this.
pub const HARNESS_LEASE: Duration = Duration::from_secs(30);

impl<S: Store + QueueProbe> Harness<S> {
    /// A harness running `functions` over `inner` (whose clock is `clock`)
    /// with `fault`.
    ///
    /// # Panics
    /// If a function definition is invalid.
    pub fn new(
        inner: S,
        functions: Vec<Function>,
        clock: FakeClock,
        fault: Option<Fault>,
        tape: Tape,
    ) -> Self {
        let store = Faulty::new(inner, fault, tape.clone());
        let config = EngineConfig {
            worker: WorkerSettings {
                lease: HARNESS_LEASE,
                heartbeat: None,
                // Only commits write a lease, so each run writes the same.
                lease_deferral: HARNESS_LEASE,
            },
            drive_crons: true,
        };
        let engine = Engine::new(
            store.clone(),
            Registry::new(functions).expect("valid functions"),
            Arc::new(clock.clone()),
            config,
        );
        Self {
            engine,
            store,
            clock,
            tape,
            later: Mutex::new(Vec::new()),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Runs an operation the way a client would: after a crash the process
    /// restarts, and an operation that failed before writing is tried again
    /// (one that crashed after writing took effect and is not repeated).
    async fn client<T, F, Fut>(&self, retry_after_crash: bool, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        for _ in 0..10 {
            let fired_before = self.store.fired();
            match op().await {
                Ok(value) => return Some(value),
                Err(err) => {
                    let crashed = self.store.is_dead();
                    self.store.restart();
                    if crashed && !fired_before && !retry_after_crash {
                        return None; // it happened; the answer was lost
                    }
                    assert!(
                        err.to_string().contains("injected fault"),
                        "unexpected error: {err:#}"
                    );
                }
            }
        }
        panic!("an operation kept failing");
    }

    /// Ingests events as a provider would (retrying until acknowledged,
    /// even when the answer was lost after they were stored),
    /// then handles everything due.
    pub async fn send(&self, events: Vec<Event>) {
        self.client(true, || self.engine.ingest(events.clone()))
            .await;
        self.settle().await;
    }

    /// Requests a run's cancellation, then handles everything due.
    pub async fn cancel(&self, run_id: &str) {
        self.client(false, || self.engine.cancel(run_id)).await;
        self.settle().await;
    }

    /// Requests a replay, then handles everything due.
    pub async fn replay(&self, run_id: &str) {
        self.client(false, || self.engine.replay(run_id)).await;
        self.settle().await;
    }

    /// Handles every message due now, redelivering failures and busy runs
    /// later, until nothing is due.
    ///
    /// # Panics
    /// On an error that is not an injected fault.
    pub async fn settle(&self) {
        for _ in 0..10_000 {
            let now = self.now();
            let mut due = self.store.inner().take_due(now).await.expect("queue");
            {
                let mut later = lock(&self.later);
                let (ready, wait): (Vec<_>, Vec<_>) =
                    later.drain(..).partition(|(at, _)| *at <= now);
                *later = wait;
                due.extend(ready.into_iter().map(|(_, e)| e));
            }
            if due.is_empty() {
                return;
            }
            for envelope in due {
                // Boxed: the engine's future is deep (as in the Lambda adapter).
                match Box::pin(self.engine.handle(&envelope)).await {
                    Ok(Handled::Done) => {}
                    Ok(Handled::Busy) => {
                        lock(&self.later).push((now + duration_ms(REDELIVERY), envelope));
                    }
                    Err(err) => {
                        assert!(
                            err.to_string().contains("injected fault"),
                            "unexpected error handling {envelope:?}: {err:#}"
                        );
                        self.store.restart();
                        lock(&self.later).push((now + duration_ms(REDELIVERY), envelope));
                    }
                }
            }
        }
        panic!("messages kept coming");
    }

    /// Moves the clock forward by `by`, stopping wherever something is due.
    pub async fn advance(&self, by: Duration) {
        let target = self.now() + duration_ms(by);
        for _ in 0..10_000 {
            self.settle().await;
            let now = self.now();
            let queued = self.store.inner().next_due().await.expect("queue");
            let redelivery = lock(&self.later).iter().map(|(at, _)| *at).min();
            match [queued, redelivery].into_iter().flatten().min() {
                Some(at) if at > now && at <= target => self.clock.set(at),
                Some(at) if at <= now => {} // due now: settle again
                _ => break,
            }
        }
        self.clock.set(target);
        self.settle().await;
    }

    /// Every run's outcome, sorted.
    ///
    /// # Panics
    /// On storage errors.
    pub async fn outcomes(&self) -> Vec<Outcome> {
        let store = self.store.inner();
        let filter = RunFilter {
            limit: 10_000,
            ..RunFilter::default()
        };
        let mut out = Vec::new();
        for run in store.list_runs(&filter).await.expect("list") {
            let loaded = store.load_run(&run.id).await.expect("load").expect("run");
            out.push(Outcome {
                function_id: run.function_id.clone(),
                status: run.status.as_str().to_owned(),
                output: run
                    .output
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                steps: loaded
                    .journal
                    .iter()
                    .map(|s| (s.id.clone(), format!("{:?}", s.status)))
                    .collect(),
            });
        }
        out.sort();
        out
    }

    /// The runs of `function_id`.
    ///
    /// # Panics
    /// On storage errors.
    pub async fn runs_of(&self, function_id: &str) -> Vec<Run> {
        let filter = RunFilter {
            function_id: Some(function_id.to_owned()),
            limit: 10_000,
            ..RunFilter::default()
        };
        self.store.inner().list_runs(&filter).await.expect("list")
    }
}

/// What a scenario script can do, whatever the backend.
pub trait Driver: Sync {
    /// Sends events (as a provider: retried until acknowledged).
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()>;
    /// Requests a run's cancellation.
    fn cancel<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, ()>;
    /// Requests a replay of a run.
    fn replay<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, ()>;
    /// Moves time forward, handling what falls due.
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()>;
    /// The ids of a function's runs.
    fn run_ids<'a>(&'a self, function_id: &'a str) -> BoxFuture<'a, Vec<String>>;
}

impl<S: Store + QueueProbe> Driver for Harness<S> {
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()> {
        Box::pin(Harness::send(self, events))
    }

    fn cancel<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(Harness::cancel(self, run_id))
    }

    fn replay<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(Harness::replay(self, run_id))
    }

    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        Box::pin(Harness::advance(self, by))
    }

    fn run_ids<'a>(&'a self, function_id: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.runs_of(function_id)
                .await
                .into_iter()
                .map(|r| r.id)
                .collect()
        })
    }
}
