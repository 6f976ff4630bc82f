//! Discord (API v10): member roles and channel messages, as a bot.
//!
//! The bot token goes in `Authorization: Bot ...`; Discord also requires a
//! `DiscordBot (...)` user agent. Adding or removing a role is idempotent, so
//! those steps are safe to re-run; a message is not (Discord has no key for it).

use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::error::Result;
use crate::http::{Api, Credential, HttpClient};

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

    crate::http::keyed_client!("discord", BOT_TOKEN_VAR);

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
