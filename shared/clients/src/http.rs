//! The shared HTTP layer: one connection pool with timeouts, and the request
//! plumbing every client uses (base URL, credential header, status and error
//! mapping, logging).
//!
//! Invariants: credentials travel only in headers marked sensitive (or, for
//! PostHog, in the body) and are never logged; logs carry the API, operation,
//! status and duration, never a body; ids are appended to the base URL as
//! percent-encoded path segments, so an id can never address another endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;

use crate::error::{Answer, ClientError, Result, StatusError};

/// Most bytes of an error body read (the excerpt needs far fewer).
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// One connection pool shared by every client: build it once per process
/// (per Lambda container) and clone it freely.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    /// Limit on a whole request, from connecting to the last body byte.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Limit on establishing a connection.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A pool with the default timeouts.
    ///
    /// # Errors
    /// [`ClientError::Build`] if the TLS backend cannot start.
    pub fn new() -> Result<Self> {
        Self::with_timeouts(Self::DEFAULT_TIMEOUT, Self::DEFAULT_CONNECT_TIMEOUT)
    }

    /// A pool with these timeouts. Redirects are not followed (a redirect means a
    /// wrong base URL, and following it could carry a credential elsewhere).
    ///
    /// # Errors
    /// [`ClientError::Build`] if the TLS backend cannot start.
    pub fn with_timeouts(request: Duration, connect: Duration) -> Result<Self> {
        let inner = reqwest::Client::builder()
            .timeout(request)
            .connect_timeout(connect)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { inner })
    }
}

/// A credential sent as a header: kept out of `Debug` and logs.
#[derive(Clone)]
pub(crate) struct Credential {
    header: HeaderName,
    value: HeaderValue,
    /// The raw secret, only to redact it from error excerpts.
    secret: Arc<str>,
}

impl Credential {
    /// `header: {prefix}{secret}`, validated as a header value.
    pub(crate) fn new(
        var: &'static str,
        header: HeaderName,
        prefix: &str,
        secret: &str,
    ) -> Result<Self> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(ClientError::MissingConfig { vars: vec![var] });
        }
        let mut value = HeaderValue::from_str(&format!("{prefix}{secret}")).map_err(|e| {
            ClientError::InvalidConfig {
                var,
                source: Box::new(e),
            }
        })?;
        value.set_sensitive(true);
        Ok(Self {
            header,
            value,
            secret: secret.into(),
        })
    }

    /// A secret that travels in the body (no header), kept only for redaction.
    pub(crate) fn in_body(var: &'static str, secret: &str) -> Result<Arc<str>> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(ClientError::MissingConfig { vars: vec![var] });
        }
        Ok(secret.into())
    }
}

/// Parses a base URL: absolute `http` or `https`, no query or fragment.
pub(crate) fn base_url(var: &'static str, value: &str) -> Result<Url> {
    let invalid = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::InvalidConfig {
        var,
        source,
    };
    let url = Url::parse(value.trim()).map_err(|e| invalid(Box::new(e)))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("not an http(s) URL".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL takes no query or fragment".into()));
    }
    Ok(url)
}

