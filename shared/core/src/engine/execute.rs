//! Executing a run under its lease and applying the executor's outcome.

use std::sync::Arc;

use tracing::Instrument;

use crate::clock::duration_ms;
use crate::error::Result;
use crate::executor::{Outcome, execute};
use crate::function::Function;
use crate::run::{Envelope, Message, Run, RunStatus, StepStatus, Target};
use crate::store::Store;

use super::backend::RunBackend;
use super::{Engine, Handled};

impl<S: Store> Engine<S> {
    /// Executes a run if it is not finished and no other worker holds it.
    ///
    /// # Errors
    /// [`crate::Error::Store`]: the message should be delivered again.
    pub async fn execute_run(&self, run_id: &str) -> Result<Handled> {
        let Some(run) = self.store.get_run(run_id).await? else {
            tracing::warn!(run.id = %run_id, "run not found; message dropped");
            return Ok(Handled::Done);
        };
        if run.status.is_terminal() {
            return Ok(Handled::Done);
        }
        let now = self.now();
        let until = now + duration_ms(self.config.lease);
        if !self
            .store
            .acquire_lease(run_id, &self.config.owner, now, until)
            .await?
        {
            return Ok(Handled::Busy);
        }
        let result = self.execute_leased(run).await;
        // A finished run is never executed again: only a suspended (or failed
        // to apply) run needs its lease back before the next delivery.
        if !matches!(result, Ok(status) if status.is_terminal())
            && let Err(err) = self.store.release_lease(run_id, &self.config.owner).await
        {
            tracing::warn!(run.id = %run_id, error = %err, "lease release failed; it will expire");
        }
        result.map(|_| Handled::Done)
    }

    /// Executes a leased run; returns its status afterwards.
    async fn execute_leased(&self, mut run: Run) -> Result<RunStatus> {
        let Some(function) = self.registry.get(&run.function_id).cloned() else {
            let reason = format!("function `{}` is no longer registered", run.function_id);
            return self.apply(run, None, Outcome::Failed(reason)).await;
        };
        let now = self.now();
        if run.started_at.is_none()
            && let Some(limit) = function.start_timeout
            && now - run.created_at > duration_ms(limit)
        {
            let reason = format!("not started within the {limit:?} start timeout");
            return self
                .apply(run, Some(&function), Outcome::Cancelled(reason))
                .await;
        }
        let started_at = *run.started_at.get_or_insert(now);
        let deadline = function
            .finish_timeout
            .map(|limit| started_at + duration_ms(limit));
        if deadline.is_some_and(|d| now >= d) {
            let reason = "finish timeout exceeded".to_owned();
            return self
                .apply(run, Some(&function), Outcome::Cancelled(reason))
                .await;
        }
        let first_start =
            run.status == RunStatus::Queued && run.attempt == 0 && run.wake_at.is_none();
        run.status = RunStatus::Running;
        run.wake_at = None;
        if !self.store.update_run(&run).await? {
            return Ok(RunStatus::Cancelled); // finished (e.g. cancelled) meanwhile
        }
        if let (true, Some(deadline)) = (first_start, deadline) {
            let resume = Message::Resume {
                run_id: run.id.clone(),
            };
            self.store
                .schedule(
                    &Envelope::new(Target::Function(run.function_id.clone()), resume),
                    deadline,
                )
                .await?;
        }
        let journal = self.store.load_steps(&run.id).await?;
        let backend = Arc::new(RunBackend::new(self.clone(), &run));
        let span = tracing::info_span!("run", run.id = %run.id, function = %run.function_id);
        let outcome = execute(&function, &run, journal, backend, deadline)
            .instrument(span)
            .await?;
        self.apply(run, Some(&function), outcome).await
    }

    async fn apply(
        &self,
        mut run: Run,
        function: Option<&Function>,
        outcome: Outcome,
    ) -> Result<RunStatus> {
        let now = self.now();
        match outcome {
            Outcome::Suspended { wake_at, waiting } => {
                run.status = if waiting {
                    RunStatus::Waiting
                } else {
                    RunStatus::Sleeping
                };
                run.wake_at = wake_at;
                if self.store.update_run(&run).await?
                    && let Some(at) = wake_at
                {
                    self.schedule_resume(&run, at).await?;
                }
                tracing::debug!(run.id = %run.id, status = run.status.as_str(), wake_at, "run suspended");
                return Ok(run.status);
            }
            Outcome::RetryAt { at, error } => {
                run.status = RunStatus::Sleeping;
                run.attempt += 1;
                run.wake_at = Some(at);
                run.error = Some(error);
                if self.store.update_run(&run).await? {
                    self.schedule_resume(&run, at).await?;
                }
                tracing::warn!(run.id = %run.id, attempt = run.attempt, "run failed; retry scheduled");
                return Ok(run.status);
            }
            Outcome::Completed(output) => {
                run.status = RunStatus::Completed;
                run.output = Some(output);
                run.error = None;
            }
            Outcome::Failed(error) => {
                run.status = RunStatus::Failed;
                run.error = Some(error);
            }
            Outcome::Cancelled(reason) => {
                run.status = RunStatus::Cancelled;
                run.error = Some(reason);
            }
        }
        run.ended_at = Some(now);
        run.wake_at = None;
        if !self.store.update_run(&run).await? {
            return Ok(RunStatus::Cancelled); // already finished by someone else (cancel)
        }
        tracing::info!(run.id = %run.id, function = %run.function_id, status = run.status.as_str(), error = run.error.as_deref(), "run finished");
        if function.is_some() {
            self.cleanup_waiters(&run).await?;
        }
        if run.status == RunStatus::Failed {
            self.emit_failure(&run).await?;
        }
        self.notify_parent(&run).await?;
        Ok(run.status)
    }

    async fn schedule_resume(&self, run: &Run, at: i64) -> Result<()> {
        let resume = Envelope::new(
            Target::Function(run.function_id.clone()),
            Message::Resume {
                run_id: run.id.clone(),
            },
        );
        if at <= self.now() {
            self.store.send(&resume).await
        } else {
            self.store.schedule(&resume, at).await
        }
    }

    /// Completes the parent's `invoke` step with this run's result.
    async fn notify_parent(&self, run: &Run) -> Result<()> {
        let Some(parent) = &run.parent else {
            return Ok(());
        };
        let Some(mut step) = self.store.get_step(&parent.run_id, &parent.step_id).await? else {
            return Ok(());
        };
        if step.status != StepStatus::Waiting {
            return Ok(());
        }
        step.ended_at = Some(self.now());
        match run.status {
            RunStatus::Completed => {
                step.status = StepStatus::Completed;
                step.output = run.output.clone();
            }
            _ => {
                step.status = StepStatus::Failed;
                step.error = Some(format!(
                    "invoked run {} {}: {}",
                    run.id,
                    run.status.as_str(),
                    run.error.as_deref().unwrap_or("")
                ));
            }
        }
        if self.store.resolve_step(&parent.run_id, &step).await?
            && let Some(parent_run) = self.store.get_run(&parent.run_id).await?
        {
            self.resume(&parent_run.function_id, &parent_run.id).await?;
        }
        Ok(())
    }
}
