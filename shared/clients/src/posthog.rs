//! PostHog: capture analytics events.
//!
//! The project API key (`phc_...`) travels in the body, as PostHog expects.
//! Analytics is optional: without `POSTHOG_API_KEY` the client is disabled and
//! `capture` does nothing (logged at debug), so a workflow runs the same with
//! or without it.

use reqwest::{Method, Url};
use serde_json::Value;

use crate::error::Result;
use crate::http::{Api, Credential, Env, HttpClient, base_from_env, base_url, optional};

/// PostHog's capture API, or a disabled stand-in.
#[derive(Clone, Debug)]
pub struct PostHogClient {
    inner: Option<Enabled>,
}

#[derive(Clone)]
struct Enabled {
    api: Api,
    api_key: std::sync::Arc<str>,
}

impl std::fmt::Debug for Enabled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enabled")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl PostHogClient {
    /// Default host.
    pub const DEFAULT_HOST: &'static str = "https://us.i.posthog.com";
    /// Project API key. Optional: unset disables analytics.
    pub const API_KEY_VAR: &'static str = "POSTHOG_API_KEY";
    /// Host override (e.g. `https://eu.i.posthog.com`). Optional.
    pub const HOST_VAR: &'static str = "POSTHOG_HOST";

    /// A client with this project API key at the default host.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] for an empty key.
    pub fn new(http: &HttpClient, api_key: &str) -> Result<Self> {
        Self::build(http, api_key, base_url(Self::HOST_VAR, Self::DEFAULT_HOST)?)
    }

    /// A client whose `capture` does nothing.
    #[must_use]
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// From optional `POSTHOG_API_KEY` (disabled when unset) and `POSTHOG_HOST`.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] for a malformed host.
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        match optional(env, Self::API_KEY_VAR) {
            None => Ok(Self::disabled()),
            Some(key) => Self::build(
                http,
                &key,
                base_from_env(env, Self::HOST_VAR, Self::DEFAULT_HOST)?,
            ),
        }
    }

    /// The same client at another host (no effect on a disabled one).
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] if `base` is not an http(s) URL.
    pub fn with_base_url(self, base: &str) -> Result<Self> {
        let base = base_url(Self::HOST_VAR, base)?;
        Ok(Self {
            inner: self.inner.map(|e| Enabled {
                api: e.api.with_base(base),
                api_key: e.api_key,
            }),
        })
    }

    fn build(http: &HttpClient, api_key: &str, base: Url) -> Result<Self> {
        let api_key = Credential::in_body(Self::API_KEY_VAR, api_key)?;
        let api = Api::new(http, "posthog", base, None).redacting(vec![api_key.clone()]);
        Ok(Self {
            inner: Some(Enabled { api, api_key }),
        })
    }

    /// Whether events are sent.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Records `event` for `distinct_id` with `properties` (an object, or
    /// `Value::Null` for none) (`POST /capture/`).
    ///
    /// # Errors
    /// [`crate::ClientError`]. Analytics should not stop a run: workflows
    /// usually log this error and go on.
    pub async fn capture(&self, distinct_id: &str, event: &str, properties: Value) -> Result<()> {
        const OP: &str = "capture";
        let Some(enabled) = &self.inner else {
            tracing::debug!(event, "PostHog disabled: event not captured");
            return Ok(());
        };
        let properties = match properties {
            Value::Null => Value::Object(serde_json::Map::new()),
            other => other,
        };
        let body = serde_json::json!({
            "api_key": &*enabled.api_key,
            "event": event,
            "distinct_id": distinct_id,
            "properties": properties,
        });
        let mut url = enabled.api.url(OP, &["capture"])?;
        let path = format!("{}/", url.path()); // PostHog's endpoint is `/capture/`
        url.set_path(&path);
        let req = enabled.api.request(Method::POST, url).json(&body);
        enabled.api.send(OP, req).await.map(drop)
    }
}
