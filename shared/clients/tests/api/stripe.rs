use std::time::Duration;

use hookflow::failure::{Verdict, classify};
use hookflow_clients::testing::{Reply, STRIPE_KEY};
use hookflow_clients::{ClientError, RefundReason};
use serde_json::json;

use crate::{engine_verdict, setup};

const REFUNDS: &str = "/stripe/v1/refunds";

fn refund_json() -> serde_json::Value {
    json!({
        "id": "re_123", "object": "refund", "amount": 1500, "currency": "usd",
        "status": "succeeded", "payment_intent": "pi_123", "reason": "requested_by_customer",
    })
}

#[tokio::test]
async fn create_refund_posts_a_form_with_the_idempotency_key() {
    // GIVEN Stripe accepts the refund
    let (server, clients) = setup().await;
    server.on("POST", REFUNDS, Reply::json(200, &refund_json()));

    // WHEN a partial refund is created with a step's idempotency key
    let refund = clients
        .stripe
        .create_refund(
            "pi_123",
            Some(1500),
            Some(RefundReason::RequestedByCustomer),
            "run-1/refund",
        )
        .await
        .unwrap();

    // THEN one form-encoded request carried the key, the credential and the fields
    let sent = server.requests_to("POST", REFUNDS);
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {STRIPE_KEY}").as_str())
    );
    assert_eq!(req.header("idempotency-key"), Some("run-1/refund"));
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = req.form();
    assert_eq!(form["payment_intent"], "pi_123");
    assert_eq!(form["amount"], "1500");
    assert_eq!(form["reason"], "requested_by_customer");
    assert_eq!(refund.id, "re_123");
    assert_eq!(refund.amount, 1500);
    assert_eq!(refund.status, "succeeded");
    assert_eq!(refund.payment_intent.as_deref(), Some("pi_123"));
}

#[tokio::test]
async fn a_full_refund_sends_neither_amount_nor_reason() {
    let (server, clients) = setup().await;
    server.on("POST", REFUNDS, Reply::json(200, &refund_json()));

    clients
        .stripe
        .create_refund("pi_123", None, None, "k1")
        .await
        .unwrap();

    let form = server.requests_to("POST", REFUNDS)[0].form();
    assert_eq!(form.keys().collect::<Vec<_>>(), ["payment_intent"]);
}

