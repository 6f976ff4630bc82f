//! Discord (API v10): guild members, their roles and channel messages, as a
//! bot.
//!
//! The bot token goes in `Authorization: Bot ...`; Discord also requires a
//! `DiscordBot (...)` user agent. Adding a member, setting a member's roles and
//! adding or removing a role are idempotent, so those steps are safe to re-run;
//! a message is not (Discord has no key for it).

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

/// A guild member: who, and the roles they hold there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct GuildMember {
    /// The member's user, when Discord includes it.
    #[serde(default)]
    pub user: Option<DiscordUser>,
    /// Role ids, in the order Discord lists them.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Their nickname in the guild, if any.
    #[serde(default)]
    pub nick: Option<String>,
}

/// A Discord user (the fields the workflows read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct DiscordUser {
    /// Snowflake id.
    pub id: String,
    /// Their user name.
    #[serde(default)]
    pub username: Option<String>,
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

    /// Adds a user to a guild with the OAuth2 access token they granted the
    /// app (`guilds.join` scope): `PUT /guilds/{guild}/members/{user}`.
    /// Already a member: nothing changes (Discord answers 204).
    ///
    /// # Errors
    /// [`crate::ClientError`]; an expired token or missing permission (4xx)
    /// is not retried.
    pub async fn add_guild_member(
        &self,
        guild_id: &str,
        user_id: &str,
        access_token: &str,
    ) -> Result<()> {
        const OP: &str = "add_guild_member";
        let url = self
            .api
            .url(OP, &["guilds", guild_id, "members", user_id])?;
        let body = serde_json::json!({ "access_token": access_token });
        let req = self.api.request(Method::PUT, url).json(&body);
        self.api.send(OP, req).await.map(drop)
    }

    /// A guild member (`GET /guilds/{guild}/members/{user}`), `None` when the
    /// user is not in the guild (404).
    ///
    /// # Errors
    /// [`crate::ClientError`] other than a 404.
    pub async fn guild_member(&self, guild_id: &str, user_id: &str) -> Result<Option<GuildMember>> {
        const OP: &str = "guild_member";
        let url = self
            .api
            .url(OP, &["guilds", guild_id, "members", user_id])?;
        match self
            .api
            .send_json(OP, self.api.request(Method::GET, url))
            .await
        {
            Ok(member) => Ok(Some(member)),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Replaces a member's roles with `roles`
    /// (`PATCH /guilds/{guild}/members/{user}`); returns the member as
    /// Discord now has it.
    ///
    /// # Errors
    /// [`crate::ClientError`]; missing permissions (403) or an unknown member
    /// (404) are not retried.
    pub async fn set_member_roles(
        &self,
        guild_id: &str,
        user_id: &str,
        roles: &[String],
    ) -> Result<GuildMember> {
        const OP: &str = "set_member_roles";
        let url = self
            .api
            .url(OP, &["guilds", guild_id, "members", user_id])?;
        let body = serde_json::json!({ "roles": roles });
        let req = self.api.request(Method::PATCH, url).json(&body);
        self.api.send_json(OP, req).await
    }
}
