//! A deterministic test environment: the embedded runtime on an in-memory (or
//! file) SQLite database with a [`FakeClock`]. Time moves only when a test says
//! so, and [`TestEnv::advance`] fires every timer due on the way, in order.

use std::sync::Arc;
use std::time::Duration;

use hookflow::clock::duration_ms;
use hookflow::store::{RunFilter, RunStore};
use hookflow::{Event, FakeClock, Function, Ingested, Registry, Run, RunView};

use hookflow_docs::DocStore;

use crate::{Embedded, SqliteStore, WorkerConfig};

/// 2027-01-01T00:00:00Z: a fixed, readable start time for tests.
pub const START_MS: i64 = 1_798_761_600_000;

/// The embedded runtime under a fake clock.
pub struct TestEnv {
    /// The runtime.
    pub runtime: Embedded,
    /// The clock it reads.
    pub clock: FakeClock,
}

impl TestEnv {
    /// An environment running `functions` on a fresh in-memory database.
    ///
    /// # Panics
    /// If a function definition is invalid (a test bug).
    #[must_use]
    pub fn new(functions: Vec<Function>) -> Self {
        let store = SqliteStore::in_memory().expect("in-memory sqlite");
        Self::with_store(store, functions, FakeClock::new(START_MS))
    }

    /// An environment over an existing store and clock (e.g. a reopened file).
    ///
    /// # Panics
    /// If a function definition is invalid (a test bug).
    #[must_use]
    pub fn with_store(store: SqliteStore, functions: Vec<Function>, clock: FakeClock) -> Self {
        let registry = Registry::new(functions).expect("valid functions");
        let runtime = Embedded::new(
            store,
            registry,
            Arc::new(clock.clone()),
            WorkerConfig::default(),
        );
        Self { runtime, clock }
    }

    /// Ingests events and handles everything due now.
    ///
    /// # Panics
    /// If ingestion fails.
    pub async fn send(&self, events: Vec<Event>) -> Vec<Ingested> {
        let out = self.runtime.engine().ingest(events).await.expect("ingest");
        self.settle().await;
        out
    }

    /// Handles every message due at the current time.
    ///
    /// # Panics
    /// If the queue fails.
    pub async fn settle(&self) {
        self.runtime.drain().await.expect("drain");
    }

    /// Moves time forward by `by`, stopping at every timer due on the way and
    /// handling what is due there, so retries and sleeps fire at their times.
    ///
    /// # Panics
    /// If the queue fails.
    pub async fn advance(&self, by: Duration) {
        let target = hookflow::Clock::now_ms(&self.clock) + duration_ms(by);
        loop {
            self.settle().await;
            let now = hookflow::Clock::now_ms(&self.clock);
            match self.runtime.store().next_visible_at().await.expect("queue") {
                Some(at) if at > now && at <= target => self.clock.set(at),
                _ => break,
            }
        }
        self.clock.set(target);
        self.settle().await;
    }

    /// Cancels a run (a request its worker applies) and handles what is due.
    ///
    /// # Errors
    /// Unknown or finished run.
    pub async fn cancel(&self, run_id: &str) -> hookflow::Result<Run> {
        self.runtime.engine().cancel(run_id).await?;
        self.settle().await;
        self.runtime
            .store()
            .get_run(run_id)
            .await?
            .ok_or_else(|| hookflow::Error::RunNotFound(run_id.to_owned()))
    }

    /// Replays a run and handles what is due; returns the new run.
    ///
    /// # Errors
    /// Unknown run or function.
    pub async fn replay(&self, run_id: &str) -> hookflow::Result<Run> {
        let id = self.runtime.engine().replay(run_id).await?;
        self.settle().await;
        self.runtime
            .store()
            .get_run(&id)
            .await?
            .ok_or(hookflow::Error::RunNotFound(id))
    }

    /// The document store on this environment's database, stamping writes
    /// with its fake clock: what handler code under test is given.
    #[must_use]
    pub fn docs(&self) -> DocStore {
        DocStore::new(self.runtime.store().clone()).with_clock(Arc::new(self.clock.clone()))
    }

    /// Every run, newest first.
    ///
    /// # Panics
    /// If the store fails.
    pub async fn runs(&self) -> Vec<Run> {
        let filter = RunFilter {
            limit: 10_000,
            ..RunFilter::default()
        };
        self.runtime
            .store()
            .list_runs(&filter)
            .await
            .expect("list runs")
    }

    /// Runs of one function, newest first.
    pub async fn runs_of(&self, function_id: &str) -> Vec<Run> {
        let filter = RunFilter {
            function_id: Some(function_id.to_owned()),
            limit: 10_000,
            ..RunFilter::default()
        };
        self.runtime
            .store()
            .list_runs(&filter)
            .await
            .expect("list runs")
    }

    /// The only run of `function_id`, with its steps.
    ///
    /// # Panics
    /// If there is not exactly one.
    pub async fn only_run(&self, function_id: &str) -> RunView {
        let runs = self.runs_of(function_id).await;
        assert_eq!(
            runs.len(),
            1,
            "expected one run of {function_id}, got {runs:#?}"
        );
        self.runtime
            .engine()
            .run_view(&runs[0].id)
            .await
            .expect("view")
            .expect("run exists")
    }
}
