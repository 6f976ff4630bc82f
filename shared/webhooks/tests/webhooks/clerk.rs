//! Clerk via Svix / Standard Webhooks.

use hookflow_webhooks::{
    ClerkConfig, Provider, Receiver, RecordingSink, WebhookConfig, WebhookRequest, clerk,
};

use crate::support::{self, provider_suite, timestamp_suite};

const USER_CREATED: &str = "webhook-clerk-user-created.json";

provider_suite!(signed_body: USER_CREATED, "svix-signature");
timestamp_suite!(USER_CREATED, clerk::TOLERANCE_SECS);

#[tokio::test]
async fn user_created_becomes_a_clerk_event_keyed_by_the_message_id() {
    let events = support::assert_accepted(USER_CREATED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "clerk/user.created");
    assert_eq!(events[0].id, "msg_2hookflowClerkUserCreated01");
    assert_eq!(events[0].data["data"]["id"], "user_2hookflowClerkId0001");
}

#[tokio::test]
async fn missing_id_or_timestamp_header_is_rejected() {
    support::assert_missing_header_rejected(USER_CREATED, "svix-id").await;
    support::assert_missing_header_rejected(USER_CREATED, "svix-timestamp").await;
}

#[tokio::test]
async fn standard_webhooks_reference_vector_is_accepted() {
    // GIVEN the Standard Webhooks reference secret, message and signature
    let config = WebhookConfig {
        clerk: Some(ClerkConfig::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()),
        ..WebhookConfig::default()
    };
    let receiver =
        Receiver::with_paypal_certs(config, hookflow_webhooks::test_secrets::paypal_certs());
    let request = WebhookRequest::new(r#"{"test": 2432232314}"#)
        .with_header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
        .with_header("webhook-timestamp", "1614265330")
        .with_header(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        );
    // WHEN verified at the signing time THEN the signature is accepted
    let msg_id = clerk::verify(
        receiver.config().clerk.as_ref().unwrap(),
        &request,
        1_614_265_330_000,
    )
    .unwrap();
    assert_eq!(msg_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    // AND the body (which has no `type`) is then a 400, not a 401
    let sink = RecordingSink::new();
    let response = receiver
        .handle(Provider::Clerk, &request, &sink, 1_614_265_330_000)
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    // AND a signature list with another version first still verifies
    let listed = support::with_header(
        &request,
        "webhook-signature",
        "v1a,AAAA v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    assert!(
        clerk::verify(
            receiver.config().clerk.as_ref().unwrap(),
            &listed,
            1_614_265_330_000
        )
        .is_ok()
    );
}

#[tokio::test]
async fn only_non_v1_signatures_are_rejected() {
    let sample = support::load(USER_CREATED);
    let value = sample
        .request
        .header("svix-signature")
        .unwrap()
        .replacen("v1,", "v2,", 1);
    let request = support::with_header(&sample.request, "svix-signature", &value);
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Clerk,
        &request,
        sample.now_ms,
        401,
    )
    .await;
}

#[tokio::test]
async fn missing_type_is_400() {
    support::assert_missing_field_is_400(USER_CREATED, "type").await;
}

#[test]
fn secret_that_is_not_base64_is_a_config_error_naming_the_variable() {
    let err = ClerkConfig::new("whsec_***").unwrap_err();
    assert!(err.to_string().contains("CLERK_WEBHOOK_SECRET"), "{err}");
}
