//! Runs, journaled steps, waiters and queue messages: the records the store
//! traits persist. Every type here is plain data (serde), identical on every backend.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Event;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not yet started (or waiting for a run-level retry).
    Queued,
    /// A worker is executing it.
    Running,
    /// Suspended until a time (sleep or step retry).
    Sleeping,
    /// Suspended until an event (wait_for_event or invoke).
    Waiting,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped by request, cancel_on or a timeout.
    Cancelled,
    /// Never started: flow control (rate limit, singleton) decided so; its
    /// `note` says why.
    Skipped,
}

impl RunStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::Running,
        Self::Sleeping,
        Self::Waiting,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Skipped,
    ];

    /// True once the run can never change again.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }

    /// The lowercase name used in APIs and storage.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Sleeping => "sleeping",
            Self::Waiting => "waiting",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }

    /// Parses the lowercase name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// The step of another run waiting for this run (set by `step.invoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentStep {
    /// The waiting run.
    pub run_id: String,
    /// The waiting run's function (its queue receives the result).
    #[serde(default)]
    pub function_id: String,
    /// The invoke step in it.
    pub step_id: String,
}

/// A run's execution lease: who may commit its transitions, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Unique per acquisition, so a worker that lost its lease can never
    /// commit, even if it takes the run again later.
    pub token: String,
    /// When it lapses (ms) unless extended.
    pub until: i64,
}

/// One execution of a function for one triggering event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Unique run id (derived from function and event, so a redelivered event
    /// never creates a second run).
    pub id: String,
    /// The function it runs.
    pub function_id: String,
    /// Current status.
    pub status: RunStatus,
    /// The event that started it.
    pub event: Event,
    /// Run-level retries used so far (errors outside steps).
    pub attempt: u32,
    /// When it was created (ms).
    pub created_at: i64,
    /// When it first started executing (ms).
    pub started_at: Option<i64>,
    /// When it reached a terminal status (ms).
    pub ended_at: Option<i64>,
    /// When it is due to resume, while sleeping or waiting with a timeout.
    pub wake_at: Option<i64>,
    /// The handler's return value once completed.
    pub output: Option<Value>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// The run waiting on this one, if started by `step.invoke`.
    pub parent: Option<ParentStep>,
    /// The idempotency key it claimed, if its function has one.
    pub idempotency_key: Option<String>,
    /// Event names of its `cancel_on` waiters (step ids `cancel:<i>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancel_on: Vec<String>,
    /// The run this one replays, if started by a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// For a batched function: the ids of the events it takes, in arrival
    /// order (the first is `event`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch: Vec<String>,
    /// Not to start before this time (ms): set by throttle and debounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// What flow control decided about it (queued by throttle, debounced,
    /// skipped by a rate limit or singleton), for people reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why a cancellation was requested and not yet applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested: Option<String>,
    /// Its execution lease, while a worker holds it (kept by the store, not
    /// in the run's body).
    #[serde(skip)]
    pub lease: Option<Lease>,
    /// How many transitions changed it since it was created (kept by the
    /// store): taking its lease is conditional on it, so a worker never runs
    /// on a journal read before another worker's last commit.
    #[serde(skip)]
    pub version: u64,
}

impl Run {
    /// A queued run of `function_id` for `event`.
    #[must_use]
    pub fn new(id: String, function_id: &str, event: Event, now: i64) -> Self {
        Self {
            id,
            function_id: function_id.to_owned(),
            status: RunStatus::Queued,
            event,
            attempt: 0,
            created_at: now,
            started_at: None,
            ended_at: None,
            wake_at: None,
            output: None,
            error: None,
            parent: None,
            idempotency_key: None,
            cancel_on: Vec::new(),
            replay_of: None,
            batch: Vec::new(),
            not_before: None,
            note: None,
            cancel_requested: None,
            lease: None,
            version: 0,
        }
    }

    /// The run as backends store it: everything but its trigger event (kept
    /// once, apart) and its lease and cancellation request (kept where the
    /// store's conditions can test them). Empty fields are left out (they
    /// read back as absent): a DynamoDB run item is billed by the KB on
    /// every update.
    ///
    /// # Errors
    /// Serialization errors.
    pub fn stored_body(&self) -> serde_json::Result<String> {
        Ok(Value::Object(self.stored_fields()?).to_string())
    }

    /// The fields of [`Run::stored_body`], for a backend that keeps some of
    /// them elsewhere (and gives them back to [`Run::from_stored_fields`]).
    ///
    /// # Errors
    /// Serialization errors.
    pub fn stored_fields(&self) -> serde_json::Result<serde_json::Map<String, Value>> {
        let Value::Object(mut fields) = serde_json::to_value(self)? else {
            return Err(serde::ser::Error::custom("a run serializes as an object"));
        };
        fields.remove("event");
        fields.remove("cancel_requested");
        fields.retain(|_, value| !value.is_null());
        Ok(fields)
    }

