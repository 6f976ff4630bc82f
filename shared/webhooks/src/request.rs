//! The framework-agnostic input: raw body bytes plus headers, and the adapter
//! from an API Gateway HTTP API (payload format 2.0) event.
//!
//! Invariant: the body is kept byte for byte as received, because signatures
//! are computed over the raw bytes; nothing here re-serializes it. Header names
//! are matched case-insensitively (API Gateway lowercases them). `Debug` never
//! prints header values or the body, which carry signatures and credentials.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Result, WebhookError};
use crate::provider::Provider;

/// A webhook delivery as received: headers and the raw body.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Header name/value pairs, in any case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// A request with this body and no headers.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same request with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of a header, matched case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The header's value, trimmed; [`WebhookError::MissingHeader`] when absent
    /// or blank.
    ///
    /// # Errors
    /// [`WebhookError::MissingHeader`] naming `name`.
    pub fn required_header(&self, name: &'static str) -> Result<&str> {
        match self.header(name).map(str::trim) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(WebhookError::MissingHeader(name)),
        }
    }

    /// Builds a request from an API Gateway HTTP API (payload 2.0) event.
    ///
    /// # Errors
    /// [`WebhookError::InvalidRequest`] if the JSON is not such an event or a
    /// base64 body does not decode.
    pub fn from_api_gateway_v2(json: &[u8]) -> Result<Self> {
        ApiGatewayV2Request::from_json(json)?.into_webhook_request()
    }
}

impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("WebhookRequest")
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The parts of an API Gateway HTTP API (payload 2.0) request event that a
/// webhook receiver needs. Unknown fields are ignored.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayV2Request {
    /// The request path, e.g. `/webhooks/stripe`.
    #[serde(default)]
    pub raw_path: Option<String>,
    /// Headers (lowercased by API Gateway; repeated headers comma-joined).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, base64-encoded when `is_base64_encoded`.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether `body` is base64.
    #[serde(default)]
    pub is_base64_encoded: bool,
    /// Request metadata set by API Gateway.
    #[serde(default)]
    pub request_context: ApiGatewayV2Context,
}

/// `requestContext` of an API Gateway HTTP API event (the fields used here).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayV2Context {
    /// When API Gateway received the request, in ms since the epoch.
    #[serde(default)]
    pub time_epoch: Option<i64>,
    /// Method and path.
    #[serde(default)]
    pub http: Option<ApiGatewayV2Http>,
}

/// `requestContext.http` of an API Gateway HTTP API event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayV2Http {
    /// HTTP method, e.g. `POST`.
    #[serde(default)]
    pub method: String,
    /// Request path.
    #[serde(default)]
    pub path: String,
}

impl ApiGatewayV2Request {
    /// Parses the event JSON.
    ///
    /// # Errors
    /// [`WebhookError::InvalidRequest`] if it is not an API Gateway v2 event.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        serde_json::from_slice(json).map_err(|err| {
            WebhookError::InvalidRequest(format!("not an API Gateway v2 event: {err}"))
        })
    }

    /// Converts an already-parsed event (e.g. a Lambda payload `Value`).
    ///
    /// # Errors
    /// [`WebhookError::InvalidRequest`] if it is not an API Gateway v2 event.
    pub fn from_value(value: Value) -> Result<Self> {
        serde_json::from_value(value).map_err(|err| {
            WebhookError::InvalidRequest(format!("not an API Gateway v2 event: {err}"))
        })
    }

    /// When API Gateway received the request (`requestContext.timeEpoch`).
    #[must_use]
    pub fn time_epoch_ms(&self) -> Option<i64> {
        self.request_context.time_epoch
    }

    /// The request path: `rawPath`, else `requestContext.http.path`.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        self.raw_path.as_deref().or_else(|| {
            self.request_context
                .http
                .as_ref()
                .map(|http| http.path.as_str())
        })
    }

    /// The provider named by the path (`/webhooks/<provider>`).
    ///
    /// # Errors
    /// [`WebhookError::UnknownProvider`] if the path names none.
    pub fn provider(&self) -> Result<Provider> {
        Provider::from_path(self.path().unwrap_or_default())
    }

    /// The raw body bytes (base64-decoded when flagged).
    ///
    /// # Errors
    /// [`WebhookError::InvalidRequest`] if a base64 body does not decode.
    pub fn body_bytes(&self) -> Result<Vec<u8>> {
        let body = self.body.as_deref().unwrap_or_default();
        if self.is_base64_encoded {
            STANDARD.decode(body).map_err(|err| {
                WebhookError::InvalidRequest(format!("body is not valid base64: {err}"))
            })
        } else {
            Ok(body.as_bytes().to_vec())
        }
    }

    /// The framework-agnostic request.
    ///
    /// # Errors
    /// [`WebhookError::InvalidRequest`] if a base64 body does not decode.
    pub fn into_webhook_request(self) -> Result<WebhookRequest> {
        let body = self.body_bytes()?;
        Ok(WebhookRequest {
            headers: self.headers.into_iter().collect(),
            body,
        })
    }
}

impl fmt::Debug for ApiGatewayV2Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiGatewayV2Request")
            .field("raw_path", &self.raw_path)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(String::len))
            .field("is_base64_encoded", &self.is_base64_encoded)
            .field("request_context", &self.request_context)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case() {
        let request = WebhookRequest::new("{}").with_header("Stripe-Signature", "t=1");
        assert_eq!(request.header("stripe-signature"), Some("t=1"));
        assert_eq!(request.header("STRIPE-SIGNATURE"), Some("t=1"));
        assert_eq!(request.header("other"), None);
    }

    #[test]
    fn blank_required_header_is_missing() {
        let request = WebhookRequest::new("{}").with_header("x-sig", "  ");
        let err = request.required_header("x-sig").unwrap_err();
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn base64_body_is_decoded_to_raw_bytes() {
        let event = br#"{"rawPath":"/webhooks/cal","headers":{"X-A":"1"},"body":"aGk=","isBase64Encoded":true,"requestContext":{"timeEpoch":5}}"#;
        let parsed = ApiGatewayV2Request::from_json(event).unwrap();
        assert_eq!(parsed.time_epoch_ms(), Some(5));
        assert_eq!(parsed.provider().unwrap(), Provider::Cal);
        let request = parsed.into_webhook_request().unwrap();
        assert_eq!(request.body, b"hi");
        assert_eq!(request.header("x-a"), Some("1"));
    }

    #[test]
    fn bad_base64_and_bad_envelopes_are_400() {
        let bad_b64 = br#"{"body":"***","isBase64Encoded":true}"#;
        assert_eq!(
            WebhookRequest::from_api_gateway_v2(bad_b64)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            WebhookRequest::from_api_gateway_v2(b"[1]")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn debug_output_hides_values_and_body() {
        let request =
            WebhookRequest::new("secret-body").with_header("authorization", "Basic c2VjcmV0");
        let printed = format!("{request:?}");
        assert!(
            !printed.contains("secret-body") && !printed.contains("c2VjcmV0"),
            "{printed}"
        );
    }
}
