//! `mentorship-onboarding`: gets a new mentee into the Discord community and
//! the dashboard.
//!
//! On `pack/created`: take charge of the member's onboarding
//! (`members/<clerkId>`; a member already onboarded, or being onboarded for
//! another pack, is left alone, so a renewal does not onboard twice, while a
//! replay of a failed onboarding starts over); look the
//! member up in Clerk; unless Clerk already has their `discordUserId`, email
//! the Discord-connect link and wait up to [`CONNECT_TIMEOUT`] for
//! [`DISCORD_CONNECTED`] with the same `clerkId`; on timeout email one
//! reminder and wait as long again; then either
//! - grant the Discord mentee role and dashboard access (Clerk
//!   `publicMetadata.dashboardAccess = true`), or
//! - give up: flag the account (Clerk `publicMetadata.onboarding =
//!   "discord_not_connected"`) and tell the admins on Slack.
//!
//! Invariants: each external call is its own step; the role grant and the
//! metadata updates are idempotent, so retries are safe; only the runs of the
//! pack that took charge of a member onboard them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookflow::{Ctx, Failure, Function, NonRetriable, WaitFor};
use hookflow_clients::Services;
use mentorship::{
    Contact, DISCORD_CONNECTED, MEMBERS, Member, Onboarding, Pack, email_member, look_up_member,
    utc,
};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "mentorship-onboarding";
/// The event that starts it.
pub const TRIGGER: &str = "pack/created";
/// How long each wait for the Discord link lasts (before the reminder, and after).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// `publicMetadata.onboarding` of a member who never linked Discord.
pub const FLAG: &str = "discord_not_connected";

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Onboard a mentee").reads_env([
            "CLERK_SECRET_KEY",
            "POSTMARK_SERVER_TOKEN",
            "EMAIL_FROM",
            "DISCORD_BOT_TOKEN",
            "DISCORD_GUILD_ID",
            "DISCORD_MENTEE_ROLE_ID",
            "DISCORD_CONNECT_URL",
        ]))
        .on_event(TRIGGER)
        .waits_for(DISCORD_CONNECTED)
        .handler(move |ctx| {
            let services = services.clone();
            async move { onboard(&services, ctx).await }
        })
}

/// The wait for the member's Discord link.
fn discord_connected() -> WaitFor {
    WaitFor::event(DISCORD_CONNECTED)
        .matching("data.clerkId")
        .timeout(CONNECT_TIMEOUT)
}

/// The Discord user id a [`DISCORD_CONNECTED`] event carries.
fn discord_user_id(data: &Value) -> Result<String, NonRetriable> {
    data["discordUserId"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| NonRetriable::new("discord/connected without data.discordUserId"))
}

async fn onboard(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let pack: Pack = serde_json::from_value(ctx.event.data.clone()).non_retriable()?;
    let connect_url = services.settings.discord_connect_url()?.to_owned();
    let clerk_id = pack.clerk_id.as_str();
    let step = &ctx.step;

    let docs = services.docs.clone();
    let (member, order_id) = (clerk_id.to_owned(), pack.order_id.clone());
    let in_charge: bool = step
        .run("take-charge", || async move {
            let at = utc(docs.now_ms());
            Ok(docs
                .update_with(MEMBERS, &member, |current: Option<Member>| {
                    let started = Member::start(current.as_ref(), &member, &order_id, at);
                    let in_charge = started.is_some();
                    (started, in_charge)
                })
                .await?)
        })
        .await?;
    if !in_charge {
        return Ok(json!({ "status": "already_onboarding_or_onboarded" }));
    }

    let contact = look_up_member(services, step, "look-up-member", clerk_id).await?;
    let linked = match contact.discord_user_id.clone() {
        Some(id) => Some(id),
        None => wait_for_discord(services, &ctx, &contact, &connect_url).await?,
    };
    let Some(discord_id) = linked else {
        flag(services, &ctx, clerk_id).await?;
        return Ok(json!({ "status": "flagged" }));
    };

    let discord = services.clients.discord.clone();
    let settings = services.settings.clone();
    let user = discord_id.clone();
    step.run("grant-discord-role", || async move {
        let (guild, role) = settings.discord_mentee_role()?;
        Ok(discord.add_member_role(guild, &user, role).await?)
    })
    .await?;
    let clerk = services.clients.clerk.clone();
    let (member, user) = (clerk_id.to_owned(), discord_id.clone());
    step.run("grant-dashboard-access", || async move {
        let metadata =
            json!({ "dashboardAccess": true, "discordUserId": user, "onboarding": null });
        clerk.update_public_metadata(&member, metadata).await?;
        Ok(())
    })
    .await?;
    record(
        services,
        &ctx,
        clerk_id,
        Onboarding::Onboarded,
        Some(&discord_id),
    )
    .await?;
    Ok(json!({ "status": "onboarded", "discordUserId": discord_id }))
}

