//! Resend: one broadcast email, sent once per idempotency key.

use std::collections::BTreeMap;

use hookflow::failure::Verdict;
use hookflow_clients::ResendEmail;
use hookflow_clients::resend::Tag;
use hookflow_clients::testing::{RESEND_KEY, Reply};
use serde_json::json;

use crate::{engine_verdict, setup};

const EMAILS: &str = "/resend/emails";

fn broadcast() -> ResendEmail {
    ResendEmail {
        from: "Course <support@example.com>".into(),
        to: vec!["ada@example.com".into()],
        subject: "This week".into(),
        html: "<p>Hello</p>".into(),
        text: None,
        headers: BTreeMap::from([(
            "List-Unsubscribe".into(),
            "<https://example.com/unsubscribed?userId=u_1>".into(),
        )]),
        tags: vec![Tag {
            name: "type".into(),
            value: "broadcast".into(),
        }],
    }
}

#[tokio::test]
async fn a_send_carries_its_key_headers_and_tags_and_returns_the_id() {
    let (server, clients) = setup().await;
    server.on("POST", EMAILS, Reply::json(200, &json!({"id": "em_1"})));

    let id = clients
        .resend
        .send(&broadcast(), "run-1:send")
        .await
        .unwrap();

    assert_eq!(id, "em_1");
    let req = &server.requests_to("POST", EMAILS)[0];
    let bearer = format!("Bearer {RESEND_KEY}");
    assert_eq!(req.header("authorization"), Some(bearer.as_str()));
    assert_eq!(req.header("idempotency-key"), Some("run-1:send"));
    assert_eq!(
        req.json(),
        json!({
            "from": "Course <support@example.com>", "to": ["ada@example.com"],
            "subject": "This week", "html": "<p>Hello</p>",
            "headers": {"List-Unsubscribe": "<https://example.com/unsubscribed?userId=u_1>"},
            "tags": [{"name": "type", "value": "broadcast"}],
        })
    );
}

#[tokio::test]
async fn a_rejected_address_or_an_empty_key_is_final_and_a_busy_api_is_retried() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "POST",
        EMAILS,
        [
            Reply::json(
                422,
                &json!({"name": "validation_error", "message": "Invalid `to` field."}),
            ),
            Reply::json(429, &json!({"name": "rate_limit_exceeded"})),
        ],
    );

    let rejected = clients.resend.send(&broadcast(), "k").await.unwrap_err();
    assert_eq!(engine_verdict(rejected), Verdict::Final);
    let busy = clients.resend.send(&broadcast(), "k").await.unwrap_err();
    assert_ne!(engine_verdict(busy), Verdict::Final);
    let no_key = clients.resend.send(&broadcast(), " ").await.unwrap_err();
    assert_eq!(engine_verdict(no_key), Verdict::Final);
    assert_eq!(
        server.requests_to("POST", EMAILS).len(),
        2,
        "no request without a key"
    );
}
