//! The router: turns a stored event into answers for the waits it matches,
//! cancellations for the runs it cancels, and new runs of the functions it
//! triggers; it also starts cron runs, invoked child runs and replays.
//!
//! The router changes no run itself. A run is created by one transition
//! (run, trigger event, idempotency claim, `cancel_on` waiters, and its start
//! message), and everything else is a message to the run's own queue, applied
//! by its worker under the run's lease. Routing is idempotent (derived run
//! ids, first-writer-wins answers), so a redelivered route message is safe.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::{Clock, duration_ms};
use crate::error::{Error, Result};
use crate::event::{Event, INVOKED, SCHEDULED, derived_id};
use crate::expr::Expr;
use crate::flow::{
    FlowKind, FlowRecord, FlowState, FlowWrite, SingletonMode, key_value, pause_key, paused_since,
    record_key,
};
use crate::function::{Function, Registry, Trigger};
use crate::limits::CARRIED_EVENT_BYTES;
use crate::run::{
    Envelope, Message, ParentStep, Resolution, Run, RunStatus, StepRecord, StepStatus, Target,
    Waiter, WaiterKind,
};
use crate::run_id::derived_run_id;
use crate::store::{EventLog, FlowStore, LoadedRun, Outbox, RunStore, StoredEvent, Waiters};
use crate::transition::{Conflict, Fence, IdempotencyClaim, Outgoing, Transition};

/// How long an idempotency key holds (24 h).
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The router role: generic over only the store capabilities it uses.
pub struct Router<S> {
    store: S,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    drive_crons: bool,
}

impl<S: Clone> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            drive_crons: self.drive_crons,
        }
    }
}

/// A run to create.
struct NewRun<'a> {
    function: &'a Function,
    event: Event,
    run_id: String,
    parent: Option<ParentStep>,
    replay_of: Option<&'a Run>,
    /// Step records the run starts with (a rerun from a step).
    journal: Vec<StepRecord>,
    /// Delivered whether or not the run is new (e.g. the next cron tick).
    also: Vec<Outgoing>,
    /// When its trigger event was received, if recorded as routed for the
    /// runs it starts (the run may refer to that record).
    recorded_at: Option<i64>,
}

/// What creating a run led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Created and queued.
    Created(Box<Run>),
    /// It already existed (a redelivery): nothing new.
    Existing,
    /// The function's idempotency key is held by this run.
    KeyTaken(String),
    /// The idempotency key could not be computed: no run.
    Refused(String),
    /// Flow control stored it as skipped (rate limit, singleton); its note
    /// says why.
    Skipped(Box<Run>),
    /// Debounced or batched: the event now belongs to this queued run.
    Folded(String),
    /// The function is paused: nothing started (resuming it starts its
    /// held events).
    Paused,
}

