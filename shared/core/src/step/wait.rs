//! `step.wait_for_event`: the next matching event after the wait began, or
//! `None` at the timeout, for a name the function declares
//! ([`crate::Function::waits_for`]). The waiter is registered in the run's suspension
//! transition; the router answers with a [`crate::run::Message::Resolve`],
//! which the run's worker applies under its lease, so the event and the
//! timeout can never both win.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Change, DEFAULT_WAIT_TIMEOUT, Next, Step, Wake, replayed, step_error};
use crate::clock::duration_ms;
use crate::event::Event;
use crate::expr::Expr;
use crate::failure::StepError;
use crate::function::match_condition;
use crate::run::{StepKind, StepStatus, Waiter, WaiterKind};

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

impl Step {
    /// Waits for an event received after this call, or returns `None` after the
    /// timeout. Exactly one of the event and the timeout wins.
    pub fn wait_for_event(
        &self,
        id: &str,
        wait: WaitFor,
    ) -> impl Future<Output = Result<Option<Event>, StepError>> + Send + '_ {
        let id = id.to_owned();
        async move {
            self.step(&id, StepKind::WaitForEvent, |claim, scope| async move {
                if let Some(rec) = &claim.record {
                    if let Some(done) = replayed(rec) {
                        return done;
                    }
                    let expires = rec.wake_at.unwrap_or(i64::MAX);
                    if scope.now < expires {
                        return Next::Suspend(None, Wake::waiting(rec.wake_at));
                    }
                    // The timeout won: no event resolved the step before it.
                    let mut timed_out = rec.clone();
                    timed_out.status = StepStatus::Completed;
                    timed_out.output = Some(Value::Null);
                    timed_out.ended_at = Some(scope.now);
                    let mut change = Change::record(timed_out);
                    change.waiters_removed.push(crate::run::WaiterKey {
                        event: wait.event.clone(),
                        run_id: scope.run_id().to_owned(),
                        step_id: claim.key.clone(),
                    });
                    return Next::Return(Ok(None), Some(change));
                }
                let fail = |error: String| {
                    let mut rec =
                        claim.new_record(StepKind::WaitForEvent, StepStatus::Failed, scope.now);
                    rec.error = Some(error);
                    rec.ended_at = Some(scope.now);
                    Next::Return(Err(step_error(&rec)), Some(Change::record(rec)))
                };
                if !scope.waits_for(&wait.event) {
                    // The router would never look for this waiter.
                    return fail(format!(
                        "function `{}` waits for `{}` without declaring it: add \
                         `.waits_for(\"{}\")` to its definition",
                        scope.function_id(),
                        wait.event,
                        wait.event
                    ));
                }
                let condition = match wait.condition.as_deref().map(Expr::compile).transpose() {
                    Ok(condition) => condition,
                    Err(err) => return fail(err.to_string()),
                };
                let expires = scope.now.saturating_add(duration_ms(wait.timeout));
                let mut rec =
                    claim.new_record(StepKind::WaitForEvent, StepStatus::Waiting, scope.now);
                rec.wake_at = Some(expires);
                rec.detail = Some(json!({"event": wait.event, "condition": wait.condition}));
                let mut change = Change::record(rec);
                change.waiters_added.push(Waiter {
                    event: wait.event.clone(),
                    run_id: scope.run_id().to_owned(),
                    function_id: scope.function_id().to_owned(),
                    step_id: claim.key.clone(),
                    kind: WaiterKind::Step,
                    condition: wait.condition.clone(),
                    trigger: Waiter::trigger_for(condition.as_ref(), scope.trigger()),
                    registered_at: scope.now,
                    expires_at: Some(expires),
                });
                Next::Suspend(Some(change), Wake::waiting(Some(expires)))
            })
            .await
        }
    }
}
