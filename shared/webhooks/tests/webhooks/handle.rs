//! The entry point's contract: statuses, the sink's 5xx path, limits,
//! configuration errors and the API Gateway adapter.

use hookflow_webhooks::{
    FailingSink, MAX_BODY_BYTES, Provider, Receiver, RecordingSink, WebhookConfig, WebhookError,
    WebhookRequest,
};

use crate::support;

#[tokio::test]
async fn failing_sink_makes_the_provider_retry() {
    // GIVEN a genuine delivery and a sink that cannot store it
    for file in [
        "webhook-stripe-charge-refunded.json",
        "webhook-discord-application-command.json",
    ] {
        let sample = support::load(file);
        // WHEN handled
        let response = support::receiver()
            .handle(
                sample.provider,
                &sample.request,
                &FailingSink,
                sample.now_ms,
            )
            .await;
        // THEN 503 with a generic message (no internals)
        assert_eq!(response.status, 503, "{file}");
        assert!(
            !response.body_string().contains("sink unavailable"),
            "{}",
            response.body
        );
    }
}

#[tokio::test]
async fn ping_does_not_touch_a_failing_sink() {
    let sample = support::load("webhook-discord-ping.json");
    let response = support::receiver()
        .handle(
            Provider::Discord,
            &sample.request,
            &FailingSink,
            sample.now_ms,
        )
        .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn success_body_lists_the_event_ids() {
    let sample = support::load("webhook-printify-order-shipment-created.json");
    let (response, _) = support::deliver(
        &support::receiver(),
        sample.provider,
        &sample.request,
        sample.now_ms,
    )
    .await;
    assert_eq!(response.body["ok"], true);
    assert_eq!(
        response.body["events"][0],
        "653b6be8-2ff7-4ab5-a7a6-6889a8b3bbf5"
    );
}

#[tokio::test]
async fn oversized_body_is_413_before_verification() {
    // GIVEN a body one byte over the limit with no valid signature
    for provider in Provider::ALL {
        let request = WebhookRequest::new(vec![b' '; MAX_BODY_BYTES + 1]);
        // WHEN handled THEN 413 and nothing reaches the sink
        support::assert_rejected_with(&support::receiver(), provider, &request, 0, 413).await;
    }
}

#[tokio::test]
async fn signed_body_whose_event_exceeds_the_limit_is_413() {
    // GIVEN a correctly signed body just under the body limit
    let sample = support::load("webhook-printify-order-shipment-created.json");
    let padding = "x".repeat(MAX_BODY_BYTES - 80);
    let body = format!(r#"{{"id":"e1","type":"order:created","pad":"{padding}"}}"#);
    let signed = support::resigned(Provider::Printify, &sample.request, body.as_bytes());
    // WHEN the event (body plus envelope) is over 1 MiB THEN 413, not a retried 5xx
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Printify,
        &signed,
        sample.now_ms,
        413,
    )
    .await;
}

#[tokio::test]
async fn overlong_event_name_is_400() {
    let sample = support::load("webhook-printify-order-shipment-created.json");
    let body = format!(r#"{{"id":"e1","type":"{}"}}"#, "t".repeat(300));
    let signed = support::resigned(Provider::Printify, &sample.request, body.as_bytes());
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Printify,
        &signed,
        sample.now_ms,
        400,
    )
    .await;
}

#[tokio::test]
async fn unconfigured_provider_is_500_and_the_error_names_the_variable() {
    // GIVEN a receiver with nothing configured
    let receiver = Receiver::with_paypal_certs(
        WebhookConfig::default(),
        hookflow_webhooks::test_secrets::paypal_certs(),
    );
    for provider in Provider::ALL {
        let sample = support::load(match provider {
            Provider::Stripe => "webhook-stripe-charge-refunded.json",
            Provider::Clerk => "webhook-clerk-user-created.json",
            Provider::Paypal => "webhook-paypal-payment-capture-completed.json",
            Provider::Cal => "webhook-cal-booking-created.json",
            Provider::Shopify => "webhook-shopify-orders-create.json",
            Provider::Postmark => "webhook-postmark-delivery.json",
            Provider::Printify => "webhook-printify-order-shipment-created.json",
            Provider::Discord => "webhook-discord-application-command.json",
        });
        // WHEN a delivery arrives THEN 500, nothing stored, and the error names the env var
        support::assert_rejected_with(&receiver, provider, &sample.request, sample.now_ms, 500)
            .await;
        let err = receiver
            .receive(provider, &sample.request, sample.now_ms)
            .await
            .unwrap_err();
        let var = WebhookConfig::env_vars(provider)[0];
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn config_from_env_reports_bad_values_by_name() {
    let err =
        WebhookConfig::from_lookup(|name| (name == "DISCORD_PUBLIC_KEY").then(|| "zz".to_owned()))
            .unwrap_err();
    assert!(err.to_string().contains("DISCORD_PUBLIC_KEY"), "{err}");
    let err = WebhookConfig::from_lookup(|name| {
        (name == "POSTMARK_WEBHOOK_USERNAME").then(|| "u".to_owned())
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("POSTMARK_WEBHOOK_PASSWORD"),
        "{err}"
    );
}

#[test]
fn empty_variables_count_as_unset() {
    let config = WebhookConfig::from_lookup(|_| Some("  ".to_owned())).unwrap();
    for provider in Provider::ALL {
        assert!(!config.is_configured(provider));
        assert!(matches!(
            config.require(provider),
            Err(WebhookError::NotConfigured { .. })
        ));
    }
}

#[tokio::test]
async fn receivers_accept_any_sink_reference() {
    let sample = support::load("webhook-cal-booking-created.json");
    let sink = std::sync::Arc::new(RecordingSink::new());
    let response = support::receiver()
        .handle(Provider::Cal, &sample.request, &sink, sample.now_ms)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn api_gateway_events_are_handled_end_to_end() {
    // GIVEN the raw sample file, as Lambda would receive it
    let path = support::events_dir().join("webhook-shopify-orders-create.json");
    let raw = std::fs::read(path).unwrap();
    let now_ms = hookflow_webhooks::ApiGatewayV2Request::from_json(&raw)
        .unwrap()
        .time_epoch_ms()
        .unwrap();
    let sink = RecordingSink::new();
    // WHEN handled THEN 200 and the result serializes as an API Gateway response
    let response = support::receiver()
        .handle_api_gateway_v2(Provider::Shopify, &raw, &sink, now_ms)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.to_api_gateway_v2()["statusCode"], 200);
    assert_eq!(sink.events().len(), 1);
    // AND a broken envelope is a 400 with nothing stored
    let broken = support::receiver()
        .handle_api_gateway_v2(Provider::Shopify, b"{", &sink, now_ms)
        .await;
    assert_eq!(broken.status, 400);
    assert_eq!(sink.events().len(), 1);
}

#[test]
fn handle_futures_are_send_so_lambda_and_axum_can_spawn_them() {
    fn assert_send<T: Send>(_: &T) {}
    let receiver = Receiver::new(WebhookConfig::default()).unwrap();
    let request = WebhookRequest::new("{}");
    let sink = RecordingSink::new();
    let future = receiver.handle(Provider::Paypal, &request, &sink, 0);
    assert_send(&future);
    let api_gateway = receiver.handle_api_gateway_v2(Provider::Paypal, b"{}", &sink, 0);
    assert_send(&api_gateway);
}
