//! Operating runs: list them, view one with its timeline, cancel and replay;
//! pause and resume functions. Cancellation and replay are requests: a
//! message that the run's worker (cancel) or the router (replay) turns into a
//! transition, so they follow the same commit rules as everything else.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::flow::{FlowState, FlowWrite, pause_key, paused_since};
use crate::function::{Registry, Trigger};
use crate::run::{Envelope, Message, Run, StepRecord, StepStatus, Target};
use crate::run_id::{derived_run_id, fresh_run_id};
use crate::store::{EventLog, FlowStore, Outbox, RunFilter, RunStore};
use crate::transition::{Conflict, Outgoing};

/// Attempts at a pause or resume whose record keeps changing under it.
const PAUSE_ATTEMPTS: usize = 16;
/// Held events read at a time when a function resumes.
const RESUME_PAGE: usize = 1_000;
/// How long before a pause resuming looks for events: one received before
/// the pause may have been routed during it (a future `ts`, a queue
/// backlog). An event whose run exists starts nothing again.
const RESUME_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

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
    clock: Arc<dyn Clock>,
}

impl<S: RunStore + EventLog + FlowStore + Outbox> Admin<S> {
    /// Admin operations over `store` for the functions of `registry`, at
    /// the time `clock` tells.
    pub fn new(store: S, registry: Arc<Registry>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            registry,
            clock,
        }
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

