//! The result of a verified, normalized delivery, and the JSON helpers the
//! providers share to read required fields.
//!
//! Invariant: these helpers run only after the signature was verified, so a
//! bad signature on a malformed body is always a 401, never a 400.

use hookflow::Event;
use serde_json::Value;

use crate::error::{Result, WebhookError};

/// What a verified delivery becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Events to hand to the sink (may be empty, e.g. a Discord PING).
    pub events: Vec<Event>,
    /// A provider-specific 200 body (Discord's interaction response); `None`
    /// for the default acknowledgement.
    pub reply: Option<Value>,
}

impl Delivery {
    /// One event, default acknowledgement.
    #[must_use]
    pub fn event(event: Event) -> Self {
        Self {
            events: vec![event],
            reply: None,
        }
    }
}

/// Parses the body as JSON.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value> {
    Ok(serde_json::from_slice(body)?)
}

/// Parses the body as a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Value> {
    let value = parse_json(body)?;
    if !value.is_object() {
        return Err(WebhookError::MalformedPayload(
            "body is not a JSON object".into(),
        ));
    }
    Ok(value)
}

/// A non-empty string field of an object, or a 400 naming the field.
pub(crate) fn required_str<'a>(value: &'a Value, field: &'static str) -> Result<&'a str> {
    optional_str(value, field)
        .ok_or_else(|| WebhookError::MalformedPayload(format!("missing string field `{field}`")))
}

/// A non-empty string field of an object, if present.
pub(crate) fn optional_str<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
