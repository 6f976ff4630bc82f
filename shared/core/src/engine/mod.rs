//! The engine: ingests events, routes them to waiters and functions, executes
//! runs and applies their outcomes, over any [`Store`].
//!
//! Both backends drive the same engine: `hookflow dev` polls its embedded queue
//! and calls [`Engine::handle`]; on AWS each Lambda receives its SQS batch and
//! calls the same method. Every transition is a conditional write in the
//! store, so a redelivered message never starts a second run or repeats a
//! checkpointed step.

mod backend;
mod execute;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{Clock, duration_ms};
use crate::error::{Error, Result};
use crate::event::{
    DEDUPE_WINDOW, Event, FUNCTION_FAILED, INVOKE_REQUESTED, INVOKED, SCHEDULED, derived_id, new_id,
};
use crate::expr::Expr;
use crate::function::{Function, Registry, Trigger};
use crate::run::{
    Envelope, Message, ParentStep, Run, RunStatus, StepKind, StepRecord, StepStatus, Target,
    Waiter, WaiterKind,
};
use crate::store::{RunFilter, Store};

/// How long an idempotency key holds (24 h).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Identifies this worker in run leases.
    pub owner: String,
    /// How long a run lease lasts (bounded on Lambda by the remaining time).
    pub lease: Duration,
    /// Whether the engine schedules the next cron tick itself (embedded) or an
    /// external scheduler fires crons (EventBridge Scheduler on AWS).
    pub drive_crons: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            owner: new_id(),
            lease: Duration::from_secs(15 * 60),
            drive_crons: true,
        }
    }
}

/// The result of ingesting one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingested {
    /// The event id (generated if the event had none).
    pub id: String,
    /// True if the id was already stored: nothing new starts.
    pub duplicate: bool,
}

/// What handling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done; acknowledge (delete) the message.
    Done,
    /// Another worker holds the run: deliver the message again later.
    Busy,
}

/// A run with its step timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run.
    #[serde(flatten)]
    pub run: Run,
    /// Its steps in the order the handler reached them.
    pub steps: Vec<StepRecord>,
}

/// The Hookflow engine over a store.
pub struct Engine<S> {
    store: S,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
}

impl<S: Clone> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: Store> Engine<S> {
    /// An engine over `store` running the functions of `registry`.
    pub fn new(store: S, registry: Registry, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        Self {
            store,
            registry: Arc::new(registry),
            clock,
            config,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The registered functions.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Validates and stores events, then routes each new one (at its `ts` when in
    /// the future). All events are validated before any is stored, so a bad
    /// batch stores nothing.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] for a bad event; [`Error::Store`] when storing fails.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<Vec<Ingested>> {
        let now = self.now();
        let mut events = events;
        for event in &mut events {
            event.prepare(now)?;
        }
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let stored = self
                .store
                .put_event(&event, now, duration_ms(DEDUPE_WINDOW))
                .await?;
            // A duplicate is routed again too: if the process that stored it died
            // before queuing its route, this redelivery is the only way it gets
            // routed. Routing is idempotent (derived run ids, conditional
            // waiter resolution, waiters only see events after they were
            // registered), so a duplicate starts nothing new.
            let route = Envelope::new(
                Target::Router,
                Message::Route {
                    event_id: event.id.clone(),
                },
            );
            if event.ts > now {
                self.store.schedule(&route, event.ts).await?;
            } else {
                self.store.send(&route).await?;
            }
            tracing::debug!(event.id = %event.id, event.name = %event.name, duplicate = !stored, "event ingested");
            out.push(Ingested {
                id: event.id,
                duplicate: !stored,
            });
        }
        Ok(out)
    }

    /// Handles one queue message.
    ///
    /// # Errors
    /// [`Error::Store`] (retry the message later).
    pub async fn handle(&self, envelope: &Envelope) -> Result<Handled> {
        match &envelope.message {
            Message::Route { event_id } => self.route(event_id).await.map(|()| Handled::Done),
            Message::Start { run_id } | Message::Resume { run_id } => {
                self.execute_run(run_id).await
            }
            Message::Cron { function_id, at } => self
                .fire_cron(function_id, *at)
                .await
                .map(|_| Handled::Done),
        }
    }

    /// Routes a stored event: resolves matching waiters, applies `cancel_on`,
    /// and starts every function it triggers.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn route(&self, event_id: &str) -> Result<()> {
        let Some(stored) = self.store.get_event(event_id).await? else {
            tracing::warn!(event.id = %event_id, "routed event not found; skipped");
            return Ok(());
        };
        if stored.event.name == INVOKE_REQUESTED {
            return self.start_invoked(stored.event).await;
        }
        self.store.record_routed(&stored).await?;
        let event = stored.event;
        let at = stored.received_at.max(event.ts);
        let event_json = serde_json::to_value(&event)?;
        for waiter in self.store.waiters_for(&event.name).await? {
            if waiter.registered_at > at || waiter.expires_at.is_some_and(|x| x < at) {
                continue;
            }
            if !waiter_matches(&waiter, &event_json) {
                continue;
            }
            match waiter.kind {
                WaiterKind::Step => {
                    self.resolve_waiting_step(&waiter, event_json.clone(), true)
                        .await?;
                }
                WaiterKind::Cancel => {
                    let reason = format!("cancelled by event `{}` ({})", event.name, event.id);
                    self.cancel_inner(&waiter.run_id, &reason).await?;
                }
            }
        }
        for function in self.registry.triggered_by(&event.name) {
            if function.is_triggered_by(&event, &event_json) {
                let run_id =
                    derived_id(&[function.id(), &event.id, &stored.received_at.to_string()]);
                self.start_run(function, event.clone(), run_id, None)
                    .await?;
            }
        }
        Ok(())
    }

