//! [`Engine`]: the four roles over one store, and the dispatch of a queue
//! message to the role that handles it. `hookflow dev` and the tests use the
//! whole engine; a Lambda builds only the role it needs.

use std::sync::Arc;
use std::time::Duration;

use crate::admin::{Admin, RunView};
use crate::clock::Clock;
use crate::error::Result;
use crate::event::Event;
use crate::function::Registry;
use crate::ingest::{Ingest, Ingested};
use crate::router::{Router, Started};
use crate::run::{Envelope, Message, Run};
use crate::store::{RunFilter, Store};
use crate::worker::{Cause, Handled, Worker, WorkerSettings};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Leases of the worker.
    pub worker: WorkerSettings,
    /// Whether the router schedules the next cron tick itself (embedded) or an
    /// external scheduler fires crons (EventBridge Scheduler on AWS).
    pub drive_crons: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker: WorkerSettings::default(),
            drive_crons: true,
        }
    }
}

impl EngineConfig {
    /// The default settings with leases of `lease`, extended every third of it.
    #[must_use]
    pub fn with_lease(lease: Duration) -> Self {
        Self {
            worker: WorkerSettings {
                lease,
                heartbeat: Some(lease / 3),
                ..WorkerSettings::default()
            },
            ..Self::default()
        }
    }
}

/// Ingest, router, worker and admin over one store.
pub struct Engine<S> {
    store: S,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    /// Validates, stores and queues events.
    pub ingest: Ingest<S>,
    /// Routes events, starts runs.
    pub router: Router<S>,
    /// Executes runs.
    pub worker: Worker<S>,
    /// Lists, views, cancels and replays runs.
    pub admin: Admin<S>,
}

impl<S: Clone> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            ingest: self.ingest.clone(),
            router: self.router.clone(),
            worker: self.worker.clone(),
            admin: self.admin.clone(),
        }
    }
}

impl<S: Store> Engine<S> {
    /// An engine over `store` running the functions of `registry`.
    pub fn new(store: S, registry: Registry, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        let registry = Arc::new(registry);
        Self {
            ingest: Ingest::new(store.clone(), clock.clone()),
            router: Router::new(
                store.clone(),
                registry.clone(),
                clock.clone(),
                config.drive_crons,
            ),
            worker: Worker::new(
                store.clone(),
                registry.clone(),
                clock.clone(),
                config.worker,
            ),
            admin: Admin::new(store.clone(), registry.clone(), clock.clone()),
            store,
            registry,
            clock,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The registered functions.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Handles one queue message with no deadline.
    ///
    /// # Errors
    /// Storage errors (retry the message later).
    pub async fn handle(&self, envelope: &Envelope) -> Result<Handled> {
        self.handle_until(envelope, None).await
    }

    /// Handles one queue message; `deadline` (ms) bounds the run's lease
    /// (a Lambda invocation's deadline).
    ///
    /// # Errors
    /// Storage errors (retry the message later).
    pub async fn handle_until(
        &self,
        envelope: &Envelope,
        deadline: Option<i64>,
    ) -> Result<Handled> {
        let (run_id, cause) = match &envelope.message {
            Message::Start {
                run_id,
                due,
                trigger,
            } => (
                run_id,
                Cause::Start {
                    due: *due,
                    trigger: trigger.clone(),
                },
            ),
            Message::Resume { run_id } => (run_id, Cause::Resume),
            Message::Resolve {
                run_id,
                step_id,
                with,
            } => (
                run_id,
                Cause::Resolve {
                    step_id: step_id.clone(),
                    with: with.clone(),
                },
            ),
            Message::Cancel { run_id, reason } => (
                run_id,
                Cause::Cancel {
                    reason: reason.clone(),
                },
            ),
            router => return self.router.handle(router).await.map(|()| Handled::Done),
        };
        self.worker.handle(run_id, cause, deadline).await
    }

    /// Validates, stores and queues events (see [`Ingest::ingest`]).
    ///
    /// # Errors
    /// Invalid events, storage errors.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<Vec<Ingested>> {
        self.ingest.ingest(events).await
    }

    /// Requests a run's cancellation (see [`Admin::cancel`]).
    ///
    /// # Errors
    /// Unknown or finished run, storage errors.
    pub async fn cancel(&self, run_id: &str) -> Result<Run> {
        self.admin.cancel(run_id).await
    }

    /// Requests a replay; returns the new run's id (see [`Admin::replay`]).
    ///
    /// # Errors
    /// Unknown run or function, storage errors.
    pub async fn replay(&self, run_id: &str) -> Result<String> {
        self.admin.replay(run_id).await
    }

    /// Reruns a finished run from one of its steps (see [`Admin::rerun_from`]).
    ///
    /// # Errors
    /// Unknown run, step or function; an unfinished run; storage errors.
    pub async fn rerun_from(&self, run_id: &str, step_id: &str) -> Result<String> {
        self.admin.rerun_from(run_id, step_id).await
    }

    /// Cancels or replays every run `filter` matches (see [`Admin::bulk`]).
    ///
    /// # Errors
    /// A bad condition; storage errors.
    pub async fn bulk(
        &self,
        filter: &crate::BulkFilter,
        action: crate::BulkAction,
        dry_run: bool,
    ) -> Result<crate::BulkOutcome> {
        self.admin.bulk(filter, action, dry_run).await
    }

    /// Redrives a failed run (see [`Admin::redrive`]): idempotent.
    ///
    /// # Errors
    /// Unknown run or function, storage errors.
    pub async fn redrive(&self, run_id: &str) -> Result<String> {
        self.admin.redrive(run_id).await
    }

    /// The run with its step timeline.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn run_view(&self, run_id: &str) -> Result<Option<RunView>> {
        self.admin.run_view(run_id).await
    }

    /// Runs matching `filter`, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.admin.list_runs(filter).await
    }

    /// Pauses a function (see [`Admin::pause`]); returns since when.
    ///
    /// # Errors
    /// Unknown function, storage errors.
    pub async fn pause(&self, function_id: &str) -> Result<i64> {
        self.admin.pause(function_id, self.clock.now_ms()).await
    }

    /// Resumes a function (see [`Admin::resume`]); returns how many held
    /// events were routed to it.
    ///
    /// # Errors
    /// Unknown function, storage errors.
    pub async fn resume(&self, function_id: &str, skip: bool) -> Result<usize> {
        self.admin.resume(function_id, skip).await
    }

    /// When a function was paused, if it is.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn paused_since(&self, function_id: &str) -> Result<Option<i64>> {
        self.admin.paused_since(function_id).await
    }

    /// Starts a cron run for the tick at `at` (see [`Router::fire_cron`]).
    ///
    /// # Errors
    /// Unknown function, storage errors.
    pub async fn fire_cron(&self, function_id: &str, at: i64) -> Result<Started> {
        self.router.fire_cron(function_id, at).await
    }

    /// Schedules every cron function's next tick (idempotent).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn schedule_crons(&self) -> Result<()> {
        self.router.schedule_crons().await
    }
}
