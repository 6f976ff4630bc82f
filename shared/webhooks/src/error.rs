//! The crate's error type and its mapping to HTTP statuses.
//!
//! Every rejection a provider can cause maps to a 4xx status (nothing is handed
//! to the sink); every failure on our side maps to a 5xx status so the provider
//! retries. Messages never contain secrets, signatures or body content.

use crate::provider::Provider;
use crate::sink::SinkError;

/// Why a webhook delivery was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The path names no known provider.
    #[error("unknown webhook provider `{0}`")]
    UnknownProvider(String),
    /// The provider was asked for but its environment variable is not set.
    #[error("{provider} webhooks are not configured: set {var}")]
    NotConfigured {
        /// The provider asked for.
        provider: Provider,
        /// The environment variable that is missing.
        var: &'static str,
    },
    /// A configuration value is set but unusable.
    #[error("invalid {var}: {reason}")]
    InvalidConfig {
        /// The environment variable holding the value.
        var: &'static str,
        /// What is wrong with it (never the value itself).
        reason: String,
    },
    /// A header the provider always sends is absent (or empty).
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// The signature is malformed or does not match.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// The signed timestamp is too far from now (a replay or a wrong clock).
    #[error("timestamp is more than {tolerance_secs} s away from now")]
    StaleTimestamp {
        /// The accepted distance from now, in seconds.
        tolerance_secs: i64,
    },
    /// HTTP Basic credentials are missing or wrong.
    #[error("invalid credentials")]
    BadCredentials,
    /// A PayPal certificate URL is not on the allow-list; nothing was fetched.
    #[error("untrusted certificate URL")]
    UntrustedCertUrl,
    /// The certificate could not be parsed or is outside its validity period.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// Fetching a certificate failed (network, HTTP status, size); retryable.
    #[error("fetching certificate failed: {0}")]
    CertFetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The body is larger than [`crate::MAX_BODY_BYTES`].
    #[error("body is {size} bytes, over the {limit}-byte limit")]
    BodyTooLarge {
        /// The body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The (verified) body is not JSON.
    #[error("body is not valid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
    /// The (verified) payload lacks a required field or header.
    #[error("malformed payload: {0}")]
    MalformedPayload(String),
    /// The request envelope (e.g. an API Gateway event) is unusable.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The normalized event breaks an engine rule (name length, size).
    #[error(transparent)]
    InvalidEvent(hookflow::Error),
    /// The normalized event is larger than [`hookflow::event::MAX_EVENT_BYTES`].
    #[error("event is {size} bytes, over the {limit}-byte limit")]
    EventTooLarge {
        /// The serialized event size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The sink failed to take the events; the provider should retry.
    #[error("event sink failed: {0}")]
    Sink(#[source] SinkError),
}

impl WebhookError {
    /// The HTTP status this error answers with.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownProvider(_) => 404,
            Self::MissingHeader(_)
            | Self::InvalidSignature(_)
            | Self::StaleTimestamp { .. }
            | Self::BadCredentials
            | Self::UntrustedCertUrl
            | Self::InvalidCertificate(_) => 401,
            Self::BodyTooLarge { .. } | Self::EventTooLarge { .. } => 413,
            Self::InvalidJson(_)
            | Self::MalformedPayload(_)
            | Self::InvalidRequest(_)
            | Self::InvalidEvent(_) => 400,
            Self::NotConfigured { .. } | Self::InvalidConfig { .. } => 500,
            Self::CertFetch(_) | Self::Sink(_) => 503,
        }
    }

    /// The message sent back to the caller: the error itself for 4xx, a generic
    /// line for 5xx (configuration and infrastructure details stay in the logs).
    #[must_use]
    pub fn public_message(&self) -> String {
        match self.status() {
            500 => "webhook receiver is misconfigured".to_owned(),
            503 => "temporarily unavailable, retry later".to_owned(),
            _ => self.to_string(),
        }
    }
}

/// Result with the crate's [`WebhookError`].
pub type Result<T, E = WebhookError> = std::result::Result<T, E>;
