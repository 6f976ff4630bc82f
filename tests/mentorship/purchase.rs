//! Purchases: the Stripe and PayPal samples become one `purchase/mentorship`
//! and one pack each, whatever is redelivered or replayed.

use hookflow::{Event, RunStatus};
use hookflow_webhooks::{Provider, WebhookRequest, stripe, test_secrets};
use serde_json::{Value, json};

use crate::support::{CHECKOUT, sample};
use crate::world::{CLERK_ID, PAYPAL, PAYPAL_ORDER, SLACK, STRIPE_ORDER, World};

/// The data of every `purchase/mentorship` that started a pack run.
async fn purchases(world: &World) -> Vec<Value> {
    world
        .env
        .runs_of("create-session-pack")
        .await
        .into_iter()
        .map(|run| run.event.data)
        .collect()
}

/// The Stripe sample's session, changed by `edit`, re-signed now as a new
/// Stripe event.
fn resigned_checkout(edit: impl FnOnce(&mut Value)) -> (WebhookRequest, i64) {
    let (request, at) = sample(CHECKOUT);
    let mut body: Value = serde_json::from_slice(&request.body).unwrap();
    body["id"] = json!("evt_1RhookflowCheckout0002");
    body["data"]["object"]["id"] = json!("cs_test_a1hookflowCheckoutSession0002");
    edit(&mut body);
    let body = serde_json::to_vec(&body).unwrap();
    let timestamp = (at / 1000).to_string();
    let v1 = stripe::signature(
        test_secrets::STRIPE_WEBHOOK_SECRET.as_bytes(),
        &timestamp,
        &body,
    );
    let request = WebhookRequest::new(body)
        .with_header("content-type", "application/json")
        .with_header("stripe-signature", format!("t={timestamp},v1={v1}"));
    (request, at)
}

async fn assert_one_active_pack(world: &World, order_id: &str, provider: &str) {
    let (pack, _) = world.pack_doc(order_id).await.expect("the pack exists");
    assert_eq!(pack["orderId"], order_id);
    assert_eq!(pack["clerkId"], CLERK_ID);
    assert_eq!(pack["packId"], "pack_3_sessions");
    assert_eq!(pack["provider"], provider);
    assert_eq!(pack["sessionsTotal"], 4);
    assert_eq!(pack["sessionsCompleted"], 0);
    assert_eq!(pack["status"], "active");
    assert!(
        pack["createdAt"]
            .as_str()
            .unwrap()
            .starts_with("2025-06-02T")
    );
    assert!(
        pack["expiresAt"]
            .as_str()
            .unwrap()
            .starts_with("2025-08-31T")
    );
}

#[tokio::test]
async fn a_stripe_pack_checkout_becomes_one_purchase_and_one_pack() {
    let world = World::new().await;
    world.deliver(CHECKOUT).await;

    let purchase = world.env.only_run("mentorship-purchase").await;
    assert_eq!(purchase.run.status, RunStatus::Completed, "{purchase:#?}");
    let steps: Vec<&str> = purchase.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(steps, ["validate-purchase", "emit-purchase"]);
    assert_eq!(
        purchases(&world).await,
        [
            json!({"clerkId": CLERK_ID, "orderId": STRIPE_ORDER, "packId": "pack_3_sessions", "provider": "stripe"})
        ]
    );
    let pack = world.env.only_run("create-session-pack").await;
    assert_eq!(pack.run.status, RunStatus::Completed, "{pack:#?}");
    assert_eq!(pack.run.output.as_ref().unwrap()["created"], true);
    assert_one_active_pack(&world, STRIPE_ORDER, "stripe").await;
    assert!(world.server.requests_to("POST", SLACK).is_empty());
}

