//! Answers for waiting steps: applying one (an event, a child run, an
//! error) in the transition that takes the lease, and catching up on events
//! routed while a run's waiters were being registered.

use super::Worker;
use crate::error::Result;
use crate::router::first_match;
use crate::run::{
    Envelope, Message, Resolution, Run, RunStatus, StepKind, StepRecord, StepStatus, Target,
    Waiter, WaiterKey, WaiterKind,
};
use crate::store::{EventLog, Outbox, RunStore};
use crate::transition::Outgoing;

impl<S> Worker<S>
where
    S: RunStore + EventLog + Outbox + Clone + 'static,
{
    /// The answered step, if the answer still applies: the step is waiting
    /// (an answer that lost the race changes nothing).
    pub(super) async fn resolve(
        &self,
        run: &Run,
        journal: &[StepRecord],
        step_id: &str,
        with: &Resolution,
        now: i64,
    ) -> Result<Option<(StepRecord, Vec<WaiterKey>)>> {
        let Some(step) = journal.iter().find(|s| s.id == step_id) else {
            return Ok(None);
        };
        if step.status != StepStatus::Waiting {
            return Ok(None);
        }
        let mut step = step.clone();
        step.ended_at = Some(now);
        let mut removed = Vec::new();
        match (step.kind, with) {
            (StepKind::WaitForEvent, Resolution::Event { event_id }) => {
                let Some(stored) = self.store.get_event(event_id).await? else {
                    tracing::warn!(run.id = %run.id, event.id = %event_id, "answering event not found; ignored");
                    return Ok(None);
                };
                step.status = StepStatus::Completed;
                step.output = Some(serde_json::to_value(&stored.event)?);
                if let Some(event) = step.waited_event() {
                    removed.push(WaiterKey {
                        event: event.to_owned(),
                        run_id: run.id.clone(),
                        step_id: step.id.clone(),
                    });
                }
            }
            (StepKind::Invoke, Resolution::Child { run_id: child_id }) => {
                let own_child =
                    step.detail.as_ref().and_then(|d| d["run_id"].as_str()) == Some(child_id);
                let Some(child) = self.store.get_run(child_id).await? else {
                    return Ok(None);
                };
                match child.status {
                    RunStatus::Completed => {
                        step.status = StepStatus::Completed;
                        step.output = child.output.clone();
                    }
                    status if status.is_terminal() => {
                        step.status = StepStatus::Failed;
                        step.error = Some(format!(
                            "invoked run {} {}: {}",
                            child.id,
                            status.as_str(),
                            child.error.as_deref().unwrap_or("")
                        ));
                    }
                    _ if own_child => return Ok(None), // a stale answer
                    status => {
                        step.status = StepStatus::Failed;
                        step.error = Some(format!(
                            "function `{}` already has run {} ({}) for this idempotency key; \
                             invoke returns a run's result only once it has finished",
                            child.function_id,
                            child.id,
                            status.as_str()
                        ));
                    }
                }
            }
            (StepKind::Invoke, Resolution::Error { message }) => {
                step.status = StepStatus::Failed;
                step.error = Some(message.clone());
            }
            _ => return Ok(None),
        }
        Ok(Some((step, removed)))
    }

    /// Answers waits registered since `horizon` from events that were
    /// routed while the waiters were being stored: the router may have
    /// looked for waiters before they existed. Both sides answer through the
    /// run's lease, so a wait is answered once even if both find the event.
    /// Reads every event of the waited name since the wait began, page by
    /// page, until one matches.
    pub(super) async fn catch_up(
        &self,
        run: &Run,
        journal: &[StepRecord],
        horizon: i64,
        now: i64,
    ) -> Result<()> {
        let trigger = serde_json::to_value(&run.event)?;
        for step in journal {
            let Some(event_name) = step.waited_event() else {
                continue;
            };
            if step.status != StepStatus::Waiting || step.started_at < horizon {
                continue;
            }
            let waiter = Waiter {
                event: event_name.to_owned(),
                run_id: run.id.clone(),
                function_id: run.function_id.clone(),
                step_id: step.id.clone(),
                kind: WaiterKind::Step,
                condition: step
                    .detail
                    .as_ref()
                    .and_then(|d| d["condition"].as_str())
                    .map(str::to_owned),
                trigger: trigger.clone(),
                registered_at: step.started_at,
                expires_at: step.wake_at,
            };
            if let Some(event_id) = first_match(&self.store, &waiter, now).await? {
                let answer = Envelope::new(
                    Target::Function(run.function_id.clone()),
                    Message::Resolve {
                        run_id: run.id.clone(),
                        step_id: step.id.clone(),
                        with: Resolution::Event { event_id },
                    },
                );
                self.store
                    .deliver(&[Outgoing::Send { envelope: answer }])
                    .await?;
            }
        }
        Ok(())
    }
}
