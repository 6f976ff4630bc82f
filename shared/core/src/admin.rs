//! Operating runs: list them, view one with its timeline, cancel and replay.
//! Cancellation and replay are requests: a message that the run's worker
//! (cancel) or the router (replay) turns into a transition, so they follow
//! the same commit rules as everything else.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::new_id;
use crate::function::Registry;
use crate::run::{Envelope, Message, Run, StepRecord, Target};
use crate::store::{Outbox, RunFilter, RunStore};
use crate::transition::Outgoing;

/// A run with its step timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run.
    #[serde(flatten)]
    pub run: Run,
    /// Its steps in the order the handler reached them.
    pub steps: Vec<StepRecord>,
}

/// The admin role.
#[derive(Clone)]
pub struct Admin<S> {
    store: S,
    registry: Arc<Registry>,
}

impl<S: RunStore + Outbox> Admin<S> {
    /// Admin operations over `store` for the functions of `registry`.
    pub fn new(store: S, registry: Arc<Registry>) -> Self {
        Self { store, registry }
    }

    /// The run with its step timeline.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn run_view(&self, run_id: &str) -> Result<Option<RunView>> {
        Ok(self.store.load_run(run_id).await?.map(|loaded| RunView {
            run: loaded.run,
            steps: loaded.journal,
        }))
    }

    /// Runs matching `filter`, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.store.list_runs(filter).await
    }

    /// Requests the cancellation of a run that has not finished; it stops at
    /// its next step boundary (at once if it is sleeping or waiting). Returns
    /// the run as it was when the request was recorded.
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; [`Error::Conflict`] if the run already finished.
    pub async fn cancel(&self, run_id: &str) -> Result<Run> {
        let run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        let reason = "cancelled by request";
        if run.status.is_terminal()
            || !self
                .store
                .request_cancel(run_id, &run.function_id, reason)
                .await?
        {
            let status = self
                .store
                .get_run(run_id)
                .await?
                .map_or(run.status, |r| r.status);
            return Err(Error::Conflict(format!(
                "run `{run_id}` already {}",
                status.as_str()
            )));
        }
        Ok(Run {
            cancel_requested: Some(reason.to_owned()),
            ..run
        })
    }

    /// Requests a new run of the same function with the same event; the
    /// original is kept as it is. Returns the new run's id (the router
    /// creates it).
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; [`Error::UnknownFunction`] if its function is gone.
    pub async fn replay(&self, run_id: &str) -> Result<String> {
        let original = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        if self.registry.get(&original.function_id).is_none() {
            return Err(Error::UnknownFunction(original.function_id));
        }
        let new_run_id = new_id();
        let request = Envelope::new(
            Target::Router,
            Message::Replay {
                run_id: run_id.to_owned(),
                new_run_id: new_run_id.clone(),
            },
        );
        self.store
            .deliver(&[Outgoing::Send { envelope: request }])
            .await?;
        Ok(new_run_id)
    }
}
