use hookflow::failure::Verdict;
use hookflow_clients::Email;
use hookflow_clients::testing::{POSTMARK_TOKEN, Reply};
use serde_json::json;

use crate::{engine_verdict, setup};

const EMAIL: &str = "/postmark/email";

fn email() -> Email {
    Email {
        from: "Hookflow <hello@example.com>".into(),
        to: "ada@example.com".into(),
        subject: "Your booking".into(),
        text_body: "We could not book your slot; you have been refunded.".into(),
        html_body: None,
        tag: Some("booking-failed".into()),
    }
}

#[tokio::test]
async fn send_email_posts_postmark_fields_and_returns_the_message_id() {
    let (server, clients) = setup().await;
    server.on(
        "POST",
        EMAIL,
        Reply::json(
            200,
            &json!({"To": "ada@example.com", "SubmittedAt": "2027-01-04T09:00:00Z",
            "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"}),
        ),
    );

    let id = clients.email.send_email(&email()).await.unwrap();

    let req = &server.requests_to("POST", EMAIL)[0];
    assert_eq!(req.header("x-postmark-server-token"), Some(POSTMARK_TOKEN));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(
        req.json(),
        json!({
            "From": "Hookflow <hello@example.com>", "To": "ada@example.com",
            "Subject": "Your booking",
            "TextBody": "We could not book your slot; you have been refunded.",
            "Tag": "booking-failed",
        })
    );
    assert_eq!(id, "b7bc2f4a-e38e-4336-af7d-e6c392c2f817");
}

#[tokio::test]
async fn a_rejected_recipient_is_final() {
    let (server, clients) = setup().await;
    server.on(
        "POST",
        EMAIL,
        Reply::json(422, &json!({"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive."})),
    );

    let err = clients.email.send_email(&email()).await.unwrap_err();

    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("(406: You tried to send"), "{err}");
    assert_eq!(engine_verdict(err), Verdict::Final);
}
