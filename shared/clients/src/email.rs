//! Email through Postmark: send one message.
//!
//! The server token goes in `X-Postmark-Server-Token`. Postmark has no
//! idempotency key, so a send step that re-runs before its checkpoint may send
//! twice; keep sends in their own step. Rejections (inactive recipient, invalid
//! address, unverified sender) answer 422 and are not retried.

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::http::{Api, Credential, Env, HttpClient, base_from_env, base_url, required};

/// Postmark's email API.
#[derive(Clone, Debug)]
pub struct EmailClient {
    api: Api,
}

/// One email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Email {
    /// Sender (`Name <address>` or an address) on a verified domain.
    pub from: String,
    /// Recipient(s), comma-separated.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_body: Option<String>,
    /// Tag for Postmark's statistics (e.g. `booking-failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "MessageID")]
    message_id: String,
}

impl EmailClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://api.postmarkapp.com";
    /// Server API token. Required.
    pub const SERVER_TOKEN_VAR: &'static str = "POSTMARK_SERVER_TOKEN";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "POSTMARK_API_BASE";

    /// A client with this server token at the default base URL.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] / [`crate::ClientError::InvalidConfig`]
    /// for an empty or malformed token.
    pub fn new(http: &HttpClient, server_token: &str) -> Result<Self> {
        Self::build(
            http,
            server_token,
            base_url(Self::BASE_VAR, Self::DEFAULT_BASE)?,
        )
    }

    /// From `POSTMARK_SERVER_TOKEN` and optional `POSTMARK_API_BASE`.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] naming `POSTMARK_SERVER_TOKEN`, or
    /// [`crate::ClientError::InvalidConfig`].
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let token = required(env, Self::SERVER_TOKEN_VAR)?;
        Self::build(
            http,
            &token,
            base_from_env(env, Self::BASE_VAR, Self::DEFAULT_BASE)?,
        )
    }

    /// A client whose every call fails at once (not retried) with
    /// [`crate::ClientError::Disabled`] naming `SERVER_TOKEN_VAR`: for a process that must
    /// start without this API configured (`hookflow dev` on a fresh machine).
    ///
    /// # Errors
    /// Never in practice; kept fallible like the other constructors.
    pub fn disabled(http: &HttpClient) -> Result<Self> {
        Ok(Self {
            api: Api::disabled(http, "postmark", Self::SERVER_TOKEN_VAR)?,
        })
    }

    /// From configuration like `from_env`, or [`Self::disabled`] when the
    /// credential is unset.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] for a malformed value.
    pub fn from_env_or_disabled(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        if crate::http::optional(env, Self::SERVER_TOKEN_VAR).is_none() {
            return Self::disabled(http);
        }
        Self::from_env(http, env)
    }

    /// Whether calls are sent (false for a disabled client).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.api.is_enabled()
    }

    /// The same client at another base URL.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] if `base` is not an http(s) URL.
    pub fn with_base_url(self, base: &str) -> Result<Self> {
        Ok(Self {
            api: self.api.with_base(base_url(Self::BASE_VAR, base)?),
        })
    }

    fn build(http: &HttpClient, server_token: &str, base: Url) -> Result<Self> {
        let header = HeaderName::from_static("x-postmark-server-token");
        let credential = Credential::new(Self::SERVER_TOKEN_VAR, header, "", server_token)?;
        let accept = (ACCEPT, HeaderValue::from_static("application/json"));
        Ok(Self {
            api: Api::new(http, "postmark", base, Some(credential)).with_headers(vec![accept]),
        })
    }

    /// Sends `email` (`POST /email`) and returns Postmark's message id.
    ///
    /// # Errors
    /// [`crate::ClientError`]; a rejected message (422) is not retried.
    pub async fn send_email(&self, email: &Email) -> Result<String> {
        const OP: &str = "send_email";
        let url = self.api.url(OP, &["email"])?;
        let req = self.api.request(Method::POST, url).json(email);
        let sent: Sent = self.api.send_json(OP, req).await?;
        Ok(sent.message_id)
    }
}