    /// A run from its [`Run::stored_body`] and its trigger event; the caller
    /// sets the lease and cancellation request.
    ///
    /// # Errors
    /// Deserialization errors.
    pub fn from_stored(body: &str, event: Value) -> serde_json::Result<Self> {
        Self::from_stored_fields(serde_json::from_str(body)?, event)
    }

    /// A run from its [`Run::stored_fields`] and its trigger event.
    ///
    /// # Errors
    /// Deserialization errors.
    pub fn from_stored_fields(
        mut fields: serde_json::Map<String, Value>,
        event: Value,
    ) -> serde_json::Result<Self> {
        fields.insert("event".into(), event);
        serde_json::from_value(Value::Object(fields))
    }

    /// The waiters the run leaves when it ends: its `cancel_on` entries and
    /// every `wait_for_event` step of `journal` still waiting.
    #[must_use]
    pub fn waiters_left(&self, journal: &[StepRecord]) -> Vec<WaiterKey> {
        let cancel = self
            .cancel_on
            .iter()
            .enumerate()
            .map(|(i, event)| WaiterKey {
                event: event.clone(),
                run_id: self.id.clone(),
                step_id: format!("cancel:{i}"),
            });
        let waits = journal.iter().filter_map(|step| {
            let event = step.waited_event()?;
            (step.status == StepStatus::Waiting).then(|| WaiterKey {
                event: event.to_owned(),
                run_id: self.id.clone(),
                step_id: step.id.clone(),
            })
        });
        cancel.chain(waits).collect()
    }
}

/// What a journaled step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `step.run`: user code, memoized.
    Run,
    /// `step.sleep` / `step.sleep_until`.
    Sleep,
    /// `step.wait_for_event`.
    WaitForEvent,
    /// `step.send_event`.
    SendEvent,
    /// `step.invoke`.
    Invoke,
}

/// Where a journaled step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Done; `output` holds its result. Never runs again.
    Completed,
    /// Failed for good; `error` holds why. Replays see the same failure.
    Failed,
    /// A failed attempt; retried at `wake_at`.
    Retrying,
    /// Sleeping until `wake_at`.
    Sleeping,
    /// Waiting for an event or a child run (timeout at `wake_at`, if any).
    Waiting,
}

/// A checkpoint: one step's record in a run's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step id, unique in the run (`:n` suffix for repeats).
    pub id: String,
    /// Order in which the handler first reached it (0-based).
    pub position: u32,
    /// What kind of step.
    pub kind: StepKind,
    /// Its status.
    pub status: StepStatus,
    /// How many times its code ran (for `run` steps).
    pub attempts: u32,
    /// Result, once completed.
    pub output: Option<Value>,
    /// Last error, if any.
    pub error: Option<String>,
    /// When the step was first reached (ms).
    pub started_at: i64,
    /// When it completed or failed (ms).
    pub ended_at: Option<i64>,
    /// Wake-up time for sleeps and retries; timeout for waits.
    pub wake_at: Option<i64>,
    /// Kind-specific detail (waited event and condition, invoked run id).
    pub detail: Option<Value>,
}

impl StepRecord {
    /// The event name a `wait_for_event` step waits for.
    #[must_use]
    pub fn waited_event(&self) -> Option<&str> {
        if self.kind != StepKind::WaitForEvent {
            return None;
        }
        self.detail.as_ref()?.get("event")?.as_str()
    }
}

/// What a waiter does when a matching event arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiterKind {
    /// Completes a `wait_for_event` step with the event.
    Step,
    /// Cancels the run (`cancel_on`).
    Cancel,
}

/// A registered interest of a run in a future event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiter {
    /// The event name waited for.
    pub event: String,
    /// The waiting run.
    pub run_id: String,
    /// The waiting run's function (its queue receives the resume).
    pub function_id: String,
    /// The step id (or `cancel:<n>` for `cancel_on` entries).
    pub step_id: String,
    /// What a match does.
    pub kind: WaiterKind,
    /// CEL condition over `event` (the run's trigger) and `async` (the new event).
    pub condition: Option<String>,
    /// The run's trigger event, bound as `event` when evaluating the
    /// condition: the part of it the condition reads ([`Waiter::trigger_for`]).
    pub trigger: Value,
    /// Only events received at or after this time (ms) count.
    pub registered_at: i64,
    /// No match after this time (ms).
    pub expires_at: Option<i64>,
}