#[tokio::test]
async fn a_refund_without_an_idempotency_key_is_refused_before_sending() {
    let (server, clients) = setup().await;

    let err = clients
        .stripe
        .create_refund("pi_123", None, None, " ")
        .await
        .unwrap_err();

    assert!(
        matches!(err, ClientError::InvalidArgument { .. }),
        "{err:?}"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn retrieve_checkout_session_decodes_metadata_and_customer() {
    // GIVEN a completed session
    let (server, clients) = setup().await;
    let path = "/stripe/v1/checkout/sessions/cs_test_1";
    server.on(
        "GET",
        path,
        Reply::json(
            200,
            &json!({
                "id": "cs_test_1", "object": "checkout.session", "status": "complete",
                "payment_status": "paid", "payment_intent": "pi_9", "amount_total": 9900,
                "currency": "usd", "customer": null, "client_reference_id": "user_1",
                "customer_details": {"email": "ada@example.com", "name": "Ada"},
                "metadata": {"mentorId": "m_1", "slot": "2027-01-04T09:00:00Z"},
                "line_items": null,
            }),
        ),
    );

    // WHEN it is retrieved
    let session = clients
        .stripe
        .retrieve_checkout_session("cs_test_1")
        .await
        .unwrap();

    // THEN a GET with the key went out and the fields decoded
    let req = &server.requests_to("GET", path)[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {STRIPE_KEY}").as_str())
    );
    assert!(req.body.is_empty());
    assert_eq!(session.payment_status, "paid");
    assert_eq!(session.payment_intent.as_deref(), Some("pi_9"));
    assert_eq!(session.amount_total, Some(9900));
    assert_eq!(session.metadata["mentorId"], "m_1");
    assert_eq!(
        session.customer_details.unwrap().email.as_deref(),
        Some("ada@example.com")
    );
}

#[tokio::test]
async fn ids_are_percent_encoded_and_dot_segments_refused() {
    let (server, clients) = setup().await;

    let err = clients
        .stripe
        .retrieve_checkout_session("a/b")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404)); // unscripted: the default reply
    assert_eq!(
        server.requests()[0].path,
        "/stripe/v1/checkout/sessions/a%2Fb"
    );

    let err = clients
        .stripe
        .retrieve_checkout_session("..")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::InvalidArgument { .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_declined_card_is_final_with_a_secret_free_excerpt() {
    // GIVEN Stripe declines, echoing the key in its message
    let (server, clients) = setup().await;
    server.on(
        "POST",
        REFUNDS,
        Reply::json(
            402,
            &json!({"error": {
                "type": "card_error", "code": "card_declined",
                "message": format!("Your card was declined (key {STRIPE_KEY})."),
            }}),
        ),
    );

    // WHEN a refund is attempted
    let err = clients
        .stripe
        .create_refund("pi_1", None, None, "k")
        .await
        .unwrap_err();

    // THEN the step fails at once, and the message carries the code but no key
    let status = err.as_status().unwrap();
    assert_eq!(status.status(), 402);
    assert_eq!(
        status.excerpt(),
        "card_declined: Your card was declined (key [redacted])."
    );
    let err = anyhow::Error::from(err);
    assert_eq!(classify(&err), Verdict::Final);
    let journaled = format!("{err:#}"); // what the engine records
    assert_eq!(
        journaled,
        "stripe create_refund: HTTP 402 (card_declined: Your card was declined (key [redacted]).): not retried"
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_stripe_recovers() {
    // GIVEN Stripe fails twice, then succeeds
    let (server, clients) = setup().await;
    server.on_sequence(
        "POST",
        REFUNDS,
        [
            Reply::json(
                500,
                &json!({"error": {"type": "api_error", "message": "boom"}}),
            ),
            Reply::status(502),
            Reply::json(200, &refund_json()),
        ],
    );

    // WHEN the step runs three times with the same key
    let mut verdicts = Vec::new();
    let refund = loop {
        match clients
            .stripe
            .create_refund("pi_123", None, None, "same-key")
            .await
        {
            Ok(refund) => break refund,
            Err(err) => verdicts.push(engine_verdict(err)),
        }
        assert!(verdicts.len() < 5, "never recovered");
    };

    // THEN the failures were plain retries and every attempt reused the key
    assert_eq!(verdicts, [Verdict::Retry, Verdict::Retry]);
    assert_eq!(refund.id, "re_123");
    let keys: Vec<_> = server
        .requests_to("POST", REFUNDS)
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["same-key"; 3]);
}

#[tokio::test]
async fn rate_limits_and_stripe_should_retry_are_honoured() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "POST",
        REFUNDS,
        [
            Reply::json(429, &json!({"error": {"message": "Too many requests"}})).header("Retry-After", "30"),
            Reply::json(409, &json!({"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}})),
            Reply::json(409, &json!({"error": {"code": "lock_timeout", "message": "locked"}}))
                .header("Stripe-Should-Retry", "true"),
        ],
    );

    let mut verdicts = Vec::new();
    for _ in 0..3 {
        let err = clients
            .stripe
            .create_refund("pi_1", None, None, "k")
            .await
            .unwrap_err();
        verdicts.push(engine_verdict(err));
    }

    assert_eq!(
        verdicts,
        [
            Verdict::RetryAfter(Duration::from_secs(30)),
            Verdict::Final,
            Verdict::Retry
        ]
    );
}

const TRANSFERS: &str = "/stripe/v1/transfers";

#[tokio::test]
async fn a_transfer_retried_after_a_timeout_sends_the_same_key() {
    use hookflow_clients::NewTransfer;
    // GIVEN Stripe answers the first transfer too late, then at once
    let (server, clients) = setup().await;
    let transfer = json!({"id": "tr_1", "amount": 2500, "currency": "usd",
        "destination": "acct_1", "transfer_group": "payout_1"});
    server.on_sequence(
        "POST",
        TRANSFERS,
        [
            Reply::json(200, &transfer).delayed(Duration::from_secs(6)),
            Reply::json(200, &transfer),
        ],
    );
    let new = NewTransfer {
        amount: 2500,
        currency: "USD",
        destination: "acct_1",
        transfer_group: Some("payout_1"),
        description: None,
    };
    // WHEN the first call times out (5 s) and is retried
    let err = clients
        .stripe
        .create_transfer(&new, "payout-payout_1")
        .await
        .unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Retry);
    let made = clients
        .stripe
        .create_transfer(&new, "payout-payout_1")
        .await
        .unwrap();
    // THEN both requests carried the same key (Stripe pays once per key)
    assert_eq!(made.id, "tr_1");
    let sent = server.requests_to("POST", TRANSFERS);
    assert_eq!(sent.len(), 2);
    for req in &sent {
        assert_eq!(req.header("idempotency-key"), Some("payout-payout_1"));
        let form = req.form();
        assert_eq!(
            (
                form["amount"].as_str(),
                form["currency"].as_str(),
                form["destination"].as_str()
            ),
            ("2500", "usd", "acct_1")
        );
    }
    // AND a non-positive amount is refused before sending
    let zero = NewTransfer { amount: 0, ..new };
    let err = clients
        .stripe
        .create_transfer(&zero, "k")
        .await
        .unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Final);
    assert_eq!(server.requests_to("POST", TRANSFERS).len(), 2);
}

#[tokio::test]
async fn transfers_are_found_by_group() {
    let (server, clients) = setup().await;
    server.on(
        "GET",
        TRANSFERS,
        Reply::json(
            200,
            &json!({"object": "list", "data": [{"id": "tr_9", "amount": 100, "currency": "usd",
                "destination": "acct_1", "transfer_group": "north:po_1"}], "has_more": false}),
        ),
    );
    let found = clients
        .stripe
        .transfers_in_group("north:po_1")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "tr_9");
    let sent = &server.requests_to("GET", TRANSFERS)[0];
    assert_eq!(
        sent.query.as_deref(),
        Some("transfer_group=north%3Apo_1&limit=10")
    );
}
