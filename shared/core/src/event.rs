//! Events: the facts that start and resume functions.
//!
//! An [`Event`] is identified by its `id`; the engine stores each id once per
//! [`DEDUPE_WINDOW`], so a provider's redelivery is acknowledged without starting
//! anything new. Implementations of the event log must keep that guarantee.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub use crate::limits::MAX_EVENT_BYTES;
use crate::limits::{
    MAX_EVENT_ID_BYTES as MAX_EVENT_ID_LEN, MAX_EVENT_NAME_BYTES as MAX_EVENT_NAME_LEN,
};
/// How long an event id is remembered for deduplication.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Name of the event emitted when a run fails for good.
pub const FUNCTION_FAILED: &str = "hookflow/function.failed";
/// Name of the event that starts a cron-triggered run.
pub const SCHEDULED: &str = "hookflow/scheduled";
/// Name of the event that starts a run through `step.invoke`.
pub const INVOKED: &str = "hookflow/function.invoked";

/// Something that happened: a webhook delivery, a domain fact, a timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id; duplicates within [`DEDUPE_WINDOW`] are ignored.
    #[serde(default)]
    pub id: String,
    /// Event name, by convention `source/thing.happened` (e.g. `stripe/charge.refunded`).
    pub name: String,
    /// Payload, any JSON value (an object by convention).
    #[serde(default)]
    pub data: Value,
    /// When it happened, in milliseconds since the Unix epoch. A future `ts`
    /// delays the functions it starts until that time; 0 means "now".
    #[serde(default)]
    pub ts: i64,
    /// The tenant this event belongs to (e.g. a Shopify shop domain), when the
    /// source is multi-tenant; flow-control keys can use it as `event.tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl Event {
    /// A new event with a fresh unique id and `ts` 0 ("now" when ingested).
    pub fn new(name: impl Into<String>, data: Value) -> Self {
        Self {
            id: new_id(),
            name: name.into(),
            data,
            ts: 0,
            tenant: None,
        }
    }

    /// The same event with the given id (for provider ids used as dedupe keys).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The same event with the given timestamp (ms since epoch).
    #[must_use]
    pub fn with_ts(mut self, ts: i64) -> Self {
        self.ts = ts;
        self
    }

    /// The same event attributed to a tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Fills a missing id and timestamp, then checks name, id and size limits.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the rule that was broken.
    pub fn prepare(&mut self, now_ms: i64) -> Result<()> {
        if self.id.is_empty() {
            self.id = new_id();
        }
        if self.ts <= 0 {
            self.ts = now_ms;
        }
        self.validate()
    }

    /// Checks name, id and size limits without changing the event.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the rule that was broken.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidEvent(reason));
        if self.name.trim().is_empty() {
            return invalid("event name must not be empty".into());
        }
        if self.name.len() > MAX_EVENT_NAME_LEN {
            return invalid(format!(
                "event name is {} bytes, over the {MAX_EVENT_NAME_LEN}-byte limit",
                self.name.len()
            ));
        }
        if self.name.chars().any(char::is_control) || self.name != self.name.trim() {
            return invalid(
                "event name must not contain control characters or surrounding spaces".into(),
            );
        }
        if self.id.len() > MAX_EVENT_ID_LEN {
            return invalid(format!(
                "event id is {} bytes, over the {MAX_EVENT_ID_LEN}-byte limit",
                self.id.len()
            ));
        }
        let size = serde_json::to_vec(self)?.len();
        if size > MAX_EVENT_BYTES {
            return Err(Error::TooLarge(format!(
                "event `{}` is {size} bytes, over the {MAX_EVENT_BYTES}-byte event limit",
                self.name
            )));
        }
        Ok(())
    }
}

/// A fresh, time-ordered unique id (UUID v7).
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A stable id derived from parts: the same parts always give the same id.
/// Used for ids that replays must not change (events sent by steps, child runs).
#[must_use]
pub fn derived_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_fills_id_and_ts() {
        let mut event = Event::new("user/created", json!({"id": 1})).with_id("");
        event.prepare(42).unwrap();
        assert!(!event.id.is_empty());
        assert_eq!(event.ts, 42);
    }

    #[test]
    fn empty_name_is_rejected_with_a_clear_error() {
        let err = Event::new(" ", json!({})).validate().unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    #[test]
    fn oversized_event_is_rejected() {
        let big = "x".repeat(MAX_EVENT_BYTES);
        let err = Event::new("a/b", json!({ "blob": big }))
            .validate()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("over the 1048576-byte event limit"),
            "{err}"
        );
    }

    #[test]
    fn derived_ids_are_stable_and_unambiguous() {
        assert_eq!(derived_id(&["a", "b"]), derived_id(&["a", "b"]));
        assert_ne!(derived_id(&["ab", ""]), derived_id(&["a", "b"]));
    }
}
