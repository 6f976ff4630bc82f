//! The executor: drives a run's handler over its journal until it returns, or
//! until every step has either finished or asked to suspend, and says how the
//! run ends this time ([`Ending`]) with what suspending steps recorded.
//!
//! It never reads the clock or storage on its own: time and checkpoints go
//! through [`Checkpoints`], which the worker implements with fenced commits.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::duration_ms;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::failure::{Verdict, backoff, classify};
use crate::function::{Ctx, Function};
use crate::run::{Run, StepRecord};
use crate::step::{Change, Checkpoints, Halt, Step};

pub use crate::limits::MAX_RUN_OUTPUT_BYTES;

/// How an execution of a run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// The handler returned this value.
    Completed(Value),
    /// The run failed for good with this error.
    Failed(String),
    /// Every step is done or waiting: resume at `wake_at` (if any) or on an answer.
    Suspended {
        /// Earliest time something is due (sleep end, retry, wait timeout).
        wake_at: Option<i64>,
        /// True if some step waits for an event or a child run.
        waiting: bool,
    },
    /// The handler itself failed; replay it at `at`.
    RetryAt {
        /// When to retry (ms).
        at: i64,
        /// The error.
        error: String,
    },
    /// The run was cancelled (requested, `cancel_on`, finish timeout).
    Cancelled(String),
    /// The lease was lost: stop without writing anything.
    LeaseLost,
}

/// An execution's result: how it ended, and what suspending steps recorded.
pub(crate) struct Execution {
    pub(crate) ending: Ending,
    pub(crate) pending: Change,
}

/// Executes `run` of `function` over its `journal`.
///
/// # Errors
/// A storage error from a checkpoint; the run's delivery should be retried.
pub(crate) async fn execute(
    function: &Function,
    run: &Run,
    journal: Vec<StepRecord>,
    checkpoints: Arc<dyn Checkpoints>,
    finish_by: Option<i64>,
    events: Vec<Event>,
) -> Result<Execution> {
    let Some(handler) = function.handler_fn() else {
        return Ok(Execution {
            ending: Ending::Failed(format!("function `{}` has no handler", function.id())),
            pending: Change::default(),
        });
    };
    let trigger = serde_json::to_value(&run.event)?;
    let step = Step::new(
        &run.id,
        function.id(),
        function.awaited_events(),
        trigger,
        function.retry_count(),
        finish_by,
        journal,
        checkpoints.clone(),
    );
    let ctx = Ctx {
        event: run.event.clone(),
        events,
        step: step.clone(),
        run_id: run.id.clone(),
        attempt: run.attempt,
    };
    let handler_future = handler(ctx);
    let result = tokio::select! {
        biased;
        result = handler_future => Some(result),
        () = step.stopped() => None,
    };
    let state = step.take_state();
    let pending = state.pending;
    let ending = match (state.halt, result) {
        (Some(Halt::Cancelled(reason)), _) => Ending::Cancelled(reason),
        (Some(Halt::Fail(reason)), _) => Ending::Failed(reason),
        (Some(Halt::LeaseLost), _) => Ending::LeaseLost,
        (Some(Halt::Store(err)), _) => return Err(err),
        (None, None) => Ending::Suspended {
            wake_at: state.wake_at,
            waiting: state.waiting,
        },
        (None, Some(result)) => returned(function, run, result, checkpoints.now())?,
    };
    Ok(Execution { ending, pending })
}

/// The ending of a handler that returned.
fn returned(
    function: &Function,
    run: &Run,
    result: anyhow::Result<Value>,
    now: i64,
) -> Result<Ending> {
    Ok(match result {
        Ok(output) => {
            let size = serde_json::to_vec(&output).map_err(Error::from)?.len();
            if size > MAX_RUN_OUTPUT_BYTES {
                Ending::Failed(format!(
                    "run output is {size} bytes, over the {MAX_RUN_OUTPUT_BYTES}-byte run output limit"
                ))
            } else {
                Ending::Completed(output)
            }
        }
        Err(err) => {
            let error = format!("{err:#}");
            let retry = run.attempt + 1;
            match classify(&err) {
                Verdict::Final => Ending::Failed(error),
                _ if run.attempt >= function.retry_count() => Ending::Failed(error),
                Verdict::Retry => Ending::RetryAt {
                    at: now + duration_ms(backoff(retry, &run.id)),
                    error,
                },
                Verdict::RetryAfter(after) => Ending::RetryAt {
                    at: now + duration_ms(after),
                    error,
                },
            }
        }
    })
}
