//! Slack: post admin alerts through an incoming webhook.
//!
//! The webhook URL is the credential: it is never logged, and it is redacted
//! from error messages (transport errors drop the URL altogether). Alerts are
//! optional: without `SLACK_WEBHOOK_URL` the client is disabled and
//! `post_message` only logs a warning that an alert was dropped (not its text).

use reqwest::Method;

use crate::error::Result;
use crate::http::{Api, Env, HttpClient, base_url, optional};

/// A Slack incoming webhook, or a disabled stand-in.
#[derive(Clone, Debug)]
pub struct SlackClient {
    api: Option<Api>,
}

impl SlackClient {
    /// Incoming webhook URL (`https://hooks.slack.com/services/...`). Optional:
    /// unset disables alerts.
    pub const WEBHOOK_URL_VAR: &'static str = "SLACK_WEBHOOK_URL";

    /// A client posting to this incoming webhook URL.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] if the URL is not an http(s) URL.
    pub fn new(http: &HttpClient, webhook_url: &str) -> Result<Self> {
        let url = base_url(Self::WEBHOOK_URL_VAR, webhook_url)?;
        let secrets = vec![url.as_str().into(), url.path().into()];
        Ok(Self {
            api: Some(Api::new(http, "slack", url, None).redacting(secrets)),
        })
    }

    /// A client that posts nothing.
    #[must_use]
    pub fn disabled() -> Self {
        Self { api: None }
    }

    /// From optional `SLACK_WEBHOOK_URL` (disabled when unset).
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] if the URL is malformed.
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        match optional(env, Self::WEBHOOK_URL_VAR) {
            Some(url) => Self::new(http, &url),
            None => Ok(Self::disabled()),
        }
    }

    /// Whether messages are posted.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.api.is_some()
    }

    /// Posts `text` (Slack `mrkdwn`) to the webhook's channel.
    ///
    /// # Errors
    /// [`crate::ClientError`]; a revoked webhook or archived channel (4xx) is
    /// not retried.
    pub async fn post_message(&self, text: &str) -> Result<()> {
        const OP: &str = "post_message";
        let Some(api) = &self.api else {
            tracing::warn!(
                chars = text.chars().count(),
                "Slack disabled (set SLACK_WEBHOOK_URL): alert not posted"
            );
            return Ok(());
        };
        let url = api.url(OP, &[])?;
        let body = serde_json::json!({ "text": text });
        api.send(OP, api.request(Method::POST, url).json(&body))
            .await
            .map(drop)
    }
}

/// `text` safe inside a Slack message: `&`, `<` and `>` escaped, as Slack's
/// formatting rules ask, so a user-supplied name cannot mention `@channel`
/// or make a link.
#[must_use]
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod escape_tests {
    #[test]
    fn mentions_and_links_are_neutralized() {
        assert_eq!(
            super::escape("<!channel> & <https://x|Approve>"),
            "&lt;!channel&gt; &amp; &lt;https://x|Approve&gt;"
        );
    }
}
