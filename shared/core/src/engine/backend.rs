//! The step backend of one run: how the step API reaches the store.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::error::Result;
use crate::event::{Event, INVOKE_REQUESTED, INVOKED};
use crate::run::{ParentStep, Run, StepRecord, Waiter};
use crate::step::StepBackend;
use crate::store::Store;

use super::{Engine, waiter_matches};

/// Events scanned when a new waiter catches up with events that arrived while
/// it was being registered.
const CATCH_UP_LIMIT: usize = 100;

pub(super) struct RunBackend<S> {
    engine: Engine<S>,
    run_id: String,
}

impl<S: Store> RunBackend<S> {
    pub(super) fn new(engine: Engine<S>, run: &Run) -> Self {
        Self {
            engine,
            run_id: run.id.clone(),
        }
    }
}

impl<S: Store> StepBackend for RunBackend<S> {
    fn now(&self) -> i64 {
        self.engine.now()
    }

    fn put_step(&self, step: StepRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.engine.store.put_step(&self.run_id, &step).await })
    }

    fn get_step(&self, step_id: &str) -> BoxFuture<'_, Result<Option<StepRecord>>> {
        let step_id = step_id.to_owned();
        Box::pin(async move { self.engine.store.get_step(&self.run_id, &step_id).await })
    }

    fn resolve_step(&self, step: StepRecord) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { self.engine.store.resolve_step(&self.run_id, &step).await })
    }

    fn register_waiter(&self, waiter: Waiter) -> BoxFuture<'_, Result<Option<Value>>> {
        Box::pin(async move {
            let store = &self.engine.store;
            store.add_waiter(&waiter).await?;
            // An event routed between "decided to wait" and "waiter stored" was
            // not matched by the router: match it here. Both sides go through
            // the same conditional write, so it is delivered exactly once.
            let now = self.engine.now();
            for stored in store
                .events_since(&waiter.event, waiter.registered_at, CATCH_UP_LIMIT)
                .await?
            {
                if stored.event.ts > now {
                    continue; // routed later, at its time
                }
                let candidate = serde_json::to_value(&stored.event)?;
                if waiter_matches(&waiter, &candidate) {
                    let won = self
                        .engine
                        .resolve_waiting_step(&waiter, candidate.clone(), false)
                        .await?;
                    if won {
                        return Ok(Some(candidate));
                    }
                    // Someone else resolved it: read what they wrote.
                    let step = store.get_step(&waiter.run_id, &waiter.step_id).await?;
                    return Ok(step.and_then(|s| s.output));
                }
            }
            Ok(None)
        })
    }

    fn remove_waiter(&self, event: &str, step_id: &str) -> BoxFuture<'_, Result<()>> {
        let (event, step_id) = (event.to_owned(), step_id.to_owned());
        Box::pin(async move {
            self.engine
                .store
                .remove_waiter(&event, &self.run_id, &step_id)
                .await
        })
    }

    fn send_events(&self, events: Vec<Event>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.engine.ingest(events).await.map(|_| ()) })
    }

    fn invoke(
        &self,
        function_id: &str,
        data: Value,
        child_run_id: String,
        parent: ParentStep,
    ) -> BoxFuture<'_, Result<bool>> {
        let function_id = function_id.to_owned();
        Box::pin(async move {
            let Some(function) = self.engine.registry.get(&function_id).cloned() else {
                // This deployment unit does not carry the function: the router,
                // which has every function, starts it (or fails the step).
                let request = Event::new(
                    INVOKE_REQUESTED,
                    json!({"function_id": function_id, "data": data, "parent": parent}),
                )
                .with_id(child_run_id);
                self.engine.ingest(vec![request]).await?;
                return Ok(true);
            };
            let event = Event::new(INVOKED, data)
                .with_id(child_run_id.clone())
                .with_ts(self.engine.now());
            self.engine
                .start_run(&function, event, child_run_id, Some(parent))
                .await?;
            Ok(true)
        })
    }

    fn is_cancelled(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            Ok(self
                .engine
                .store
                .get_run(&self.run_id)
                .await?
                .is_none_or(|run| run.status.is_terminal()))
        })
    }
}
