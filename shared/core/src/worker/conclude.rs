//! The transitions that conclude an execution: suspend (with the timer that
//! resumes the run), retry the handler later, or finish — removing the run's
//! waiters, answering its parent and announcing a failure, in the same commit.

use serde_json::json;

use super::resume_at;
use crate::event::{Event, FUNCTION_FAILED, derived_id};
use crate::run::{Envelope, Message, Resolution, Run, RunStatus, StepRecord, Target};
use crate::step::Change;
use crate::transition::{Fence, Outgoing, Transition};

/// Suspends `run` with what its suspending steps recorded; resumes it at
/// `wake_at`, if any.
pub(super) fn suspend(
    fence: Fence,
    mut run: Run,
    pending: Change,
    wake_at: Option<i64>,
    waiting: bool,
) -> Transition {
    run.status = if waiting {
        RunStatus::Waiting
    } else {
        RunStatus::Sleeping
    };
    run.wake_at = wake_at;
    run.lease = None;
    let mut transition = with_pending(fence, run, pending);
    if let Some(at) = wake_at {
        transition.outbox.push(resume_at(&transition.run, at));
    }
    transition
}

/// Schedules a replay of the handler at `at` after it failed with `error`.
pub(super) fn retry(
    fence: Fence,
    mut run: Run,
    pending: Change,
    at: i64,
    error: &str,
) -> Transition {
    run.status = RunStatus::Sleeping;
    run.attempt += 1;
    run.wake_at = Some(at);
    run.error = Some(error.to_owned());
    run.lease = None;
    tracing::warn!(run.id = %run.id, attempt = run.attempt, error, "handler failed; retry scheduled");
    let mut transition = with_pending(fence, run, pending);
    transition.outbox.push(resume_at(&transition.run, at));
    transition
}

fn with_pending(fence: Fence, run: Run, pending: Change) -> Transition {
    Transition {
        steps: pending.steps,
        waiters_added: pending.waiters_added,
        waiters_removed: pending.waiters_removed,
        outbox: pending.outbox,
        ..Transition::new(fence, run)
    }
}

/// Finishes `run` with `status` (its output or error already set): removes
/// every waiter it leaves, answers its parent's `invoke` step and, for a
/// failure, emits `hookflow/function.failed`. What suspending steps recorded
/// is kept for the timeline; their waiters and messages are dropped.
pub(crate) fn conclude(
    fence: Fence,
    mut run: Run,
    journal: &[StepRecord],
    pending: Change,
    status: RunStatus,
    now: i64,
) -> Transition {
    run.status = status;
    run.ended_at = Some(now);
    run.wake_at = None;
    run.lease = None;
    run.cancel_requested = None;
    if status == RunStatus::Completed {
        run.error = None;
    }
    tracing::info!(run.id = %run.id, function = %run.function_id, status = status.as_str(), error = run.error.as_deref(), "run finished");
    let mut transition = Transition::new(fence, run);
    let run = &transition.run;
    let added: Vec<_> = pending
        .waiters_added
        .iter()
        .map(crate::run::Waiter::key)
        .collect();
    transition.waiters_removed = run
        .waiters_left(journal)
        .into_iter()
        .filter(|key| !added.contains(key))
        .chain(pending.waiters_removed)
        .collect();
    let mut seen = std::collections::HashSet::new();
    transition
        .waiters_removed
        .retain(|key| seen.insert(key.clone()));
    let mut outbox = Vec::new();
    if let Some(parent) = &run.parent {
        outbox.push(Outgoing::Send {
            envelope: Envelope::new(
                Target::Function(parent.function_id.clone()),
                Message::Resolve {
                    run_id: parent.run_id.clone(),
                    step_id: parent.step_id.clone(),
                    with: Resolution::Child {
                        run_id: run.id.clone(),
                    },
                },
            ),
        });
    }
    if status == RunStatus::Failed && run.event.name != FUNCTION_FAILED {
        let failed = Event::new(
            FUNCTION_FAILED,
            json!({
                "function_id": run.function_id,
                "run_id": run.id,
                "error": run.error,
                "event": run.event,
            }),
        )
        .with_id(derived_id(&["failed", &run.id]))
        .with_ts(now);
        outbox.push(Outgoing::Events {
            events: vec![failed],
            sent_at: now,
        });
    }
    transition.outbox = outbox;
    transition.steps = pending.steps;
    transition
}
