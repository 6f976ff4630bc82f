//! PayPal signing certificates: an allow-list of origins, a [`CertFetcher`]
//! transport, and a bounded cache of parsed public keys ([`PaypalCerts`]).
//!
//! Invariants: a URL is checked against the allow-list *before* any fetcher
//! is called (scheme, host and port must match an [`AllowedOrigin`] exactly,
//! the path must start with [`CERT_PATH_PREFIX`], and user info is refused),
//! so a forged `PAYPAL-CERT-URL` cannot make us fetch from elsewhere. The
//! production list is HTTPS on PayPal's API hosts only. The HTTP fetcher does
//! not follow redirects and reads at most [`MAX_CERT_BYTES`]. The cache holds
//! at most its capacity of entries, evicting the oldest.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::Url;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::VerifyingKey;
use rsa::pkcs8::DecodePublicKey;
use sha2::Sha256;
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::error::{Result, WebhookError};

/// A transport failure while fetching a certificate.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// PayPal hosts that serve webhook signing certificates (HTTPS, port 443).
pub const PAYPAL_CERT_HOSTS: [&str; 4] = [
    "api.paypal.com",
    "api-m.paypal.com",
    "api.sandbox.paypal.com",
    "api-m.sandbox.paypal.com",
];
/// Every certificate URL's path starts with this.
pub const CERT_PATH_PREFIX: &str = "/v1/notifications/certs/";
/// Largest certificate response read.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Default number of cached certificates.
pub const DEFAULT_CACHE_CAPACITY: usize = 32;
/// Timeout for one certificate download.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Downloads a certificate. Called only with allow-listed URLs.
pub trait CertFetcher: Send + Sync {
    /// The response body at `url` (a PEM certificate, possibly a chain).
    fn fetch(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

/// The real fetcher: reqwest with rustls, no redirects, bounded body.
#[derive(Debug, Clone)]
pub struct HttpCertFetcher {
    client: reqwest::Client,
}

impl HttpCertFetcher {
    /// A fetcher with a [`FETCH_TIMEOUT`] and no redirects.
    ///
    /// # Errors
    /// [`WebhookError::CertFetch`] if the HTTP client cannot be built.
    pub fn new() -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| WebhookError::CertFetch(Box::new(err)))?;
        Ok(Self { client })
    }
}

impl CertFetcher for HttpCertFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut response = self.client.get(url).send().await?.error_for_status()?;
        if response
            .content_length()
            .is_some_and(|len| len > MAX_CERT_BYTES as u64)
        {
            return Err(format!("certificate response is over {MAX_CERT_BYTES} bytes").into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(format!("certificate response is over {MAX_CERT_BYTES} bytes").into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A fetcher serving fixed certificates by URL, counting calls (tests, dev).
#[derive(Debug, Default)]
pub struct StaticCertFetcher {
    certs: HashMap<String, Vec<u8>>,
    calls: AtomicUsize,
}

impl StaticCertFetcher {
    /// An empty fetcher (every fetch fails).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The same fetcher serving `pem` at `url`.
    #[must_use]
    pub fn with_cert(mut self, url: impl Into<String>, pem: impl Into<Vec<u8>>) -> Self {
        self.certs.insert(url.into(), pem.into());
        self
    }

    /// How many times [`CertFetcher::fetch`] was called.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl CertFetcher for StaticCertFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.certs
            .get(url)
            .cloned()
            .ok_or_else(|| format!("no certificate at {url}").into())
    }
}

/// An origin certificates may be fetched from: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl AllowedOrigin {
    /// Any scheme/host/port (tests use `http://127.0.0.1:<port>`).
    pub fn new(scheme: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        Self {
            scheme: scheme.into().to_ascii_lowercase(),
            host: host.into().to_ascii_lowercase(),
            port,
        }
    }

    /// `https://<host>:443`.
    pub fn https(host: impl Into<String>) -> Self {
        Self::new("https", host, 443)
    }

    /// The production list: HTTPS on [`PAYPAL_CERT_HOSTS`].
    #[must_use]
    pub fn paypal() -> Vec<Self> {
        PAYPAL_CERT_HOSTS
            .iter()
            .map(|host| Self::https(*host))
            .collect()
    }

    fn matches(&self, url: &Url) -> bool {
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == Some(self.port)
    }
}

/// A certificate's RSA key and validity period.
#[derive(Debug, Clone)]
pub struct CertKey {
    /// The PKCS#1 v1.5 / SHA-256 verifier for the certificate's key.
    pub verifying_key: VerifyingKey<Sha256>,
    /// Start of validity, ms since the epoch.
    pub not_before_ms: i64,
    /// End of validity, ms since the epoch.
    pub not_after_ms: i64,
}

impl CertKey {
    /// Checks that `now_ms` is within the validity period.
    ///
    /// # Errors
    /// [`WebhookError::InvalidCertificate`] if it is not.
    pub fn check_validity(&self, now_ms: i64) -> Result<()> {
        if now_ms < self.not_before_ms || now_ms > self.not_after_ms {
            return Err(WebhookError::InvalidCertificate(
                "outside its validity period".into(),
            ));
        }
        Ok(())
    }
}

/// Parses the first certificate of a PEM chain (or a DER certificate) and
/// extracts its RSA public key.
///
/// # Errors
/// [`WebhookError::InvalidCertificate`] if it is not an X.509 certificate with
/// an RSA key.
pub fn parse_certificate(bytes: &[u8]) -> Result<CertKey> {
    let invalid = |what: &str| WebhookError::InvalidCertificate(what.into());
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let cert = if let Some(start) = find(bytes, BEGIN) {
        let rest = &bytes[start..];
        let end = find(rest, END).ok_or_else(|| invalid("unterminated PEM block"))? + END.len();
        let block = &rest[..end];
        Certificate::from_pem(block).map_err(|_| invalid("not a PEM X.509 certificate"))?
    } else {
        Certificate::from_der(bytes).map_err(|_| invalid("not an X.509 certificate"))?
    };
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| invalid("unreadable public key"))?;
    let public_key =
        RsaPublicKey::from_public_key_der(&spki).map_err(|_| invalid("not an RSA key"))?;
    let validity = &cert.tbs_certificate.validity;
    let ms = |time: x509_cert::time::Time| {
        i64::try_from(time.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
    };
    Ok(CertKey {
        verifying_key: VerifyingKey::new(public_key),
        not_before_ms: ms(validity.not_before),
        not_after_ms: ms(validity.not_after),
    })
}

/// Position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, (u64, Arc<CertKey>)>,
    next_seq: u64,
}

