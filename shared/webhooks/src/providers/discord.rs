//! Discord interactions: Ed25519 over `X-Signature-Timestamp` + body with the
//! application's public key; the signature is hex in `X-Signature-Ed25519`.
//!
//! A bad signature is a 401 (Discord probes for this). Timestamps more than
//! [`TOLERANCE_SECS`] away from now are rejected too (replay protection).
//! PING (type 1) is answered `{"type":1}` and stores no event. Every other
//! interaction becomes `discord/interaction.<kind>` (kind below; id = the
//! interaction id, tenant = `guild_id` when present) and is answered at once
//! with a *deferred* response, because Discord allows 3 s and the work runs in
//! a function afterwards (which edits the original response via the
//! interaction token):
//!
//! | type | kind | reply |
//! |---|---|---|
//! | 2 | `application_command` | `{"type":5}` deferred channel message |
//! | 3 | `message_component` | `{"type":6}` deferred message update |
//! | 4 | `application_command_autocomplete` | `{"type":8,"data":{"choices":[]}}` (cannot be deferred) |
//! | 5 | `modal_submit` | `{"type":5}` deferred channel message |
//! | other `n` | `n` | `{"type":5}` |

use ed25519_dalek::Signature;
use hookflow::Event;
use serde_json::{Value, json};

use crate::config::DiscordConfig;
use crate::crypto::{check_timestamp, parse_unix_secs};
use crate::delivery::{Delivery, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Signature-Ed25519";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "X-Signature-Timestamp";
/// Accepted distance between the signed timestamp and now, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Interaction type of a PING.
pub const PING: u64 = 1;

/// Parses the signature header (128 hex characters).
///
/// # Errors
/// [`WebhookError::InvalidSignature`] if it is not 64 hex bytes.
pub fn parse_signature(value: &str) -> Result<Signature> {
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(value.trim(), &mut bytes)
        .map_err(|_| WebhookError::InvalidSignature("malformed X-Signature-Ed25519"))?;
    Ok(Signature::from_bytes(&bytes))
}

/// Verifies the signature and timestamp.
///
/// # Errors
/// 401-class errors: missing or malformed header, bad signature, stale timestamp.
pub fn verify(config: &DiscordConfig, request: &WebhookRequest, now_ms: i64) -> Result<()> {
    let signature = parse_signature(request.required_header(SIGNATURE_HEADER)?)?;
    let timestamp = request.required_header(TIMESTAMP_HEADER)?;
    let mut message = Vec::with_capacity(timestamp.len() + request.body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(&request.body);
    config
        .public_key
        .verify_strict(&message, &signature)
        .map_err(|_| WebhookError::InvalidSignature("X-Signature-Ed25519 does not match"))?;
    let secs = parse_unix_secs(timestamp).ok_or(WebhookError::InvalidSignature(
        "malformed X-Signature-Timestamp",
    ))?;
    check_timestamp(secs, now_ms, TOLERANCE_SECS)
}

/// The event-name suffix for an interaction type.
#[must_use]
pub fn interaction_kind(interaction_type: u64) -> String {
    match interaction_type {
        PING => "ping".into(),
        2 => "application_command".into(),
        3 => "message_component".into(),
        4 => "application_command_autocomplete".into(),
        5 => "modal_submit".into(),
        other => other.to_string(),
    }
}

/// The immediate response for an interaction type.
#[must_use]
pub fn reply(interaction_type: u64) -> Value {
    match interaction_type {
        PING => json!({ "type": 1 }),
        3 => json!({ "type": 6 }),
        4 => json!({ "type": 8, "data": { "choices": [] } }),
        _ => json!({ "type": 5 }),
    }
}

/// Normalizes a verified interaction (PING → no event).
///
/// # Errors
/// 400 if the body is not an object with an integer `type` and (for
/// non-PINGs) a string `id`.
pub fn normalize(body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let interaction_type = data
        .get("type")
        .and_then(Value::as_u64)
        .ok_or_else(|| WebhookError::MalformedPayload("missing integer field `type`".into()))?;
    if interaction_type == PING {
        return Ok(Delivery {
            events: Vec::new(),
            reply: Some(reply(PING)),
        });
    }
    let id = required_str(&data, "id")?.to_owned();
    let guild = data
        .get("guild_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let name = format!("discord/interaction.{}", interaction_kind(interaction_type));
    let mut event = Event::new(name, data).with_id(id).with_ts(now_ms);
    if let Some(guild) = guild {
        event = event.with_tenant(guild);
    }
    Ok(Delivery {
        events: vec![event],
        reply: Some(reply(interaction_type)),
    })
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &DiscordConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    verify(config, request, now_ms)?;
    normalize(&request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_stores_nothing_and_answers_pong() {
        let delivery = normalize(br#"{"type":1,"id":"1"}"#, 0).unwrap();
        assert!(delivery.events.is_empty());
        assert_eq!(delivery.reply, Some(json!({"type": 1})));
    }

    #[test]
    fn commands_are_deferred() {
        let delivery = normalize(br#"{"type":2,"id":"9","guild_id":"g"}"#, 0).unwrap();
        assert_eq!(
            delivery.events[0].name,
            "discord/interaction.application_command"
        );
        assert_eq!(delivery.events[0].tenant.as_deref(), Some("g"));
        assert_eq!(delivery.reply, Some(json!({"type": 5})));
    }

    #[test]
    fn truncated_signature_is_malformed() {
        assert!(parse_signature(&"ab".repeat(63)).is_err());
        assert!(parse_signature("").is_err());
    }
}
