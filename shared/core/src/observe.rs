//! What runs report as they move, through the [`metrics`] facade: nothing
//! is recorded until a process installs a recorder (the Lambdas install
//! CloudWatch Embedded Metric Format, see `hookflow-aws`'s `telemetry`), so
//! the engine itself depends on no metrics backend.
//!
//! Counters per function (label `Function`) and for the whole deployment
//! (no label, for alarms on the total): runs started, completed, failed,
//! cancelled. Distributions for the whole deployment, in milliseconds: a
//! run's start delay (from its event's time to its first start: queueing,
//! flow control and any delay on purpose; replays left out), its duration (start to end,
//! sleeps included), each step's duration (first reached to finished,
//! retries included) and attempts. Metric names are the [`names`].

use crate::run::{Run, RunStatus, StepKind, StepRecord, StepStatus};

/// The metric names.
pub mod names {
    /// Runs that started (first lease taken).
    pub const RUNS_STARTED: &str = "RunsStarted";
    /// Runs that completed.
    pub const RUNS_COMPLETED: &str = "RunsCompleted";
    /// Runs that failed.
    pub const RUNS_FAILED: &str = "RunsFailed";
    /// Runs that were cancelled.
    pub const RUNS_CANCELLED: &str = "RunsCancelled";
    /// Time from a run's event to its first start (ms).
    pub const START_DELAY: &str = "StartDelay";
    /// Time from a run's first start to its end (ms).
    pub const RUN_DURATION: &str = "RunDuration";
    /// Time from a `run` step's first attempt to its last (ms).
    pub const STEP_DURATION: &str = "StepDuration";
    /// Attempts a finished `run` step took.
    pub const STEP_ATTEMPTS: &str = "StepAttempts";
    /// Failed attempts of `run` steps that will be retried.
    pub const STEP_RETRIES: &str = "StepRetries";
    /// Label naming the function.
    pub const FUNCTION: &str = "Function";
}

use names::*;

/// Describes the metrics' units to the installed recorder (call once,
/// after installing it).
pub fn describe() {
    use metrics::Unit;
    for name in [
        RUNS_STARTED,
        RUNS_COMPLETED,
        RUNS_FAILED,
        RUNS_CANCELLED,
        STEP_RETRIES,
    ] {
        metrics::describe_counter!(name, Unit::Count, "");
    }
    for name in [START_DELAY, RUN_DURATION, STEP_DURATION] {
        metrics::describe_histogram!(name, Unit::Milliseconds, "");
    }
    metrics::describe_histogram!(STEP_ATTEMPTS, Unit::Count, "");
}

fn count(name: &'static str, function: &str) {
    metrics::counter!(name, FUNCTION => function.to_owned()).increment(1);
    metrics::counter!(name).increment(1);
}

/// `run` has just started for the first time, at `now`.
pub(crate) fn run_started(run: &Run, now: i64) {
    count(RUNS_STARTED, &run.function_id);
    // A replay's event is the original's (days old, perhaps): its delay
    // says nothing about the system's.
    if run.replay_of.is_none() {
        let since = if (1..=now).contains(&run.event.ts) {
            run.event.ts
        } else {
            run.created_at
        };
        metrics::histogram!(START_DELAY).record((now - since).max(0) as f64);
    }
}

/// `run`'s committed state, if it has just ended.
pub(crate) fn run_ended(run: &Run) {
    let name = match run.status {
        RunStatus::Completed => RUNS_COMPLETED,
        RunStatus::Failed => RUNS_FAILED,
        RunStatus::Cancelled => RUNS_CANCELLED,
        _ => return,
    };
    count(name, &run.function_id);
    if let (Some(started), Some(ended)) = (run.started_at, run.ended_at) {
        metrics::histogram!(RUN_DURATION).record((ended - started).max(0) as f64);
    }
}

/// A step record just committed.
pub(crate) fn step_recorded(step: &StepRecord) {
    if step.kind != StepKind::Run {
        return;
    }
    match step.status {
        StepStatus::Completed | StepStatus::Failed => {
            if let Some(ended) = step.ended_at {
                metrics::histogram!(STEP_DURATION).record((ended - step.started_at).max(0) as f64);
            }
            metrics::histogram!(STEP_ATTEMPTS).record(f64::from(step.attempts));
        }
        StepStatus::Retrying => metrics::counter!(STEP_RETRIES).increment(1),
        StepStatus::Sleeping | StepStatus::Waiting => {}
    }
}
