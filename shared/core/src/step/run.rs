//! `step.run`: user code, run once and checkpointed; retried with backoff.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use super::{CURRENT_STEP, Change, MAX_STEP_OUTPUT_BYTES, Next, Step, Wake, replayed, step_error};
use crate::clock::duration_ms;
use crate::failure::{StepError, Verdict, backoff, classify};
use crate::run::{StepKind, StepStatus};

impl Step {
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
        let id = id.to_owned();
        async move {
            self.step(&id, StepKind::Run, |claim, scope| async move {
                let (attempts, started_at) = match &claim.record {
                    Some(rec) => {
                        if let Some(done) = replayed(rec) {
                            return done;
                        }
                        if let Some(at) = rec.wake_at.filter(|at| *at > scope.now) {
                            return Next::Suspend(None, Wake::at(at)); // retry not due yet
                        }
                        (rec.attempts, rec.started_at)
                    }
                    None => (0, scope.now),
                };
                // Logs written by the step's code carry its id.
                let span = tracing::info_span!("step", step.id = %claim.key);
                let result = CURRENT_STEP
                    .scope(claim.key.clone(), AssertUnwindSafe(f()).catch_unwind())
                    .instrument(span)
                    .await;
                let attempt = attempts + 1;
                let outcome = match result {
                    Ok(Ok(value)) => encode(&claim.key, &value).map(|json| (value, json)),
                    Ok(Err(err)) => Err(err),
                    Err(panic) => Err(anyhow::anyhow!("step panicked: {}", panic_message(&*panic))),
                };
                let now = scope.clock();
                let mut rec = claim.new_record(StepKind::Run, StepStatus::Completed, started_at);
                rec.attempts = attempt;
                rec.ended_at = Some(now);
                let err = match outcome {
                    Ok((value, json)) => {
                        rec.output = Some(json);
                        return Next::Return(Ok(value), Some(Change::record(rec)));
                    }
                    Err(err) => err,
                };
                rec.error = Some(format!("{err:#}"));
                let retry_at = match classify(&err) {
                    _ if attempt > scope.retries() => None,
                    Verdict::Final => None,
                    Verdict::Retry => {
                        let seed = format!("{}/{}", scope.run_id(), claim.key);
                        Some(now + duration_ms(backoff(attempt, &seed)))
                    }
                    Verdict::RetryAfter(after) => Some(now + duration_ms(after)),
                };
                match retry_at {
                    Some(at) => {
                        rec.status = StepStatus::Retrying;
                        rec.ended_at = None;
                        rec.wake_at = Some(at);
                        Next::Suspend(Some(Change::record(rec)), Wake::at(at))
                    }
                    None => {
                        rec.status = StepStatus::Failed;
                        Next::Return(Err(step_error(&rec)), Some(Change::record(rec)))
                    }
                }
            })
            .await
        }
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> anyhow::Result<Value> {
    let json = serde_json::to_value(value)?;
    let size = serde_json::to_vec(&json)?.len();
    if size > MAX_STEP_OUTPUT_BYTES {
        return Err(crate::failure::NonRetriable::new(format!(
            "step `{key}` output is {size} bytes, over the {MAX_STEP_OUTPUT_BYTES}-byte step output limit; \
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
