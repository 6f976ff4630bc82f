//! People: a new user's setup (`user-created`), a Discord link with the 10 s
//! sleep and the role merge (`discord-account-linked`), Postmark's bounces
//! and deliveries on the newsletter preference (`course-email-status`).

use std::time::Duration;

use course::*;
use hookflow::RunStatus;
use hookflow_clients::testing::{DISCORD_PREFIX, Reply};
use serde_json::json;

use crate::world::{BOUNCE, Backend, DELIVERY, GUILD, World, user};

pub async fn a_new_user_gets_a_role_and_a_preference_once_per_address<B: Backend>(world: World<B>) {
    let linus = json!({"user": {"id": "u_linus", "email": "linus@example.com", "name": "Linus"}});
    // WHEN the app announces the user, twice (a retried sign-up)
    world.send("user/created", linus.clone()).await;
    world.send("user/created", linus).await;
    // THEN one run set them up
    let done: Vec<_> = world
        .runs_of("user-created")
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Completed)
        .collect();
    assert_eq!(done.len(), 1, "{done:#?}");
    let output = done[0].output.clone().unwrap();
    assert_eq!(output["email"]["body"], "linus@example.com signed up.");
    assert_eq!(
        output["sendResponse"],
        json!(null),
        "the notice is off by default"
    );
    assert!(world.emails().is_empty());
    // AND the user, their role and their active newsletter preference exist
    let stored: User = world.get(USERS, "u_linus").await.unwrap();
    assert_eq!(stored.email, "linus@example.com");
    let grant: Option<UserRole> = world
        .get(USER_ROLES, &user_role_key("u_linus", "role_user"))
        .await;
    assert!(grant.is_some());
    let preference: CommunicationPreference = world
        .get(PREFERENCES, &preference_key("u_linus", "pt_news"))
        .await
        .unwrap();
    assert!(preference.active);
}

/// Ada's roles once merged: the manual one, the cohort's, the workshop's.
const MERGED: [&str; 3] = ["role_manual", "role_cohort_4", "role_ws_solo"];

/// Discord as the scenario sees it: Ada's member holds a role given by hand.
fn script_discord<B: Backend>(world: &World<B>) -> String {
    let member = format!("{DISCORD_PREFIX}/guilds/{GUILD}/members/disc_ada");
    world.server.on("PUT", &member, Reply::status(204));
    // Read before the merge, then after it.
    world.server.on_sequence(
        "GET",
        &member,
        [
            Reply::json(
                200,
                &json!({"user": {"id": "disc_ada"}, "roles": ["role_manual"]}),
            ),
            Reply::json(200, &json!({"user": {"id": "disc_ada"}, "roles": MERGED})),
        ],
    );
    world.server.on(
        "PATCH",
        &member,
        Reply::json(200, &json!({"user": {"id": "disc_ada"}, "roles": MERGED})),
    );
    member
}

fn linked() -> serde_json::Value {
    json!({
        "account": {
            "userId": "u_ada",
            "provider": "discord",
            "providerAccountId": "disc_ada",
        },
        "profile": {"id": "disc_ada", "username": "ada"},
    })
}

pub async fn a_linked_discord_account_gets_its_roles_after_ten_seconds_keeping_manual_ones<
    B: Backend,
>(
    world: World<B>,
) {
    // GIVEN Ada bought the cohort (its Discord role) and linked Discord
    let role = Entitlement {
        id: "p1:cohort_discord_role:cohort_4".into(),
        user_id: "u_ada".into(),
        entitlement_type: COHORT_DISCORD_ROLE.into(),
        resource_id: Some("cohort_4".into()),
        source_type: "PURCHASE".into(),
        source_id: "p1".into(),
        organization_id: None,
        cohort_id: None,
        discord_role_id: Some("role_cohort_4".into()),
        deleted_at: None,
    };
    world
        .put(ENTITLEMENTS, &entitlement_key("u_ada", &role.id), &role)
        .await;
    // AND a self-paced workshop with its own role
    let workshop = Entitlement {
        id: "p2:workshop_discord_role:ws_solo".into(),
        entitlement_type: WORKSHOP_DISCORD_ROLE.into(),
        resource_id: Some("ws_solo".into()),
        source_id: "p2".into(),
        discord_role_id: Some("role_ws_solo".into()),
        ..role.clone()
    };
    world
        .put(
            ENTITLEMENTS,
            &entitlement_key("u_ada", &workshop.id),
            &workshop,
        )
        .await;
    let account = Account {
        user_id: "u_ada".into(),
        provider: "discord".into(),
        provider_account_id: "disc_ada".into(),
        access_token: Some("user-oauth-token".into()),
    };
    world
        .put(ACCOUNTS, &account_key("u_ada", "discord"), &account)
        .await;
    let member = script_discord(&world);
    // WHEN the link is announced
    world.send("oauth/provider-account-linked", linked()).await;
    // THEN she joined the guild with her token, and the run sleeps
    let joined = world.server.requests_to("PUT", &member);
    assert_eq!(joined.len(), 1);
    assert_eq!(
        joined[0].json(),
        json!({"access_token": "user-oauth-token"})
    );
    assert_eq!(
        joined[0].header("authorization"),
        Some("Bot discord-test-token")
    );
    let run = world.only("discord-account-linked").await;
    assert_eq!(run.status, RunStatus::Sleeping, "{run:#?}");
    assert!(
        world.server.requests_to("GET", &member).is_empty(),
        "nothing read before 10 s"
    );
    // WHEN 9 s pass, still nothing; at 10 s the roles are merged
    world.advance(Duration::from_secs(9)).await;
    assert!(world.server.requests_to("PATCH", &member).is_empty());
    world.advance(Duration::from_secs(1)).await;
    let patched = world.server.requests_to("PATCH", &member);
    assert_eq!(patched.len(), 1);
    assert_eq!(patched[0].json(), json!({"roles": MERGED}));
    let run = world.only("discord-account-linked").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let output = run.output.unwrap();
    assert_eq!(output["discordMember"]["roles"], json!(MERGED));
    // AND the token is in no event, step output or run output
    let view = world.view(&run.id).await;
    let kept = serde_json::to_string(&(&run.event, &view.steps, &output)).unwrap();
    assert!(!kept.contains("user-oauth-token"), "{kept}");
}

