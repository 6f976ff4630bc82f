//! Onboarding: after a purchase the member is emailed the Discord-connect
//! link; linking Discord grants the mentee role and dashboard access; a
//! member who never links gets one reminder a week later and is flagged a
//! week after that.

use hookflow::RunStatus;
use hookflow::run::StepStatus;
use hookflow_clients::testing::Reply;
use mentorship::Onboarding;
use serde_json::json;

use crate::support::{DISCORD_CONNECT_URL, mentee_role_path};
use crate::world::{Backend, CLERK_ID, DAY, DISCORD_USER_ID, HOUR, PAYPAL, SLACK, World, step_ids};

const ONBOARDING: &str = "mentorship-onboarding";

pub async fn linking_discord_grants_the_role_and_dashboard_access<B: Backend>(world: World<B>) {
    // GIVEN a member who just bought a pack
    world.buy().await;
    let waiting = world.only_run(ONBOARDING).await;
    assert_eq!(waiting.run.status, RunStatus::Waiting, "{waiting:#?}");
    assert_eq!(
        step_ids(&waiting),
        [
            "take-charge",
            "look-up-member",
            "email-discord-link",
            "wait-discord-connected"
        ]
    );
    let emails = world.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["To"], "ada@example.com");
    assert_eq!(emails[0]["Tag"], "email-discord-link");
    assert!(
        emails[0]["TextBody"]
            .as_str()
            .unwrap()
            .contains(DISCORD_CONNECT_URL)
    );
    assert!(
        emails[0]["TextBody"]
            .as_str()
            .unwrap()
            .starts_with("Hi Ada,")
    );

    // WHEN another member links Discord, nothing moves
    world.connect_discord("user_someone_else").await;
    assert_eq!(
        world.only_run(ONBOARDING).await.run.status,
        RunStatus::Waiting
    );

    // WHEN this member links Discord two days later
    world.advance(2 * DAY).await;
    world.connect_discord(CLERK_ID).await;

    // THEN the role is granted, the dashboard opened, and the member recorded
    let done = world.only_run(ONBOARDING).await;
    assert_eq!(done.run.status, RunStatus::Completed, "{done:#?}");
    assert_eq!(done.run.output.as_ref().unwrap()["status"], "onboarded");
    let grants = world
        .server
        .requests_to("PUT", &mentee_role_path(DISCORD_USER_ID));
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0].header("authorization"),
        Some("Bot discord-test-token")
    );
    assert_eq!(
        world.metadata_updates(),
        [json!({"dashboardAccess": true, "discordUserId": DISCORD_USER_ID, "onboarding": null})]
    );
    let member = world.member().await.unwrap();
    assert_eq!(member.onboarding, Onboarding::Onboarded);
    assert_eq!(member.discord_user_id.as_deref(), Some(DISCORD_USER_ID));
    assert_eq!(world.email_tags(), ["email-discord-link"], "no reminder");
    assert!(world.server.requests_to("POST", SLACK).is_empty());
}

