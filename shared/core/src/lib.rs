//! Hookflow: durable workflows for webhooks and background jobs.
//!
//! Events start functions; functions are made of durable steps whose results are
//! checkpointed in a per-run journal, so a run survives crashes, retries with
//! backoff, sleeps for days and waits for other events. The engine talks to
//! storage only through the capability traits in [`store`], so the same
//! functions run on the embedded SQLite backend and on AWS.

pub mod clock;
pub mod docs;
pub mod engine;
pub mod error;
pub mod event;
pub mod executor;
pub mod expr;
pub mod failure;
pub mod function;
pub mod run;
pub mod step;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use clock::{Clock, FakeClock, SystemClock};
pub use docs::{DocStore, Document, DocumentError, Documents};
pub use engine::{Engine, EngineConfig, Handled, Ingested, RunView};
pub use error::{Error, Result};
pub use event::Event;
pub use failure::{Failure, NonRetriable, RetryAfter, StepError};
pub use function::{CancelOn, Ctx, Function, Registry};
pub use run::{Envelope, Message, Run, RunStatus, StepRecord, Target};
pub use step::{Step, WaitFor};
pub use store::{RunFilter, Store};