pub async fn a_github_link_or_a_vanished_account_changes_no_roles<B: Backend>(world: World<B>) {
    let member = script_discord(&world);
    let mut github = linked();
    github["account"]["provider"] = json!("github");
    world.send("oauth/provider-account-linked", github).await;
    assert!(
        world.runs_of("discord-account-linked").await.is_empty(),
        "not Discord"
    );
    // The account row is gone by the time the run looks (unlinked at once).
    world.send("oauth/provider-account-linked", linked()).await;
    world.advance(Duration::from_secs(10)).await;
    let run = world.only("discord-account-linked").await;
    assert_eq!(
        run.output,
        Some(json!("no discord account found for user")),
        "{run:#?}"
    );
    assert!(world.server.requests_to("PATCH", &member).is_empty());
}

pub async fn a_hard_bounce_unsubscribes_the_address_and_a_delivery_is_recorded<B: Backend>(
    world: World<B>,
) {
    // GIVEN the bounce sample's address belongs to Nobody, who is subscribed
    let nobody = user("u_nobody", "nobody@example.com", "Nobody");
    world.put(USERS, "u_nobody", &nobody).await;
    world
        .put(
            USERS_BY_EMAIL,
            &email_key(&nobody.email),
            &json!({"userId": "u_nobody"}),
        )
        .await;
    // WHEN Postmark reports the hard bounce, and Ada's delivery
    world.deliver(BOUNCE).await;
    world.deliver(DELIVERY).await;
    // THEN Nobody's newsletter is off, with the reason, and Ada's delivery is stamped
    let runs = world.runs_of("course-email-status").await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Completed),
        "{runs:#?}"
    );
    let off: CommunicationPreference = world
        .get(PREFERENCES, &preference_key("u_nobody", "pt_news"))
        .await
        .unwrap();
    assert!(!off.active);
    assert_eq!(off.opted_out_reason.as_deref(), Some("HardBounce"));
    let ada: CommunicationPreference = world
        .get(PREFERENCES, &preference_key("u_ada", "pt_news"))
        .await
        .unwrap();
    assert!(ada.active && ada.delivered_at.is_some(), "{ada:?}");
    // AND a broadcast to Nobody now stops at the preference
    world
        .send(
            "email/send-broadcast",
            json!({"toUserId": "u_nobody", "subject": "Hi", "body": "<p>Hi</p>"}),
        )
        .await;
    let broadcast = world.only("email-send-broadcast").await;
    assert_eq!(broadcast.output, Some(json!("User has unsubscribed")));
    assert!(world.emails().is_empty());
}

pub async fn a_linked_learner_gets_the_role_of_a_cohort_they_join<B: Backend>(world: World<B>) {
    let account = Account {
        user_id: "u_bob".into(),
        provider: "discord".into(),
        provider_account_id: "disc_bob".into(),
        access_token: None,
    };
    world
        .put(ACCOUNTS, &account_key("u_bob", "discord"), &account)
        .await;
    let grant = format!("{DISCORD_PREFIX}/guilds/{GUILD}/members/disc_bob/roles/role_cohort_4");
    world.server.on("PUT", &grant, Reply::status(204));
    let added = json!({"cohortId": "cohort_4", "discordRoleId": "role_cohort_4"});
    for who in ["u_bob", "u_ada"] {
        let mut data = added.clone();
        data["userId"] = json!(who);
        world.send("discord/user-added-to-cohort", data).await;
    }
    // Bob (linked) gets the role now; Ada (not linked) when she links.
    assert_eq!(world.server.requests_to("PUT", &grant).len(), 1);
    let runs = world.runs_of("add-discord-role").await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Completed),
        "{runs:#?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.output.as_ref().unwrap()["skipped"].is_string())
    );
}
