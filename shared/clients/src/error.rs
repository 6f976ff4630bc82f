//! Client errors, and what the engine does about each.
//!
//! Every client method returns [`ClientError`]. Return it from a step with `?`:
//! the error's source chain carries Hookflow's markers, so the engine's
//! classification ([`hookflow::failure::classify`]) sees the right verdict
//! without any mapping at the call site:
//!
//! | the call ended with | verdict | why |
//! |---|---|---|
//! | 429, or 503 with a `Retry-After` header | [`RetryAfter`] of that delay (seconds or an HTTP date, at most [`MAX_RETRY_AFTER`]) | the provider says when |
//! | 429 or 503 without `Retry-After`, any other 5xx, 408, 425 | plain error: retried with backoff | the provider is busy or failing |
//! | `Stripe-Should-Retry: true` / `false` (overrides the status, not a `Retry-After`) | retried / [`NonRetriable`] | Stripe knows whether a retry can help |
//! | any other 4xx (402 declined card, 409 conflict or slot taken, 422 ...), 3xx | [`NonRetriable`] | the same request would fail again |
//! | timeout, connection or TLS failure, body cut short ([`ClientError::Transport`]) | plain error: retried | transient |
//! | a 2xx whose body does not decode ([`ClientError::Decode`]) | plain error: retried | a cut-short body heals; a schema change exhausts the retries and surfaces as `StepError` |
//! | an argument that cannot be sent (an empty or `..` id, a blank idempotency key) | [`NonRetriable`] | a retry sends the same thing |
//!
//! Configuration errors ([`ClientError::MissingConfig`], [`ClientError::InvalidConfig`],
//! [`ClientError::Build`]) happen when clients are built at start-up, before any
//! step, and carry no marker. [`ClientError::verdict`] reads the chain exactly as
//! the engine does, for code that wants to branch on it (e.g. compensate only
//! on a final failure).
//!
//! Invariant: messages never contain a credential or a whole body. A status
//! error keeps only a short excerpt of the provider's answer (its error code and
//! message when the body is JSON), with the client's own credential redacted;
//! transport errors drop the request URL (a Slack webhook URL is a secret).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookflow::failure::Verdict;
use hookflow::{NonRetriable, RetryAfter};
use serde_json::Value;

/// Result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Longest `Retry-After` honoured; longer asks are clamped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Most characters of a provider's error body kept in a [`StatusError`].
pub const EXCERPT_CHARS: usize = 200;

/// Everything that can go wrong configuring or calling an external API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Required configuration is missing; names every missing variable.
    #[error("missing configuration: set {}", .vars.join(", "))]
    MissingConfig {
        /// The unset (or empty) environment variables.
        vars: Vec<&'static str>,
    },
    /// A configured value is unusable (a base URL that does not parse, a
    /// credential that is not a valid header value). The value is not shown.
    #[error("invalid {var}")]
    InvalidConfig {
        /// The environment variable (or setting) at fault.
        var: &'static str,
        /// Why it was rejected.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The API is not configured (its credential is unset), so the call was
    /// not sent. Not retried: set the variable and replay the run.
    #[error("{api} {operation}: {api} is not configured: set {var}")]
    Disabled {
        /// The API.
        api: &'static str,
        /// The client method.
        operation: &'static str,
        /// The variable to set.
        var: &'static str,
        /// The marker that makes the engine fail the step at once.
        #[source]
        marker: NonRetriable,
    },
    /// The shared HTTP client could not be built (TLS initialisation).
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    /// An argument cannot be sent (an empty, `.` or `..` path id). Not retried.
    #[error("{api} {operation}: invalid argument: {reason}")]
    InvalidArgument {
        /// The API (`stripe`, `cal`, ...).
        api: &'static str,
        /// The client method.
        operation: &'static str,
        /// What is wrong with it.
        reason: &'static str,
        /// The marker that makes the engine fail the step at once.
        #[source]
        marker: NonRetriable,
    },
    /// The request did not complete: timeout, connection, TLS, a body cut short.
    #[error("{api} {operation}: {}", transport_kind(.source))]
    Transport {
        /// The API.
        api: &'static str,
        /// The client method.
        operation: &'static str,
        /// The transport error (its URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The provider answered with a non-2xx status.
    #[error(transparent)]
    Status(StatusError),
    /// A GraphQL API answered 200 with errors (Shopify Admin): throttling
    /// (`THROTTLED`) is retried after a second, any other error is final.
    #[error("{api} {operation}: {code}: {message}")]
    GraphQl {
        /// The API.
        api: &'static str,
        /// The client method.
        operation: &'static str,
        /// The first error's `extensions.code` (`THROTTLED`, ...), or `ERROR`.
        code: String,
        /// The first error's message (never the query or its variables).
        message: String,
        /// [`RetryAfter`] for throttling, [`NonRetriable`] otherwise.
        #[source]
        verdict: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The provider answered 2xx with a body that does not decode.
    #[error("{api} {operation}: unexpected response body")]
    Decode {
        /// The API.
        api: &'static str,
        /// The client method.
        operation: &'static str,
        /// The decoding error (it names the field, never the body).
        #[source]
        source: serde_json::Error,
    },
}

fn transport_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "request timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    }
}

impl ClientError {
    /// What the engine does when a step returns this error: the markers in the
    /// source chain, read exactly as [`hookflow::failure::classify`] reads them.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if err.is::<NonRetriable>() {
                return Verdict::Final;
            }
            if let Some(retry) = err.downcast_ref::<RetryAfter>() {
                return Verdict::RetryAfter(retry.after);
            }
            cause = err.source();
        }
        Verdict::Retry
    }

    /// The HTTP status, when the provider answered with a non-2xx one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(err) => Some(err.status()),
            _ => None,
        }
    }

    /// The non-2xx answer, if that is what this is.
    #[must_use]
    pub fn as_status(&self) -> Option<&StatusError> {
        match self {
            Self::Status(err) => Some(err),
            _ => None,
        }
    }

    pub(crate) fn disabled(api: &'static str, operation: &'static str, var: &'static str) -> Self {
        Self::Disabled {
            api,
            operation,
            var,
            marker: NonRetriable::new("integration not configured"),
        }
    }

    pub(crate) fn invalid_argument(
        api: &'static str,
        operation: &'static str,
        reason: &'static str,
    ) -> Self {
        Self::InvalidArgument {
            api,
            operation,
            reason,
            marker: NonRetriable::new("not retried"),
        }
    }
}

