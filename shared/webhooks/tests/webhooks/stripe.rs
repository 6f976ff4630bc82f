//! Stripe: `Stripe-Signature` over `{t}.{body}`, 300 s window.

use hookflow_webhooks::test_secrets as secrets;
use hookflow_webhooks::{Provider, stripe};

use crate::support::{self, provider_suite, timestamp_suite};

const CHECKOUT: &str = "webhook-stripe-checkout-session-completed.json";
const REFUND: &str = "webhook-stripe-charge-refunded.json";

provider_suite!(signed_body: CHECKOUT, "stripe-signature");
timestamp_suite!(CHECKOUT, stripe::TOLERANCE_SECS);

#[tokio::test]
async fn checkout_completed_becomes_a_stripe_event_keyed_by_its_id() {
    let events = support::assert_accepted(CHECKOUT).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.name, "stripe/checkout.session.completed");
    assert_eq!(event.id, "evt_1RhookflowCheckout0001");
    assert_eq!(event.tenant, None);
    let metadata = &event.data["data"]["object"]["metadata"];
    for field in ["mentorId", "slot", "customerEmail", "clerkId", "packId"] {
        assert!(metadata[field].is_string(), "metadata.{field}");
    }
}

#[tokio::test]
async fn charge_refunded_is_accepted() {
    let events = support::assert_accepted(REFUND).await;
    assert_eq!(events[0].name, "stripe/charge.refunded");
    assert_eq!(events[0].id, "evt_3RhookflowRefund0001");
}

#[tokio::test]
async fn any_matching_v1_is_enough_during_secret_rotation() {
    // GIVEN a header with a signature from an old secret first, the right one second
    let sample = support::load(REFUND);
    let header = sample
        .request
        .header("stripe-signature")
        .unwrap()
        .to_owned();
    let t = stripe::parse_signature_header(&header)
        .unwrap()
        .timestamp_text
        .to_owned();
    let old = stripe::signature(b"whsec_old", &t, &sample.request.body);
    let good = header.split_once(",v1=").unwrap().1.to_owned();
    let request = support::with_header(
        &sample.request,
        "Stripe-Signature",
        &format!("t={t},v1={old},v1={good}"),
    );
    // WHEN delivered THEN it is accepted
    let (response, sink) = support::deliver(
        &support::receiver(),
        Provider::Stripe,
        &request,
        sample.now_ms,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn signature_with_a_different_t_is_rejected() {
    // GIVEN the genuine v1 but a `t` moved by one second (to dodge the window)
    let sample = support::load(CHECKOUT);
    let header = sample
        .request
        .header("stripe-signature")
        .unwrap()
        .to_owned();
    let parsed = stripe::parse_signature_header(&header).unwrap();
    let forged = header.replacen(
        parsed.timestamp_text,
        &(parsed.timestamp + 1).to_string(),
        1,
    );
    let request = support::with_header(&sample.request, "stripe-signature", &forged);
    // WHEN delivered THEN 401
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Stripe,
        &request,
        sample.now_ms,
        401,
    )
    .await;
}

#[tokio::test]
async fn connect_account_becomes_the_tenant() {
    let sample = support::load(REFUND);
    let mut body: serde_json::Value = serde_json::from_slice(&sample.request.body).unwrap();
    body["account"] = "acct_1Hookflow".into();
    let request = support::resigned(
        Provider::Stripe,
        &sample.request,
        body.to_string().as_bytes(),
    );
    let (response, sink) = support::deliver(
        &support::receiver(),
        Provider::Stripe,
        &request,
        sample.now_ms,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(sink.events()[0].tenant.as_deref(), Some("acct_1Hookflow"));
}

#[tokio::test]
async fn missing_type_or_id_is_400() {
    support::assert_missing_field_is_400(CHECKOUT, "type").await;
    support::assert_missing_field_is_400(CHECKOUT, "id").await;
}

#[test]
fn secret_is_used_as_is_including_the_whsec_prefix() {
    let with_prefix = stripe::signature(secrets::STRIPE_WEBHOOK_SECRET.as_bytes(), "1", b"{}");
    let without = stripe::signature(
        secrets::STRIPE_WEBHOOK_SECRET
            .trim_start_matches("whsec_")
            .as_bytes(),
        "1",
        b"{}",
    );
    assert_ne!(with_prefix, without);
}
