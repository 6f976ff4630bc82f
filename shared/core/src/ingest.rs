//! Ingest: validate events, store them once per id, and queue their routes.
//! All a webhook receiver needs; it knows nothing of functions or runs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, duration_ms};
use crate::error::Result;
use crate::event::{DEDUPE_WINDOW, Event};
use crate::store::EventLog;

/// The result of ingesting one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingested {
    /// The event id (generated if the event had none).
    pub id: String,
    /// True if the id was already stored: nothing new starts.
    pub duplicate: bool,
    /// When this delivery was received (ms); for a duplicate, not the
    /// original's time.
    #[serde(skip)]
    pub received_at: i64,
}

/// The ingest role: generic over only an event log.
#[derive(Clone)]
pub struct Ingest<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: EventLog> Ingest<S> {
    /// Ingest over `store`, stamping events with `clock`.
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Validates and stores events, and queues each new one's route (at its
    /// `ts` when in the future). All events are validated before any is
    /// stored, so a bad batch stores nothing.
    ///
    /// # Errors
    /// [`crate::Error::InvalidEvent`] for a bad event; [`crate::Error::Store`]
    /// when storing fails (nothing is acknowledged: the sender retries).
    pub async fn ingest(&self, events: Vec<Event>) -> Result<Vec<Ingested>> {
        let now = self.clock.now_ms();
        let mut events = events;
        for event in &mut events {
            event.prepare(now)?;
        }
        let stored = self
            .store
            .append(&events, now, duration_ms(DEDUPE_WINDOW))
            .await?;
        Ok(events
            .into_iter()
            .zip(stored)
            .map(|(event, stored)| {
                tracing::debug!(event.id = %event.id, event.name = %event.name, duplicate = !stored, "event ingested");
                Ingested {
                    id: event.id,
                    duplicate: !stored,
                    received_at: now,
                }
            })
            .collect())
    }
}
