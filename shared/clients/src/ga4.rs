//! Google Analytics 4 Measurement Protocol: a `purchase` event for an
//! attributed order, sent server-side.
//!
//! Each tenant has its own measurement id and API secret (from the tenant's
//! configuration), passed with each call. The protocol takes both in the
//! query string; transport errors drop the URL and status errors redact the
//! secret, so neither reaches a log. `transaction_id` lets GA4 drop a
//! duplicate purchase when a step is retried.

use reqwest::{Method, Url};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Result;
use crate::http::{Api, Env, HttpClient, optional};

/// The Measurement Protocol over the shared pool.
#[derive(Clone, Debug)]
pub struct Ga4Client {
    api: Api,
}

/// A purchase to report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Purchase {
    /// The order id (deduplicates).
    pub transaction_id: String,
    /// Total, in major units.
    pub value: f64,
    /// ISO 4217 code.
    pub currency: String,
    /// First-touch source (`utm_source`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// First-touch medium, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// Campaign, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

impl Ga4Client {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://www.google-analytics.com";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "GA4_BASE";

    /// From configuration (`GA4_BASE` if set); credentials come per call.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] for a bad base URL.
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let base = optional(env, Self::BASE_VAR).unwrap_or_else(|| Self::DEFAULT_BASE.to_owned());
        let base: Url = crate::http::base_url(Self::BASE_VAR, &base)?;
        Ok(Self {
            api: Api::new(http, "ga4", base, None),
        })
    }

    /// Reports a purchase for `client_id` (`POST /mp/collect`).
    ///
    /// # Errors
    /// [`crate::ClientError`].
    pub async fn purchase(
        &self,
        measurement_id: &str,
        api_secret: &str,
        client_id: &str,
        timestamp_ms: i64,
        purchase: &Purchase,
    ) -> Result<()> {
        const OP: &str = "purchase";
        let api = self.api.clone().redacting(vec![api_secret.into()]);
        let mut url = api.url(OP, &["mp", "collect"])?;
        url.query_pairs_mut()
            .append_pair("measurement_id", measurement_id)
            .append_pair("api_secret", api_secret);
        let body: Value = json!({
            "client_id": client_id,
            "timestamp_micros": timestamp_ms.saturating_mul(1000),
            "events": [{"name": "purchase", "params": purchase}],
        });
        api.send(OP, api.request(Method::POST, url).json(&body))
            .await
            .map(|_| ())
    }
}
