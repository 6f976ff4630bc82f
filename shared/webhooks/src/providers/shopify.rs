//! Shopify: `X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256 of the body, keyed
//! with the app's client secret.
//!
//! Metadata comes from headers ([`ShopifyHeaders`]): the topic names the
//! event (`shopify/<topic>`, e.g. `shopify/orders/create`), the shop domain
//! becomes the event's tenant, and `X-Shopify-Event-Id` is the dedupe id
//! (falling back to `X-Shopify-Webhook-Id` when absent). `data` is the body
//! verbatim; the webhook id, API version and trigger time are available from
//! [`ShopifyHeaders::from_request`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hookflow::Event;

use crate::config::ShopifyConfig;
use crate::crypto::{ct_eq, decode_base64_32, hmac_sha256};
use crate::delivery::{Delivery, parse_json};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Shopify-Hmac-Sha256";
/// The topic header (e.g. `orders/create`).
pub const TOPIC_HEADER: &str = "X-Shopify-Topic";
/// The shop domain header (e.g. `shop.myshopify.com`).
pub const SHOP_DOMAIN_HEADER: &str = "X-Shopify-Shop-Domain";
/// The event id header (the same across subscriptions and retries).
pub const EVENT_ID_HEADER: &str = "X-Shopify-Event-Id";
/// The webhook (delivery subscription) id header.
pub const WEBHOOK_ID_HEADER: &str = "X-Shopify-Webhook-Id";
/// The API version header.
pub const API_VERSION_HEADER: &str = "X-Shopify-API-Version";
/// The trigger time header.
pub const TRIGGERED_AT_HEADER: &str = "X-Shopify-Triggered-At";

/// The metadata headers of a Shopify delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyHeaders<'a> {
    /// `X-Shopify-Topic`.
    pub topic: &'a str,
    /// `X-Shopify-Shop-Domain`.
    pub shop_domain: &'a str,
    /// `X-Shopify-Event-Id`, if sent.
    pub event_id: Option<&'a str>,
    /// `X-Shopify-Webhook-Id`, if sent.
    pub webhook_id: Option<&'a str>,
    /// `X-Shopify-API-Version`, if sent.
    pub api_version: Option<&'a str>,
    /// `X-Shopify-Triggered-At`, if sent.
    pub triggered_at: Option<&'a str>,
}

impl<'a> ShopifyHeaders<'a> {
    /// Reads the metadata headers.
    ///
    /// # Errors
    /// [`WebhookError::MalformedPayload`] (400) if the topic, shop domain or
    /// both ids are missing.
    pub fn from_request(request: &'a WebhookRequest) -> Result<Self> {
        let optional = |name| request.required_header(name).ok();
        let required = |name: &'static str| {
            optional(name)
                .ok_or_else(|| WebhookError::MalformedPayload(format!("missing header `{name}`")))
        };
        let headers = Self {
            topic: required(TOPIC_HEADER)?,
            shop_domain: required(SHOP_DOMAIN_HEADER)?,
            event_id: optional(EVENT_ID_HEADER),
            webhook_id: optional(WEBHOOK_ID_HEADER),
            api_version: optional(API_VERSION_HEADER),
            triggered_at: optional(TRIGGERED_AT_HEADER),
        };
        if headers.dedupe_id().is_none() {
            return Err(WebhookError::MalformedPayload(format!(
                "missing header `{EVENT_ID_HEADER}` (and `{WEBHOOK_ID_HEADER}`)"
            )));
        }
        Ok(headers)
    }

    /// The dedupe id: the event id, else the webhook id.
    #[must_use]
    pub fn dedupe_id(&self) -> Option<&'a str> {
        self.event_id.or(self.webhook_id)
    }
}

/// Parses the signature header (base64 of 32 bytes).
///
/// # Errors
/// [`WebhookError::InvalidSignature`] if it is not exactly that.
pub fn parse_signature(value: &str) -> Result<[u8; 32]> {
    decode_base64_32(value).ok_or(WebhookError::InvalidSignature(
        "malformed X-Shopify-Hmac-Sha256",
    ))
}

/// The signature header value for a body (base64).
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(secret, &[body]))
}

/// Verifies the body signature.
///
/// # Errors
/// 401-class errors: missing, malformed or non-matching signature.
pub fn verify(config: &ShopifyConfig, request: &WebhookRequest) -> Result<()> {
    let given = parse_signature(request.required_header(SIGNATURE_HEADER)?)?;
    let expected = hmac_sha256(config.secret.expose(), &[&request.body]);
    if !ct_eq(&given, &expected) {
        return Err(WebhookError::InvalidSignature(
            "X-Shopify-Hmac-Sha256 does not match",
        ));
    }
    Ok(())
}

/// Normalizes a verified delivery into `shopify/<topic>` for the shop.
///
/// # Errors
/// 400 if the body is not JSON or a metadata header is missing.
pub fn normalize(request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    let headers = ShopifyHeaders::from_request(request)?;
    let data = parse_json(&request.body)?;
    let id = headers.dedupe_id().unwrap_or_default();
    let event = Event::new(format!("shopify/{}", headers.topic), data)
        .with_id(id)
        .with_ts(now_ms)
        .with_tenant(headers.shop_domain);
    tracing::debug!(
        webhook_id = headers.webhook_id,
        event_id = id,
        "shopify delivery"
    );
    Ok(Delivery::event(event))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &ShopifyConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    verify(config, request)?;
    normalize(request, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_id_is_the_fallback_dedupe_id() {
        let request = WebhookRequest::new("{}")
            .with_header("x-shopify-topic", "orders/create")
            .with_header("x-shopify-shop-domain", "s.myshopify.com")
            .with_header("x-shopify-webhook-id", "w1");
        let headers = ShopifyHeaders::from_request(&request).unwrap();
        assert_eq!(headers.dedupe_id(), Some("w1"));
    }

    #[test]
    fn missing_topic_is_a_400() {
        let request = WebhookRequest::new("{}").with_header("x-shopify-event-id", "e1");
        assert_eq!(
            ShopifyHeaders::from_request(&request).unwrap_err().status(),
            400
        );
    }
}
