//! The mentorship marketplace's purchase path end to end on the embedded
//! backend with a fake clock: the signed Stripe and PayPal samples in
//! `events/` go through the real webhook receiver, `mentorship-purchase`
//! normalizes them into `purchase/mentorship`, and `create-session-pack`
//! writes `packs/<orderId>` once.

#[allow(dead_code)] // shared with tests/booking.rs; only part of it is used here
#[path = "booking/support.rs"]
mod support;

use std::sync::Arc;

use hookflow::{DocStore, Event, FakeClock, RunStatus};
use hookflow_clients::testing::TestServer;
use hookflow_embedded::SqliteStore;
use hookflow_embedded::testing::TestEnv;
use hookflow_webhooks::{Provider, WebhookRequest, stripe, test_secrets};
use serde_json::{Value, json};
use support::{CHECKOUT, SLACK, sample, script_success, services};

const PAYPAL: &str = include_str!("../events/webhook-paypal-payment-capture-completed.json");
const STRIPE_ORDER: &str = "cs_test_a1hookflowCheckoutSession0001";
const PAYPAL_ORDER: &str = "5O190127TN364715T";
const CLERK_ID: &str = "user_2hookflowClerkId0001";

struct World {
    env: TestEnv,
    server: TestServer,
    docs: DocStore,
}

impl World {
    /// GIVEN every function of the registry, wired to one test server.
    async fn new() -> Self {
        let server = TestServer::start().await;
        script_success(&server);
        let store = SqliteStore::in_memory().unwrap();
        let clock = FakeClock::new(sample(CHECKOUT).1);
        let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
        let functions = hookflow_registry::functions_with(&services(&server, docs.clone()));
        let env = TestEnv::with_store(store, functions, clock);
        Self { env, server, docs }
    }

    /// Delivers a webhook request through the receiver at `at`, then handles
    /// everything due.
    async fn deliver_request(&self, provider: Provider, request: &WebhookRequest, at: i64) {
        if at > hookflow::Clock::now_ms(&self.env.clock) {
            self.env.clock.set(at);
        }
        let receiver = test_secrets::receiver().unwrap();
        let response = receiver
            .handle(provider, request, self.env.runtime.engine(), at)
            .await;
        assert_eq!(response.status, 200, "{}", response.body_string());
        self.env.settle().await;
    }

    /// Delivers a signed sample at its signing time.
    async fn deliver(&self, json: &str) {
        let (request, at) = sample(json);
        self.deliver_request(support::provider(json), &request, at)
            .await;
    }

    async fn pack(&self, order_id: &str) -> Option<(Value, u64)> {
        self.docs
            .get_doc("packs", order_id)
            .await
            .unwrap()
            .map(|doc| (doc.value, doc.version))
    }

    /// The data of every `purchase/mentorship` that started a pack run.
    async fn purchases(&self) -> Vec<Value> {
        self.env
            .runs_of("create-session-pack")
            .await
            .into_iter()
            .map(|run| run.event.data)
            .collect()
    }
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
    let (pack, _) = world.pack(order_id).await.expect("the pack exists");
    assert_eq!(pack["order_id"], order_id);
    assert_eq!(pack["clerk_id"], CLERK_ID);
    assert_eq!(pack["pack_id"], "pack_3_sessions");
    assert_eq!(pack["provider"], provider);
    assert_eq!(pack["sessions_total"], 4);
    assert_eq!(pack["sessions_completed"], 0);
    assert_eq!(pack["status"], "active");
    assert!(
        pack["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2025-06-02T")
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
        world.purchases().await,
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
        world.purchases().await,
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
    let (_, stripe_version) = world.pack(STRIPE_ORDER).await.unwrap();
    let (_, paypal_version) = world.pack(PAYPAL_ORDER).await.unwrap();

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
    assert_eq!(world.pack(STRIPE_ORDER).await.unwrap().1, stripe_version);
    assert_eq!(world.pack(PAYPAL_ORDER).await.unwrap().1, paypal_version);
    assert_eq!(world.docs.list_docs("packs", 10).await.unwrap().len(), 2);
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
    assert!(world.docs.list_docs("packs", 10).await.unwrap().is_empty());
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