impl<S> Router<S>
where
    S: EventLog + RunStore + Waiters + FlowStore + Outbox + Clone + 'static,
{
    /// A router for the functions of `registry`. With `drive_crons`, each cron
    /// tick schedules the next (embedded); otherwise an external scheduler
    /// fires them (EventBridge Scheduler on AWS).
    pub fn new(
        store: S,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        drive_crons: bool,
    ) -> Self {
        Self {
            store,
            registry,
            clock,
            drive_crons,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Handles one router message.
    ///
    /// # Errors
    /// Storage errors (the message should be delivered again), or
    /// [`Error::UnknownFunction`] for a cron tick of an unknown function.
    pub async fn handle(&self, message: &Message) -> Result<()> {
        match message {
            Message::Route {
                stored: Some(stored),
                ..
            } => Box::pin(self.route_stored((**stored).clone())).await,
            Message::Route { event_id, .. } => self.route(event_id).await,
            Message::RouteTo {
                event_id,
                function_id,
                stored,
            } => Box::pin(self.route_to(event_id, function_id, stored.as_deref())).await,
            Message::Cron { function_id, at } => self.fire_cron(function_id, *at).await.map(|_| ()),
            Message::Invoke {
                function_id,
                data,
                child_run_id,
                at,
                parent,
            } => {
                self.invoke(function_id, data, child_run_id, *at, parent)
                    .await
            }
            Message::Replay {
                run_id,
                new_run_id,
                from_step,
            } => self.replay(run_id, new_run_id, from_step.as_deref()).await,
            other => {
                tracing::warn!(
                    message = other.kind(),
                    run.id = other.run_id(),
                    "not a router message; dropped"
                );
                Ok(())
            }
        }
    }

    /// Routes a stored event: answers the waits it matches, requests the
    /// cancellations it causes, and starts every function it triggers.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn route(&self, event_id: &str) -> Result<()> {
        let Some(stored) = self.store.get_event(event_id).await? else {
            tracing::warn!(event.id = %event_id, "routed event not found; skipped");
            return Ok(());
        };
        // Boxed: routing's future is large, and the router's own future
        // holds it twice (a route carrying its event, or not).
        Box::pin(self.route_stored(stored)).await
    }

    /// Routes `stored`, an event as it was stored (see [`Self::route`]).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn route_stored(&self, stored: StoredEvent) -> Result<()> {
        let event_json = serde_json::to_value(&stored.event)?;
        let triggered: Vec<_> = self
            .registry
            .triggered_by(&stored.event.name)
            .iter()
            .filter(|function| function.is_triggered_by(&stored.event, &event_json))
            .collect();
        let event = &stored.event;
        // Only a name some function waits for (or is cancelled by) can
        // have waiters: the others need no record for a new waiter to catch
        // up from, and no look for waiters. The runs refer to the event's
        // own record.
        let awaited = self.registry.is_awaited(&event.name);
        if awaited {
            Box::pin(self.store.record_routed(&stored, false)).await?;
        }
        if !triggered.is_empty() {
            // Boxed, as are the other rare or large store futures here: the
            // router's own future holds them all.
            Box::pin(self.store.keep_for_runs(&stored)).await?;
        }
        let at = stored.received_at.max(event.ts);
        let mut answers = Vec::new();
        let waiters = if awaited {
            self.store.waiters_for(&event.name).await?
        } else {
            Vec::new()
        };
        for waiter in waiters {
            if waiter.registered_at > at || waiter.expires_at.is_some_and(|x| x < at) {
                continue;
            }
            if !waiter_matches(&waiter, &event_json) {
                continue;
            }
            match waiter.kind {
                WaiterKind::Step => answers.push(Outgoing::Send {
                    envelope: Envelope::new(
                        Target::Function(waiter.function_id.clone()),
                        Message::Resolve {
                            run_id: waiter.run_id.clone(),
                            step_id: waiter.step_id.clone(),
                            with: Resolution::Event {
                                event_id: event.id.clone(),
                            },
                        },
                    ),
                }),
                WaiterKind::Cancel => {
                    let reason = format!("cancelled by event `{}` ({})", event.name, event.id);
                    self.store
                        .request_cancel(&waiter.run_id, &waiter.function_id, &reason)
                        .await?;
                }
            }
        }
        self.store.deliver(&answers).await?;
        for function in triggered {
            Box::pin(self.start_routed(function, &stored)).await?;
        }
        Ok(())
    }

    /// Starts `function`'s run for the routed event `stored`, whose record
    /// the run refers to; its id is derived from both, so routing the event
    /// again starts nothing new.
    async fn start_routed(&self, function: &Function, stored: &StoredEvent) -> Result<Started> {
        self.start(NewRun {
            function,
            event: stored.event.clone(),
            run_id: triggered_run_id(function.id(), &stored.event.id, stored.received_at),
            parent: None,
            replay_of: None,
            journal: Vec::new(),
            also: Vec::new(),
            recorded_at: Some(stored.received_at),
        })
        .await
    }

    /// Starts `function_id`'s run for stored event `event_id` (`carried`, as
    /// the message brought it, else read) if the event triggers it, as
    /// [`Router::route`] would have (with the same run id).
    async fn route_to(
        &self,
        event_id: &str,
        function_id: &str,
        carried: Option<&StoredEvent>,
    ) -> Result<()> {
        let stored = match carried {
            Some(stored) => Some(stored.clone()),
            None => self.store.get_event(event_id).await?,
        };
        let (Some(stored), Some(function)) = (stored, self.registry.get(function_id).cloned())
        else {
            tracing::warn!(event.id = %event_id, function = function_id, "event or function gone; nothing started");
            return Ok(());
        };
        let event_json = serde_json::to_value(&stored.event)?;
        if !function.is_triggered_by(&stored.event, &event_json) {
            return Ok(());
        }
        // Kept for the run to refer to (it may have been stored before this
        // function existed).
        Box::pin(self.store.keep_for_runs(&stored)).await?;
        self.start_routed(&function, &stored).await.map(|_| ())
    }

    /// Starts the child run of an `invoke` step, or answers the step at once
    /// when it cannot start (unknown function, key held by another run).
    async fn invoke(
        &self,
        function_id: &str,
        data: &Value,
        child_run_id: &str,
        at: i64,
        parent: &ParentStep,
    ) -> Result<()> {
        let answer = |with: Resolution| Outgoing::Send {
            envelope: Envelope::new(
                Target::Function(parent.function_id.clone()),
                Message::Resolve {
                    run_id: parent.run_id.clone(),
                    step_id: parent.step_id.clone(),
                    with,
                },
            ),
        };
        let Some(function) = self.registry.get(function_id).cloned() else {
            let message = format!("no function `{function_id}` is registered");
            return self
                .store
                .deliver(&[answer(Resolution::Error { message })])
                .await;
        };
        let event = Event::new(INVOKED, data.clone())
            .with_id(child_run_id)
            .with_ts(at);
        let started = self
            .start(NewRun {
                function: &function,
                event,
                run_id: child_run_id.to_owned(),
                parent: Some(parent.clone()),
                replay_of: None,
                journal: Vec::new(),
                also: Vec::new(),
                recorded_at: None,
            })
            .await?;
        match started {
            Started::Created(_) | Started::Existing => Ok(()),
            Started::Folded(into) => {
                // A debounced or batched function answers its events, not
                // one caller: invoking it cannot return its result.
                let message = format!(
                    "`{function_id}` debounces or batches its events (this call joined run {into}): \
                     send it an event instead of invoking it"
                );
                self.store
                    .deliver(&[answer(Resolution::Error { message })])
                    .await
            }
            Started::Paused => {
                let message = format!("function `{function_id}` is paused");
                self.store
                    .deliver(&[answer(Resolution::Error { message })])
                    .await
            }
            Started::Skipped(run) => {
                let message = run.note.unwrap_or_else(|| "skipped".into());
                self.store
                    .deliver(&[answer(Resolution::Error { message })])
                    .await
            }
            Started::KeyTaken(holder) => {
                self.store
                    .deliver(&[answer(Resolution::Child { run_id: holder })])
                    .await
            }
            Started::Refused(message) => {
                self.store
                    .deliver(&[answer(Resolution::Error { message })])
                    .await
            }
        }
    }

    /// Starts `new_run_id`: the function and event of run `run_id`.
    async fn replay(&self, run_id: &str, new_run_id: &str, from_step: Option<&str>) -> Result<()> {
        let Some(loaded) = self.store.load_run(run_id).await? else {
            tracing::warn!(run.id = %run_id, "replayed run not found; skipped");
            return Ok(());
        };
        let original = loaded.run;
        // A rerun keeps the records of the steps before the chosen one.
        let journal = match from_step {
            None => Vec::new(),
            Some(step_id) => {
                let Some(from) = loaded.journal.iter().find(|s| s.id == step_id) else {
                    tracing::warn!(run.id = %run_id, step = step_id, "rerun step not found; skipped");
                    return Ok(());
                };
                let position = from.position;
                loaded
                    .journal
                    .iter()
                    .filter(|s| {
                        s.position < position
                            && matches!(s.status, StepStatus::Completed | StepStatus::Failed)
                    })
                    .cloned()
                    .collect()
            }
        };
        let Some(function) = self.registry.get(&original.function_id).cloned() else {
            tracing::warn!(run.id = %run_id, function = %original.function_id, "replayed run's function is gone; skipped");
            return Ok(());
        };
        self.start(NewRun {
            function: &function,
            event: original.event.clone(),
            run_id: new_run_id.to_owned(),
            parent: None,
            replay_of: Some(&original),
            journal,
            also: Vec::new(),
            recorded_at: None,
        })
        .await
        .map(|_| ())
    }

    /// Starts the cron-triggered function's run for the tick at `at` (once per
    /// tick, however often it is fired) and, when the router drives crons,
    /// schedules the next tick.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`]; storage errors.
    pub async fn fire_cron(&self, function_id: &str, at: i64) -> Result<Started> {
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
        let mut also = Vec::new();
        if self.drive_crons
            && let Some(next) = next_tick(&function, at.max(self.now()))
        {
            also.push(next);
        }
        let run_id = derived_run_id(function_id, at, &[&event.id]);
        self.start(NewRun {
            function: &function,
            event,
            run_id,
            parent: None,
            replay_of: None,
            journal: Vec::new(),
            also,
            recorded_at: None,
        })
        .await
    }

    /// Makes sure every cron function has its next tick scheduled (idempotent:
    /// ticks are deduplicated by function and time).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn schedule_crons(&self) -> Result<()> {
        let now = self.now();
        let ticks: Vec<Outgoing> = self
            .registry
            .iter()
            .filter_map(|f| next_tick(f, now))
            .collect();
        self.store.deliver(&ticks).await
    }

    /// When `new`'s function is paused, since when: its run is held until
    /// the function resumes. The event of a held routed run is recorded
    /// first for the resume to find ([`EventLog::events_since`]), and the
    /// pause read again: a resume that began meanwhile may have looked
    /// before the record was there, so the run is not held but started.
    async fn held(&self, new: &NewRun<'_>) -> Result<Option<i64>> {
        let key = pause_key(new.function.id());
        let Some(since) = paused_since(self.store.flow_get(&key).await?.as_ref()) else {
            return Ok(None);
        };
        let Some(received_at) = new.recorded_at else {
            return Ok(Some(since));
        };
        let stored = StoredEvent {
            event: new.event.clone(),
            received_at,
            kept_for_runs: false,
        };
        Box::pin(self.store.record_routed(&stored, true)).await?;
        Ok(paused_since(self.store.flow_get(&key).await?.as_ref()))
    }

    /// Creates a run in one transition — the run, its trigger event, its
    /// idempotency claim, its flow-control records, its `cancel_on` waiters
    /// and its start message — or finds that it exists. Flow control may
    /// instead store it as skipped, queue it for later, or fold its event
    /// into a debounced run; a flow-control record changed by a concurrent
    /// decision makes it decide again.
    async fn start(&self, new: NewRun<'_>) -> Result<Started> {
        if new.replay_of.is_none()
            && let Some(since) = Box::pin(self.held(&new)).await?
        {
            // Held: the event is kept, and resuming the function starts it.
            tracing::info!(
                function = new.function.id(),
                paused_since = since,
                "function paused; run not started"
            );
            self.store.deliver(&new.also).await?;
            return Ok(Started::Paused);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let transition = match self.creation(&new)? {
                Ok(transition) => transition,
                Err(refused) => return Ok(refused),
            };
            let gated = if new.replay_of.is_some() {
                // A replay is an explicit request: flow control does not apply.
                Gated::Create(transition)
            } else {
                self.gate(new.function, transition).await?
            };
            let (mut transition, folded) = match gated {
                Gated::Create(t) => (t, None),
                Gated::Folded(t) => {
                    let id = t.run.id.clone();
                    (t, Some(id))
                }
            };
            transition.outbox.extend(new.also.iter().cloned());
            let function = new.function.id();
            let run_id = transition.run.id.clone();
            let outcome = self.store.commit(&transition).await?;
            let retry = attempt < FLOW_ATTEMPTS
                && match &outcome {
                    Err(Conflict::FlowChanged) => true,
                    // The debounced run started (or changed) since it was read.
                    Err(Conflict::Leased | Conflict::Changed | Conflict::Finished) => {
                        folded.is_some()
                    }
                    _ => false,
                };
            if retry {
                crate::worker::back_off(&run_id).await;
                continue;
            }
            return Ok(match outcome {
                Ok(committed) => {
                    self.store.deliver(&committed.undelivered).await?;
                    self.flag_cancellations(&transition).await?;
                    // Boxed, as the reads it may page through are large futures.
                    Box::pin(self.catch_up_cancel_on(&transition.run, &transition.waiters_added))
                        .await?;
                    let run = transition.run;
                    if let Some(id) = folded {
                        tracing::info!(function, run.id = %id, "event folded into a queued run");
                        Started::Folded(id)
                    } else if run.status == RunStatus::Skipped {
                        tracing::info!(function, run.id = %run_id, note = run.note.as_deref().unwrap_or(""), "run skipped");
                        Started::Skipped(Box::new(run))
                    } else {
                        tracing::info!(function, run.id = %run_id, "run queued");
                        Started::Created(Box::new(run))
                    }
                }
                Err(Conflict::Exists) => {
                    // A redelivery: finish delivering what its creation sent,
                    // and its catch-up (the route may have died before it).
                    if let Some(existing) = self.store.load_run(&run_id).await? {
                        self.store.deliver(&existing.undelivered).await?;
                        let run = &existing.run;
                        if run.function_id == new.function.id() && run.cancel_requested.is_none() {
                            let event_json = serde_json::to_value(&run.event)?;
                            let waiters =
                                cancel_waiters(new.function, run, &event_json, run.created_at)?;
                            Box::pin(self.catch_up_cancel_on(run, &waiters)).await?;
                        }
                    }
                    self.store.deliver(&new.also).await?;
                    Started::Existing
                }
                Err(Conflict::KeyTaken { run_id }) => {
                    tracing::info!(function, run.id = %run_id, "idempotency key already used; no new run");
                    self.store.deliver(&new.also).await?;
                    Started::KeyTaken(run_id)
                }
                Err(other) => return Err(Error::Conflict(format!("creating a run: {other}"))),
            });
        }
    }

    /// Requests the cancellation of the run `t` created when an event its
    /// `cancel_on` matches was routed while the run was being stored: that
    /// route may have looked for waiters before they existed.
    async fn catch_up_cancel_on(&self, run: &Run, waiters: &[Waiter]) -> Result<()> {
        if run.status.is_terminal() {
            return Ok(());
        }
        let now = self.now();
        for waiter in waiters {
            if waiter.kind != WaiterKind::Cancel {
                continue;
            }
            if let Some(event_id) = first_match(&self.store, waiter, now).await? {
                let reason = format!("cancelled by event `{}` ({event_id})", waiter.event);
                self.store
                    .request_cancel(&waiter.run_id, &waiter.function_id, &reason)
                    .await?;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Marks the runs whose cancellation `t` sent (a singleton replacing
    /// one) as cancelling, so a run executing a step stops at its next step
    /// boundary instead of when its lease is free.
    async fn flag_cancellations(&self, t: &Transition) -> Result<()> {
        for message in &t.outbox {
            if let Outgoing::Send { envelope } = message
                && let (Target::Function(function_id), Message::Cancel { run_id, reason }) =
                    (&envelope.target, &envelope.message)
            {
                self.store
                    .request_cancel(run_id, function_id, reason)
                    .await?;
            }
        }
        Ok(())
    }

    /// The record of `kind` for the run's key (the value of `expr` over
    /// `event`), with what it holds now; or why the key cannot be computed.
    async fn record_for(
        &self,
        kind: FlowKind,
        function_id: &str,
        expr: Option<&Expr>,
        event: &Value,
    ) -> Result<std::result::Result<(String, Option<FlowRecord>), String>> {
        let key = match key_value(expr, event) {
            Ok(key) => record_key(kind, function_id, &key),
            Err(err) => {
                return Ok(Err(format!(
                    "the {} key failed to evaluate: {err}",
                    kind.as_str()
                )));
            }
        };
        let read = self.store.flow_get(&key).await?;
        Ok(Ok((key, read)))
    }

    /// The queued run `id` if an event can still join it: not started, and
    /// not yet due (once due it is starting, or waiting for a concurrency
    /// slot: a new debounce or batch begins instead).
    async fn foldable(&self, id: &str, now: i64) -> Result<Option<LoadedRun>> {
        Ok(self.store.load_run(id).await?.filter(|loaded| {
            let run = &loaded.run;
            run.status == RunStatus::Queued
                && run.started_at.is_none()
                && run.not_before.is_some_and(|at| at > now)
        }))
    }

    /// The transition that creates the run `new` describes (with its
    /// idempotency claim, `cancel_on` waiters and start message), or why
    /// none can be created.
    fn creation(&self, new: &NewRun<'_>) -> Result<std::result::Result<Transition, Started>> {
        let now = self.now();
        let function = new.function;
        let event_json = serde_json::to_value(&new.event)?;
        let mut run = Run::new(new.run_id.clone(), function.id(), new.event.clone(), now);
        run.parent = new.parent.clone();
        run.cancel_on = function
            .cancellations()
            .iter()
            .map(|c| c.event.clone())
            .collect();
        let mut transition = Transition::new(Fence::Create, run);
        transition.event_recorded_at = new.recorded_at;
        match new.replay_of {
            // A replay is an explicit request: it records the original's key
            // without claiming it again.
            Some(original) => {
                transition.run.idempotency_key = original.idempotency_key.clone();
                transition.run.replay_of = Some(original.id.clone());
                transition.steps.clone_from(&new.journal);
            }
            None => {
                if let Some(expr) = function.idempotency_expr() {
                    let key = match expr.key(&[("event", &event_json)]) {
                        Ok(key) => crate::limits::bounded_key(&key),
                        Err(err) => {
                            tracing::error!(function = function.id(), error = %err, "idempotency key failed to evaluate; run not started");
                            return Ok(Err(Started::Refused(format!(
                                "the idempotency key of `{}` failed to evaluate: {err}",
                                function.id()
                            ))));
                        }
                    };
                    transition.idempotency = Some(IdempotencyClaim {
                        function_id: function.id().to_owned(),
                        key: key.clone(),
                        expires_at: now + duration_ms(IDEMPOTENCY_TTL),
                        now,
                    });
                    transition.run.idempotency_key = Some(key);
                }
            }
        }
        let run = &transition.run;
        transition.waiters_added = cancel_waiters(function, run, &event_json, now)?;
        // A run that refers to its event's routed record: its start carries
        // the event, if small, for a store that would read it back.
        let trigger = match new.recorded_at {
            Some(received_at)
                if self.store.wants_carried_trigger()
                    && serde_json::to_vec(&new.event)?.len() <= CARRIED_EVENT_BYTES =>
            {
                Some(Box::new(StoredEvent {
                    event: new.event.clone(),
                    received_at,
                    kept_for_runs: true,
                }))
            }
            _ => None,
        };
        transition.outbox.push(Outgoing::Send {
            envelope: Envelope::new(
                Target::Function(function.id().to_owned()),
                Message::Start {
                    run_id: run.id.clone(),
                    due: None,
                    trigger,
                },
            ),
        });
        Ok(Ok(transition))
    }

    /// Applies the function's flow control to the creation `t`: rate limit
    /// (skip), singleton (skip, or cancel the unfinished run), debounce (a
    /// queued run due later, or this event folded into the queued one) and
    /// throttle (start later), each with its record written in the same
    /// transition.
    async fn gate(&self, function: &Function, mut t: Transition) -> Result<Gated> {
        let (flow, keys) = function.flow();
        if flow.is_empty() {
            return Ok(Gated::Create(t));
        }
        let now = self.now();
        let id = function.id();
        let event_json = serde_json::to_value(&t.run.event)?;
        // An invoke has a caller waiting for this run's own result: it is
        // never folded into a debounced or batched run.
        let invoked = t.run.parent.is_some();
        if let Some(batch) = flow.batch.as_ref().filter(|_| !invoked) {
            let (key, read) = match self
                .record_for(FlowKind::Batch, id, keys.batch.as_ref(), &event_json)
                .await?
            {
                Ok(found) => found,
                Err(why) => return Ok(skip(t, why)),
            };
            let max = batch.max_size;
            if let Some(FlowState::Batch {
                run_id: Some(open),
                size,
            }) = read.as_ref().map(|r| &r.state)
                && *open != t.run.id
                && let Some(queued) = self.foldable(open, now).await?
            {
                // Add this event to the open batch; a full batch starts now.
                let size = size + 1;
                let full = size >= max;
                let mut folded = fold(queued, now);
                folded.event_recorded_at = t.event_recorded_at;
                let state = FlowState::Batch {
                    run_id: (!full).then(|| open.clone()),
                    size: if full { 0 } else { size },
                };
                folded
                    .flow
                    .push(FlowWrite::after(key, read.as_ref(), state));
                folded
                    .also_create
                    .push(folded_into(&t.run, open, "batched", now));
                let run = &mut folded.run;
                run.batch.push(t.run.event.id.clone());
                if full {
                    run.not_before = Some(now);
                    run.note = Some(format!("batch: {size} of {max} events (full)"));
                    folded.outbox.push(start_at(id, &run.id, now));
                } else {
                    run.note = Some(batch_note(size, max, run.not_before.unwrap_or(now)));
                }
                return Ok(Gated::Folded(folded));
            }
            t.run.batch = vec![t.run.event.id.clone()];
            let state = if max == 1 {
                FlowState::Batch {
                    run_id: None,
                    size: 0,
                }
            } else {
                let due = now + duration_ms(batch.timeout);
                t.run.not_before = Some(due);
                t.run.note = Some(batch_note(1, max, due));
                put_off(&mut t, id, due);
                FlowState::Batch {
                    run_id: Some(t.run.id.clone()),
                    size: 1,
                }
            };
            t.flow.push(FlowWrite::after(key, read.as_ref(), state));
        }
        if let Some(rate) = &flow.rate_limit {
            let (key, read) = match self
                .record_for(
                    FlowKind::RateLimit,
                    id,
                    keys.rate_limit.as_ref(),
                    &event_json,
                )
                .await?
            {
                Ok(found) => found,
                Err(why) => return Ok(skip(t, why)),
            };
            match rate.admit(gcra_tat(read.as_ref()), now) {
                Some(tat) => t.flow.push(FlowWrite::after(
                    key,
                    read.as_ref(),
                    FlowState::Gcra { tat },
                )),
                None => {
                    let why = format!(
                        "rate limited: at most {} per {} s",
                        rate.limit,
                        rate.period.as_secs_f64()
                    );
                    return Ok(skip(t, why));
                }
            }
        }
        if let Some(single) = &flow.singleton {
            let (key, read) = match self
                .record_for(
                    FlowKind::Singleton,
                    id,
                    keys.singleton.as_ref(),
                    &event_json,
                )
                .await?
            {
                Ok(found) => found,
                Err(why) => return Ok(skip(t, why)),
            };
            let holder = match read.as_ref().map(|r| &r.state) {
                Some(FlowState::Singleton { run_id }) if *run_id != t.run.id => {
                    self.store.get_run(run_id).await?
                }
                _ => None,
            };
            if let Some(holder) = holder.filter(|h| !h.status.is_terminal()) {
                match single.mode {
                    SingletonMode::Skip => {
                        let why = format!("singleton: run {} has not finished", holder.id);
                        return Ok(skip(t, why));
                    }
                    SingletonMode::Cancel => {
                        // The cancellation is a message of the creation's
                        // own commit: sent exactly when the new run exists
                        // (and again by a redelivery that finds it does).
                        let reason = format!("replaced by run {} (singleton)", t.run.id);
                        t.outbox.push(Outgoing::Send {
                            envelope: Envelope::new(
                                Target::Function(id.to_owned()),
                                Message::Cancel {
                                    run_id: holder.id.clone(),
                                    reason,
                                },
                            ),
                        });
                        t.run.note = Some(format!("singleton: replaced run {}", holder.id));
                    }
                }
            }
            let state = FlowState::Singleton {
                run_id: t.run.id.clone(),
            };
            t.flow.push(FlowWrite::after(key, read.as_ref(), state));
        }
        if let Some(debounce) = flow.debounce.as_ref().filter(|_| !invoked) {
            let (key, read) = match self
                .record_for(FlowKind::Debounce, id, keys.debounce.as_ref(), &event_json)
                .await?
            {
                Ok(found) => found,
                Err(why) => return Ok(skip(t, why)),
            };
            if let Some(FlowState::Debounce {
                run_id,
                first_at,
                events,
                due_at,
            }) = read.as_ref().map(|r| &r.state)
                && *run_id != t.run.id
                && let Some(queued) = self.foldable(run_id, now).await?
            {
                // Fold this event into the queued run: it starts with the
                // newest event, `period` after it (capped by the timeout).
                let due = debounce.due(*first_at, now);
                let events = events + 1;
                let mut folded = fold(queued, now);
                folded.event_recorded_at = t.event_recorded_at;
                let state = FlowState::Debounce {
                    run_id: run_id.clone(),
                    first_at: *first_at,
                    due_at: due,
                    events,
                };
                folded.flow = std::mem::take(&mut t.flow);
                folded
                    .flow
                    .push(FlowWrite::after(key, read.as_ref(), state));
                folded.replaces_event = true;
                folded
                    .also_create
                    .push(folded_into(&t.run, run_id, "debounced", now));
                let run = &mut folded.run;
                run.event = t.run.event;
                run.not_before = Some(due);
                run.note = Some(debounce_note(events, due));
                if due != *due_at {
                    // (Capped by the timeout, the start already sent stands.)
                    folded.outbox.push(start_at(id, &run.id, due));
                }
                return Ok(Gated::Folded(folded));
            }
            let due = debounce.due(now, now);
            let state = FlowState::Debounce {
                run_id: t.run.id.clone(),
                first_at: now,
                due_at: due,
                events: 1,
            };
            t.flow.push(FlowWrite::after(key, read.as_ref(), state));
            t.run.not_before = Some(due);
            t.run.note = Some(debounce_note(1, due));
            put_off(&mut t, id, due);
        }
        if let Some(throttle) = &flow.throttle {
            let (key, read) = match self
                .record_for(FlowKind::Throttle, id, keys.throttle.as_ref(), &event_json)
                .await?
            {
                Ok(found) => found,
                Err(why) => return Ok(skip(t, why)),
            };
            let (start, tat) = throttle.schedule(gcra_tat(read.as_ref()), now);
            t.flow.push(FlowWrite::after(
                key,
                read.as_ref(),
                FlowState::Gcra { tat },
            ));
            if start > now {
                t.run.not_before = Some(start);
                t.run.note = Some(format!(
                    "throttled: at most {} per {} s; starts at {}",
                    throttle.limit,
                    throttle.period.as_secs_f64(),
                    crate::clock::rfc3339(start)
                ));
                put_off(&mut t, id, start);
            }
        }
        Ok(Gated::Create(t))
    }
}

/// How often a start decides again when flow-control records keep changing
/// under it (each retry reads them afresh).
const FLOW_ATTEMPTS: usize = 16;

/// What flow control made of a run's creation.
enum Gated {
    /// Create the run (perhaps skipped, perhaps starting later).
    Create(Transition),
    /// Fold the event into this queued run instead (debounce, batch).
    Folded(Transition),
}

/// The creation `t` as a skipped run: stored, visible with `why`, never
/// started, and holding no flow-control record, key or waiter.
fn skip(mut t: Transition, why: String) -> Gated {
    t.run.status = RunStatus::Skipped;
    t.run.ended_at = Some(t.run.created_at);
    t.run.note = Some(why);
    t.flow.clear();
    t.idempotency = None;
    t.waiters_added.clear();
    t.outbox.clear();
    Gated::Create(t)
}

/// The transition that folds an event into the queued run (debounce,
/// batch): fenced on the run's version, taking no lease, and keeping what
/// the run's last transition may not have delivered (its start), which this
/// one's outbox would otherwise replace.
fn fold(queued: LoadedRun, now: i64) -> Transition {
    let mut folded = Transition::new(
        Fence::Acquire {
            now,
            version: queued.run.version,
        },
        queued.run,
    );
    folded.keep_pending = queued.undelivered;
    folded
}

/// The run `planned` would have been, stored as skipped: its event went to
/// the queued run `into` (`how`: debounced, batched). Created in the same
/// commit as the fold, so the event's own run id (as `POST /events`
/// announced it) says where the event went, and a redelivered route finds it
/// and folds nothing twice.
fn folded_into(planned: &Run, into: &str, how: &str, now: i64) -> Run {
    let mut run = planned.clone();
    run.status = RunStatus::Skipped;
    run.ended_at = Some(now);
    run.not_before = None;
    run.note = Some(format!("{how} into run {into}"));
    run
}

fn gcra_tat(record: Option<&FlowRecord>) -> Option<i64> {
    match record.map(|r| &r.state) {
        Some(FlowState::Gcra { tat }) => Some(*tat),
        _ => None,
    }
}

fn batch_note(size: u32, max: u32, due: i64) -> String {
    format!(
        "batch: {size} of {max} events; starts when full or at {}",
        crate::clock::rfc3339(due)
    )
}

fn debounce_note(events: u32, due: i64) -> String {
    format!(
        "debounced: {events} event(s); starts at {} unless another arrives",
        crate::clock::rfc3339(due)
    )
}

/// Makes the creation `t` start at `at` instead of at once (its other
/// messages stay).
fn put_off(t: &mut Transition, function_id: &str, at: i64) {
    t.outbox.retain(|message| {
        !matches!(
            message,
            Outgoing::Send {
                envelope: Envelope {
                    message: Message::Start { .. },
                    ..
                }
            }
        )
    });
    t.outbox.push(start_at(function_id, &t.run.id, at));
}

/// The start message of a run that flow control put off until `at` (now or
/// later); it carries `at`, which tells it from a start a later decision
/// superseded.
fn start_at(function_id: &str, run_id: &str, at: i64) -> Outgoing {
    let envelope = Envelope::new(
        Target::Function(function_id.to_owned()),
        Message::Start {
            run_id: run_id.to_owned(),
            due: Some(at),
            trigger: None,
        },
    );
    Outgoing::Later { envelope, at }
}

/// The id of the run of `function_id` that event `event_id`, received at
/// `received_at`, starts: derived, so a redelivered route never starts a
/// second one, and known as soon as the event is accepted; its time is
/// when the event was received.
#[must_use]
pub fn triggered_run_id(function_id: &str, event_id: &str, received_at: i64) -> String {
    derived_run_id(function_id, received_at, &[event_id])
}

/// A run an event will start: its function and its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedRun {
    /// The function.
    pub function_id: String,
    /// The run's id.
    pub run_id: String,
}

/// The runs `event`, received at `received_at`, starts in `registry`:
/// every function it triggers (a run may still be refused, by an
/// idempotency key already taken).
#[must_use]
pub fn planned_runs(registry: &Registry, event: &Event, received_at: i64) -> Vec<PlannedRun> {
    let Ok(event_json) = serde_json::to_value(event) else {
        return Vec::new();
    };
    registry
        .triggered_by(&event.name)
        .iter()
        .filter(|f| f.is_triggered_by(event, &event_json))
        .map(|f| PlannedRun {
            function_id: f.id().to_owned(),
            run_id: triggered_run_id(f.id(), &event.id, received_at),
        })
        .collect()
}

fn next_tick(function: &Function, after: i64) -> Option<Outgoing> {
    let at = function.next_cron_after(after)?;
    let mut envelope = Envelope::new(
        Target::Router,
        Message::Cron {
            function_id: function.id().to_owned(),
            at,
        },
    );
    envelope.dedupe_key = Some(format!("cron:{}:{at}", function.id()));
    Some(Outgoing::Later { envelope, at })
}

/// The `cancel_on` waiters of `function`'s run `run` (triggered by
/// `event_json`), as registered at `registered_at`, when the run was created.
fn cancel_waiters(
    function: &Function,
    run: &Run,
    event_json: &Value,
    registered_at: i64,
) -> Result<Vec<Waiter>> {
    function
        .cancellations()
        .iter()
        .enumerate()
        .map(|(i, cancel)| {
            // Compiled when the registry was built, so this cannot fail.
            let condition = cancel.condition.as_deref().map(Expr::compile).transpose()?;
            Ok(Waiter {
                event: cancel.event.clone(),
                run_id: run.id.clone(),
                function_id: function.id().to_owned(),
                step_id: format!("cancel:{i}"),
                kind: WaiterKind::Cancel,
                condition: cancel.condition.clone(),
                trigger: Waiter::trigger_for(condition.as_ref(), event_json),
                registered_at,
                expires_at: None,
            })
        })
        .collect()
}

/// Events read per page when catching up on a waiter.
const CATCH_UP_PAGE: usize = 100;

/// The first event routed since `waiter` was registered, by `now`, that
/// answers it, as [`Router::route`] would have matched it: read page by page.
pub(crate) async fn first_match<S: EventLog>(
    store: &S,
    waiter: &Waiter,
    now: i64,
) -> Result<Option<String>> {
    let mut from = waiter.registered_at;
    let mut limit = CATCH_UP_PAGE;
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = store.events_since(&waiter.event, from, limit).await?;
        for stored in &page {
            if !seen.insert(stored.event.id.clone()) {
                continue; // the last page's last millisecond, again
            }
            let at = stored.received_at.max(stored.event.ts);
            if at > now {
                continue; // routed later, at its time
            }
            if waiter.expires_at.is_some_and(|x| x < at) {
                continue;
            }
            let candidate: Value = serde_json::to_value(&stored.event)?;
            if waiter_matches(waiter, &candidate) {
                return Ok(Some(stored.event.id.clone()));
            }
        }
        let Some(last) = page.last().filter(|_| page.len() == limit) else {
            return Ok(None);
        };
        // The next page starts at the last time read (its events come
        // again and are skipped as seen); a page all in one millisecond
        // is read again, longer.
        if last.received_at > from {
            from = last.received_at;
            limit = CATCH_UP_PAGE;
        } else {
            limit *= 2;
        }
    }
}

/// True if `candidate` satisfies the waiter's condition (with the waiting
/// run's trigger bound as `event` and the candidate as `async`).
pub(crate) fn waiter_matches(waiter: &Waiter, candidate: &Value) -> bool {
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
