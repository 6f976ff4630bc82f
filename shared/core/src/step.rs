//! The durable step API a handler uses: `run`, `sleep`, `sleep_until`,
//! `wait_for_event`, `send_event`, `invoke`, and `idempotency_key`.
//!
//! Every step is memoized in the run's journal under its id (repeats get `:1`,
//! `:2`, ...). A completed step never runs again; its journaled result is
//! returned instead. A step that must wait (sleep, event, retry backoff) asks
//! the executor to suspend the run and never resolves; the executor drops the
//! handler once no step is still running. The k-th step reached must have the
//! id the journal recorded at position k, or the run fails as non-deterministic.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::clock::duration_ms;
use crate::error::{Error, Result};
use crate::event::{Event, derived_id};
use crate::expr::Expr;
use crate::failure::{StepError, Verdict, backoff, classify};
use crate::function::match_condition;
use crate::run::{ParentStep, StepKind, StepRecord, StepStatus, Waiter, WaiterKind};

/// Largest journaled step output (256 KiB), well under DynamoDB's 400 KB item limit.
pub const MAX_STEP_OUTPUT_BYTES: usize = 256 * 1024;
/// Default `wait_for_event` timeout (7 days).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

tokio::task_local! {
    static CURRENT_STEP: String;
}

/// What the step API needs from the engine, object-safe so handlers are not
/// generic over the backend. Implemented by the engine for each run.
pub(crate) trait StepBackend: Send + Sync {
    fn now(&self) -> i64;
    fn put_step(&self, step: StepRecord) -> BoxFuture<'_, Result<()>>;
    fn get_step(&self, step_id: &str) -> BoxFuture<'_, Result<Option<StepRecord>>>;
    fn resolve_step(&self, step: StepRecord) -> BoxFuture<'_, Result<bool>>;
    /// Registers the waiter, then matches events that arrived while it was
    /// being registered; returns the event if one resolved the step.
    fn register_waiter(&self, waiter: Waiter) -> BoxFuture<'_, Result<Option<Value>>>;
    fn remove_waiter(&self, event: &str, step_id: &str) -> BoxFuture<'_, Result<()>>;
    fn send_events(&self, events: Vec<Event>) -> BoxFuture<'_, Result<()>>;
    /// Starts a child run; `false` when the function is unknown.
    fn invoke(
        &self,
        function_id: &str,
        data: Value,
        child_run_id: String,
        parent: ParentStep,
    ) -> BoxFuture<'_, Result<bool>>;
    fn is_cancelled(&self) -> BoxFuture<'_, Result<bool>>;
}

/// Why the handler was stopped before finishing.
#[derive(Debug)]
pub(crate) enum Halt {
    /// Cancelled (request, cancel_on, or finish timeout).
    Cancelled(String),
    /// The code no longer matches the journal.
    NonDeterministic(String),
    /// Storage failed; the delivery should be retried.
    Store(Error),
}

#[derive(Default)]
pub(crate) struct State {
    seen: HashMap<String, u32>,
    next_position: u32,
    in_flight: usize,
    pub(crate) suspended: bool,
    pub(crate) waiting: bool,
    pub(crate) wake_at: Option<i64>,
    pub(crate) halt: Option<Halt>,
}

pub(crate) struct Inner {
    run_id: String,
    function_id: String,
    trigger: Value,
    retries: u32,
    deadline: Option<i64>,
    backend: Arc<dyn StepBackend>,
    journal: HashMap<String, StepRecord>,
    by_position: HashMap<u32, String>,
    state: Mutex<State>,
    notify: Notify,
}

/// The durable step API, handed to a handler in its [`crate::Ctx`]. Cheap to clone.
#[derive(Clone)]
pub struct Step {
    inner: Arc<Inner>,
}

struct Claim {
    key: String,
    position: u32,
    record: Option<StepRecord>,
}

/// What `wait_for_event` waits for.
#[derive(Debug, Clone)]
pub struct WaitFor {
    /// Event name.
    pub event: String,
    /// CEL condition over `event` (the run's trigger) and `async` (the candidate).
    pub condition: Option<String>,
    /// How long to wait before returning `None`.
    pub timeout: Duration,
}

