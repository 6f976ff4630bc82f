//! Printify: `X-Pfy-Signature: sha256=<hex>`.

use hookflow_webhooks::Provider;

use crate::support::{self, provider_suite};

const SHIPMENT: &str = "webhook-printify-order-shipment-created.json";

provider_suite!(signed_body: SHIPMENT, "x-pfy-signature");

#[tokio::test]
async fn shipment_created_becomes_a_printify_event_keyed_by_its_id() {
    let events = support::assert_accepted(SHIPMENT).await;
    assert_eq!(events[0].name, "printify/order:shipment:created");
    assert_eq!(events[0].id, "653b6be8-2ff7-4ab5-a7a6-6889a8b3bbf5");
}

#[tokio::test]
async fn signature_without_the_prefix_is_accepted() {
    let sample = support::load(SHIPMENT);
    let value = sample
        .request
        .header("x-pfy-signature")
        .unwrap()
        .trim_start_matches("sha256=")
        .to_owned();
    let request = support::with_header(&sample.request, "X-Pfy-Signature", &value);
    let (response, sink) = support::deliver(
        &support::receiver(),
        Provider::Printify,
        &request,
        sample.now_ms,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn missing_type_or_id_is_400() {
    support::assert_missing_field_is_400(SHIPMENT, "type").await;
    support::assert_missing_field_is_400(SHIPMENT, "id").await;
}
