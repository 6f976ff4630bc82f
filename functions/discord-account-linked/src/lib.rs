//! `discord-account-linked`: gets a learner who linked Discord into the
//! community with the roles their purchases entitle them to.
//!
//! On `oauth/provider-account-linked` when `account.provider` is `discord`
//! (`{ "account": { "userId", "provider", "providerAccountId" }, "profile":
//! {..} }`; the app keeps the OAuth access token in the `accounts` document,
//! so the event, the run and its outputs never carry it):
//! 1. load the user (missing: fails at once);
//! 2. add them to the guild (`DISCORD_GUILD_ID`) with the access token they
//!    granted (`guilds.join`), read from their account inside the step;
//! 3. **sleep 10 s**: Discord needs a moment before the member can be read;
//! 4. check the link is still in the database (gone: returns "no discord
//!    account found for user");
//! 5. read the user's active Discord role entitlements (cohorts' and
//!    workshops'), then in one step read the guild member and set their roles
//!    to the ones they hold plus the entitled ones: roles given by hand are
//!    kept, and a retry reads the member again rather than writing back a
//!    stale list;
//! 6. read the member again and return it.
//!
//! Invariants: joining and setting roles are idempotent, so retries are
//! safe; the access token is read inside the step that uses it, never
//! returned or logged.

use std::time::Duration;

use course::{
    ACCOUNTS, Account, ENTITLEMENTS, Entitlement, USERS, User, account_key, entitlements_of,
    load_required,
};
use hookflow::{Ctx, Failure, Function, NonRetriable};
use hookflow_clients::{GuildMember, Services};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "discord-account-linked";
/// The event that starts it.
pub const TRIGGER: &str = "oauth/provider-account-linked";
/// Only Discord links.
pub const DISCORD_ONLY: &str = r#"event.data.account.provider == "discord""#;
/// How long Discord gets between the join and the first read.
pub const SETTLE: Duration = Duration::from_secs(10);
/// Entitlement types that carry a Discord role end with this
/// (`cohort_discord_role`, `workshop_discord_role`).
pub const DISCORD_ROLE_SUFFIX: &str = "_discord_role";
/// What the run returns when the link is gone by the time it looks.
pub const NO_ACCOUNT: &str = "no discord account found for user";

/// The linked account, as the event carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkedAccount {
    /// The user who linked it.
    pub user_id: String,
    /// `discord`.
    pub provider: String,
    /// Their Discord user id.
    pub provider_account_id: String,
}

/// The event's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Linked {
    /// The account.
    pub account: LinkedAccount,
    /// The provider's profile of the user, as given.
    #[serde(default)]
    pub profile: Value,
}

/// The roles a member should have: the ones they hold, then the entitled
/// ones they lack, each once.
#[must_use]
pub fn merge_roles(held: &[String], entitled: &[String]) -> Vec<String> {
    let mut roles: Vec<String> = Vec::with_capacity(held.len() + entitled.len());
    for role in held.iter().chain(entitled) {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    roles
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Give a linked Discord account its roles")
                .reads_env(["DISCORD_BOT_TOKEN", "DISCORD_GUILD_ID"]),
        )
        .on_event_if(TRIGGER, DISCORD_ONLY)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { link(&services, ctx).await }
        })
}