/// One API's endpoint and credential over the shared pool. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    name: &'static str,
    base: Arc<Url>,
    credential: Option<Credential>,
    /// Extra strings to redact from excerpts (body credentials, webhook URLs).
    secrets: Arc<[Arc<str>]>,
    /// Headers sent on every request (API version, user agent).
    headers: Arc<[(HeaderName, HeaderValue)]>,
    /// Set when the API is not configured: every call fails at once naming
    /// this variable.
    disabled: Option<&'static str>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The base URL is shown without its path: for Slack the path is the secret.
        f.debug_struct("Api")
            .field("name", &self.name)
            .field("host", &self.base.host_str())
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Api {
    pub(crate) fn new(
        http: &HttpClient,
        name: &'static str,
        base: Url,
        credential: Option<Credential>,
    ) -> Self {
        Self {
            http: http.inner.clone(),
            name,
            base: Arc::new(base),
            credential,
            secrets: Arc::new([]),
            headers: Arc::new([]),
            disabled: None,
        }
    }

    /// An API that is not configured: every call fails with
    /// [`ClientError::Disabled`] naming `var`, without any request.
    pub(crate) fn disabled(
        http: &HttpClient,
        name: &'static str,
        var: &'static str,
    ) -> Result<Self> {
        // A reserved name (RFC 2606) that never resolves; never contacted anyway.
        let base = base_url(var, "http://disabled.invalid/")?;
        Ok(Self {
            disabled: Some(var),
            ..Self::new(http, name, base, None)
        })
    }

    /// Whether calls are sent (false for [`Api::disabled`]).
    pub(crate) fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// Also redact `secrets` from error excerpts.
    pub(crate) fn redacting(mut self, secrets: Vec<Arc<str>>) -> Self {
        self.secrets = secrets.into();
        self
    }

    /// Send `headers` on every request.
    pub(crate) fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        self.headers = headers.into();
        self
    }

    /// The same API at another base URL.
    pub(crate) fn with_base(mut self, base: Url) -> Self {
        self.base = Arc::new(base);
        self
    }

    /// The base URL with `segments` appended, each percent-encoded; no segment
    /// may be empty, `.` or `..` (they would address another endpoint).
    pub(crate) fn url(&self, operation: &'static str, segments: &[&str]) -> Result<Url> {
        if segments.iter().any(|s| matches!(*s, "" | "." | "..")) {
            return Err(ClientError::invalid_argument(
                self.name,
                operation,
                "an id in the URL path is empty, `.` or `..`",
            ));
        }
        let mut url = (*self.base).clone();
        if !segments.is_empty() {
            url.path_segments_mut()
                .map_err(|()| {
                    ClientError::invalid_argument(self.name, operation, "base URL cannot be a base")
                })?
                .pop_if_empty()
                .extend(segments);
        }
        Ok(url)
    }

    /// A request with the credential and the API's headers set.
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let mut req = self.http.request(method, url);
        if let Some(credential) = &self.credential {
            req = req.header(credential.header.clone(), credential.value.clone());
        }
        for (name, value) in self.headers.iter() {
            req = req.header(name.clone(), value.clone());
        }
        req
    }

    /// Sends `req` and returns the body of a 2xx answer.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> Result<Vec<u8>> {
        if let Some(var) = self.disabled {
            return Err(ClientError::disabled(self.name, operation, var));
        }
        let transport = |source: reqwest::Error| ClientError::Transport {
            api: self.name,
            operation,
            source: source.without_url(),
        };
        let started = Instant::now();
        let response = req.send().await.map_err(transport)?;
        let status = response.status();
        tracing::debug!(
            api = self.name,
            operation,
            status = status.as_u16(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "external API call"
        );
        if status.is_success() {
            return Ok(response.bytes().await.map_err(transport)?.to_vec());
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after");
        let should_retry = header("stripe-should-retry");
        let body = read_limited(response, ERROR_BODY_LIMIT).await;
        let mut secrets: Vec<&str> = self.secrets.iter().map(AsRef::as_ref).collect();
        if let Some(credential) = &self.credential {
            secrets.push(&credential.secret);
        }
        let answer = Answer {
            status: status.as_u16(),
            retry_after: retry_after.as_deref(),
            should_retry: should_retry.as_deref(),
            body: &body,
        };
        Err(ClientError::Status(StatusError::new(
            self.name,
            operation,
            &answer,
            &secrets,
            SystemTime::now(),
        )))
    }

    /// Sends `req` and decodes the JSON body of a 2xx answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> Result<T> {
        let body = self.send(operation, req).await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
            api: self.name,
            operation,
            source,
        })
    }
}

