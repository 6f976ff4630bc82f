//! Shared verification primitives: HMAC-SHA256, constant-time comparison,
//! timestamp windows and strict signature decoding.
//!
//! Invariant: every comparison of a secret-derived value goes through
//! [`ct_eq`] (length checked first, then `subtle`), and every decoder returns
//! `None` for a malformed, empty or truncated input instead of a partial value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Result, WebhookError};

/// Length of an HMAC-SHA256 tag in bytes.
pub const SHA256_LEN: usize = 32;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; SHA256_LEN] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; SHA256_LEN];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality; different lengths are unequal (checked first).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes exactly 32 bytes of hex (either case); `None` otherwise.
#[must_use]
pub fn decode_hex_32(text: &str) -> Option<[u8; SHA256_LEN]> {
    let mut out = [0u8; SHA256_LEN];
    hex::decode_to_slice(text.trim(), &mut out).ok()?;
    Some(out)
}

/// Decodes exactly 32 bytes of standard (padded) base64; `None` otherwise.
#[must_use]
pub fn decode_base64_32(text: &str) -> Option<[u8; SHA256_LEN]> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// Parses a Unix timestamp in whole seconds (ASCII digits only, no sign).
#[must_use]
pub fn parse_unix_secs(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Checks that `ts_secs` is within `tolerance_secs` of `now_ms`, either way.
///
/// # Errors
/// [`WebhookError::StaleTimestamp`] when it is not.
pub fn check_timestamp(ts_secs: i64, now_ms: i64, tolerance_secs: i64) -> Result<()> {
    let distance_ms = (i128::from(ts_secs) * 1000 - i128::from(now_ms)).abs();
    if distance_ms > i128::from(tolerance_secs) * 1000 {
        return Err(WebhookError::StaleTimestamp { tolerance_secs });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_rejects_prefixes_and_empties() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"a"));
    }

    #[test]
    fn decoders_reject_truncated_input() {
        let tag = hmac_sha256(b"k", &[b"m"]);
        let hex = hex::encode(tag);
        assert_eq!(decode_hex_32(&hex), Some(tag));
        assert_eq!(decode_hex_32(&hex[..62]), None);
        let b64 = STANDARD.encode(tag);
        assert_eq!(decode_base64_32(&b64), Some(tag));
        assert_eq!(decode_base64_32(&b64[..40]), None);
        assert_eq!(decode_base64_32(""), None);
    }

    #[test]
    fn timestamps_outside_the_window_are_stale_both_ways() {
        assert!(check_timestamp(1_000, 1_000_000, 300).is_ok());
        assert!(check_timestamp(1_300, 1_000_000, 300).is_ok());
        assert!(check_timestamp(1_301, 1_000_000, 300).is_err());
        assert!(check_timestamp(699, 1_000_000, 300).is_err());
        assert!(check_timestamp(i64::MAX, i64::MIN, 300).is_err());
    }

    #[test]
    fn unix_seconds_must_be_plain_digits() {
        assert_eq!(parse_unix_secs("1614265330"), Some(1_614_265_330));
        for bad in ["", "-1", "+1", "1.5", "1e9", "9999999999999"] {
            assert_eq!(parse_unix_secs(bad), None, "{bad}");
        }
    }
}
