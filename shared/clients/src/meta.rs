//! Meta Conversions API (the ads platform's server-side events): a `Lead`
//! when a creator applies, a `Purchase` for an attributed order.
//!
//! Each tenant has its own pixel and access token (from the tenant's
//! configuration), passed with each call; the token travels in the body
//! (never the URL) and is redacted from errors. Emails are sent only as
//! SHA-256 of the trimmed, lowercased address, as Meta requires. `event_id`
//! lets Meta drop a duplicate when a step is retried.

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::http::{Api, Env, HttpClient, optional};

/// The Conversions API over the shared pool.
#[derive(Clone, Debug)]
pub struct MetaConversions {
    api: Api,
}

/// One server event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerEvent {
    /// `Lead`, `Purchase`, ...
    pub event_name: String,
    /// When it happened (seconds since the epoch).
    pub event_time: i64,
    /// Deduplicates retries and the browser pixel's copy.
    pub event_id: String,
    /// `website`.
    pub action_source: String,
    /// Hashed identifiers (`em`: SHA-256 emails).
    pub user_data: Value,
    /// `value`, `currency`, `order_id`, ...
    #[serde(skip_serializing_if = "Value::is_null")]
    pub custom_data: Value,
}

impl ServerEvent {
    /// A website event for `email` (hashed here).
    #[must_use]
    pub fn website(name: &str, event_id: &str, time_ms: i64, email: Option<&str>) -> Self {
        let user_data = email.map_or_else(|| json!({}), |e| json!({"em": [hash_email(e)]}));
        Self {
            event_name: name.to_owned(),
            event_time: time_ms.div_euclid(1000),
            event_id: event_id.to_owned(),
            action_source: "website".to_owned(),
            user_data,
            custom_data: Value::Null,
        }
    }

    /// With `custom_data`.
    #[must_use]
    pub fn with_custom_data(mut self, data: Value) -> Self {
        self.custom_data = data;
        self
    }
}

/// SHA-256 (hex) of the trimmed, lowercased email.
#[must_use]
pub fn hash_email(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// Meta's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Received {
    /// How many events Meta accepted.
    pub events_received: u32,
}

impl MetaConversions {
    /// Default base URL (Graph API version included).
    pub const DEFAULT_BASE: &'static str = "https://graph.facebook.com/v21.0";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "META_GRAPH_BASE";

    /// From configuration (`META_GRAPH_BASE` if set); credentials come per call.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] for a bad base URL.
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let base = optional(env, Self::BASE_VAR).unwrap_or_else(|| Self::DEFAULT_BASE.to_owned());
        let base: Url = crate::http::base_url(Self::BASE_VAR, &base)?;
        Ok(Self {
            api: Api::new(http, "meta", base, None),
        })
    }

    /// Sends events to a pixel (`POST /{pixel}/events`).
    ///
    /// # Errors
    /// [`crate::ClientError`]; a bad token or pixel (4xx) is final.
    pub async fn send(
        &self,
        pixel_id: &str,
        access_token: &str,
        events: &[ServerEvent],
    ) -> Result<Received> {
        const OP: &str = "send_events";
        let api = self.api.clone().redacting(vec![access_token.into()]);
        let url = api.url(OP, &[pixel_id, "events"])?;
        let req = api
            .request(Method::POST, url)
            .json(&json!({"data": events, "access_token": access_token}));
        api.send_json(OP, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_hashed_normalized() {
        assert_eq!(
            hash_email(" Ada@Example.com "),
            hash_email("ada@example.com")
        );
        assert_eq!(hash_email("ada@example.com").len(), 64);
        let event = ServerEvent::website("Lead", "e1", 1_748_859_330_999, Some("ada@example.com"));
        assert_eq!(event.event_time, 1_748_859_330);
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("custom_data").is_none());
        assert!(!json.to_string().contains("ada@"));
    }
}
