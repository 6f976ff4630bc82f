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
use crate::http::{Api, Credential, HttpClient};

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

    crate::http::keyed_client!("postmark", SERVER_TOKEN_VAR);

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