impl Waiter {
    /// What a waiter with `condition` keeps of its run's `trigger`: what the
    /// condition reads of `event` (`Expr::reads_of`), nothing without a
    /// condition. A waiter is stored, and read by every route of its event
    /// name, so a large trigger whose one field a match compares costs a few
    /// bytes, not its whole size, in each.
    #[must_use]
    pub fn trigger_for(condition: Option<&crate::expr::Expr>, trigger: &Value) -> Value {
        condition.map_or(Value::Null, |expr| expr.reads_of("event", trigger))
    }

    /// The key that identifies it in the store.
    #[must_use]
    pub fn key(&self) -> WaiterKey {
        WaiterKey {
            event: self.event.clone(),
            run_id: self.run_id.clone(),
            step_id: self.step_id.clone(),
        }
    }
}

/// Identifies a waiter: event name, run and step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WaiterKey {
    /// The event name waited for.
    pub event: String,
    /// The waiting run.
    pub run_id: String,
    /// The step id (or `cancel:<n>`).
    pub step_id: String,
}

/// Where a message goes: the router, or one function's queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "queue", content = "function")]
pub enum Target {
    /// The event router.
    Router,
    /// The queue of the named function.
    Function(String),
}

impl Target {
    /// `router` or `fn:<id>`, used as a queue name by the embedded backend.
    #[must_use]
    pub fn queue_name(&self) -> String {
        match self {
            Self::Router => "router".to_owned(),
            Self::Function(id) => format!("fn:{id}"),
        }
    }

    /// Parses [`Target::queue_name`].
    #[must_use]
    pub fn from_queue_name(name: &str) -> Option<Self> {
        match name {
            "router" => Some(Self::Router),
            _ => name
                .strip_prefix("fn:")
                .map(|id| Self::Function(id.to_owned())),
        }
    }
}

/// Work carried by the queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Message {
    /// Route a stored event: resolve waiters, apply cancel_on, start functions.
    /// The webhook attaches the event it has just stored (up to
    /// [`crate::limits::CARRIED_EVENT_BYTES`]) when its store keeps runs'
    /// events apart (DynamoDB).
    Route {
        /// The stored event's id.
        event_id: String,
        /// The event as it was stored, when whoever stored it attached it
        /// (the router then need not read it back); absent, the router reads
        /// the stored event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored: Option<Box<crate::store::StoredEvent>>,
    },
    /// Start one function's run for a stored event, as routing would have
    /// (a resumed function's held events).
    RouteTo {
        /// The stored event's id.
        event_id: String,
        /// The function.
        function_id: String,
        /// The event as it was routed (what a resume found in the routed
        /// records, which outlive the event log's retention when they
        /// triggered a function); absent, the router reads the event log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored: Option<Box<crate::store::StoredEvent>>,
    },
    /// Start a new run.
    Start {
        /// The run.
        run_id: String,
        /// For a start flow control put off: the time it was sent for, which
        /// must still be the run's `not_before` (a later decision supersedes
        /// it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<i64>,
        /// The routed event the run was created for, when the router
        /// attached it for a store that keeps it apart from the run (see
        /// [`crate::store::RunStore::load_started_run`]); never kept in an
        /// outbox ([`crate::transition::Outgoing::as_kept`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<Box<crate::store::StoredEvent>>,
    },
    /// Resume a suspended run (a timer fired: sleep, retry, timeout).
    Resume {
        /// The run.
        run_id: String,
    },
    /// Give a waiting step its answer and resume its run, in one transition.
    Resolve {
        /// The waiting run.
        run_id: String,
        /// Its waiting step (`wait_for_event` or `invoke`).
        step_id: String,
        /// The answer.
        with: Resolution,
    },
    /// Apply a requested cancellation (see `RunStore::request_cancel`).
    Cancel {
        /// The run.
        run_id: String,
        /// Why.
        reason: String,
    },
    /// Start a child run for `step.invoke` (handled by the router, which
    /// knows every function).
    Invoke {
        /// The function to run.
        function_id: String,
        /// The child's event data.
        data: serde_json::Value,
        /// The child run's id (derived from parent and step).
        child_run_id: String,
        /// When the invoke step was reached (ms): the child event's `ts`.
        at: i64,
        /// The waiting step.
        parent: ParentStep,
    },
    /// Start a new run with a finished run's function and event (router).
    Replay {
        /// The run to replay.
        run_id: String,
        /// The new run's id.
        new_run_id: String,
        /// Rerun from this step: the new run starts with the original's
        /// records of the steps before it (a plain replay when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_step: Option<String>,
    },
    /// Fire a cron trigger due at `at`.
    Cron {
        /// The cron-triggered function.
        function_id: String,
        /// Scheduled time: ms since the epoch, or an RFC 3339 string (what
        /// EventBridge Scheduler's `<aws.scheduler.scheduled-time>` gives).
        #[serde(deserialize_with = "ms_or_rfc3339")]
        at: i64,
    },
}

