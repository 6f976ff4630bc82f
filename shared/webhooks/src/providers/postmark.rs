//! Postmark: no signature; the webhook URL carries HTTP Basic credentials
//! (`https://user:password@host/webhooks/postmark`), checked in constant time.
//!
//! Event: `postmark/<RecordType>` (e.g. `postmark/Bounce`; a body without
//! `RecordType` is an inbound message, `postmark/Inbound`). The dedupe id is
//! derived from `RecordType` + `MessageID`, plus the recipient and the record's
//! own time so that one message's several recipients, opens or clicks stay
//! distinct while a retry of the same record dedupes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hookflow::Event;
use hookflow::event::derived_id;

use crate::config::PostmarkConfig;
use crate::crypto::ct_eq;
use crate::delivery::{Delivery, optional_str, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;

/// The credentials header.
pub const AUTHORIZATION_HEADER: &str = "Authorization";

/// Parses `Basic <base64(user:password)>` into user and password.
#[must_use]
pub fn parse_basic_auth(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The `Authorization` header value for credentials.
#[must_use]
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Checks the Basic credentials.
///
/// # Errors
/// [`WebhookError::BadCredentials`] (401) if they are missing, malformed or wrong.
pub fn verify(config: &PostmarkConfig, request: &WebhookRequest) -> Result<()> {
    let (user, password) = request
        .header(AUTHORIZATION_HEADER)
        .and_then(parse_basic_auth)
        .ok_or(WebhookError::BadCredentials)?;
    // Compare both parts (no short-circuit) so timing does not tell which failed.
    let user_ok = ct_eq(user.as_bytes(), config.username.expose());
    let password_ok = ct_eq(password.as_bytes(), config.password.expose());
    if !(user_ok & password_ok) {
        return Err(WebhookError::BadCredentials);
    }
    Ok(())
}

/// Normalizes a verified body into `postmark/<RecordType>`.
///
/// # Errors
/// 400 if the body is not an object with a string `MessageID`.
pub fn normalize(body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let record_type = optional_str(&data, "RecordType").unwrap_or("Inbound");
    let message_id = required_str(&data, "MessageID")?;
    let recipient = ["Recipient", "Email"]
        .into_iter()
        .find_map(|field| optional_str(&data, field))
        .unwrap_or_default();
    let at = [
        "ReceivedAt",
        "DeliveredAt",
        "BouncedAt",
        "ChangedAt",
        "Date",
    ]
    .into_iter()
    .find_map(|field| optional_str(&data, field))
    .unwrap_or_default();
    let id = derived_id(&["postmark", record_type, message_id, recipient, at]);
    let name = format!("postmark/{record_type}");
    Ok(Delivery::event(
        Event::new(name, data).with_id(id).with_ts(now_ms),
    ))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub fn receive(config: &PostmarkConfig, request: &WebhookRequest, now_ms: i64) -> Result<Delivery> {
    verify(config, request)?;
    normalize(&request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_round_trips_and_rejects_other_schemes() {
        assert_eq!(
            parse_basic_auth(&basic_auth("u", "p:q")),
            Some(("u".to_owned(), "p:q".to_owned()))
        );
        assert_eq!(parse_basic_auth("Bearer dTpw"), None);
        assert_eq!(parse_basic_auth("Basic !!!"), None);
        assert_eq!(parse_basic_auth("Basic"), None);
    }

    #[test]
    fn two_recipients_of_one_message_get_distinct_ids() {
        let a = br#"{"RecordType":"Delivery","MessageID":"m","Recipient":"a@x","DeliveredAt":"t"}"#;
        let b = br#"{"RecordType":"Delivery","MessageID":"m","Recipient":"b@x","DeliveredAt":"t"}"#;
        let id = |body: &[u8]| normalize(body, 0).unwrap().events.remove(0).id;
        assert_ne!(id(a), id(b));
        assert_eq!(id(a), id(a));
    }
}