pub async fn a_member_who_never_links_is_reminded_once_then_flagged<B: Backend>(world: World<B>) {
    // GIVEN a member who bought a pack and ignores the email
    world.buy().await;

    // WHEN a week passes: one reminder, and the wait starts again
    world.advance(7 * DAY - HOUR).await;
    assert_eq!(world.email_tags(), ["email-discord-link"]);
    world.advance(2 * HOUR).await;
    assert_eq!(
        world.email_tags(),
        ["email-discord-link", "email-discord-reminder"]
    );
    let reminded = world.only_run(ONBOARDING).await;
    assert_eq!(reminded.run.status, RunStatus::Waiting);
    let first_wait = &reminded.steps[3];
    assert_eq!(first_wait.id, "wait-discord-connected");
    assert_eq!(first_wait.status, StepStatus::Completed);
    assert_eq!(first_wait.output, None, "timed out: no event");

    // WHEN another week passes without a link
    world.advance(7 * DAY).await;

    // THEN the account is flagged, the admins told, and no access granted
    let flagged = world.only_run(ONBOARDING).await;
    assert_eq!(flagged.run.status, RunStatus::Completed, "{flagged:#?}");
    assert_eq!(flagged.run.output.as_ref().unwrap()["status"], "flagged");
    assert_eq!(
        step_ids(&flagged)[4..],
        [
            "email-discord-reminder",
            "wait-discord-connected-after-reminder",
            "flag-account",
            "record-flagged",
            "alert-admin-flagged"
        ]
    );
    assert_eq!(
        world.metadata_updates(),
        [json!({"onboarding": "discord_not_connected"})]
    );
    let alerts = world.server.requests_to("POST", SLACK);
    assert_eq!(alerts.len(), 1);
    let alert = alerts[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        alert.contains(CLERK_ID) && alert.contains(&flagged.run.id),
        "{alert}"
    );
    assert!(
        world
            .server
            .requests_to("PUT", &mentee_role_path(DISCORD_USER_ID))
            .is_empty()
    );
    assert_eq!(
        world.member().await.unwrap().onboarding,
        Onboarding::Flagged
    );
    assert_eq!(world.email_tags().len(), 2, "exactly one reminder");
}

pub async fn linking_after_the_reminder_still_onboards<B: Backend>(world: World<B>) {
    world.buy().await;
    world.advance(8 * DAY).await;
    world.connect_discord(CLERK_ID).await;

    let done = world.only_run(ONBOARDING).await;
    assert_eq!(done.run.output.as_ref().unwrap()["status"], "onboarded");
    assert_eq!(
        world.email_tags(),
        ["email-discord-link", "email-discord-reminder"]
    );
    assert_eq!(
        world.member().await.unwrap().onboarding,
        Onboarding::Onboarded
    );
}

pub async fn a_second_pack_does_not_onboard_the_member_again<B: Backend>(world: World<B>) {
    // GIVEN a member onboarded with their first pack
    world.buy().await;
    world.connect_discord(CLERK_ID).await;

    // WHEN they buy a second pack (PayPal)
    world.deliver(PAYPAL).await;

    // THEN the second onboarding run leaves them alone
    let runs = world.runs_of(ONBOARDING).await;
    assert_eq!(runs.len(), 2);
    let outputs: Vec<_> = runs
        .iter()
        .map(|run| run.output.as_ref().unwrap()["status"].clone())
        .collect();
    assert!(outputs.contains(&json!("onboarded")), "{outputs:?}");
    assert!(
        outputs.contains(&json!("already_onboarding_or_onboarded")),
        "{outputs:?}"
    );
    assert_eq!(world.email_tags(), ["email-discord-link"]);
}

pub async fn a_failed_onboarding_replayed_starts_over<B: Backend>(world: World<B>) {
    // GIVEN Clerk does not know the member yet: the onboarding fails at once
    world.server.on(
        "GET",
        &crate::support::clerk_user_path(CLERK_ID),
        Reply::json(404, &json!({"errors": [{"code": "resource_not_found"}]})),
    );
    world.buy().await;
    let failed = world.only_run(ONBOARDING).await;
    assert_eq!(failed.run.status, RunStatus::Failed, "{failed:#?}");
    assert!(world.emails().is_empty());
    let alerts = world.server.requests_to("POST", SLACK);
    assert_eq!(alerts.len(), 1, "the admins get the failure");
    assert!(
        alerts[0].json()["text"]
            .as_str()
            .unwrap()
            .contains(&failed.run.id)
    );

    // WHEN Clerk is fixed and an admin replays the run
    world.server.on(
        "GET",
        &crate::support::clerk_user_path(CLERK_ID),
        Reply::json(200, &crate::support::clerk_user(json!({}))),
    );
    world.env.engine().replay(&failed.run.id).await.unwrap();
    world.env.settle().await;

    // THEN the new run takes charge again and emails the link
    let runs = world.runs_of(ONBOARDING).await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().any(|run| run.status == RunStatus::Waiting),
        "{runs:#?}"
    );
    assert_eq!(world.email_tags(), ["email-discord-link"]);
}
