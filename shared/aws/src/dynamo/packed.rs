//! Record bodies as the table keeps them: JSON text (`S`) when short, and
//! zlib-compressed JSON (`B`) from [`PACK_FROM`] bytes, when that is
//! smaller. DynamoDB bills a write by the started KB of the whole item (an
//! update: of the larger of the item before and after), so a webhook's event
//! or a step's output of a few KB, compressed about threefold, costs a
//! third of the write units it would as text, on every write of its item.
//! The type of the attribute says which it is, so items written as text
//! before read back unchanged.
//!
//! A run item's body is always compressed ([`packed_always`]), or, when it
//! is in S3, its key is bytes. A version of Hookflow from before compression
//! reads a body it does not understand as missing and fails (its message is
//! retried), but it would skip a compressed step record or outbox on the run
//! item as absent, and run a checkpointed step again: so no run item it could
//! read holds one.

use std::io::{Read, Write};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use crate::error::{AwsError, Result};

/// Bodies this long or longer are compressed (shorter ones gain little).
pub(crate) const PACK_FROM: usize = 512;

/// `text` as an attribute: compressed when long enough and smaller so.
pub(crate) fn pack(text: String) -> AttributeValue {
    if text.len() >= PACK_FROM
        && let Some(bytes) = compressed(text.as_bytes())
        && bytes.len() < text.len()
    {
        return AttributeValue::B(Blob::new(bytes));
    }
    AttributeValue::S(text)
}

/// `text` as an attribute, compressed whatever its length (see the module
/// notes: a run item's body).
pub(crate) fn packed_always(text: &str) -> AttributeValue {
    match compressed(text.as_bytes()) {
        Some(bytes) => AttributeValue::B(Blob::new(bytes)),
        None => AttributeValue::S(text.to_owned()),
    }
}

fn compressed(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::default());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// The text an attribute written by [`pack`] holds, or `None` when it is
/// neither text nor bytes.
pub(crate) fn unpack(value: &AttributeValue) -> Result<Option<String>> {
    match value {
        AttributeValue::S(text) => Ok(Some(text.clone())),
        AttributeValue::B(bytes) => {
            let mut text = String::with_capacity(bytes.as_ref().len() * 3);
            ZlibDecoder::new(bytes.as_ref())
                .read_to_string(&mut text)
                .map_err(|e| {
                    AwsError::Item(format!("a compressed body does not read back: {e}"))
                })?;
            Ok(Some(text))
        }
        _ => Ok(None),
    }
}

/// How many bytes DynamoDB counts for an attribute's value (strings and
/// binaries by length, numbers about so; others a small constant).
pub(crate) fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_stays_text_and_long_text_is_compressed() {
        let short = r#"{"id":"evt_1","name":"x"}"#.to_owned();
        assert_eq!(pack(short.clone()), AttributeValue::S(short));
        let long = serde_json::json!({
            "object": "checkout.session",
            "line_items": (0..20).map(|i| serde_json::json!({
                "id": format!("li_{i}"), "object": "item", "currency": "usd",
                "amount_total": 2500, "description": "Mentorship session",
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let packed = pack(long.clone());
        assert!(matches!(&packed, AttributeValue::B(b) if b.as_ref().len() * 3 < long.len()));
        assert_eq!(unpack(&packed).unwrap(), Some(long));
    }

    #[test]
    fn a_run_body_is_compressed_however_short() {
        let short = r#"{"attempt":0}"#;
        let packed = packed_always(short);
        assert!(matches!(packed, AttributeValue::B(_)));
        assert_eq!(unpack(&packed).unwrap().as_deref(), Some(short));
    }

    #[test]
    fn bytes_that_are_not_zlib_are_an_error_not_a_panic() {
        let bad = AttributeValue::B(Blob::new(b"not zlib".to_vec()));
        assert!(unpack(&bad).is_err());
        assert_eq!(unpack(&AttributeValue::N("1".into())).unwrap(), None);
    }
}