/// A non-2xx answer: the status, a short secret-free excerpt of the body, and
/// the verdict, carried as a [`NonRetriable`] or [`RetryAfter`] source.
#[derive(Debug)]
pub struct StatusError {
    api: &'static str,
    operation: &'static str,
    status: u16,
    excerpt: String,
    retry_after: Option<Duration>,
    marker: Marker,
}

#[derive(Debug)]
enum Marker {
    Retry,
    Final(NonRetriable),
    Later(RetryAfter),
}

/// What a non-2xx response said, before it becomes a [`StatusError`].
pub(crate) struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub should_retry: Option<&'a str>,
    pub body: &'a [u8],
}

impl StatusError {
    /// Builds the error for `answer`, redacting every string in `secrets`.
    pub(crate) fn new(
        api: &'static str,
        operation: &'static str,
        answer: &Answer<'_>,
        secrets: &[&str],
        now: SystemTime,
    ) -> Self {
        let status = answer.status;
        let retry_after = answer
            .retry_after
            .and_then(|value| parse_retry_after(value, now));
        let marker = match (status, retry_after, answer.should_retry) {
            (429 | 503, Some(after), _) => {
                Marker::Later(RetryAfter::new(after, format!("HTTP {status}")))
            }
            (_, _, Some("true")) => Marker::Retry,
            (_, _, Some("false")) => Marker::Final(NonRetriable::new("not retried")),
            (408 | 425 | 429 | 500..=599, _, _) => Marker::Retry,
            _ => Marker::Final(NonRetriable::new("not retried")),
        };
        Self {
            api,
            operation,
            status,
            excerpt: excerpt(answer.body, secrets),
            retry_after,
            marker,
        }
    }

    /// The API (`stripe`, `cal`, ...).
    #[must_use]
    pub fn api(&self) -> &'static str {
        self.api
    }

    /// The client method that got this answer.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The HTTP status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A short excerpt of the provider's answer (error code and message when it
    /// is JSON), credentials redacted; may be empty.
    #[must_use]
    pub fn excerpt(&self) -> &str {
        &self.excerpt
    }

    /// The delay the provider asked for in `Retry-After`, if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.api, self.operation, self.status)?;
        if !self.excerpt.is_empty() {
            write!(f, " ({})", self.excerpt)?;
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.marker {
            Marker::Retry => None,
            Marker::Final(marker) => Some(marker),
            Marker::Later(marker) => Some(marker),
        }
    }
}

/// Parses `Retry-After`: delay seconds (fractions allowed) or an HTTP date.
/// A date in the past is zero; anything over [`MAX_RETRY_AFTER`] is clamped.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(
            secs.min(MAX_RETRY_AFTER.as_secs_f64()),
        ));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