/// Up to `limit` bytes of the body; a read error ends it early (the excerpt is
/// best effort, the status is what matters).
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// Reads configuration: a lookup from variable name to value, so tests need not
/// touch the process environment. Empty values count as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`Env`]: `from_env(&http, &process_env)`.
#[must_use]
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The trimmed value of `var`, if set and not empty.
pub(crate) fn optional(env: Env<'_>, var: &str) -> Option<String> {
    env(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The trimmed value of `var`, or [`ClientError::MissingConfig`] naming it.
pub(crate) fn required(env: Env<'_>, var: &'static str) -> Result<String> {
    optional(env, var).ok_or(ClientError::MissingConfig { vars: vec![var] })
}

/// The base URL from `var`, or `default` when unset.
pub(crate) fn base_from_env(env: Env<'_>, var: &'static str, default: &str) -> Result<Url> {
    base_url(
        var,
        &optional(env, var).unwrap_or_else(|| default.to_owned()),
    )
}

/// The constructors every keyed API client shares, generated inside its
/// `impl` block. The client provides the constants `DEFAULT_BASE`, `BASE_VAR`
/// and `$key_var` (the credential's environment variable), a field `api: Api`,
/// and `fn build(http, credential, base) -> Result<Self>`, the one part that
/// differs between APIs (how the credential is sent, extra headers).
macro_rules! keyed_client {
    ($api:literal, $key_var:ident) => {
        /// A client with this credential at the default base URL (or the base
        /// URL variable's value).
        ///
        /// # Errors
        /// [`crate::ClientError::MissingConfig`] / [`crate::ClientError::InvalidConfig`]
        /// for an empty or malformed credential.
        pub fn new(http: &crate::http::HttpClient, credential: &str) -> crate::error::Result<Self> {
            Self::build(
                http,
                credential,
                crate::http::base_url(Self::BASE_VAR, Self::DEFAULT_BASE)?,
            )
        }

        /// From the credential variable (required) and the base URL variable
        /// (optional).
        ///
        /// # Errors
        /// [`crate::ClientError::MissingConfig`] naming the credential variable,
        /// or [`crate::ClientError::InvalidConfig`].
        pub fn from_env(
            http: &crate::http::HttpClient,
            env: crate::http::Env<'_>,
        ) -> crate::error::Result<Self> {
            let credential = crate::http::required(env, Self::$key_var)?;
            Self::build(
                http,
                &credential,
                crate::http::base_from_env(env, Self::BASE_VAR, Self::DEFAULT_BASE)?,
            )
        }

        /// A client whose every call fails at once (not retried) with
        /// [`crate::ClientError::Disabled`] naming the credential variable: for a
        /// process that must start without this API configured (`hookflow dev`
        /// on a fresh machine).
        ///
        /// # Errors
        /// Never in practice; kept fallible like the other constructors.
        pub fn disabled(http: &crate::http::HttpClient) -> crate::error::Result<Self> {
            Ok(Self {
                api: crate::http::Api::disabled(http, $api, Self::$key_var)?,
            })
        }

        /// From configuration like `from_env`, or [`Self::disabled`] when the
        /// credential is unset.
        ///
        /// # Errors
        /// [`crate::ClientError::InvalidConfig`] for a malformed value.
        pub fn from_env_or_disabled(
            http: &crate::http::HttpClient,
            env: crate::http::Env<'_>,
        ) -> crate::error::Result<Self> {
            if crate::http::optional(env, Self::$key_var).is_none() {
                return Self::disabled(http);
            }
            Self::from_env(http, env)
        }

        /// Whether calls are sent (false for a disabled client).
        #[must_use]
        pub fn is_enabled(&self) -> bool {
            self.api.is_enabled()
        }

        /// The same client at another base URL (a test server, a proxy),
        /// including any path prefix the API uses (`/v1`, `/v2`).
        ///
        /// # Errors
        /// [`crate::ClientError::InvalidConfig`] if `base` is not an http(s) URL.
        pub fn with_base_url(self, base: &str) -> crate::error::Result<Self> {
            Ok(Self {
                api: self
                    .api
                    .with_base(crate::http::base_url(Self::BASE_VAR, base)?),
            })
        }
    };
}
pub(crate) use keyed_client;
