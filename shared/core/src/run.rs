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
}

impl RunStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Running,
        Self::Sleeping,
        Self::Waiting,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// True once the run can never change again.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
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
    /// The invoke step in it.
    pub step_id: String,
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
        }
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
    /// The run's trigger event, bound as `event` when evaluating the condition.
    pub trigger: Value,
    /// Only events received at or after this time (ms) count.
    pub registered_at: i64,
    /// No match after this time (ms).
    pub expires_at: Option<i64>,
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
    Route {
        /// The stored event's id.
        event_id: String,
    },
    /// Start a new run.
    Start {
        /// The run.
        run_id: String,
    },
    /// Resume a suspended run (timer fired, event arrived, retry due).
    Resume {
        /// The run.
        run_id: String,
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
}