    /// When `function_id` was paused, if it is.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn paused_since(&self, function_id: &str) -> Result<Option<i64>> {
        Ok(paused_since(
            self.store.flow_get(&pause_key(function_id)).await?.as_ref(),
        ))
    }

    /// Pauses `function_id` at `now`: none of its runs start until it is
    /// resumed; its events are kept. Runs already started go on. Returns
    /// when it was paused (the earlier time if it already was).
    ///
    /// # Errors
    /// [`Error::UnknownFunction`]; storage errors.
    pub async fn pause(&self, function_id: &str, now: i64) -> Result<i64> {
        self.known(function_id)?;
        let key = pause_key(function_id);
        for _ in 0..PAUSE_ATTEMPTS {
            let read = self.store.flow_get(&key).await?;
            if let Some(since) = paused_since(read.as_ref()) {
                return Ok(since);
            }
            let state = FlowState::Pause {
                since: Some(now),
                resuming: false,
            };
            match self
                .store
                .flow_put(&FlowWrite::after(key.clone(), read.as_ref(), state))
                .await?
            {
                Ok(()) => return Ok(now),
                Err(Conflict::FlowChanged) => {}
                Err(other) => return Err(Error::Conflict(other.to_string())),
            }
        }
        Err(Error::Conflict("the pause kept changing; try again".into()))
    }

    /// Resumes `function_id`: new events start it at once, and every event
    /// that triggered it while it was paused is routed to it (flow control
    /// applies as to any event), unless `skip`, which leaves them unstarted.
    /// Returns how many held events were routed. Safe to repeat: a resume cut
    /// short is finished by the next one, and an event starts at most one run.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`]; storage errors.
    pub async fn resume(&self, function_id: &str, skip: bool) -> Result<usize> {
        let function = self.known(function_id)?;
        let key = pause_key(function_id);
        let since = loop {
            let read = self.store.flow_get(&key).await?;
            let Some(FlowState::Pause {
                since: Some(since),
                resuming,
            }) = read.as_ref().map(|r| r.state.clone())
            else {
                return Ok(0); // not paused
            };
            if resuming || skip {
                break since;
            }
            // New events start it from now on; the held ones follow.
            let state = FlowState::Pause {
                since: Some(since),
                resuming: true,
            };
            if self
                .store
                .flow_put(&FlowWrite::after(key.clone(), read.as_ref(), state))
                .await?
                .is_ok()
            {
                break since;
            }
        };
        let mut routed = 0;
        if !skip {
            let names = function.triggers().iter().filter_map(|t| match t {
                Trigger::Event { name, .. } => Some(name.clone()),
                Trigger::Cron { .. } => None,
            });
            for name in names {
                routed += self.route_held(&name, function_id, since).await?;
            }
        }
        for _ in 0..PAUSE_ATTEMPTS {
            let read = self.store.flow_get(&key).await?;
            let still_ours = matches!(
                read.as_ref().map(|r| &r.state),
                Some(FlowState::Pause { since: Some(s), .. }) if *s == since
            );
            if !still_ours {
                // Paused again (or resumed) meanwhile: that decision stands.
                return Ok(routed);
            }
            let state = FlowState::Pause {
                since: None,
                resuming: false,
            };
            if self
                .store
                .flow_put(&FlowWrite::after(key.clone(), read.as_ref(), state))
                .await?
                .is_ok()
            {
                tracing::info!(function = function_id, routed, skip, "function resumed");
                return Ok(routed);
            }
        }
        Err(Error::Conflict("the pause kept changing; try again".into()))
    }

    /// Routes to `function_id` every event named `name` received since
    /// [`RESUME_LOOKBACK`] before `since`; returns how many.
    async fn route_held(&self, name: &str, function_id: &str, since: i64) -> Result<usize> {
        let mut from = since - crate::clock::duration_ms(RESUME_LOOKBACK);
        let mut seen = std::collections::HashSet::new();
        let mut routed = 0;
        loop {
            let page = self.store.events_since(name, from, RESUME_PAGE).await?;
            let messages: Vec<Outgoing> = page
                .iter()
                .filter(|stored| seen.insert(stored.event.id.clone()))
                .map(|stored| Outgoing::Send {
                    envelope: Envelope::new(
                        Target::Router,
                        Message::RouteTo {
                            event_id: stored.event.id.clone(),
                            function_id: function_id.to_owned(),
                            stored: Some(Box::new(stored.clone())),
                        },
                    ),
                })
                .collect();
            self.store.deliver(&messages).await?;
            routed += messages.len();
            // The next page starts at the last time seen (events of that
            // millisecond come again and are skipped as seen).
            match page.last() {
                Some(last) if page.len() == RESUME_PAGE && !messages.is_empty() => {
                    from = last.received_at;
                }
                _ => return Ok(routed),
            }
        }
    }

    fn known(&self, function_id: &str) -> Result<Arc<crate::function::Function>> {
        self.registry
            .get(function_id)
            .cloned()
            .ok_or_else(|| Error::UnknownFunction(function_id.to_owned()))
    }

    /// Requests a new run of the same function with the same event; the
    /// original is kept as it is. Returns the new run's id (the router
    /// creates it).
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; [`Error::UnknownFunction`] if its function is gone.
    pub async fn replay(&self, run_id: &str) -> Result<String> {
        self.request_replay(run_id, None, None).await
    }

    /// Requests a rerun of a finished run from step `step_id`: a new run of
    /// the same function and event whose journal starts with the original's
    /// records of every step before that one (their outputs returned, their
    /// effects not repeated: a charge before it is not made again; a step
    /// that failed for good before it fails the same way), and runs that step
    /// and everything after it afresh, with new idempotency keys (a provider
    /// deduplicating on them sees new requests). Returns the new run's id.
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; [`Error::Conflict`] if the run has not
    /// finished, has no step `step_id`, or has a step before it that never
    /// finished (rerun from that one); [`Error::UnknownFunction`].
    pub async fn rerun_from(&self, run_id: &str, step_id: &str) -> Result<String> {
        let loaded = self
            .store
            .load_run(run_id)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        if !loaded.run.status.is_terminal() {
            return Err(Error::Conflict(format!(
                "run `{run_id}` has not finished: cancel it first, or replay it"
            )));
        }
        let Some(from) = loaded.journal.iter().find(|s| s.id == step_id) else {
            return Err(Error::Conflict(format!(
                "run `{run_id}` has no step `{step_id}`"
            )));
        };
        // Only final records can be kept: a wait, retry or invoke left
        // unfinished before the chosen step would never be answered.
        if let Some(open) = loaded.journal.iter().find(|s| {
            s.position < from.position
                && !matches!(s.status, StepStatus::Completed | StepStatus::Failed)
        }) {
            return Err(Error::Conflict(format!(
                "step `{}` before `{step_id}` never finished: rerun from `{}`",
                open.id, open.id
            )));
        }
        self.request_replay(run_id, None, Some(step_id.to_owned()))
            .await
    }

    /// Redrives a failed run: a replay whose id is derived from the
    /// original's, so redriving it again (a bulk redrive interrupted and run
    /// again) starts no second run. Returns that id.
    ///
    /// # Errors
    /// As [`Self::replay`].
    pub async fn redrive(&self, run_id: &str) -> Result<String> {
        self.request_replay(run_id, Some("redrive"), None).await
    }

    /// Asks the router for a new run of `run_id`'s function and event: its
    /// id fresh, or derived from the original's and `derived_by` (its time
    /// then when the original ended, so that the same request makes the
    /// same id).
    async fn request_replay(
        &self,
        run_id: &str,
        derived_by: Option<&str>,
        from_step: Option<String>,
    ) -> Result<String> {
        let original = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        if self.registry.get(&original.function_id).is_none() {
            return Err(Error::UnknownFunction(original.function_id));
        }
        let function = &original.function_id;
        let new_run_id = match derived_by {
            Some(how) => {
                let at = original.ended_at.unwrap_or(original.created_at);
                derived_run_id(function, at, &[how, run_id])
            }
            None => fresh_run_id(function, self.clock.now_ms()),
        };
        let request = Envelope::new(
            Target::Router,
            Message::Replay {
                run_id: run_id.to_owned(),
                new_run_id: new_run_id.clone(),
                from_step,
            },
        );
        self.store
            .deliver(&[Outgoing::Send { envelope: request }])
            .await?;
        Ok(new_run_id)
    }
}