impl WaitFor {
    /// Wait for the next event named `name` (timeout [`DEFAULT_WAIT_TIMEOUT`]).
    pub fn event(name: impl Into<String>) -> Self {
        Self {
            event: name.into(),
            condition: None,
            timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }

    /// Only an event whose field at `path` (e.g. `data.clerkId`) equals the trigger's.
    #[must_use]
    pub fn matching(mut self, path: &str) -> Self {
        self.condition = Some(match_condition(path));
        self
    }

    /// Only an event for which the CEL `condition` over `event` and `async` holds.
    #[must_use]
    pub fn when(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }

    /// Give up after `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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
    pub(crate) fn new(
        run_id: &str,
        function_id: &str,
        trigger: Value,
        retries: u32,
        deadline: Option<i64>,
        journal: Vec<StepRecord>,
        backend: Arc<dyn StepBackend>,
    ) -> Self {
        let by_position = journal.iter().map(|r| (r.position, r.id.clone())).collect();
        let journal = journal.into_iter().map(|r| (r.id.clone(), r)).collect();
        Self {
            inner: Arc::new(Inner {
                run_id: run_id.to_owned(),
                function_id: function_id.to_owned(),
                trigger,
                retries,
                deadline,
                backend,
                journal,
                by_position,
                state: Mutex::new(State::default()),
                notify: Notify::new(),
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

    /// Runs `f` once: its result is checkpointed and returned on every replay.
    /// A plain error retries with backoff (the function's retry count); a
    /// [`crate::NonRetriable`] error fails at once; a [`crate::RetryAfter`]
    /// error retries at that time. Exhausted retries return a [`StepError`].
    pub fn run<'a, T, F, Fut>(
        &'a self,
        id: &str,
        f: F,
    ) -> impl Future<Output = Result<T, StepError>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = anyhow::Result<T>> + Send + 'a,
    {
        let claim = self.claim(id, StepKind::Run);
        async move {
            let claim = match claim {
                Ok(claim) => claim,
                Err(halt) => return self.halt(halt).await,
            };
            let flight = self.flight();
            let now = self.inner.backend.now();
            let (attempts, started_at) = match &claim.record {
                Some(rec) => match rec.status {
                    StepStatus::Completed => {
                        return self.decode(&claim.key, rec.output.clone()).await;
                    }
                    StepStatus::Failed => return Err(step_error(rec)),
                    StepStatus::Retrying if rec.wake_at.is_some_and(|at| at > now) => {
                        return self.suspend(flight, rec.wake_at, false).await;
                    }
                    _ => (rec.attempts, rec.started_at),
                },
                None => {
                    if let Err(halt) = self.before_new_step().await {
                        return self.halt(halt).await;
                    }
                    (0, now)
                }
            };
            let result = CURRENT_STEP
                .scope(claim.key.clone(), AssertUnwindSafe(f()).catch_unwind())
                .await;
            let attempt = attempts + 1;
            let outcome = match result {
                Ok(Ok(value)) => encode(&claim.key, &value).map(|json| (value, json)),
                Ok(Err(err)) => Err(err),
                Err(panic) => Err(anyhow::anyhow!("step panicked: {}", panic_message(&*panic))),
            };
            let now = self.inner.backend.now();
            let mut rec = StepRecord {
                id: claim.key.clone(),
                position: claim.position,
                kind: StepKind::Run,
                status: StepStatus::Completed,
                attempts: attempt,
                output: None,
                error: None,
                started_at,
                ended_at: Some(now),
                wake_at: None,
                detail: None,
            };
            match outcome {
                Ok((value, json)) => {
                    rec.output = Some(json);
                    self.checkpoint(rec).await?;
                    Ok(value)
                }
                Err(err) => {
                    rec.error = Some(format!("{err:#}"));
                    let retry_at = match classify(&err) {
                        _ if attempt > self.inner.retries => None,
                        Verdict::Final => None,
                        Verdict::Retry => {
                            let seed = format!("{}/{}", self.inner.run_id, claim.key);
                            Some(now + duration_ms(backoff(attempt, &seed)))
                        }
                        Verdict::RetryAfter(after) => Some(now + duration_ms(after)),
                    };
                    if let Some(at) = retry_at {
                        rec.status = StepStatus::Retrying;
                        rec.ended_at = None;
                        rec.wake_at = Some(at);
                        self.checkpoint(rec).await?;
                        self.suspend(flight, Some(at), false).await
                    } else {
                        rec.status = StepStatus::Failed;
                        let error = step_error(&rec);
                        self.checkpoint(rec).await?;
                        Err(error)
                    }
                }
            }
        }
    }

    /// Suspends the run for `duration`; survives restarts (a durable timer).
    pub fn sleep(
        &self,
        id: &str,
        duration: Duration,
    ) -> impl Future<Output = Result<(), StepError>> + Send + '_ {
        self.sleep_impl(id, Wake::After(duration))
    }

    /// Suspends the run until `at_ms` (milliseconds since the Unix epoch).
    pub fn sleep_until(
        &self,
        id: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StepError>> + Send + '_ {
        self.sleep_impl(id, Wake::At(at_ms))
    }

    fn sleep_impl(
        &self,
        id: &str,
        wake: Wake,
    ) -> impl Future<Output = Result<(), StepError>> + Send + '_ {
        let claim = self.claim(id, StepKind::Sleep);
        async move {
            let claim = match claim {
                Ok(claim) => claim,
                Err(halt) => return self.halt(halt).await,
            };
            let flight = self.flight();
            let now = self.inner.backend.now();
            match claim.record {
                Some(rec) if rec.status == StepStatus::Completed => Ok(()),
                Some(mut rec) => {
                    let wake_at = rec.wake_at.unwrap_or(now);
                    if now < wake_at {
                        return self.suspend(flight, Some(wake_at), false).await;
                    }
                    rec.status = StepStatus::Completed;
                    rec.ended_at = Some(now);
                    self.checkpoint(rec).await
                }
                None => {
                    if let Err(halt) = self.before_new_step().await {
                        return self.halt(halt).await;
                    }
                    let wake_at = match wake {
                        Wake::After(d) => now.saturating_add(duration_ms(d)),
                        Wake::At(at) => at,
                    };
                    let rec = new_record(
                        &claim,
                        StepKind::Sleep,
                        StepStatus::Sleeping,
                        now,
                        Some(wake_at),
                        None,
                    );
                    self.checkpoint(rec).await?;
                    self.suspend(flight, Some(wake_at), false).await
                }
            }
        }
    }

    /// Waits for an event received after this call, or returns `None` after the
    /// timeout. Exactly one of the event and the timeout wins.
    pub fn wait_for_event(
        &self,
        id: &str,
        wait: WaitFor,
    ) -> impl Future<Output = Result<Option<Event>, StepError>> + Send + '_ {
        let claim = self.claim(id, StepKind::WaitForEvent);
        async move {
            let claim = match claim {
                Ok(claim) => claim,
                Err(halt) => return self.halt(halt).await,
            };
            let flight = self.flight();
            let now = self.inner.backend.now();
            match claim.record {
                Some(rec) if rec.status == StepStatus::Completed => {
                    self.decode(&claim.key, rec.output).await
                }
                Some(rec) if rec.status == StepStatus::Failed => Err(step_error(&rec)),
                Some(rec) => {
                    let expires = rec.wake_at.unwrap_or(i64::MAX);
                    if now < expires {
                        return self.suspend(flight, Some(expires), true).await;
                    }
                    let mut timed_out = rec;
                    timed_out.status = StepStatus::Completed;
                    timed_out.output = Some(Value::Null);
                    timed_out.ended_at = Some(now);
                    let waited = wait.event.clone();
                    match self.inner.backend.resolve_step(timed_out).await {
                        Ok(true) => {
                            if let Err(e) =
                                self.inner.backend.remove_waiter(&waited, &claim.key).await
                            {
                                return self.halt(Halt::Store(e)).await;
                            }
                            Ok(None)
                        }
                        Ok(false) => match self.inner.backend.get_step(&claim.key).await {
                            Ok(Some(won)) => self.decode(&claim.key, won.output).await,
                            Ok(None) => {
                                self.halt(Halt::NonDeterministic(format!(
                                    "step `{}` vanished",
                                    claim.key
                                )))
                                .await
                            }
                            Err(e) => self.halt(Halt::Store(e)).await,
                        },
                        Err(e) => self.halt(Halt::Store(e)).await,
                    }
                }
                None => {
                    if let Err(halt) = self.before_new_step().await {
                        return self.halt(halt).await;
                    }
                    if let Some(condition) = &wait.condition
                        && let Err(err) = Expr::compile(condition)
                    {
                        let mut rec = new_record(
                            &claim,
                            StepKind::WaitForEvent,
                            StepStatus::Failed,
                            now,
                            None,
                            None,
                        );
                        rec.error = Some(err.to_string());
                        rec.ended_at = Some(now);
                        let error = step_error(&rec);
                        self.checkpoint(rec).await?;
                        return Err(error);
                    }
                    let expires = now.saturating_add(duration_ms(wait.timeout));
                    let detail = json!({"event": wait.event, "condition": wait.condition});
                    let rec = new_record(
                        &claim,
                        StepKind::WaitForEvent,
                        StepStatus::Waiting,
                        now,
                        Some(expires),
                        Some(detail),
                    );
                    self.checkpoint(rec).await?;
                    let waiter = Waiter {
                        event: wait.event.clone(),
                        run_id: self.inner.run_id.clone(),
                        function_id: self.inner.function_id.clone(),
                        step_id: claim.key.clone(),
                        kind: WaiterKind::Step,
                        condition: wait.condition.clone(),
                        trigger: self.inner.trigger.clone(),
                        registered_at: now,
                        expires_at: Some(expires),
                    };
                    match self.inner.backend.register_waiter(waiter).await {
                        Ok(Some(event)) => self.decode(&claim.key, Some(event)).await,
                        Ok(None) => self.suspend(flight, Some(expires), true).await,
                        Err(e) => self.halt(Halt::Store(e)).await,
                    }
                }
            }
        }
    }

    /// Sends events once: ids left empty get deterministic ids derived from the
    /// run and step, so a replay never sends twice. Returns the event ids.
    pub fn send_event(
        &self,
        id: &str,
        events: impl IntoIterator<Item = Event>,
    ) -> impl Future<Output = Result<Vec<String>, StepError>> + Send + '_ {
        let mut events: Vec<Event> = events.into_iter().collect();
        let claim = self.claim(id, StepKind::SendEvent);
        async move {
            let claim = match claim {
                Ok(claim) => claim,
                Err(halt) => return self.halt(halt).await,
            };
            let _flight = self.flight();
            if let Some(rec) = claim.record {
                return match rec.status {
                    StepStatus::Failed => Err(step_error(&rec)),
                    _ => self.decode(&claim.key, rec.output).await,
                };
            }
            if let Err(halt) = self.before_new_step().await {
                return self.halt(halt).await;
            }
            let now = self.inner.backend.now();
            for (i, event) in events.iter_mut().enumerate() {
                if event.id.is_empty() {
                    event.id = derived_id(&[&self.inner.run_id, &claim.key, &i.to_string()]);
                }
            }
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            let mut rec = new_record(
                &claim,
                StepKind::SendEvent,
                StepStatus::Completed,
                now,
                None,
                None,
            );
            rec.attempts = 1;
            rec.ended_at = Some(now);
            match self.inner.backend.send_events(events).await {
                Ok(()) => {
                    rec.output = Some(json!(ids));
                    self.checkpoint(rec).await?;
                    Ok(ids)
                }
                Err(err @ Error::InvalidEvent(_)) => {
                    rec.status = StepStatus::Failed;
                    rec.error = Some(err.to_string());
                    let error = step_error(&rec);
                    self.checkpoint(rec).await?;
                    Err(error)
                }
                Err(e) => self.halt(Halt::Store(e)).await,
            }
        }
    }