    /// Starts a run requested by `step.invoke` from a deployment unit that does
    /// not carry the invoked function; an unknown function fails the step.
    async fn start_invoked(&self, request: Event) -> Result<()> {
        let function_id = request.data["function_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let parent: ParentStep = serde_json::from_value(request.data["parent"].clone())?;
        let Some(function) = self.registry.get(&function_id).cloned() else {
            let Some(mut step) = self.store.get_step(&parent.run_id, &parent.step_id).await? else {
                return Ok(());
            };
            step.status = StepStatus::Failed;
            step.error = Some(format!("no function `{function_id}` is registered"));
            step.ended_at = Some(self.now());
            if self.store.resolve_step(&parent.run_id, &step).await?
                && let Some(parent_run) = self.store.get_run(&parent.run_id).await?
            {
                self.resume(&parent_run.function_id, &parent_run.id).await?;
            }
            return Ok(());
        };
        let event = Event::new(INVOKED, request.data["data"].clone())
            .with_id(request.id.clone())
            .with_ts(request.ts);
        self.start_run(&function, event, request.id, Some(parent))
            .await
            .map(|_| ())
    }

    /// Completes a waiting step with `output` if it is still waiting (one
    /// conditional write decides the race), then resumes its run.
    pub(crate) async fn resolve_waiting_step(
        &self,
        waiter: &Waiter,
        output: Value,
        resume: bool,
    ) -> Result<bool> {
        let Some(mut step) = self.store.get_step(&waiter.run_id, &waiter.step_id).await? else {
            self.store
                .remove_waiter(&waiter.event, &waiter.run_id, &waiter.step_id)
                .await?;
            return Ok(false);
        };
        if step.status != StepStatus::Waiting {
            self.store
                .remove_waiter(&waiter.event, &waiter.run_id, &waiter.step_id)
                .await?;
            return Ok(false);
        }
        step.status = StepStatus::Completed;
        step.output = Some(output);
        step.ended_at = Some(self.now());
        let won = self.store.resolve_step(&waiter.run_id, &step).await?;
        self.store
            .remove_waiter(&waiter.event, &waiter.run_id, &waiter.step_id)
            .await?;
        if won && resume {
            self.resume(&waiter.function_id, &waiter.run_id).await?;
        }
        Ok(won)
    }

    async fn resume(&self, function_id: &str, run_id: &str) -> Result<()> {
        let message = Message::Resume {
            run_id: run_id.to_owned(),
        };
        self.store
            .send(&Envelope::new(
                Target::Function(function_id.to_owned()),
                message,
            ))
            .await
    }

    /// Creates a run of `function` for `event` (unless its idempotency key is
    /// taken or the run exists), registers its `cancel_on` waiters and queues it.
    pub(crate) async fn start_run(
        &self,
        function: &Function,
        event: Event,
        run_id: String,
        parent: Option<crate::run::ParentStep>,
    ) -> Result<Option<Run>> {
        let now = self.now();
        let event_json = serde_json::to_value(&event)?;
        let mut run = Run::new(run_id, function.id(), event, now);
        run.parent = parent;
        if let Some(expr) = function.idempotency_expr() {
            let key = match expr.key(&[("event", &event_json)]) {
                Ok(key) => key,
                Err(err) => {
                    tracing::error!(function = function.id(), error = %err, "idempotency key failed to evaluate; run not started");
                    return Ok(None);
                }
            };
            let expires = now + duration_ms(IDEMPOTENCY_TTL);
            if let Some(holder) = self
                .store
                .claim_idempotency(function.id(), &key, &run.id, now, expires)
                .await?
                && holder != run.id
            {
                tracing::info!(function = function.id(), run.id = %holder, "idempotency key already used; no new run");
                return Ok(None);
            }
            run.idempotency_key = Some(key);
        }
        let created = self.store.create_run(&run).await?;
        if !created {
            // A redelivered route: queue it again only if it never started.
            match self.store.get_run(&run.id).await? {
                Some(existing)
                    if existing.status == RunStatus::Queued && existing.started_at.is_none() =>
                {
                    run = existing;
                }
                _ => return Ok(None),
            }
        }
        for (i, cancel) in function.cancellations().iter().enumerate() {
            let waiter = Waiter {
                event: cancel.event.clone(),
                run_id: run.id.clone(),
                function_id: function.id().to_owned(),
                step_id: format!("cancel:{i}"),
                kind: WaiterKind::Cancel,
                condition: cancel.condition.clone(),
                trigger: event_json.clone(),
                registered_at: run.created_at,
                expires_at: None,
            };
            self.store.add_waiter(&waiter).await?;
        }
        let start = Message::Start {
            run_id: run.id.clone(),
        };
        self.store
            .send(&Envelope::new(
                Target::Function(function.id().to_owned()),
                start,
            ))
            .await?;
        tracing::info!(function = function.id(), run.id = %run.id, "run queued");
        Ok(Some(run))
    }

    /// Cancels a run that has not finished; it stops at its next step boundary.
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; [`Error::Conflict`] if the run already finished.
    pub async fn cancel(&self, run_id: &str) -> Result<Run> {
        match self.cancel_inner(run_id, "cancelled by request").await? {
            Some(run) => Ok(run),
            None => match self.store.get_run(run_id).await? {
                Some(run) => Err(Error::Conflict(format!(
                    "run `{run_id}` already {}",
                    run.status.as_str()
                ))),
                None => Err(Error::RunNotFound(run_id.to_owned())),
            },
        }
    }

    async fn cancel_inner(&self, run_id: &str, reason: &str) -> Result<Option<Run>> {
        let Some(mut run) = self.store.get_run(run_id).await? else {
            return Ok(None);
        };
        if run.status.is_terminal() {
            return Ok(None);
        }
        let now = self.now();
        run.status = RunStatus::Cancelled;
        run.error = Some(reason.to_owned());
        run.ended_at = Some(now);
        run.wake_at = None;
        if !self.store.update_run(&run).await? {
            return Ok(None);
        }
        tracing::info!(run.id = %run_id, reason, "run cancelled");
        self.cleanup_waiters(&run).await?;
        Ok(Some(run))
    }

    /// Removes the waiters a finished run leaves behind.
    pub(crate) async fn cleanup_waiters(&self, run: &Run) -> Result<()> {
        if let Some(function) = self.registry.get(&run.function_id) {
            for (i, cancel) in function.cancellations().iter().enumerate() {
                self.store
                    .remove_waiter(&cancel.event, &run.id, &format!("cancel:{i}"))
                    .await?;
            }
        }
        if run.status == RunStatus::Completed {
            return Ok(()); // the handler returned: no step of it is still waiting
        }
        for step in self.store.load_steps(&run.id).await? {
            if step.kind == StepKind::WaitForEvent
                && step.status == StepStatus::Waiting
                && let Some(event) = step.detail.as_ref().and_then(|d| d["event"].as_str())
            {
                self.store.remove_waiter(event, &run.id, &step.id).await?;
            }
        }
        Ok(())
    }

    /// Starts a new run of the same function with the same event; the original
    /// run is kept as it is.
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; [`Error::UnknownFunction`] if its function is gone.
    pub async fn replay(&self, run_id: &str) -> Result<Run> {
        let original = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        let function = self
            .registry
            .get(&original.function_id)
            .cloned()
            .ok_or_else(|| Error::UnknownFunction(original.function_id.clone()))?;
        let now = self.now();
        let mut run = Run::new(new_id(), function.id(), original.event.clone(), now);
        run.idempotency_key = original.idempotency_key.clone();
        self.store.create_run(&run).await?;
        let start = Message::Start {
            run_id: run.id.clone(),
        };
        self.store
            .send(&Envelope::new(
                Target::Function(function.id().to_owned()),
                start,
            ))
            .await?;
        Ok(run)
    }

    /// The run with its step timeline.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn run_view(&self, run_id: &str) -> Result<Option<RunView>> {
        let Some(run) = self.store.get_run(run_id).await? else {
            return Ok(None);
        };
        let steps = self.store.load_steps(run_id).await?;
        Ok(Some(RunView { run, steps }))
    }

