//! `step.invoke`: start another function's run and wait for its result.
//!
//! The step records itself as waiting and asks the router (which knows every
//! function) to start the child, in the run's suspension transition. The
//! child's end, or the router's refusal (unknown function), comes back as a
//! [`crate::run::Message::Resolve`] to this run.

use std::future::Future;

use serde_json::{Value, json};

use super::{Change, Next, Step, Wake, replayed, step_error};
use crate::failure::StepError;
use crate::limits::MAX_EVENT_BYTES;
use crate::run::{Envelope, Message, ParentStep, StepKind, StepStatus, Target};
use crate::run_id::derived_run_id;
use crate::transition::Outgoing;

impl Step {
    /// Starts a run of `function_id` with `data` as its event data and waits for
    /// its result; a failed child returns a [`StepError`].
    pub fn invoke(
        &self,
        id: &str,
        function_id: &str,
        data: Value,
    ) -> impl Future<Output = Result<Value, StepError>> + Send + '_ {
        let (id, function_id) = (id.to_owned(), function_id.to_owned());
        async move {
            self.step(&id, StepKind::Invoke, |claim, scope| async move {
                if let Some(rec) = &claim.record {
                    return replayed(rec)
                        .unwrap_or_else(|| Next::Suspend(None, Wake::waiting(rec.wake_at)));
                }
                // Its time: when the parent asked for it.
                let child = derived_run_id(
                    &function_id,
                    scope.now,
                    &[scope.run_id(), &claim.key, "invoke"],
                );
                let mut rec = claim.new_record(StepKind::Invoke, StepStatus::Waiting, scope.now);
                let size = serde_json::to_vec(&data).map_or(usize::MAX, |b| b.len());
                if size > MAX_EVENT_BYTES {
                    rec.status = StepStatus::Failed;
                    rec.ended_at = Some(scope.now);
                    rec.error = Some(format!(
                        "invoke data is {size} bytes, over the {MAX_EVENT_BYTES}-byte event limit"
                    ));
                    return Next::Return(Err(step_error(&rec)), Some(Change::record(rec)));
                }
                rec.detail = Some(json!({"function_id": function_id, "run_id": child}));
                let mut change = Change::record(rec);
                change.outbox.push(Outgoing::Send {
                    envelope: Envelope::new(
                        Target::Router,
                        Message::Invoke {
                            function_id,
                            data,
                            child_run_id: child,
                            at: scope.now,
                            parent: ParentStep {
                                run_id: scope.run_id().to_owned(),
                                function_id: scope.function_id().to_owned(),
                                step_id: claim.key.clone(),
                            },
                        },
                    ),
                });
                Next::Suspend(Some(change), Wake::waiting(None))
            })
            .await
        }
    }
}
