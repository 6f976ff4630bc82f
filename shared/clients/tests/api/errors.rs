use std::time::Duration;

use hookflow::failure::Verdict;
use hookflow_clients::testing::{Reply, STRIPE_PREFIX, TestServer};
use hookflow_clients::{ClientError, HttpClient, StripeClient};
use serde_json::json;

use crate::{engine_verdict, setup};

#[tokio::test]
async fn a_timeout_is_a_retried_transport_error() {
    // GIVEN a provider slower than the client's timeout
    let server = TestServer::start().await;
    server.on(
        "GET",
        "/stripe/v1/checkout/sessions/cs_1",
        Reply::json(200, &json!({})).delayed(Duration::from_secs(2)),
    );
    let http =
        HttpClient::with_timeouts(Duration::from_millis(200), Duration::from_secs(1)).unwrap();
    let stripe = StripeClient::new(&http, "sk_test_x")
        .unwrap()
        .with_base_url(&format!("{}{STRIPE_PREFIX}", server.url()))
        .unwrap();

    // WHEN a call times out
    let err = stripe.retrieve_checkout_session("cs_1").await.unwrap_err();

    // THEN it is retried with backoff
    assert_eq!(
        err.to_string(),
        "stripe retrieve_checkout_session: request timed out"
    );
    assert_eq!(engine_verdict(err), Verdict::Retry);
}

#[tokio::test]
async fn an_undecodable_success_is_retried() {
    let (server, clients) = setup().await;
    server.on(
        "POST",
        "/cal/v2/bookings",
        Reply::json(201, &json!({"status": "success"})),
    );
    let booking = hookflow_clients::CreateBooking {
        event_type_id: 1,
        start: chrono::DateTime::UNIX_EPOCH,
        attendee: hookflow_clients::Attendee {
            name: "A".into(),
            email: "a@example.com".into(),
            time_zone: "UTC".into(),
        },
        metadata: std::collections::BTreeMap::new(),
    };

    let err = clients.cal.create_booking(&booking).await.unwrap_err();

    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert!(format!("{:#}", anyhow::Error::from(err)).contains("missing field `data`"));
    let err = clients.cal.create_booking(&booking).await.unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Retry);
}

#[tokio::test]
async fn unavailable_with_retry_after_waits_and_without_it_backs_off() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "POST",
        "/postmark/email",
        [
            Reply::status(503).header("Retry-After", "120"),
            Reply::status(503),
            Reply::status(429).header("Retry-After", "not a number"),
        ],
    );
    let email = hookflow_clients::Email {
        from: "a@example.com".into(),
        to: "b@example.com".into(),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: Some("<p>t</p>".into()),
        tag: None,
    };

    let mut verdicts = Vec::new();
    for _ in 0..3 {
        verdicts.push(engine_verdict(
            clients.email.send_email(&email).await.unwrap_err(),
        ));
    }

    assert_eq!(
        verdicts,
        [
            Verdict::RetryAfter(Duration::from_secs(120)),
            Verdict::Retry,
            Verdict::Retry
        ]
    );
}

#[tokio::test]
async fn the_test_server_records_queries_and_answers_unscripted_calls_with_the_default() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();

    let first = http
        .get(format!("{}/x?a=1&b=two", server.url()))
        .send()
        .await
        .unwrap();
    server.set_default(Reply::text(418, "teapot").header("x-test", "yes"));
    let second = http
        .delete(format!("{}/y", server.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(first.status(), 404);
    assert_eq!(second.status(), 418);
    assert_eq!(second.headers()["x-test"], "yes");
    assert_eq!(second.text().await.unwrap(), "teapot");
    let sent = server.requests();
    assert_eq!(sent[0].query.as_deref(), Some("a=1&b=two"));
    assert_eq!(
        (sent[1].method.as_str(), sent[1].path.as_str()),
        ("DELETE", "/y")
    );
    assert_eq!(server.requests_to("get", "/x").len(), 1);
}