const MESSAGE_KEYS: [&str; 6] = [
    "message",
    "Message",
    "long_message",
    "detail",
    "error_description",
    "error",
];
const CODE_KEYS: [&str; 3] = ["code", "ErrorCode", "decline_code"];

/// A short, single-line, secret-free summary of an error body: `code: message`
/// from a JSON body, else its text; secrets replaced, at most [`EXCERPT_CHARS`].
pub(crate) fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(json) => summarize(&json).unwrap_or_else(|| json.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn summarize(json: &Value) -> Option<String> {
    let message = find(json, &MESSAGE_KEYS, 4, &|v| v.as_str().map(str::to_owned));
    let code = find(json, &CODE_KEYS, 4, &|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match (code, message) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (None, Some(one)) | (Some(one), None) => Some(one),
        (None, None) => None,
    }
}

/// The first value under one of `keys` (in key order per object, depth-first)
/// that `pick` accepts.
fn find(
    json: &Value,
    keys: &[&str],
    depth: u8,
    pick: &dyn Fn(&Value) -> Option<String>,
) -> Option<String> {
    match json {
        Value::Object(map) => keys
            .iter()
            .find_map(|key| map.get(*key).and_then(pick))
            .or_else(|| {
                (depth > 0)
                    .then(|| map.values().find_map(|v| find(v, keys, depth - 1, pick)))
                    .flatten()
            }),
        Value::Array(items) if depth > 0 => items
            .iter()
            .take(4)
            .find_map(|v| find(v, keys, depth - 1, pick)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(
        status: u16,
        retry_after: Option<&str>,
        should_retry: Option<&str>,
    ) -> ClientError {
        let answer = Answer {
            status,
            retry_after,
            should_retry,
            body: b"",
        };
        ClientError::Status(StatusError::new("test", "op", &answer, &[], UNIX_EPOCH))
    }

    #[test]
    fn status_codes_map_to_engine_verdicts() {
        assert_eq!(status_error(500, None, None).verdict(), Verdict::Retry);
        assert_eq!(status_error(503, None, None).verdict(), Verdict::Retry);
        assert_eq!(status_error(429, None, None).verdict(), Verdict::Retry);
        assert_eq!(status_error(408, None, None).verdict(), Verdict::Retry);
        assert_eq!(
            status_error(429, Some("7"), None).verdict(),
            Verdict::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            status_error(503, Some("1.5"), None).verdict(),
            Verdict::RetryAfter(Duration::from_millis(1500))
        );
        for final_status in [400, 401, 402, 403, 404, 409, 422, 301] {
            assert_eq!(
                status_error(final_status, None, None).verdict(),
                Verdict::Final
            );
        }
        assert_eq!(
            status_error(409, None, Some("true")).verdict(),
            Verdict::Retry
        );
        assert_eq!(
            status_error(500, None, Some("false")).verdict(),
            Verdict::Final
        );
    }

    #[test]
    fn verdict_agrees_with_the_engine_classification() {
        for err in [
            status_error(500, None, None),
            status_error(429, Some("30"), None),
            status_error(402, None, None),
            ClientError::invalid_argument("test", "op", "empty id"),
        ] {
            let verdict = err.verdict();
            assert_eq!(hookflow::failure::classify(&err.into()), verdict);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21T07:28:00Z
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn excerpts_summarize_provider_errors() {
        let stripe = br#"{"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}"#;
        assert_eq!(
            excerpt(stripe, &[]),
            "card_declined: Your card was declined."
        );
        let clerk = br#"{"errors": [{"message": "not found", "long_message": "User not found", "code": "resource_not_found"}]}"#;
        assert_eq!(excerpt(clerk, &[]), "resource_not_found: not found");
        let postmark = br#"{"ErrorCode": 406, "Message": "Inactive recipient"}"#;
        assert_eq!(excerpt(postmark, &[]), "406: Inactive recipient");
        assert_eq!(excerpt(b"invalid_token\n", &[]), "invalid_token");
        assert_eq!(excerpt(br#"{"ok": false}"#, &[]), r#"{"ok":false}"#);
    }

    #[test]
    fn excerpts_redact_secrets_and_stay_short() {
        let body = br#"{"message": "Invalid API key sk_test_123456 provided"}"#;
        assert_eq!(
            excerpt(body, &["sk_test_123456"]),
            "Invalid API key [redacted] provided"
        );
        let long = "é".repeat(1000);
        let cut = excerpt(long.as_bytes(), &[]);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
    }
}
