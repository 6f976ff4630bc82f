//! Postmark: HTTP Basic credentials, derived dedupe ids.

use hookflow_webhooks::test_secrets as secrets;
use hookflow_webhooks::{Provider, postmark};

use crate::support::{self, provider_suite};

const BOUNCE: &str = "webhook-postmark-bounce.json";
const DELIVERY: &str = "webhook-postmark-delivery.json";

provider_suite!(BOUNCE, "authorization");

#[tokio::test]
async fn bounce_and_delivery_become_postmark_events() {
    let bounce = support::assert_accepted(BOUNCE).await.remove(0);
    let delivery = support::assert_accepted(DELIVERY).await.remove(0);
    assert_eq!(bounce.name, "postmark/Bounce");
    assert_eq!(delivery.name, "postmark/Delivery");
    assert_ne!(bounce.id, delivery.id);
}

#[tokio::test]
async fn wrong_user_or_other_scheme_is_rejected() {
    let sample = support::load(DELIVERY);
    for value in [
        postmark::basic_auth("someone-else", secrets::POSTMARK_WEBHOOK_PASSWORD),
        postmark::basic_auth(secrets::POSTMARK_WEBHOOK_USERNAME, ""),
        format!("Bearer {}", secrets::POSTMARK_WEBHOOK_PASSWORD),
        "Basic".to_owned(),
    ] {
        let request = support::with_header(&sample.request, "Authorization", &value);
        support::assert_rejected_with(
            &support::receiver(),
            Provider::Postmark,
            &request,
            sample.now_ms,
            401,
        )
        .await;
    }
}

#[tokio::test]
async fn missing_message_id_is_400() {
    support::assert_missing_field_is_400(DELIVERY, "MessageID").await;
}