impl Message {
    /// Its kind, as it is serialized (`start`, `resume`, `route`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Route { .. } => "route",
            Self::RouteTo { .. } => "route_to",
            Self::Start { .. } => "start",
            Self::Resume { .. } => "resume",
            Self::Resolve { .. } => "resolve",
            Self::Cancel { .. } => "cancel",
            Self::Invoke { .. } => "invoke",
            Self::Replay { .. } => "replay",
            Self::Cron { .. } => "cron",
        }
    }

    /// The run it acts on (the new run for a replay or an invoke), if one.
    #[must_use]
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Self::Start { run_id, .. }
            | Self::Resume { run_id }
            | Self::Resolve { run_id, .. }
            | Self::Cancel { run_id, .. } => Some(run_id),
            Self::Replay { new_run_id, .. } => Some(new_run_id),
            Self::Invoke { child_run_id, .. } => Some(child_run_id),
            Self::Route { .. } | Self::RouteTo { .. } | Self::Cron { .. } => None,
        }
    }
}

/// The answer a waiting step receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resolution {
    /// A stored event matched the `wait_for_event` step.
    Event {
        /// The event's id.
        event_id: String,
    },
    /// The invoked run finished (or holds the idempotency key).
    Child {
        /// The child run's id.
        run_id: String,
    },
    /// The invoke could not start; the step fails with this message.
    Error {
        /// Why.
        message: String,
    },
}

/// A message with its destination and optional dedupe key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Where it goes.
    pub target: Target,
    /// What to do.
    pub message: Message,
    /// Messages with the same key are scheduled once (cron ticks).
    #[serde(default)]
    pub dedupe_key: Option<String>,
    /// Not to be handled before this time (ms): set on timers whose transport
    /// may deliver early (EventBridge Scheduler fires up to a minute early by
    /// design); a consumer that gets it early re-queues it for the remainder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
}

impl Envelope {
    /// A message asking the router to route stored event `event_id`.
    #[must_use]
    pub fn route(event_id: &str) -> Self {
        Self::new(
            Target::Router,
            Message::Route {
                event_id: event_id.to_owned(),
                stored: None,
            },
        )
    }

    /// A message asking the router to route `stored`, just stored as it is:
    /// the message carries it, so the router need not read it back.
    #[must_use]
    pub fn route_stored(stored: crate::store::StoredEvent) -> Self {
        Self::new(
            Target::Router,
            Message::Route {
                event_id: stored.event.id.clone(),
                stored: Some(Box::new(stored)),
            },
        )
    }

    /// A message for `target` without a dedupe key.
    #[must_use]
    pub fn new(target: Target, message: Message) -> Self {
        Self {
            target,
            message,
            dedupe_key: None,
            not_before: None,
        }
    }
}

fn ms_or_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Time {
        Ms(i64),
        Text(String),
    }
    match Time::deserialize(d)? {
        Time::Ms(ms) => Ok(ms),
        Time::Text(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| {
                serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_messages_accept_the_schedulers_time_format() {
        let from_scheduler: Message = serde_json::from_str(
            r#"{"type":"cron","function_id":"daily","at":"2027-01-01T09:00:00Z"}"#,
        )
        .unwrap();
        let from_engine: Message =
            serde_json::from_str(r#"{"type":"cron","function_id":"daily","at":1798794000000}"#)
                .unwrap();
        assert_eq!(from_scheduler, from_engine);
        assert!(
            serde_json::from_str::<Message>(r#"{"type":"cron","function_id":"d","at":"soon"}"#)
                .is_err()
        );
    }

    #[test]
    fn a_stored_body_leaves_out_empty_fields_and_reads_back_whole() {
        let event = Event::new("order/paid", serde_json::json!({"id": 7}));
        let mut run = Run::new("r1".into(), "fulfil", event.clone(), 1_000);
        let body = run.stored_body().unwrap();
        assert!(!body.contains("null"), "{body}");
        assert!(!body.contains("order/paid"), "the event is kept apart");
        let back = Run::from_stored(&body, serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!(back, run);
        run.output = Some(serde_json::json!({"ok": true}));
        run.ended_at = Some(2_000);
        let back = Run::from_stored(
            &run.stored_body().unwrap(),
            serde_json::to_value(&event).unwrap(),
        )
        .unwrap();
        assert_eq!(back, run);
    }
}
