//! Hookflow: durable workflows for webhooks and background jobs.
//!
//! Events start functions; functions are made of durable steps whose results are
//! checkpointed in a per-run journal, so a run survives crashes, retries with
//! backoff, sleeps for days and waits for other events.
//!
//! The engine has four roles — [`Ingest`] (store events), [`Router`] (match
//! waiters, start runs), [`Worker`] (execute runs under a lease) and
//! [`Admin`] — each generic over only the storage capabilities in [`store`]
//! it uses. Every state change is one [`transition::Transition`], committed
//! atomically with the messages it sends, so the same functions run on the
//! embedded SQLite backend and on AWS with the same guarantees.

pub mod admin;
pub mod bulk;
pub mod clock;
pub mod engine;
pub mod error;
pub mod event;
pub mod expr;
pub mod failure;
pub mod flow;
pub mod function;
pub mod ingest;
pub mod limits;
pub mod observe;
pub mod retention;
pub mod router;
pub mod run;
pub mod run_id;
pub mod step;
pub mod store;
#[cfg(feature = "testing")]
pub mod testkit;
pub mod transition;
pub mod worker;

pub use admin::{Admin, RunView};
pub use bulk::{BulkAction, BulkFilter, BulkOutcome};
pub use clock::{Clock, FakeClock, SystemClock};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, Result};
pub use event::Event;
pub use failure::{Failure, NonRetriable, RetryAfter, StepError};
pub use flow::{
    Batch, Concurrency, ConcurrencyScope, Debounce, RateLimit, Singleton, SingletonMode, Throttle,
};
pub use function::{CancelOn, Ctx, Function, Registry};
pub use ingest::{Ingest, Ingested};
pub use retention::Retention;
pub use router::{PlannedRun, Router, Started, planned_runs};
pub use run::{Envelope, Message, Run, RunStatus, StepRecord, Target};
pub use step::{Step, WaitFor};
pub use store::{RunFilter, Store};
pub use worker::{Handled, Worker, WorkerSettings};