    /// Runs matching `filter`, newest first.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.store.list_runs(filter).await
    }

    /// Starts the cron-triggered function's run for the tick at `at` (once per
    /// tick, however often it is fired) and, when the engine drives crons,
    /// schedules the next tick.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`]; [`Error::Store`].
    pub async fn fire_cron(&self, function_id: &str, at: i64) -> Result<Option<Run>> {
        let function = self
            .registry
            .get(function_id)
            .cloned()
            .ok_or_else(|| Error::UnknownFunction(function_id.to_owned()))?;
        let schedules: Vec<&str> = function
            .triggers()
            .iter()
            .filter_map(|t| match t {
                Trigger::Cron { schedule, .. } => Some(schedule.as_str()),
                Trigger::Event { .. } => None,
            })
            .collect();
        let event = Event::new(
            SCHEDULED,
            json!({"function_id": function_id, "cron": schedules, "scheduled_at": at}),
        )
        .with_id(derived_id(&["cron", function_id, &at.to_string()]))
        .with_ts(at);
        let now = self.now();
        let mut run = None;
        if self
            .store
            .put_event(&event, now, duration_ms(DEDUPE_WINDOW))
            .await?
        {
            let run_id = derived_id(&[function_id, &event.id]);
            run = self.start_run(&function, event, run_id, None).await?;
        }
        if self.config.drive_crons {
            self.schedule_next_cron(&function, at.max(now)).await?;
        }
        Ok(run)
    }

    /// Makes sure every cron function has its next tick scheduled (idempotent:
    /// ticks are deduplicated by function and time).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn schedule_crons(&self) -> Result<()> {
        let now = self.now();
        let functions: Vec<_> = self
            .registry
            .iter()
            .filter(|f| f.has_cron())
            .cloned()
            .collect();
        for function in functions {
            self.schedule_next_cron(&function, now).await?;
        }
        Ok(())
    }

    async fn schedule_next_cron(&self, function: &Function, after: i64) -> Result<()> {
        let Some(next) = function.next_cron_after(after) else {
            return Ok(());
        };
        let mut envelope = Envelope::new(
            Target::Router,
            Message::Cron {
                function_id: function.id().to_owned(),
                at: next,
            },
        );
        envelope.dedupe_key = Some(format!("cron:{}:{next}", function.id()));
        self.store.schedule(&envelope, next).await
    }

    /// Emits `hookflow/function.failed` for a run that failed for good.
    async fn emit_failure(&self, run: &Run) -> Result<()> {
        if run.event.name == FUNCTION_FAILED {
            return Ok(());
        }
        let event = Event::new(
            FUNCTION_FAILED,
            json!({
                "function_id": run.function_id,
                "run_id": run.id,
                "error": run.error,
                "event": run.event,
            }),
        )
        .with_id(derived_id(&["failed", &run.id]));
        self.ingest(vec![event]).await.map(|_| ())
    }
}

fn waiter_matches(waiter: &Waiter, candidate: &Value) -> bool {
    match &waiter.condition {
        None => true,
        Some(condition) => match Expr::compile(condition) {
            Ok(expr) => expr.matches(&[("event", &waiter.trigger), ("async", candidate)]),
            Err(err) => {
                tracing::warn!(run.id = %waiter.run_id, error = %err, "waiter condition does not compile");
                false
            }
        },
    }
}
