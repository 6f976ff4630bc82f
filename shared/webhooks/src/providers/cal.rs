//! Cal.com: `X-Cal-Signature-256` = hex HMAC-SHA256 of the body.
//!
//! Cal.com sends the literal [`NO_SECRET_PROVIDED`] when its webhook has no
//! secret; that is rejected like any bad signature. The body carries no event
//! id, so the dedupe id is derived from (`triggerEvent`, booking `uid`,
//! `createdAt`): `payload.uid` for booking triggers, the top-level `uid` for
//! meeting triggers (whose booking fields are at the top level). If neither a
//! uid nor `createdAt` is present, the id is derived from the body digest.
//! Event: `cal/<triggerEvent>` (e.g. `cal/BOOKING_CREATED`).

use hookflow::Event;
use hookflow::event::derived_id;
use sha2::{Digest, Sha256};

use crate::config::CalConfig;
use crate::crypto::{ct_eq, decode_hex_32, hmac_sha256};
use crate::delivery::{Delivery, optional_str, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Cal-Signature-256";
/// What Cal.com sends in [`SIGNATURE_HEADER`] when no secret is set.
pub const NO_SECRET_PROVIDED: &str = "no-secret-provided";

/// Parses the signature header (64 hex characters).
///
/// # Errors
/// [`WebhookError::InvalidSignature`] for Cal.com's no-secret placeholder or
/// anything that is not 32 hex bytes.
pub fn parse_signature(value: &str) -> Result<[u8; 32]> {
    if value.trim() == NO_SECRET_PROVIDED {
        return Err(WebhookError::InvalidSignature(
            "Cal.com sent no signature: set a secret on the webhook",
        ));
    }
    decode_hex_32(value).ok_or(WebhookError::InvalidSignature(
        "malformed X-Cal-Signature-256",
    ))
}

/// The signature header value for a body (hex).
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, &[body]))
}

/// Verifies the body signature.
///
/// # Errors
/// 401-class errors: missing, malformed or non-matching signature.
pub fn verify(config: &CalConfig, request: &WebhookRequest) -> Result<()> {
    let given = parse_signature(request.required_header(SIGNATURE_HEADER)?)?;
    let expected = hmac_sha256(config.secret.expose(), &[&request.body]);
    if !ct_eq(&given, &expected) {
        return Err(WebhookError::InvalidSignature(
            "X-Cal-Signature-256 does not match",
        ));
    }
    Ok(())
}

/// Normalizes a verified body into `cal/<triggerEvent>`.
///
/// # Errors
/// 400 if the body is not an object with a string `triggerEvent`.
pub fn normalize(body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let trigger = required_str(&data, "triggerEvent")?;
    let uid = data
        .get("payload")
        .and_then(|payload| optional_str(payload, "uid"))
        .or_else(|| optional_str(&data, "uid"))
        .unwrap_or_default();
    let created_at = optional_str(&data, "createdAt").unwrap_or_default();
    let id = if uid.is_empty() && created_at.is_empty() {
        derived_id(&["cal", trigger, &hex::encode(Sha256::digest(body))])
    } else {
        derived_id(&["cal", trigger, uid, created_at])
    };
    let name = format!("cal/{trigger}");
    Ok(Delivery::event(
        Event::new(name, data).with_id(id).with_ts(now_ms),
    ))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &CalConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    verify(config, request)?;
    normalize(&request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_id_is_stable_and_depends_on_trigger_uid_and_time() {
        let created =
            br#"{"triggerEvent":"BOOKING_CREATED","createdAt":"t1","payload":{"uid":"u1"}}"#;
        let cancelled =
            br#"{"triggerEvent":"BOOKING_CANCELLED","createdAt":"t1","payload":{"uid":"u1"}}"#;
        let a = normalize(created, 1).unwrap().events.remove(0);
        let b = normalize(created, 2).unwrap().events.remove(0);
        let c = normalize(cancelled, 1).unwrap().events.remove(0);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(a.name, "cal/BOOKING_CREATED");
    }

    #[test]
    fn meeting_triggers_use_the_top_level_uid() {
        let body = br#"{"triggerEvent":"MEETING_ENDED","uid":"u9"}"#;
        let event = normalize(body, 1).unwrap().events.remove(0);
        assert_eq!(event.id, derived_id(&["cal", "MEETING_ENDED", "u9", ""]));
    }

    #[test]
    fn no_secret_placeholder_is_rejected() {
        let err = parse_signature("no-secret-provided").unwrap_err();
        assert_eq!(err.status(), 401);
    }
}