async fn link(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let Linked { account, profile } =
        serde_json::from_value(ctx.event.data.clone()).non_retriable()?;
    let guild = services.settings.discord_guild_id()?.to_owned();
    let user: User = load_required(
        &ctx,
        &services.docs,
        "get-user",
        (USERS, &account.user_id),
        "User not found",
    )
    .await?;
    let (docs, discord, g) = (
        services.docs.clone(),
        services.clients.discord.clone(),
        guild.clone(),
    );
    let key = account_key(&user.id, "discord");
    let joined: bool = ctx
        .step
        .run("add-to-guild", move || async move {
            let Some((linked, _)) = docs.get::<Account>(ACCOUNTS, &key).await? else {
                return Ok(false);
            };
            let token = linked
                .access_token
                .ok_or_else(|| NonRetriable::new("the Discord account has no access token"))?;
            discord
                .add_guild_member(&g, &linked.provider_account_id, &token)
                .await?;
            Ok(true)
        })
        .await?;
    if !joined {
        return Ok(json!(NO_ACCOUNT));
    }
    ctx.step.sleep("give-discord-a-moment", SETTLE).await?;
    let (docs, key) = (services.docs.clone(), account_key(&user.id, "discord"));
    let member_id: Option<String> = ctx
        .step
        .run("get-discord-account", move || async move {
            let linked = docs.get::<Account>(ACCOUNTS, &key).await?;
            Ok(linked.map(|(account, _)| account.provider_account_id))
        })
        .await?;
    let Some(member_id) = member_id else {
        return Ok(json!(NO_ACCOUNT));
    };
    let (docs, user_id) = (services.docs.clone(), user.id.clone());
    let entitled: Vec<String> = ctx
        .step
        .run("get-discord-entitlements", move || async move {
            let owned: Vec<Entitlement> = docs
                .list_prefixed(ENTITLEMENTS, &entitlements_of(&user_id))
                .await?;
            Ok(owned
                .into_iter()
                .filter(|e| e.is_active() && e.entitlement_type.ends_with(DISCORD_ROLE_SUFFIX))
                .filter_map(|e| e.discord_role_id)
                .collect())
        })
        .await?;
    let (discord, g, id) = (
        services.clients.discord.clone(),
        guild.clone(),
        member_id.clone(),
    );
    ctx.step
        .run("update-discord-roles", move || async move {
            let member = discord
                .guild_member(&g, &id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the member is not in the guild yet"))?;
            let roles = merge_roles(&member.roles, &entitled);
            if roles == member.roles {
                return Ok(member);
            }
            Ok(discord.set_member_roles(&g, &id, &roles).await?)
        })
        .await?;
    let (discord, g, id) = (services.clients.discord.clone(), guild, member_id.clone());
    let member: Option<GuildMember> = ctx
        .step
        .run("reload-discord-member", move || async move {
            Ok(discord.guild_member(&g, &id).await?)
        })
        .await?;
    Ok(json!({
        "account": { "userId": user.id, "provider": "discord", "providerAccountId": member_id },
        "profile": profile,
        "user": user,
        "discordMember": member,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|&id| id.to_owned()).collect()
    }

    #[test]
    fn roles_given_by_hand_are_kept_and_none_is_doubled() {
        assert_eq!(
            merge_roles(
                &ids(&["manual", "cohort-1"]),
                &ids(&["cohort-1", "cohort-2"])
            ),
            ids(&["manual", "cohort-1", "cohort-2"])
        );
        assert_eq!(merge_roles(&[], &ids(&["a", "a"])), ids(&["a"]));
    }
}

/// `add-discord-role`: the plan's `add-discord-role-workflow`. On
/// `discord/user-added-to-cohort` or `discord/user-added-to-workshop`
/// (`userId`, `discordRoleId`): a learner who already linked Discord gets the
/// role now (idempotent); one who has not gets it when they link
/// (`discord-account-linked` merges entitled roles).
pub mod add_role {
    use course::{ACCOUNTS, Account, account_key};
    use hookflow::{Function, NonRetriable};
    use hookflow_clients::Services;
    use serde_json::json;

    /// The function id.
    pub const ID: &str = "add-discord-role";
    /// A learner joined a cohort.
    pub const COHORT: &str = "discord/user-added-to-cohort";
    /// A learner joined a workshop.
    pub const WORKSHOP: &str = "discord/user-added-to-workshop";

    /// The function definition.
    #[must_use]
    pub fn function(services: &Services) -> Function {
        let services = services.clone();
        services
            .alert_on_failure(
                Function::new(ID)
                    .name("Give a learner their Discord role")
                    .reads_env(["DISCORD_BOT_TOKEN", "DISCORD_GUILD_ID"]),
            )
            .on_event(COHORT)
            .on_event(WORKSHOP)
            .retries(3)
            .handler(move |ctx| {
                let services = services.clone();
                async move {
                    let text = |key: &str| {
                        ctx.event.data[key]
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                NonRetriable::new(format!("{} without {key}", ctx.event.name))
                            })
                    };
                    let (user_id, role) = (text("userId")?, text("discordRoleId")?);
                    let guild = services.settings.discord_guild_id()?.to_owned();
                    let (docs, key) = (services.docs.clone(), account_key(&user_id, "discord"));
                    let account: Option<Account> = ctx
                        .step
                        .run("get-discord-account", move || async move {
                            Ok(docs.get::<Account>(ACCOUNTS, &key).await?.map(|(a, _)| a))
                        })
                        .await?;
                    let Some(account) = account else {
                        return Ok(
                            json!({ "skipped": "not linked yet: the role comes with the link" }),
                        );
                    };
                    let (discord, member, granted) = (
                        services.clients.discord.clone(),
                        account.provider_account_id,
                        role.clone(),
                    );
                    ctx.step
                        .run("add-role", move || async move {
                            Ok(discord.add_member_role(&guild, &member, &granted).await?)
                        })
                        .await?;
                    Ok(json!({ "userId": user_id, "discordRoleId": role }))
                }
            })
    }
}
