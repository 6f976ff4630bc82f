//! Email through Resend (the course platform's broadcasts): send one message.
//!
//! The API key goes in `Authorization: Bearer`. Each send takes an
//! idempotency key (pass `step.idempotency_key()`), sent as
//! `Idempotency-Key`: Resend answers a repeated key with the first send's
//! result for 24 hours, so a step re-run before its checkpoint never sends
//! twice. Rejections (invalid address, unverified domain) answer 422 and are
//! not retried; 429 and 5xx are.

use std::collections::BTreeMap;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};
use crate::http::{Api, Credential, HttpClient};

/// Resend's email API.
#[derive(Clone, Debug)]
pub struct ResendClient {
    api: Api,
}

/// One email.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResendEmail {
    /// Sender (`Name <address>`) on a verified domain.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Plain-text body, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Extra headers (e.g. `List-Unsubscribe`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Tags for Resend's statistics and webhooks (`type` = `broadcast`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A name/value tag on an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// Tag name (ASCII letters, digits, `_` and `-`).
    pub name: String,
    /// Tag value (same characters).
    pub value: String,
}

#[derive(Deserialize)]
struct Sent {
    id: String,
}

impl ResendClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://api.resend.com";
    /// API key. Required to send; unset, the client is disabled.
    pub const API_KEY_VAR: &'static str = "RESEND_API_KEY";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "RESEND_API_BASE";

    crate::http::keyed_client!("resend", API_KEY_VAR);

    fn build(http: &HttpClient, api_key: &str, base: Url) -> Result<Self> {
        let credential = Credential::new(Self::API_KEY_VAR, AUTHORIZATION, "Bearer ", api_key)?;
        Ok(Self {
            api: Api::new(http, "resend", base, Some(credential)),
        })
    }

    /// Sends `email` once per `idempotency_key` (`POST /emails`) and returns
    /// Resend's email id.
    ///
    /// # Errors
    /// [`ClientError`]; a rejected message (422) or an empty key is not retried.
    pub async fn send(&self, email: &ResendEmail, idempotency_key: &str) -> Result<String> {
        const OP: &str = "send";
        let key = HeaderValue::from_str(idempotency_key.trim())
            .ok()
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ClientError::invalid_argument(
                    "resend",
                    OP,
                    "the idempotency key is empty or not a valid header value",
                )
            })?;
        let url = self.api.url(OP, &["emails"])?;
        let req = self
            .api
            .request(Method::POST, url)
            .header("Idempotency-Key", key)
            .json(email);
        let sent: Sent = self.api.send_json(OP, req).await?;
        Ok(sent.id)
    }
}
