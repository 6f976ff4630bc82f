//! The access token of a Google service account acting for a user: an RS256
//! JWT assertion signed with the account's key, traded at the token URL
//! (RFC 7523) and cached until a minute before it expires.
//!
//! Invariant: the key, the assertion and the token stay in memory; none is
//! logged, shown by `Debug` (nothing here implements it) or put in an error.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::GoogleCalendarClient;
use crate::error::{ClientError, Result};
use crate::http::{Api, HttpClient, base_url};

/// The token endpoint's name in errors and logs (distinct from the Calendar
/// API's, so its 404 is never taken for a missing event).
const OAUTH_API: &str = "google_oauth";

/// The service account's JSON key; only these fields are read. Not `Debug`:
/// it holds the private key.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Signs assertions and caches the access token they buy. Shared by a
/// client's clones.
pub(super) struct TokenSource {
    api: Api,
    key: EncodingKey,
    header: Header,
    issuer: String,
    subject: String,
    audience: String,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
}

struct AccessToken {
    /// `Bearer {token}`, marked sensitive.
    bearer: HeaderValue,
    renew_at: Instant,
}

/// The token endpoint's answer. Not `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl TokenSource {
    /// How long an assertion is valid (Google's maximum).
    const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
    /// How long before its expiry a token is renewed.
    const RENEW_MARGIN: Duration = Duration::from_secs(60);
    const GRANT_TYPE: &'static str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    pub(super) fn new(
        http: &HttpClient,
        credentials_json: &str,
        impersonate_user: &str,
        token_url: Option<Url>,
    ) -> Result<Self> {
        const VAR: &str = GoogleCalendarClient::CREDENTIALS_VAR;
        let invalid = |source: Box<dyn std::error::Error + Send + Sync>| {
            ClientError::InvalidConfig { var: VAR, source }
        };
        let (credentials_json, subject) = (credentials_json.trim(), impersonate_user.trim());
        for (var, value) in [
            (VAR, credentials_json),
            (GoogleCalendarClient::IMPERSONATE_USER_VAR, subject),
        ] {
            if value.is_empty() {
                return Err(ClientError::MissingConfig { vars: vec![var] });
            }
        }
        // Every field read is a string, so a serde error names a field or a
        // non-string type, never a value from the key.
        let key: ServiceAccountKey =
            serde_json::from_str(credentials_json).map_err(|e| invalid(Box::new(e)))?;
        // A key pasted with its newlines escaped twice still loads.
        let pem = key.private_key.replace("\\n", "\n");
        let signing_key =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| invalid(Box::new(e)))?;
        let token_url = match token_url {
            Some(url) => url,
            None => base_url(
                VAR,
                key.token_uri
                    .as_deref()
                    .unwrap_or(GoogleCalendarClient::DEFAULT_TOKEN_URL),
            )?,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = key.private_key_id;
        let source = Self {
            api: Api::new(http, OAUTH_API, token_url.clone(), None),
            key: signing_key,
            header,
            issuer: key.client_email,
            subject: subject.to_owned(),
            audience: token_url.into(),
            cached: tokio::sync::Mutex::new(None),
        };
        // Sign once now: a key that cannot sign fails at start-up, not mid-run.
        source.assertion(SystemTime::now())?;
        Ok(source)
    }

    /// The user the tokens act for (the JWT `sub`).
    pub(super) fn subject(&self) -> &str {
        &self.subject
    }

    /// The signed JWT asking for a token as `subject`.
    fn assertion(&self, now: SystemTime) -> Result<String> {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims {
            iss: &self.issuer,
            sub: &self.subject,
            scope: GoogleCalendarClient::SCOPE,
            aud: &self.audience,
            iat,
            exp: iat + Self::ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key).map_err(|e| {
            ClientError::InvalidConfig {
                var: GoogleCalendarClient::CREDENTIALS_VAR,
                source: Box::new(e),
            }
        })
    }

    /// `Bearer {token}`: the cached token, or a new one when it is due for
    /// renewal. Concurrent callers wait for a single exchange.
    pub(super) async fn bearer(&self) -> Result<HeaderValue> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.bearer.clone());
        }
        let token = self.exchange().await?;
        let bearer = token.bearer.clone();
        *cached = Some(token);
        Ok(bearer)
    }

    /// Drops the cached token if it is still `bearer` (a newer one is kept).
    pub(super) async fn forget(&self, bearer: &HeaderValue) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.bearer == *bearer) {
            *cached = None;
        }
    }

    /// Trades a fresh assertion for an access token (RFC 7523).
    async fn exchange(&self) -> Result<AccessToken> {
        const OP: &str = "token";
        let asked = Instant::now();
        let assertion = self.assertion(SystemTime::now())?;
        let url = self.api.url(OP, &[])?;
        let req = self.api.request(Method::POST, url).form(&[
            ("grant_type", Self::GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ]);
        let answer: TokenAnswer = self.api.send_json(OP, req).await?;
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| ClientError::Decode {
                api: OAUTH_API,
                operation: OP,
                source: serde::de::Error::custom("access_token is not a valid header value"),
            })?;
        bearer.set_sensitive(true);
        let lifetime = answer
            .expires_in
            .map_or(Self::ASSERTION_LIFETIME, Duration::from_secs);
        Ok(AccessToken {
            bearer,
            renew_at: asked + lifetime.saturating_sub(Self::RENEW_MARGIN),
        })
    }
}
