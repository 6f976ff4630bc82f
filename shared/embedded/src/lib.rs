//! Hookflow's embedded backend: every store capability on one SQLite file (WAL,
//! `synchronous=FULL`, so a checkpoint is on disk before the handler moves on),
//! including the queue and the timers, so a killed process resumes every run
//! when it starts again. [`Embedded`] adds the worker loop that `hookflow dev`
//! runs and the deterministic [`Embedded::drain`] that tests use with a fake clock.

mod commit;
mod db;
mod docs;
mod prune;
mod queue;
mod records;
mod runtime;
mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::CommitStats;
pub use prune::{BATCH as PRUNE_BATCH, Pruned};
pub use queue::{Delivery, Received};
pub use runtime::{Embedded, WorkerConfig};
pub use store::SqliteStore;

/// Errors of the embedded backend.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record could not be decoded.
    #[error("stored record: {0}")]
    Json(#[from] serde_json::Error),
    /// The writer's commit failed or stopped; the write may be retried.
    #[error("commit: {0}")]
    Commit(String),
    /// The database file does not fit this version.
    #[error("{0}")]
    Schema(String),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<EmbeddedError> for hookflow::Error {
    fn from(err: EmbeddedError) -> Self {
        Self::store(err)
    }
}

/// Result with the embedded backend's error.
pub type Result<T, E = EmbeddedError> = std::result::Result<T, E>;
