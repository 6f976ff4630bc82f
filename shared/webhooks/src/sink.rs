//! Where verified events go: the [`EventSink`] capability trait.
//!
//! Implementations must be idempotent on [`hookflow::Event::id`]: a provider
//! redelivers the same event (same id) when it did not see our 200, and the
//! sink must acknowledge that duplicate (return `Ok`) without storing it
//! twice. An `Err` means "not stored": the receiver answers 503 and the
//! provider retries.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use hookflow::Event;

/// A sink failure, with its source chain kept.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Takes normalized events (e.g. the engine's event log + router queue).
pub trait EventSink: Send + Sync {
    /// Stores the events durably (duplicates by id are acknowledged, not
    /// re-stored). Returns only once they are safe.
    fn ingest(&self, events: Vec<Event>) -> impl Future<Output = Result<(), SinkError>> + Send;
}

impl<T: EventSink + ?Sized> EventSink for &T {
    fn ingest(&self, events: Vec<Event>) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).ingest(events)
    }
}

impl<T: EventSink + ?Sized> EventSink for std::sync::Arc<T> {
    fn ingest(&self, events: Vec<Event>) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).ingest(events)
    }
}

/// An in-memory sink that records every batch it is given (for tests and
/// local tooling). It does not deduplicate: it shows exactly what arrived.
#[derive(Debug, Default)]
pub struct RecordingSink {
    batches: Mutex<Vec<Vec<Event>>>,
}

impl RecordingSink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every batch received, in order.
    #[must_use]
    pub fn batches(&self) -> Vec<Vec<Event>> {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every event received, flattened.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.batches().into_iter().flatten().collect()
    }
}

impl EventSink for RecordingSink {
    async fn ingest(&self, events: Vec<Event>) -> Result<(), SinkError> {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(events);
        Ok(())
    }
}

/// A sink that always fails (to test the 5xx path).
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingSink;

impl EventSink for FailingSink {
    async fn ingest(&self, _events: Vec<Event>) -> Result<(), SinkError> {
        Err("sink unavailable".into())
    }
}

/// The engine's ingest role is the production sink: events are stored
/// (deduplicated by id) and queued for routing before the delivery is
/// acknowledged.
impl<S: hookflow::store::EventLog> EventSink for hookflow::Ingest<S> {
    async fn ingest(&self, events: Vec<Event>) -> Result<(), SinkError> {
        hookflow::Ingest::ingest(self, events)
            .await
            .map(|_| ())
            .map_err(|e| Box::new(e) as SinkError)
    }
}
