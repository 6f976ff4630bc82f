//! `step.send_event`: events sent once, through the step's checkpoint.
//!
//! The events are the checkpoint transition's outbox, so they are stored and
//! routed exactly when the step is recorded as done. Ids left empty are
//! derived from run and step, so a replay never sends twice.

use std::future::Future;

use serde_json::json;

use super::{Change, Next, Step, replayed, step_error};
use crate::event::{Event, derived_id};
use crate::failure::StepError;
use crate::limits::MAX_EVENTS_PER_SEND;
use crate::run::{StepKind, StepStatus};
use crate::transition::Outgoing;

impl Step {
    /// Sends events once: ids left empty get deterministic ids derived from the
    /// run and step, so a replay never sends twice. Returns the event ids.
    pub fn send_event(
        &self,
        id: &str,
        events: impl IntoIterator<Item = Event>,
    ) -> impl Future<Output = Result<Vec<String>, StepError>> + Send + '_ {
        let id = id.to_owned();
        let mut events: Vec<Event> = events.into_iter().collect();
        async move {
            self.step(&id, StepKind::SendEvent, |claim, scope| async move {
                if let Some(rec) = &claim.record {
                    // A send step is recorded once, completed or failed.
                    return replayed(rec).unwrap_or(Next::Return(Ok(Vec::new()), None));
                }
                let mut rec =
                    claim.new_record(StepKind::SendEvent, StepStatus::Completed, scope.now);
                rec.attempts = 1;
                rec.ended_at = Some(scope.now);
                if events.len() > MAX_EVENTS_PER_SEND {
                    rec.status = StepStatus::Failed;
                    rec.error = Some(format!(
                        "{} events, over the {MAX_EVENTS_PER_SEND}-event limit per send_event",
                        events.len()
                    ));
                    return Next::Return(Err(step_error(&rec)), Some(Change::record(rec)));
                }
                for (i, event) in events.iter_mut().enumerate() {
                    if event.id.is_empty() {
                        event.id = derived_id(&[scope.run_id(), &claim.key, &i.to_string()]);
                    }
                    if let Err(err) = event.prepare(scope.now) {
                        rec.status = StepStatus::Failed;
                        rec.error = Some(err.to_string());
                        return Next::Return(Err(step_error(&rec)), Some(Change::record(rec)));
                    }
                }
                let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
                rec.output = Some(json!(ids));
                let mut change = Change::record(rec);
                if !events.is_empty() {
                    change.outbox.push(Outgoing::Events {
                        events,
                        sent_at: scope.now,
                    });
                }
                Next::Return(Ok(ids), Some(change))
            })
            .await
        }
    }
}
