//! PayPal: self-verification of webhook signatures, without calling PayPal's
//! verify API.
//!
//! The signed message is
//! `{transmission_id}|{transmission_time}|{webhook_id}|{crc32(body)}` (CRC32
//! as an unsigned decimal), signed with RSA PKCS#1 v1.5 / SHA-256
//! (`PAYPAL-AUTH-ALGO: SHA256withRSA`); the base64 signature is in
//! `PAYPAL-TRANSMISSION-SIG`, and the key is in the X.509 certificate at
//! `PAYPAL-CERT-URL`, fetched only from PayPal's hosts ([`certs`]). PayPal
//! documents no freshness window for `PAYPAL-TRANSMISSION-TIME` and retries
//! for days, so none is enforced; redeliveries dedupe on the event id.
//! Event: `paypal/<event_type>`, id = the body's `id` (`WH-...`).

pub mod certs;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hookflow::Event;
use rsa::pkcs1v15::Signature;
use rsa::signature::Verifier;

use crate::config::PaypalConfig;
use crate::delivery::{Delivery, parse_object, required_str};
use crate::error::{Result, WebhookError};
use crate::request::WebhookRequest;
use certs::{CertFetcher, PaypalCerts};

/// Transmission id header.
pub const TRANSMISSION_ID_HEADER: &str = "PAYPAL-TRANSMISSION-ID";
/// Transmission time header.
pub const TRANSMISSION_TIME_HEADER: &str = "PAYPAL-TRANSMISSION-TIME";
/// Signature header (base64).
pub const TRANSMISSION_SIG_HEADER: &str = "PAYPAL-TRANSMISSION-SIG";
/// Certificate URL header.
pub const CERT_URL_HEADER: &str = "PAYPAL-CERT-URL";
/// Algorithm header.
pub const AUTH_ALGO_HEADER: &str = "PAYPAL-AUTH-ALGO";
/// The only algorithm accepted.
pub const AUTH_ALGO: &str = "SHA256withRSA";
/// Largest signature accepted (an RSA-8192 signature is 1024 bytes).
const MAX_SIGNATURE_BYTES: usize = 1024;

/// The message PayPal signs for a delivery.
#[must_use]
pub fn signed_message(
    transmission_id: &str,
    transmission_time: &str,
    webhook_id: &str,
    body: &[u8],
) -> String {
    let crc = crc32fast::hash(body);
    format!("{transmission_id}|{transmission_time}|{webhook_id}|{crc}")
}

/// Decodes the base64 signature header.
///
/// # Errors
/// [`WebhookError::InvalidSignature`] if it is not non-empty base64 of at
/// most 1024 bytes.
pub fn parse_signature(value: &str) -> Result<Signature> {
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|_| WebhookError::InvalidSignature("malformed PAYPAL-TRANSMISSION-SIG"))?;
    if bytes.is_empty() || bytes.len() > MAX_SIGNATURE_BYTES {
        return Err(WebhookError::InvalidSignature(
            "malformed PAYPAL-TRANSMISSION-SIG",
        ));
    }
    Signature::try_from(bytes.as_slice())
        .map_err(|_| WebhookError::InvalidSignature("malformed PAYPAL-TRANSMISSION-SIG"))
}

/// Verifies a delivery's signature with the certificate it names.
///
/// # Errors
/// 401-class errors (missing header, other algorithm, untrusted certificate
/// URL, bad signature, invalid certificate) or [`WebhookError::CertFetch`]
/// (503) when the certificate cannot be downloaded.
pub async fn verify<F: CertFetcher>(
    config: &PaypalConfig,
    certs: &PaypalCerts<F>,
    request: &WebhookRequest,
    now_ms: i64,
) -> Result<()> {
    let transmission_id = request.required_header(TRANSMISSION_ID_HEADER)?;
    let transmission_time = request.required_header(TRANSMISSION_TIME_HEADER)?;
    let signature = parse_signature(request.required_header(TRANSMISSION_SIG_HEADER)?)?;
    let cert_url = request.required_header(CERT_URL_HEADER)?;
    let algo = request.required_header(AUTH_ALGO_HEADER)?;
    if algo != AUTH_ALGO {
        return Err(WebhookError::InvalidSignature(
            "PAYPAL-AUTH-ALGO is not SHA256withRSA",
        ));
    }
    let key = certs.key(cert_url, now_ms).await?;
    let message = signed_message(
        transmission_id,
        transmission_time,
        &config.webhook_id,
        &request.body,
    );
    key.verifying_key
        .verify(message.as_bytes(), &signature)
        .map_err(|_| WebhookError::InvalidSignature("PAYPAL-TRANSMISSION-SIG does not match"))
}

/// Normalizes a verified body into `paypal/<event_type>`.
///
/// # Errors
/// 400 if the body is not an object with string `id` and `event_type`.
pub fn normalize(body: &[u8], now_ms: i64) -> Result<Delivery> {
    let data = parse_object(body)?;
    let id = required_str(&data, "id")?.to_owned();
    let name = format!("paypal/{}", required_str(&data, "event_type")?);
    Ok(Delivery::event(
        Event::new(name, data).with_id(id).with_ts(now_ms),
    ))
}

/// Verifies, then normalizes.
///
/// # Errors
/// See [`verify`] and [`normalize`].
pub async fn receive<F: CertFetcher>(
    config: &PaypalConfig,
    certs: &PaypalCerts<F>,
    request: &WebhookRequest,
    now_ms: i64,
) -> Result<Delivery> {
    verify(config, certs, request, now_ms).await?;
    normalize(&request.body, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_uses_unsigned_decimal_crc32() {
        // crc32("hello") = 0x3610a686 = 907060870
        assert_eq!(
            signed_message("t", "2024", "WH", b"hello"),
            "t|2024|WH|907060870"
        );
    }

    #[test]
    fn empty_or_non_base64_signatures_are_rejected() {
        assert!(parse_signature("").is_err());
        assert!(parse_signature("***").is_err());
        assert!(parse_signature(&STANDARD.encode([1u8; 2000])).is_err());
    }
}
