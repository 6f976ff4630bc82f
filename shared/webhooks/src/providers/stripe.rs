//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256
//! over `{t}.{body}` keyed with the whole `whsec_...` secret.
//!
//! A delivery is accepted if any `v1` matches (Stripe sends several while a
//! secret is being rolled) and `t` is within [`TOLERANCE_SECS`] of now.
//! Event: `stripe/<type>`, id = the body's `id` (`evt_...`), tenant = the
//! Connect `account` when present.

use hookflow::Event;

use crate::config::StripeConfig;
use crate::crypto::{check_timestamp, ct_eq, decode_hex_32, hmac_sha256, parse_unix_secs};
use crate::delivery::{Delivery, optional_str, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// Accepted distance between the signed timestamp and now.
pub const TOLERANCE_SECS: i64 = 300;

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignature<'a> {
    /// `t`, as sent (it is signed as text).
    pub timestamp_text: &'a str,
    /// `t`, in seconds.
    pub timestamp: i64,
    /// Every well-formed `v1` value.
    pub v1: Vec<[u8; 32]>,
}

/// Parses a `Stripe-Signature` header. Malformed `v1` values are skipped;
/// other schemes (`v0`) are ignored.
///
/// # Errors
/// [`WebhookError::InvalidSignature`] if `t` is missing, repeated or not a
/// number, or no well-formed `v1` is present.
pub fn parse_signature_header(value: &str) -> Result<StripeSignature<'_>> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in value.split(',') {
        let Some((key, val)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::InvalidSignature(
                        "repeated `t` in Stripe-Signature",
                    ));
                }
                let text = val.trim();
                let secs = parse_unix_secs(text).ok_or(WebhookError::InvalidSignature(
                    "malformed `t` in Stripe-Signature",
                ))?;
                timestamp = Some((text, secs));
            }
            "v1" => v1.extend(decode_hex_32(val)),
            _ => {}
        }
    }
    let (timestamp_text, timestamp) =
        timestamp.ok_or(WebhookError::InvalidSignature("no `t` in Stripe-Signature"))?;
    if v1.is_empty() {
        return Err(WebhookError::InvalidSignature(
            "no v1 signature in Stripe-Signature",
        ));
    }
    Ok(StripeSignature {
        timestamp_text,
        timestamp,
        v1,
    })
}

/// The `v1` signature for a body signed at `timestamp` (hex).
#[must_use]
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, &[timestamp.as_bytes(), b".", body]))
}

/// Verifies the signature and timestamp of a delivery.
///
/// # Errors
/// 401-class errors: missing/malformed header, no matching `v1`, stale `t`.
pub fn verify(config: &StripeConfig, request: &WebhookRequest, now_ms: i64) -> Result<()> {
    let header = request.required_header(SIGNATURE_HEADER)?;
    let parsed = parse_signature_header(header)?;
    let expected = hmac_sha256(
        config.secret.expose(),
        &[parsed.timestamp_text.as_bytes(), b".", &request.body],
    );
    // Check every candidate (no early exit) so timing does not reveal which matched.
    let matched = parsed
        .v1
        .iter()
        .fold(false, |any, sig| any | ct_eq(sig, &expected));
    if !matched {
        return Err(WebhookError::InvalidSignature("no v1 signature matches"));
    }
    check_timestamp(parsed.timestamp, now_ms, TOLERANCE_SECS)
}

/// Normalizes a verified body into `stripe/<type>`.
///
/// # Errors
/// [`WebhookError::InvalidJson`] / [`WebhookError::MalformedPayload`] (400)
/// if the body is not an object with string `id` and `type`.
pub fn normalize(body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let id = required_str(&data, "id")?.to_owned();
    let name = format!("stripe/{}", required_str(&data, "type")?);
    let tenant = optional_str(&data, "account").map(str::to_owned);
    let mut event = Event::new(name, data).with_id(id).with_ts(now_ms);
    if let Some(tenant) = tenant {
        event = event.with_tenant(tenant);
    }
    Ok(Delivery::event(event))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &StripeConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    verify(config, request, now_ms)?;
    normalize(&request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_with_several_v1_and_v0_parses() {
        let sig = "a".repeat(64);
        let header = format!("t=12,v1={sig},v0=zz,v1={sig}");
        let parsed = parse_signature_header(&header).unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.v1.len(), 2);
    }

    #[test]
    fn header_without_t_or_v1_or_with_two_t_is_rejected() {
        let sig = "a".repeat(64);
        for header in [
            format!("v1={sig}"),
            "t=12".to_owned(),
            format!("t=12,v1={}", &sig[..63]),
            format!("t=1,t=2,v1={sig}"),
            String::new(),
        ] {
            assert!(parse_signature_header(&header).is_err(), "{header}");
        }
    }
}