/// Allow-listed, cached access to PayPal's signing certificates.
#[derive(Debug)]
pub struct PaypalCerts<F> {
    fetcher: F,
    allowed: Vec<AllowedOrigin>,
    capacity: usize,
    cache: Mutex<Cache>,
}

impl<F: CertFetcher> PaypalCerts<F> {
    /// Certificates from PayPal's hosts only ([`AllowedOrigin::paypal`]).
    pub fn new(fetcher: F) -> Self {
        Self::with_allowed_origins(fetcher, AllowedOrigin::paypal())
    }

    /// Certificates from the given origins only (tests add a local server).
    pub fn with_allowed_origins(fetcher: F, allowed: Vec<AllowedOrigin>) -> Self {
        Self {
            fetcher,
            allowed,
            capacity: DEFAULT_CACHE_CAPACITY,
            cache: Mutex::default(),
        }
    }

    /// The same store caching at most `capacity` certificates (at least 1).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The fetcher.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }

    /// How many certificates are cached.
    pub fn cached(&self) -> usize {
        self.lock().entries.len()
    }

    /// Checks a certificate URL against the allow-list; returns it normalized.
    ///
    /// # Errors
    /// [`WebhookError::UntrustedCertUrl`] unless scheme, host and port match an
    /// allowed origin, the path starts with [`CERT_PATH_PREFIX`] and there are
    /// no credentials in it.
    pub fn check_url(&self, url: &str) -> Result<String> {
        let parsed = Url::parse(url.trim()).map_err(|_| WebhookError::UntrustedCertUrl)?;
        let trusted = parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.path().starts_with(CERT_PATH_PREFIX)
            && !parsed.path().contains("/../")
            && self.allowed.iter().any(|origin| origin.matches(&parsed));
        if !trusted {
            return Err(WebhookError::UntrustedCertUrl);
        }
        Ok(parsed.into())
    }

    /// The key of the certificate at `url`: checked against the allow-list,
    /// then taken from the cache or fetched and parsed; then checked for
    /// validity at `now_ms`.
    ///
    /// # Errors
    /// [`WebhookError::UntrustedCertUrl`] (nothing fetched),
    /// [`WebhookError::CertFetch`] (retryable), or
    /// [`WebhookError::InvalidCertificate`].
    pub async fn key(&self, url: &str, now_ms: i64) -> Result<Arc<CertKey>> {
        let url = self.check_url(url)?;
        let cached = self
            .lock()
            .entries
            .get(&url)
            .map(|(_, key)| Arc::clone(key));
        let key = match cached {
            Some(key) => key,
            None => {
                let bytes = self
                    .fetcher
                    .fetch(&url)
                    .await
                    .map_err(WebhookError::CertFetch)?;
                let key = Arc::new(parse_certificate(&bytes)?);
                self.insert(url, Arc::clone(&key));
                key
            }
        };
        key.check_validity(now_ms)?;
        Ok(key)
    }

    fn insert(&self, url: String, key: Arc<CertKey>) {
        let mut cache = self.lock();
        if !cache.entries.contains_key(&url) && cache.entries.len() >= self.capacity {
            let oldest = cache
                .entries
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(url, _)| url.clone());
            if let Some(oldest) = oldest {
                cache.entries.remove(&oldest);
            }
        }
        let seq = cache.next_seq;
        cache.next_seq += 1;
        cache.entries.insert(url, (seq, key));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> PaypalCerts<StaticCertFetcher> {
        PaypalCerts::new(StaticCertFetcher::new())
    }

    #[test]
    fn paypal_https_urls_are_allowed() {
        for host in PAYPAL_CERT_HOSTS {
            let url = format!("https://{host}/v1/notifications/certs/CERT-1");
            assert_eq!(store().check_url(&url).unwrap(), url);
        }
    }

    #[test]
    fn other_hosts_schemes_ports_paths_and_credentials_are_refused() {
        for url in [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.test/v1/notifications/certs/CERT-1",
            "https://evil.test/v1/notifications/certs/CERT-1",
            "https://api.paypal.com@evil.test/v1/notifications/certs/CERT-1",
            "https://user@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/../../oauth2",
            "file:///etc/passwd",
            "not a url",
            "",
        ] {
            assert!(store().check_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn garbage_certificates_are_invalid_not_panics() {
        for bytes in [
            &b""[..],
            b"\n",
            b"-----BEGIN CERTIFICATE-----",
            b"\x30\x03\x02\x01\x00",
        ] {
            assert_eq!(parse_certificate(bytes).unwrap_err().status(), 401);
        }
    }
}
