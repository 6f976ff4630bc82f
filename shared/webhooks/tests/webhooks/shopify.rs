//! Shopify: `X-Shopify-Hmac-Sha256`, metadata from headers.

use hookflow_webhooks::Provider;
use hookflow_webhooks::shopify::ShopifyHeaders;

use crate::support::{self, provider_suite};

const ORDER_CREATED: &str = "webhook-shopify-orders-create.json";

provider_suite!(signed_body: ORDER_CREATED, "x-shopify-hmac-sha256");

#[tokio::test]
async fn order_created_becomes_a_shopify_event_for_the_shop() {
    let events = support::assert_accepted(ORDER_CREATED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "shopify/orders/create");
    assert_eq!(events[0].id, "98880550-7158-44d4-b7cd-2c97c8a091b5");
    assert_eq!(
        events[0].tenant.as_deref(),
        Some("hookflow-test.myshopify.com")
    );
}

#[test]
fn webhook_id_and_api_version_are_available_from_the_headers() {
    let sample = support::load(ORDER_CREATED);
    let headers = ShopifyHeaders::from_request(&sample.request).unwrap();
    assert_eq!(
        headers.webhook_id,
        Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    );
    assert_eq!(headers.api_version, Some("2025-04"));
    assert_eq!(headers.topic, "orders/create");
}

#[tokio::test]
async fn missing_topic_or_shop_is_400_after_verification() {
    let sample = support::load(ORDER_CREATED);
    for header in ["x-shopify-topic", "x-shopify-shop-domain"] {
        let request = support::without_header(&sample.request, header);
        support::assert_rejected_with(
            &support::receiver(),
            Provider::Shopify,
            &request,
            sample.now_ms,
            400,
        )
        .await;
    }
}

#[tokio::test]
async fn topic_header_cannot_be_forged_past_a_bad_signature() {
    // GIVEN a wrong signature WHEN the topic header is also missing THEN 401 (verify first)
    let sample = support::load(ORDER_CREATED);
    let request = support::without_header(&support::tampered(&sample.request), "x-shopify-topic");
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Shopify,
        &request,
        sample.now_ms,
        401,
    )
    .await;
}
