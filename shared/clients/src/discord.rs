//! Discord (API v10): member roles and channel messages, as a bot.
//!
//! The bot token goes in `Authorization: Bot ...`; Discord also requires a
//! `DiscordBot (...)` user agent. Adding or removing a role is idempotent, so
//! those steps are safe to re-run; a message is not (Discord has no key for it).

use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::error::Result;
use crate::http::{Api, Credential, Env, HttpClient, base_from_env, base_url, required};

/// Discord's API, authenticated as a bot.
#[derive(Clone, Debug)]
pub struct DiscordClient {
    api: Api,
}

/// A message Discord created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Snowflake id.
    pub id: String,
    /// The channel it was posted in.
    pub channel_id: String,
}

impl DiscordClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://discord.com/api/v10";
    /// Bot token. Required.
    pub const BOT_TOKEN_VAR: &'static str = "DISCORD_BOT_TOKEN";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "DISCORD_API_BASE";

    /// A client with this bot token at the default base URL.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] / [`crate::ClientError::InvalidConfig`]
    /// for an empty or malformed token.
    pub fn new(http: &HttpClient, bot_token: &str) -> Result<Self> {
        Self::build(
            http,
            bot_token,
            base_url(Self::BASE_VAR, Self::DEFAULT_BASE)?,
        )
    }

    /// From `DISCORD_BOT_TOKEN` and optional `DISCORD_API_BASE`.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] naming `DISCORD_BOT_TOKEN`, or
    /// [`crate::ClientError::InvalidConfig`].
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let token = required(env, Self::BOT_TOKEN_VAR)?;
        Self::build(
            http,
            &token,
            base_from_env(env, Self::BASE_VAR, Self::DEFAULT_BASE)?,
        )
    }

    /// A client whose every call fails at once (not retried) with
    /// [`crate::ClientError::Disabled`] naming `BOT_TOKEN_VAR`: for a process that must
    /// start without this API configured (`hookflow dev` on a fresh machine).
    ///
    /// # Errors
    /// Never in practice; kept fallible like the other constructors.
    pub fn disabled(http: &HttpClient) -> Result<Self> {
        Ok(Self {
            api: Api::disabled(http, "discord", Self::BOT_TOKEN_VAR)?,
        })
    }

    /// From configuration like `from_env`, or [`Self::disabled`] when the
    /// credential is unset.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] for a malformed value.
    pub fn from_env_or_disabled(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        if crate::http::optional(env, Self::BOT_TOKEN_VAR).is_none() {
            return Self::disabled(http);
        }
        Self::from_env(http, env)
    }

    /// Whether calls are sent (false for a disabled client).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.api.is_enabled()
    }

    /// The same client at another base URL (include the `/api/v10`).
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] if `base` is not an http(s) URL.
    pub fn with_base_url(self, base: &str) -> Result<Self> {
        Ok(Self {
            api: self.api.with_base(base_url(Self::BASE_VAR, base)?),
        })
    }

    fn build(http: &HttpClient, bot_token: &str, base: Url) -> Result<Self> {
        let credential = Credential::new(Self::BOT_TOKEN_VAR, AUTHORIZATION, "Bot ", bot_token)?;
        let agent = HeaderValue::from_static(concat!(
            "DiscordBot (hookflow, ",
            env!("CARGO_PKG_VERSION"),
            ")"
        ));
        Ok(Self {
            api: Api::new(http, "discord", base, Some(credential))
                .with_headers(vec![(USER_AGENT, agent)]),
        })
    }

    /// Gives a guild member a role
    /// (`PUT /guilds/{guild}/members/{user}/roles/{role}`).
    ///
    /// # Errors
    /// [`crate::ClientError`]; missing permissions (403) or an unknown member
    /// (404) are not retried.
    pub async fn add_member_role(
        &self,
        guild_id: &str,
        user_id: &str,
        role_id: &str,
    ) -> Result<()> {
        self.member_role("add_member_role", Method::PUT, guild_id, user_id, role_id)
            .await
    }

    /// Takes a role from a guild member
    /// (`DELETE /guilds/{guild}/members/{user}/roles/{role}`).
    ///
    /// # Errors
    /// [`crate::ClientError`]; missing permissions (403) or an unknown member
    /// (404) are not retried.
    pub async fn remove_member_role(
        &self,
        guild_id: &str,
        user_id: &str,
        role_id: &str,
    ) -> Result<()> {
        self.member_role(
            "remove_member_role",
            Method::DELETE,
            guild_id,
            user_id,
            role_id,
        )
        .await
    }

    async fn member_role(
        &self,
        operation: &'static str,
        method: Method,
        guild_id: &str,
        user_id: &str,
        role_id: &str,
    ) -> Result<()> {
        let path = ["guilds", guild_id, "members", user_id, "roles", role_id];
        let url = self.api.url(operation, &path)?;
        self.api
            .send(operation, self.api.request(method, url))
            .await
            .map(drop)
    }

    /// Posts `content` in a channel (`POST /channels/{channel}/messages`). Only
    /// user mentions notify: `@everyone` and role mentions are not expanded.
    ///
    /// # Errors
    /// [`crate::ClientError`]; a 403 (no access to the channel) is not retried.
    pub async fn create_message(&self, channel_id: &str, content: &str) -> Result<Message> {
        const OP: &str = "create_message";
        let url = self.api.url(OP, &["channels", channel_id, "messages"])?;
        let body = serde_json::json!({
            "content": content,
            "allowed_mentions": { "parse": ["users"] },
        });
        let req = self.api.request(Method::POST, url).json(&body);
        self.api.send_json(OP, req).await
    }
}
