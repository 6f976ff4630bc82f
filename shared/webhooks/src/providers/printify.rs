//! Printify: `X-Pfy-Signature: sha256=<hex>` = HMAC-SHA256 of the body keyed
//! with the webhook secret (the `sha256=` prefix is optional).
//!
//! Event: `printify/<type>` (e.g. `printify/order:shipment:created`), id =
//! the body's `id`.

use hookflow::Event;

use crate::config::PrintifyConfig;
use crate::crypto::{ct_eq, decode_hex_32, hmac_sha256};
use crate::delivery::{Delivery, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Pfy-Signature";

/// Parses the signature header: `sha256=<64 hex>` or bare hex.
///
/// # Errors
/// [`WebhookError::InvalidSignature`] if it is not that.
pub fn parse_signature(value: &str) -> Result<[u8; 32]> {
    let value = value.trim();
    let hex = value.strip_prefix("sha256=").unwrap_or(value);
    decode_hex_32(hex).ok_or(WebhookError::InvalidSignature("malformed X-Pfy-Signature"))
}

/// The signature header value for a body (`sha256=<hex>`).
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, &[body])))
}

/// Verifies the body signature.
///
/// # Errors
/// 401-class errors: missing, malformed or non-matching signature.
pub fn verify(config: &PrintifyConfig, request: &WebhookRequest) -> Result<()> {
    let given = parse_signature(request.required_header(SIGNATURE_HEADER)?)?;
    let expected = hmac_sha256(config.secret.expose(), &[&request.body]);
    if !ct_eq(&given, &expected) {
        return Err(WebhookError::InvalidSignature(
            "X-Pfy-Signature does not match",
        ));
    }
    Ok(())
}

/// Normalizes a verified body into `printify/<type>`.
///
/// # Errors
/// 400 if the body is not an object with string `id` and `type`.
pub fn normalize(body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let id = required_str(&data, "id")?.to_owned();
    let name = format!("printify/{}", required_str(&data, "type")?);
    Ok(Delivery::event(
        Event::new(name, data).with_id(id).with_ts(now_ms),
    ))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &PrintifyConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    verify(config, request)?;
    normalize(&request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_optional_but_length_is_not() {
        let hex = "ab".repeat(32);
        assert!(parse_signature(&format!("sha256={hex}")).is_ok());
        assert!(parse_signature(&hex).is_ok());
        assert!(parse_signature(&format!("sha256={}", &hex[..62])).is_err());
        assert!(parse_signature("sha256=").is_err());
    }
}
