//! The engine's error type. Backend errors keep their source chain
//! ([`Error::Store`]); user code failures are `anyhow::Error`s classified by the
//! markers in [`crate::failure`].

/// Engine errors: invalid input, unknown names, and storage failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event broke a naming rule; nothing was stored.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// Something is over a size limit (see [`crate::limits`]); nothing was stored.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A function definition is inconsistent (bad id, trigger, cron, expression).
    #[error("invalid function `{function}`: {reason}")]
    InvalidFunction {
        /// The function id.
        function: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CEL expression failed to compile or to evaluate.
    #[error("expression `{expr}`: {reason}")]
    Expression {
        /// The expression source.
        expr: String,
        /// Why it failed.
        reason: String,
    },
    /// No function with this id is registered.
    #[error("no function `{0}` is registered")]
    UnknownFunction(String),
    /// No run with this id exists.
    #[error("run `{0}` not found")]
    RunNotFound(String),
    /// The request conflicts with the run's state (e.g. replaying a running run).
    #[error("{0}")]
    Conflict(String),
    /// A value could not be (de)serialized.
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
    /// The backend failed; the operation may be retried.
    #[error("store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps a backend error, keeping its source chain.
    pub fn store(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Store(Box::new(err))
    }
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
