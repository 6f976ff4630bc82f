use hookflow::failure::Verdict;
use hookflow_clients::testing::{Reply, SLACK_PATH};
use hookflow_clients::{ClientError, HttpClient, SlackClient};
use serde_json::json;

use crate::{engine_verdict, setup};

#[tokio::test]
async fn post_message_sends_the_text_as_json() {
    let (server, clients) = setup().await;
    server.on("POST", SLACK_PATH, Reply::text(200, "ok"));

    clients
        .slack
        .post_message("Refund failed for pay_1 (run r1)")
        .await
        .unwrap();

    let req = &server.requests_to("POST", SLACK_PATH)[0];
    assert_eq!(
        req.json(),
        json!({"text": "Refund failed for pay_1 (run r1)"})
    );
    assert_eq!(req.header("authorization"), None);
}

#[tokio::test]
async fn a_revoked_webhook_is_final_and_the_url_stays_secret() {
    let (server, clients) = setup().await;
    server.on(
        "POST",
        SLACK_PATH,
        Reply::text(403, &format!("invalid_token for {SLACK_PATH}")),
    );

    let err = clients.slack.post_message("alert").await.unwrap_err();

    let message = err.to_string();
    assert_eq!(
        message,
        "slack post_message: HTTP 403 (invalid_token for [redacted])"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);
    assert!(!format!("{:?}", clients.slack).contains(SLACK_PATH));
}

#[tokio::test]
async fn an_unreachable_webhook_is_retried_and_its_url_not_shown() {
    // GIVEN a webhook URL where nothing listens any more
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{SLACK_PATH}", listener.local_addr().unwrap());
    drop(listener);
    let slack = SlackClient::new(&HttpClient::new().unwrap(), &url).unwrap();

    // WHEN an alert is posted
    let err = slack.post_message("alert").await.unwrap_err();

    // THEN it is a transport error the engine retries, naming no URL
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(
        chain.starts_with("slack post_message: connection failed"),
        "{chain}"
    );
    assert!(!chain.contains(SLACK_PATH), "{chain}");
    let err = slack.post_message("alert").await.unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Retry);
}

#[tokio::test]
async fn a_disabled_client_posts_nothing() {
    let slack = SlackClient::disabled();
    assert!(!slack.is_enabled());
    slack.post_message("alert").await.unwrap();
}
