//! The executor: a function of (definition, run, journal) to an [`Outcome`].
//!
//! It drives the handler until it returns, or until every step has either
//! finished or asked to suspend. Checkpoints go through the step backend as
//! the handler runs (so a crash loses at most the step in flight); everything
//! else, such as the run's new status and its wake-up timer, is returned for
//! the engine to apply. It never reads the clock or storage on its own.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::duration_ms;
use crate::error::{Error, Result};
use crate::failure::{Verdict, backoff, classify};
use crate::function::{Ctx, Function};
use crate::run::{Run, StepRecord};
use crate::step::{Halt, Step, StepBackend};

/// Largest run output kept (256 KiB).
pub const MAX_RUN_OUTPUT_BYTES: usize = 256 * 1024;

/// What an execution of a run ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler returned this value.
    Completed(Value),
    /// The run failed for good with this error.
    Failed(String),
    /// Every step is done or waiting: resume at `wake_at` (if any) or on an event.
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
    /// The run was cancelled (request, cancel_on, finish timeout).
    Cancelled(String),
}

/// Executes `run` of `function` over its `journal`.
///
/// # Errors
/// A storage error from a checkpoint; the run's delivery should be retried.
pub(crate) async fn execute(
    function: &Function,
    run: &Run,
    journal: Vec<StepRecord>,
    backend: Arc<dyn StepBackend>,
    deadline: Option<i64>,
) -> Result<Outcome> {
    let Some(handler) = function.handler_fn() else {
        return Ok(Outcome::Failed(format!(
            "function `{}` has no handler",
            function.id()
        )));
    };
    let trigger = serde_json::to_value(&run.event)?;
    let step = Step::new(
        &run.id,
        function.id(),
        trigger,
        function.retry_count(),
        deadline,
        journal,
        backend.clone(),
    );
    let ctx = Ctx {
        event: run.event.clone(),
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
    if let Some(halt) = state.halt {
        return match halt {
            Halt::Cancelled(reason) => Ok(Outcome::Cancelled(reason)),
            Halt::NonDeterministic(reason) => Ok(Outcome::Failed(reason)),
            Halt::Store(err) => Err(err),
        };
    }
    let Some(result) = result else {
        return Ok(Outcome::Suspended {
            wake_at: state.wake_at,
            waiting: state.waiting,
        });
    };
    let now = backend.now();
    Ok(match result {
        Ok(output) => {
            let size = serde_json::to_vec(&output).map_err(Error::from)?.len();
            if size > MAX_RUN_OUTPUT_BYTES {
                Outcome::Failed(format!(
                    "run output is {size} bytes, over the {MAX_RUN_OUTPUT_BYTES}-byte limit"
                ))
            } else {
                Outcome::Completed(output)
            }
        }
        Err(err) => {
            let error = format!("{err:#}");
            let retry = run.attempt + 1;
            match classify(&err) {
                Verdict::Final => Outcome::Failed(error),
                _ if run.attempt >= function.retry_count() => Outcome::Failed(error),
                Verdict::Retry => Outcome::RetryAt {
                    at: now + duration_ms(backoff(retry, &run.id)),
                    error,
                },
                Verdict::RetryAfter(after) => Outcome::RetryAt {
                    at: now + duration_ms(after),
                    error,
                },
            }
        }
    })
}
