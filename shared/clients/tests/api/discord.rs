use std::time::Duration;

use hookflow::failure::Verdict;
use hookflow_clients::testing::{DISCORD_TOKEN, Reply};
use serde_json::json;

use crate::{engine_verdict, setup};

const ROLE: &str = "/discord/api/v10/guilds/g1/members/u1/roles/r1";

#[tokio::test]
async fn member_roles_are_added_and_removed_as_the_bot() {
    let (server, clients) = setup().await;
    server.on("PUT", ROLE, Reply::status(204));
    server.on("DELETE", ROLE, Reply::status(204));

    clients
        .discord
        .add_member_role("g1", "u1", "r1")
        .await
        .unwrap();
    clients
        .discord
        .remove_member_role("g1", "u1", "r1")
        .await
        .unwrap();

    let sent = server.requests();
    assert_eq!(
        sent.iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [("PUT", ROLE), ("DELETE", ROLE)]
    );
    for req in &sent {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bot {DISCORD_TOKEN}").as_str())
        );
        assert!(
            req.header("user-agent")
                .unwrap()
                .starts_with("DiscordBot (")
        );
    }
}

#[tokio::test]
async fn create_message_limits_mentions_to_users() {
    let (server, clients) = setup().await;
    let path = "/discord/api/v10/channels/c1/messages";
    server.on(
        "POST",
        path,
        Reply::json(
            200,
            &json!({"id": "m1", "channel_id": "c1", "content": "hi"}),
        ),
    );

    let message = clients
        .discord
        .create_message("c1", "Welcome <@u1>!")
        .await
        .unwrap();

    let req = &server.requests_to("POST", path)[0];
    assert_eq!(
        req.json(),
        json!({"content": "Welcome <@u1>!", "allowed_mentions": {"parse": ["users"]}})
    );
    assert_eq!(message.id, "m1");
    assert_eq!(message.channel_id, "c1");
}

#[tokio::test]
async fn a_rate_limit_waits_for_retry_after_and_missing_permissions_are_final() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "PUT",
        ROLE,
        [
            Reply::json(429, &json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}))
                .header("Retry-After", "1.5"),
            Reply::json(403, &json!({"message": "Missing Permissions", "code": 50013})),
        ],
    );

    let limited = clients
        .discord
        .add_member_role("g1", "u1", "r1")
        .await
        .unwrap_err();
    assert_eq!(
        limited.as_status().unwrap().retry_after(),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        engine_verdict(limited),
        Verdict::RetryAfter(Duration::from_millis(1500))
    );

    let forbidden = clients
        .discord
        .add_member_role("g1", "u1", "r1")
        .await
        .unwrap_err();
    assert_eq!(
        forbidden.as_status().unwrap().excerpt(),
        "50013: Missing Permissions"
    );
    assert_eq!(engine_verdict(forbidden), Verdict::Final);
}