#[tokio::test]
async fn a_paypal_capture_becomes_one_purchase_and_one_pack() {
    let world = World::new().await;
    world.deliver(PAYPAL).await;

    let purchase = world.env.only_run("mentorship-purchase").await;
    assert_eq!(purchase.run.status, RunStatus::Completed, "{purchase:#?}");
    assert_eq!(
        purchases(&world).await,
        [
            json!({"clerkId": CLERK_ID, "orderId": PAYPAL_ORDER, "packId": "pack_3_sessions", "provider": "paypal"})
        ]
    );
    let pack = world.env.only_run("create-session-pack").await;
    assert_eq!(pack.run.status, RunStatus::Completed, "{pack:#?}");
    assert_one_active_pack(&world, PAYPAL_ORDER, "paypal").await;
    assert!(
        world
            .env
            .runs_of("record-checkout-payment")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn duplicate_deliveries_and_purchases_make_one_pack() {
    let world = World::new().await;
    world.deliver(CHECKOUT).await;
    world.deliver(CHECKOUT).await;
    world.deliver(PAYPAL).await;
    world.deliver(PAYPAL).await;

    assert_eq!(world.env.runs_of("mentorship-purchase").await.len(), 2);
    assert_eq!(world.env.runs_of("create-session-pack").await.len(), 2);
    let (_, stripe_version) = world.pack_doc(STRIPE_ORDER).await.unwrap();
    let (_, paypal_version) = world.pack_doc(PAYPAL_ORDER).await.unwrap();

    // WHEN the purchase run is replayed, its event keeps its id: no second pack run.
    let purchase = &world.env.runs_of("mentorship-purchase").await[0];
    world
        .env
        .runtime
        .engine()
        .replay(&purchase.id)
        .await
        .unwrap();
    world.env.settle().await;
    assert_eq!(world.env.runs_of("create-session-pack").await.len(), 2);

    // WHEN the same order arrives under another event id, the pack is not rewritten.
    world
        .env
        .send(vec![
            Event::new(
                "purchase/mentorship",
                json!({"clerkId": CLERK_ID, "orderId": PAYPAL_ORDER, "packId": "pack_3_sessions", "provider": "paypal"}),
            )
            .with_id("another-delivery"),
        ])
        .await;
    world.env.settle().await;
    let runs = world.env.runs_of("create-session-pack").await;
    assert_eq!(runs.len(), 3);
    let again = runs
        .iter()
        .find(|run| run.event.id == "another-delivery")
        .expect("the third run");
    let view = world
        .env
        .runtime
        .engine()
        .run_view(&again.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(view.run.output.as_ref().unwrap()["created"], false);
    assert_eq!(
        world.pack_doc(STRIPE_ORDER).await.unwrap().1,
        stripe_version
    );
    assert_eq!(
        world.pack_doc(PAYPAL_ORDER).await.unwrap().1,
        paypal_version
    );
    assert_eq!(
        world.docs.list_docs("packs", None, 10).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_stripe_checkout_without_a_pack_is_not_a_mentorship_purchase() {
    let world = World::new().await;
    let (request, at) = resigned_checkout(|body| {
        body["data"]["object"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("packId");
    });
    world.deliver_request(Provider::Stripe, &request, at).await;

    assert_eq!(world.env.runs_of("record-checkout-payment").await.len(), 1);
    assert!(world.env.runs_of("mentorship-purchase").await.is_empty());
    assert!(world.env.runs_of("create-session-pack").await.is_empty());
    assert!(
        world
            .docs
            .list_docs("packs", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_paypal_capture_without_a_clerk_id_fails_at_once_and_alerts() {
    let world = World::new().await;
    let (request, _) = sample(PAYPAL);
    let mut data: Value = serde_json::from_slice(&request.body).unwrap();
    data["resource"]["custom_id"] = json!("{\"packId\":\"pack_3_sessions\"}");
    world
        .env
        .send(vec![Event::new("paypal/PAYMENT.CAPTURE.COMPLETED", data)])
        .await;
    world.env.settle().await;

    let purchase = world.env.only_run("mentorship-purchase").await;
    assert_eq!(purchase.run.status, RunStatus::Failed);
    assert_eq!(purchase.steps[0].attempts, 1, "not retried");
    let error = purchase.steps[0].error.as_deref().unwrap();
    assert!(error.contains("resource.custom_id.clerkId"), "{error}");
    assert!(world.env.runs_of("create-session-pack").await.is_empty());
    let alerts = world.server.requests_to("POST", SLACK);
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("mentorship-purchase")
    );
}
