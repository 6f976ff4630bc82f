//! Discord interactions: Ed25519, PING/PONG, deferred replies.

use hookflow_webhooks::{Provider, discord};
use serde_json::json;

use crate::support::{self, provider_suite, timestamp_suite};

const PING: &str = "webhook-discord-ping.json";
const COMMAND: &str = "webhook-discord-application-command.json";

provider_suite!(signed_body: COMMAND, "x-signature-ed25519");
timestamp_suite!(COMMAND, discord::TOLERANCE_SECS);

#[tokio::test]
async fn ping_is_answered_with_pong_and_stores_nothing() {
    let sample = support::load(PING);
    let (response, sink) = support::deliver(
        &support::receiver(),
        Provider::Discord,
        &sample.request,
        sample.now_ms,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, json!({"type": 1}));
    assert!(sink.batches().is_empty());
}

#[tokio::test]
async fn ping_with_a_bad_signature_is_401() {
    // Discord's endpoint check sends exactly this and expects a 401.
    support::assert_tampered_rejected(PING).await;
    support::assert_wrong_secret_rejected(PING).await;
}

#[tokio::test]
async fn application_command_is_deferred_and_becomes_an_event() {
    let sample = support::load(COMMAND);
    let (response, sink) = support::deliver(
        &support::receiver(),
        Provider::Discord,
        &sample.request,
        sample.now_ms,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, json!({"type": 5}));
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "discord/interaction.application_command");
    assert_eq!(events[0].id, "1300000000000000101");
    assert_eq!(events[0].tenant.as_deref(), Some("1300000000000000200"));
}

#[tokio::test]
async fn missing_timestamp_header_is_rejected() {
    support::assert_missing_header_rejected(COMMAND, "x-signature-timestamp").await;
}

#[tokio::test]
async fn missing_interaction_id_is_400() {
    support::assert_missing_field_is_400(COMMAND, "id").await;
}
