use hookflow::failure::Verdict;
use hookflow_clients::testing::{POSTHOG_KEY, Reply};
use hookflow_clients::{HttpClient, PostHogClient};
use serde_json::json;

use crate::{engine_verdict, setup};

const CAPTURE: &str = "/posthog/capture/";

#[tokio::test]
async fn capture_posts_the_key_in_the_body() {
    let (server, clients) = setup().await;
    server.on("POST", CAPTURE, Reply::json(200, &json!({"status": 1})));

    clients
        .posthog
        .capture("user_1", "booking_created", json!({"bookingUid": "bk_1"}))
        .await
        .unwrap();
    clients
        .posthog
        .capture("user_1", "user_signed_up", serde_json::Value::Null)
        .await
        .unwrap();

    let sent = server.requests_to("POST", CAPTURE);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].header("authorization"), None);
    assert_eq!(
        sent[0].json(),
        json!({
            "api_key": POSTHOG_KEY, "event": "booking_created", "distinct_id": "user_1",
            "properties": {"bookingUid": "bk_1"},
        })
    );
    assert_eq!(sent[1].json()["properties"], json!({}));
}

#[tokio::test]
async fn a_disabled_client_sends_nothing() {
    let (server, _) = setup().await;
    let http = HttpClient::new().unwrap();
    let env = server.env();
    let posthog = PostHogClient::from_env(&http, &|name| {
        (name != PostHogClient::API_KEY_VAR)
            .then(|| env.get(name).cloned())
            .flatten()
    })
    .unwrap();

    assert!(!posthog.is_enabled());
    posthog
        .capture("user_1", "meeting_ended", json!({}))
        .await
        .unwrap();
    assert!(
        PostHogClient::disabled()
            .capture("u", "e", json!({}))
            .await
            .is_ok()
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn an_invalid_key_error_does_not_echo_the_key() {
    let (server, clients) = setup().await;
    server.on(
        "POST",
        CAPTURE,
        Reply::json(
            401,
            &json!({"type": "authentication_error", "code": "invalid_api_key",
            "detail": format!("Project API key invalid: {POSTHOG_KEY}")}),
        ),
    );

    let err = clients
        .posthog
        .capture("u", "e", json!({}))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "posthog capture: HTTP 401 (invalid_api_key: Project API key invalid: [redacted])"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);
}