    /// Starts a run of `function_id` with `data` as its event data and waits for
    /// its result; a failed child returns a [`StepError`].
    pub fn invoke(
        &self,
        id: &str,
        function_id: &str,
        data: Value,
    ) -> impl Future<Output = Result<Value, StepError>> + Send + '_ {
        let function_id = function_id.to_owned();
        let claim = self.claim(id, StepKind::Invoke);
        async move {
            let claim = match claim {
                Ok(claim) => claim,
                Err(halt) => return self.halt(halt).await,
            };
            let flight = self.flight();
            match claim.record {
                Some(rec) if rec.status == StepStatus::Completed => {
                    Ok(rec.output.unwrap_or(Value::Null))
                }
                Some(rec) if rec.status == StepStatus::Failed => Err(step_error(&rec)),
                Some(rec) => self.suspend(flight, rec.wake_at, true).await,
                None => {
                    if let Err(halt) = self.before_new_step().await {
                        return self.halt(halt).await;
                    }
                    let now = self.inner.backend.now();
                    let child = derived_id(&[&self.inner.run_id, &claim.key, "invoke"]);
                    let detail = json!({"function_id": function_id, "run_id": child});
                    let mut rec = new_record(
                        &claim,
                        StepKind::Invoke,
                        StepStatus::Waiting,
                        now,
                        None,
                        Some(detail),
                    );
                    self.checkpoint(rec.clone()).await?;
                    let parent = ParentStep {
                        run_id: self.inner.run_id.clone(),
                        step_id: claim.key.clone(),
                    };
                    match self
                        .inner
                        .backend
                        .invoke(&function_id, data, child, parent)
                        .await
                    {
                        Ok(true) => self.suspend(flight, None, true).await,
                        Ok(false) => {
                            rec.status = StepStatus::Failed;
                            rec.error = Some(format!("no function `{function_id}` is registered"));
                            rec.ended_at = Some(now);
                            let error = step_error(&rec);
                            self.checkpoint(rec).await?;
                            Err(error)
                        }
                        Err(e) => self.halt(Halt::Store(e)).await,
                    }
                }
            }
        }
    }

    fn claim(&self, id: &str, kind: StepKind) -> Result<Claim, Halt> {
        let mut state = self.inner.lock();
        let seen = state.seen.entry(id.to_owned()).or_insert(0);
        let key = if *seen == 0 {
            id.to_owned()
        } else {
            format!("{id}:{seen}")
        };
        *seen += 1;
        let position = state.next_position;
        state.next_position += 1;
        drop(state);
        let record = self.inner.journal.get(&key).cloned();
        match &record {
            Some(rec) if rec.kind != kind || rec.position != position => {
                Err(Halt::NonDeterministic(format!(
                    "non-deterministic: the journal has step `{key}` as {:?} at position {}, but the code reached it as {kind:?} at position {position}",
                    rec.kind, rec.position
                )))
            }
            None => match self.inner.by_position.get(&position) {
                Some(other) => Err(Halt::NonDeterministic(format!(
                    "non-deterministic: the journal has step `{other}` at position {position}, but the code reached `{key}`"
                ))),
                None => Ok(Claim {
                    key,
                    position,
                    record,
                }),
            },
            Some(_) => Ok(Claim {
                key,
                position,
                record,
            }),
        }
    }

    async fn before_new_step(&self) -> Result<(), Halt> {
        if let Some(deadline) = self.inner.deadline
            && self.inner.backend.now() >= deadline
        {
            return Err(Halt::Cancelled("finish timeout exceeded".into()));
        }
        match self.inner.backend.is_cancelled().await {
            Ok(true) => Err(Halt::Cancelled("cancelled".into())),
            Ok(false) => Ok(()),
            Err(e) => Err(Halt::Store(e)),
        }
    }

    async fn checkpoint(&self, rec: StepRecord) -> Result<(), StepError> {
        match self.inner.backend.put_step(rec).await {
            Ok(()) => Ok(()),
            Err(e) => self.halt(Halt::Store(e)).await,
        }
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        key: &str,
        output: Option<Value>,
    ) -> Result<T, StepError> {
        match serde_json::from_value(output.unwrap_or(Value::Null)) {
            Ok(value) => Ok(value),
            Err(e) => {
                self.halt(Halt::NonDeterministic(format!(
                    "non-deterministic: the journaled output of step `{key}` no longer fits its type: {e}"
                )))
                .await
            }
        }
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
    async fn suspend<T>(&self, flight: Flight<'_>, wake_at: Option<i64>, waiting: bool) -> T {
        {
            let mut state = self.inner.lock();
            state.suspended = true;
            state.waiting |= waiting;
            if let Some(at) = wake_at {
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

    /// Resolves once the handler should be dropped: halted, or suspended with
    /// no step still running.
    pub(crate) async fn stopped(&self) {
        loop {
            let notified = self.inner.notify.notified();
            {
                let state = self.inner.lock();
                if state.halt.is_some() || (state.suspended && state.in_flight == 0) {
                    return;
                }
            }
            notified.await;
        }
    }

    pub(crate) fn take_state(&self) -> State {
        std::mem::take(&mut *self.inner.lock())
    }
}

enum Wake {
    After(Duration),
    At(i64),
}

/// Marks a step as doing I/O: the executor does not drop the handler while
/// any step holds one, so a checkpoint or waiter registration is never cut
/// in half by a sibling branch suspending. Released on drop or by `suspend`.
struct Flight<'a>(&'a Step);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

fn new_record(
    claim: &Claim,
    kind: StepKind,
    status: StepStatus,
    now: i64,
    wake_at: Option<i64>,
    detail: Option<Value>,
) -> StepRecord {
    StepRecord {
        id: claim.key.clone(),
        position: claim.position,
        kind,
        status,
        attempts: 0,
        output: None,
        error: None,
        started_at: now,
        ended_at: None,
        wake_at,
        detail,
    }
}

fn step_error(rec: &StepRecord) -> StepError {
    StepError {
        step: rec.id.clone(),
        attempts: rec.attempts,
        message: rec.error.clone().unwrap_or_default(),
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> anyhow::Result<Value> {
    let json = serde_json::to_value(value)?;
    let size = serde_json::to_vec(&json)?.len();
    if size > MAX_STEP_OUTPUT_BYTES {
        return Err(crate::failure::NonRetriable::new(format!(
            "step `{key}` output is {size} bytes, over the {MAX_STEP_OUTPUT_BYTES}-byte limit; \
             store large data elsewhere and return a reference"
        ))
        .into());
    }
    Ok(json)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