/// Emails the connect link, waits; on timeout emails a reminder and waits
/// again. The linked Discord user id, or `None` when both waits timed out.
async fn wait_for_discord(
    services: &Services,
    ctx: &Ctx,
    contact: &Contact,
    connect_url: &str,
) -> anyhow::Result<Option<String>> {
    let step = &ctx.step;
    email_member(
        services,
        step,
        "email-discord-link",
        contact,
        "Join the mentorship Discord",
        |name| {
            format!(
                "Hi {name},\n\nWelcome to the mentorship! Your sessions, your mentor and the \
             community live on Discord. Link your Discord account here to get access:\n\n\
             {connect_url}\n"
            )
        },
    )
    .await?;
    if let Some(event) = step
        .wait_for_event("wait-discord-connected", discord_connected())
        .await?
    {
        return Ok(Some(discord_user_id(&event.data)?));
    }
    email_member(
        services,
        step,
        "email-discord-reminder",
        contact,
        "Reminder: link your Discord account",
        |name| {
            format!(
                "Hi {name},\n\nYou have not linked your Discord account yet, so your dashboard \
             is still locked. It takes a minute:\n\n{connect_url}\n"
            )
        },
    )
    .await?;
    match step
        .wait_for_event("wait-discord-connected-after-reminder", discord_connected())
        .await?
    {
        Some(event) => Ok(Some(discord_user_id(&event.data)?)),
        None => Ok(None),
    }
}

/// Flags the account in Clerk, records it and tells the admins.
async fn flag(services: &Services, ctx: &Ctx, clerk_id: &str) -> anyhow::Result<()> {
    let clerk = services.clients.clerk.clone();
    let member = clerk_id.to_owned();
    ctx.step
        .run("flag-account", || async move {
            clerk
                .update_public_metadata(&member, json!({ "onboarding": FLAG }))
                .await?;
            Ok(())
        })
        .await?;
    record(services, ctx, clerk_id, Onboarding::Flagged, None).await?;
    let slack = services.clients.slack.clone();
    let text = format!(
        ":warning: Mentee `{clerk_id}` never linked Discord after the onboarding email and a \
         reminder (run `{}`); their account is flagged `{FLAG}`.",
        ctx.run_id
    );
    ctx.step
        .run("alert-admin-flagged", || async move {
            Ok(slack.post_message(&text).await?)
        })
        .await?;
    Ok(())
}

/// Records where the member's onboarding ended.
async fn record(
    services: &Services,
    ctx: &Ctx,
    clerk_id: &str,
    onboarding: Onboarding,
    discord_id: Option<&str>,
) -> anyhow::Result<()> {
    let docs = services.docs.clone();
    let (member, discord) = (clerk_id.to_owned(), discord_id.map(str::to_owned));
    let step_id = match onboarding {
        Onboarding::Flagged => "record-flagged",
        _ => "record-onboarded",
    };
    ctx.step
        .run(step_id, || async move {
            let at: DateTime<Utc> = utc(docs.now_ms());
            docs.update(MEMBERS, &member, |current: Option<Member>| {
                current.map(|m| m.finish(onboarding, discord.as_deref(), at))
            })
            .await?;
            Ok(())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_matches_the_members_clerk_id_for_a_week() {
        let wait = discord_connected();
        assert_eq!(wait.event, "discord/connected");
        assert_eq!(wait.timeout, CONNECT_TIMEOUT);
        assert!(wait.condition.unwrap().contains("data.clerkId"));
        assert_eq!(
            discord_user_id(&json!({"clerkId": "u", "discordUserId": "80351110224678912"}))
                .unwrap(),
            "80351110224678912"
        );
        assert!(discord_user_id(&json!({"clerkId": "u"})).is_err());
    }
}
