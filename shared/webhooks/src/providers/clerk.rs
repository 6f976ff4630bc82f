//! Clerk, delivered by Svix (the Standard Webhooks scheme).
//!
//! Headers `svix-id`, `svix-timestamp`, `svix-signature` (or the
//! `webhook-*` equivalents). The signature header is a space-separated list
//! of `v1,<base64>`; each is HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed
//! with the base64-decoded part of the secret after `whsec_`. Other versions
//! (`v1a`, ...) are ignored. Timestamps more than [`TOLERANCE_SECS`] old or
//! ahead are rejected. Event: `clerk/<type>`, id = the message id.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hookflow::Event;

use crate::config::ClerkConfig;
use crate::crypto::{check_timestamp, ct_eq, decode_base64_32, hmac_sha256, parse_unix_secs};
use crate::delivery::{Delivery, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// Accepted distance between the signed timestamp and now, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Message id header (Svix name).
pub const ID_HEADER: &str = "svix-id";
/// Timestamp header (Svix name).
pub const TIMESTAMP_HEADER: &str = "svix-timestamp";
/// Signature header (Svix name).
pub const SIGNATURE_HEADER: &str = "svix-signature";

/// The header under its Svix name, else its Standard Webhooks name.
fn header<'a>(request: &'a WebhookRequest, svix: &'static str) -> Result<&'a str> {
    let standard = match svix {
        ID_HEADER => "webhook-id",
        TIMESTAMP_HEADER => "webhook-timestamp",
        _ => "webhook-signature",
    };
    request
        .required_header(svix)
        .or_else(|_| request.required_header(standard))
        .map_err(|_| WebhookError::MissingHeader(svix))
}

/// The well-formed `v1` signatures of a signature header, in order.
#[must_use]
pub fn parse_signatures(value: &str) -> Vec<[u8; 32]> {
    value
        .split_ascii_whitespace()
        .filter_map(|item| item.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| decode_base64_32(sig))
        .collect()
}

/// The signature header value (`v1,<base64>`) for a message.
#[must_use]
pub fn signature(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = hmac_sha256(
        key,
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(tag))
}

/// Verifies the signature and timestamp; returns the message id.
///
/// # Errors
/// 401-class errors: missing header, malformed timestamp, no matching `v1`,
/// timestamp outside the window.
pub fn verify<'a>(
    config: &ClerkConfig,
    request: &'a WebhookRequest,
    now_ms: i64,
) -> Result<&'a str> {
    let msg_id = header(request, ID_HEADER)?;
    let timestamp_text = header(request, TIMESTAMP_HEADER)?;
    let signatures = parse_signatures(header(request, SIGNATURE_HEADER)?);
    let timestamp = parse_unix_secs(timestamp_text)
        .ok_or(WebhookError::InvalidSignature("malformed svix-timestamp"))?;
    if signatures.is_empty() {
        return Err(WebhookError::InvalidSignature(
            "no v1 signature in svix-signature",
        ));
    }
    let expected = hmac_sha256(
        &config.key,
        &[
            msg_id.as_bytes(),
            b".",
            timestamp_text.as_bytes(),
            b".",
            &request.body,
        ],
    );
    let matched = signatures
        .iter()
        .fold(false, |any, sig| any | ct_eq(sig, &expected));
    if !matched {
        return Err(WebhookError::InvalidSignature("no v1 signature matches"));
    }
    check_timestamp(timestamp, now_ms, TOLERANCE_SECS)?;
    Ok(msg_id)
}

/// Normalizes a verified body into `clerk/<type>` with the message id.
///
/// # Errors
/// 400 if the body is not an object with a string `type`.
pub fn normalize(msg_id: &str, body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let name = format!("clerk/{}", required_str(&data, "type")?);
    Ok(Delivery::event(
        Event::new(name, data).with_id(msg_id).with_ts(now_ms),
    ))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &ClerkConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    let msg_id = verify(config, request, now_ms)?;
    normalize(msg_id, &request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v1_entries_are_kept() {
        let sig = STANDARD.encode([7u8; 32]);
        let header = format!("v1a,{sig} v1,{sig}  v2,{sig} v1,short v1,{}", &sig[..20]);
        assert_eq!(parse_signatures(&header), vec![[7u8; 32]]);
    }

    #[test]
    fn standard_webhooks_reference_vector_signs_as_published() {
        let config = ClerkConfig::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &config.key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
