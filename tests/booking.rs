//! The booking marketplace end to end on the embedded backend with a fake
//! clock: the signed samples in `events/` go through the real webhook
//! receiver into the engine, and every external API is one recording
//! `TestServer`, so each test asserts the requests actually sent.

#[path = "booking/support.rs"]
#[allow(dead_code)] // the mentorship fixtures are used by `mentorship.rs`
mod support;

use std::sync::Arc;
use std::time::Duration;

use hookflow::run::StepStatus;
use hookflow::{FakeClock, RunStatus};
use hookflow_clients::testing::{Reply, TestServer};
use hookflow_docs::DocStore;
use hookflow_embedded::SqliteStore;
use hookflow_embedded::testing::TestEnv;
use hookflow_webhooks::test_secrets;
use serde_json::json;
use support::*;

struct World {
    env: TestEnv,
    server: TestServer,
    docs: DocStore,
}

impl World {
    /// GIVEN the booking marketplace's functions, wired to one test server.
    async fn new() -> Self {
        let server = TestServer::start().await;
        script_success(&server);
        let store = SqliteStore::in_memory().unwrap();
        let clock = FakeClock::new(sample(CHECKOUT).1);
        let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
        let functions = booking_functions(&services(&server, docs.clone()));
        let env = TestEnv::with_store(store, functions, clock);
        Self { env, server, docs }
    }

    /// Delivers a signed sample through the webhook receiver at its signing
    /// time, then handles everything due.
    async fn deliver(&self, json: &str) {
        let (request, at) = sample(json);
        if at > hookflow::Clock::now_ms(&self.env.clock) {
            self.env.clock.set(at);
        }
        let receiver = test_secrets::receiver().unwrap();
        let response = receiver
            .handle(
                provider(json),
                &request,
                &self.env.runtime.engine().ingest,
                at,
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.body_string());
        self.env.settle().await;
    }

    fn sent(&self, path: &str) -> Vec<hookflow_clients::testing::Recorded> {
        self.server.requests_to("POST", path)
    }
}

#[tokio::test]
async fn a_paid_checkout_is_recorded_once_booked_and_tracked() {
    let world = World::new().await;
    world.deliver(CHECKOUT).await;

    let record = world.env.only_run("record-checkout-payment").await;
    assert_eq!(record.run.status, RunStatus::Completed, "{record:#?}");
    let effects = world.env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Completed, "{effects:#?}");
    let steps: Vec<&str> = effects.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        steps,
        [
            "load-payment",
            "track-payment",
            "create-booking",
            "mark-booked"
        ]
    );

    assert_eq!(payment_status(&world.docs).await.as_deref(), Some("booked"));
    let stored = world
        .docs
        .get_doc("payments", SESSION_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value["booking_uid"], "bk_hookflow_1");

    let bookings = world.sent(&bookings_path());
    assert_eq!(bookings.len(), 1);
    assert_eq!(
        bookings[0].header("authorization"),
        Some("Bearer cal_test_hookflow")
    );
    assert_booking_request(&bookings[0].json());
    let captures = world.sent(&capture_path());
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0].json()["event"], "payment_recorded");
    assert_eq!(
        captures[0].json()["distinct_id"],
        "user_2hookflowClerkId0001"
    );
    assert_eq!(captures[0].json()["properties"]["amount"], 15000);
    assert!(world.sent(&refunds_path()).is_empty());
    assert!(world.sent(&email_path()).is_empty());
    assert!(world.sent(SLACK).is_empty());
}

#[tokio::test]
async fn failing_analytics_does_not_stop_the_booking() {
    let world = World::new().await;
    world.server.on("POST", &capture_path(), Reply::status(500));
    world.deliver(CHECKOUT).await;
    world.env.advance(Duration::from_secs(15 * 60)).await;

    let effects = world.env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Completed, "{effects:#?}");
    let track = effects
        .steps
        .iter()
        .find(|s| s.id == "track-payment")
        .unwrap();
    assert_eq!(track.status, StepStatus::Failed);
    assert_eq!(track.attempts, 5);
    assert_eq!(world.sent(&capture_path()).len(), 5);
    assert_eq!(world.sent(&bookings_path()).len(), 1);
    assert_eq!(payment_status(&world.docs).await.as_deref(), Some("booked"));
}

#[tokio::test]
async fn a_booking_that_keeps_failing_is_refunded_once_and_the_customer_emailed() {
    let world = World::new().await;
    world
        .server
        .on("POST", &bookings_path(), Reply::status(503));
    world.deliver(CHECKOUT).await;
    assert_eq!(
        payment_status(&world.docs).await.as_deref(),
        Some("recorded")
    );
    world.env.advance(Duration::from_secs(15 * 60)).await;

    let effects = world.env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Completed, "{effects:#?}");
    assert_eq!(
        world.sent(&bookings_path()).len(),
        5,
        "the first attempt and 4 retries"
    );
    let refunds = world.sent(&refunds_path());
    assert_eq!(refunds.len(), 1);
    let refund_step = effects
        .steps
        .iter()
        .find(|s| s.id == "refund-payment")
        .unwrap();
    assert_eq!(refund_step.status, StepStatus::Completed);
    let key = refunds[0].header("idempotency-key").unwrap().to_owned();
    assert!(key.starts_with("hf-"), "{key}");
    assert_eq!(
        refunds[0].header("authorization"),
        Some("Bearer sk_test_hookflow")
    );
    let form = refunds[0].form();
    assert_eq!(form["payment_intent"], "pi_3RhookflowPayment0001");
    assert_eq!(form["reason"], "requested_by_customer");
    assert!(!form.contains_key("amount"), "a full refund");

    assert_eq!(
        payment_status(&world.docs).await.as_deref(),
        Some("refunded")
    );
    let stored = world
        .docs
        .get_doc("payments", SESSION_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value["refund_id"], "re_hookflow_1");
    let emails = world.sent(&email_path());
    assert_eq!(emails.len(), 1);
    let email = emails[0].json();
    assert_eq!(email["To"], "ada@example.com");
    assert_eq!(email["From"], EMAIL_FROM);
    assert_eq!(email["Tag"], "booking-failed");
    assert!(email["TextBody"].as_str().unwrap().contains("refunded"));
    assert!(world.sent(SLACK).is_empty());

    // WHEN the run is replayed THEN nothing is booked or refunded again.
    let replay = world
        .env
        .runtime
        .engine()
        .replay(&effects.run.id)
        .await
        .unwrap();
    world.env.advance(Duration::from_secs(15 * 60)).await;
    let view = world
        .env
        .runtime
        .engine()
        .run_view(&replay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(world.sent(&refunds_path()).len(), 1);
    assert_eq!(world.sent(&bookings_path()).len(), 5);
}

#[tokio::test]
async fn a_refund_retry_reuses_the_idempotency_key() {
    let world = World::new().await;
    world
        .server
        .on("POST", &bookings_path(), Reply::status(409));
    world.server.on_sequence(
        "POST",
        &refunds_path(),
        [
            Reply::status(500),
            Reply::json(
                200,
                &json!({"id": "re_2", "amount": 15000, "currency": "usd", "status": "succeeded"}),
            ),
        ],
    );
    world.deliver(CHECKOUT).await;
    world.env.advance(Duration::from_secs(15 * 60)).await;
    let refunds = world.sent(&refunds_path());
    assert_eq!(refunds.len(), 2, "one failed attempt, one retry");
    assert_eq!(
        refunds[0].header("idempotency-key"),
        refunds[1].header("idempotency-key")
    );
    assert_eq!(
        world.sent(&bookings_path()).len(),
        1,
        "a 409 is not retried"
    );
    assert_eq!(
        payment_status(&world.docs).await.as_deref(),
        Some("refunded")
    );
}

#[tokio::test]
async fn a_failed_refund_alerts_an_admin() {
    let world = World::new().await;
    world
        .server
        .on("POST", &bookings_path(), Reply::status(409));
    world.server.on(
        "POST",
        &refunds_path(),
        Reply::json(
            400,
            &json!({"error": {"code": "charge_already_refunded", "message": "already refunded"}}),
        ),
    );
    world.deliver(CHECKOUT).await;
    world.env.advance(Duration::from_secs(15 * 60)).await;

    let effects = world.env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Completed, "{effects:#?}");
    assert_eq!(world.sent(&refunds_path()).len(), 1, "a 400 is final");
    let alerts = world.sent(SLACK);
    assert_eq!(alerts.len(), 1);
    let text = alerts[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains(SESSION_ID) && text.contains(&effects.run.id),
        "{text}"
    );
    assert!(text.contains("charge_already_refunded"), "{text}");
    assert_eq!(
        payment_status(&world.docs).await.as_deref(),
        Some("refund_failed")
    );
    let emails = world.sent(&email_path());
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0].json()["TextBody"]
            .as_str()
            .unwrap()
            .contains("our team")
    );
}

#[tokio::test]
async fn duplicate_deliveries_record_book_and_refund_at_most_once() {
    let world = World::new().await;
    world
        .server
        .on("POST", &bookings_path(), Reply::status(409));
    world.deliver(CHECKOUT).await;
    world.deliver(CHECKOUT).await;
    world.env.advance(Duration::from_secs(15 * 60)).await;
    world.deliver(CHECKOUT).await;

    assert_eq!(world.env.runs_of("record-checkout-payment").await.len(), 1);
    assert_eq!(world.env.runs_of("checkout-side-effects").await.len(), 1);
    let stored = world
        .docs
        .get_doc("payments", SESSION_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value["status"], "refunded");
    assert_eq!(world.sent(&bookings_path()).len(), 1);
    assert_eq!(world.sent(&refunds_path()).len(), 1);

    // A replay of the recording run writes nothing and starts no second booking.
    let record = world.env.only_run("record-checkout-payment").await;
    let replay = world
        .env
        .runtime
        .engine()
        .replay(&record.run.id)
        .await
        .unwrap();
    world.env.settle().await;
    let view = world
        .env
        .runtime
        .engine()
        .run_view(&replay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(view.run.output.as_ref().unwrap()["created"], false);
    assert_eq!(world.env.runs_of("checkout-side-effects").await.len(), 1);
    let again = world
        .docs
        .get_doc("payments", SESSION_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.version, stored.version,
        "the payment is not rewritten"
    );
}

#[tokio::test]
async fn invalid_metadata_fails_at_once_and_alerts_an_admin() {
    let world = World::new().await;
    // The signature covers the body, so build the event directly.
    let (request, _) = sample(CHECKOUT);
    let mut data: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    data["data"]["object"]["metadata"]["slot"] = json!("next tuesday");
    world
        .env
        .send(vec![hookflow::Event::new(
            "stripe/checkout.session.completed",
            data,
        )])
        .await;
    let record = world.env.only_run("record-checkout-payment").await;
    assert_eq!(record.run.status, RunStatus::Failed);
    assert_eq!(record.steps[0].attempts, 1, "not retried");
    assert!(
        record.steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("metadata.slot")
    );
    assert_eq!(payment_status(&world.docs).await, None);
    let alerts = world.sent(SLACK);
    assert_eq!(alerts.len(), 1);
    let text = alerts[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("record-checkout-payment") && text.contains(&record.run.id),
        "{text}"
    );
}

#[tokio::test]
async fn cal_and_clerk_webhooks_become_analytics_events() {
    let world = World::new().await;
    for json in [
        USER_CREATED,
        BOOKING_CREATED,
        BOOKING_CANCELLED,
        MEETING_STARTED,
        MEETING_ENDED,
    ] {
        world.deliver(json).await;
    }
    let runs = world.env.runs_of("booking-analytics").await;
    assert_eq!(runs.len(), 5);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Completed),
        "{runs:#?}"
    );
    let captures: Vec<(String, String)> = world
        .sent(&capture_path())
        .iter()
        .map(|r| {
            let body = r.json();
            assert_eq!(body["api_key"], "phc_test_hookflow");
            (
                body["event"].as_str().unwrap().to_owned(),
                body["distinct_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("user_signed_up", "user_2hookflowClerkId0001"),
        ("booking_created", "ada@example.com"),
        ("booking_cancelled", "ada@example.com"),
        ("meeting_started", "ada@example.com"),
        ("meeting_ended", "ada@example.com"),
    ];
    assert_eq!(
        captures,
        expect.map(|(e, d)| (e.to_owned(), d.to_owned())).to_vec()
    );
    let cancelled = &world.sent(&capture_path())[2].json()["properties"];
    assert_eq!(cancelled["booking_uid"], "bk8hookflowUid0001");
    assert_eq!(cancelled["cancellation_reason"], "Schedule conflict");
}

#[tokio::test]
async fn missing_booking_configuration_fails_the_run_without_refunding() {
    // GIVEN no Cal.com event type configured
    let server = TestServer::start().await;
    script_success(&server);
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(sample(CHECKOUT).1);
    let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
    let services = hookflow_clients::Services::new(
        docs.clone(),
        server.clients(),
        hookflow_clients::Settings::default(),
    );
    let env = TestEnv::with_store(store, booking_functions(&services), clock);
    let (request, at) = sample(CHECKOUT);
    let response = test_secrets::receiver()
        .unwrap()
        .handle(
            provider(CHECKOUT),
            &request,
            &env.runtime.engine().ingest,
            at,
        )
        .await;
    assert_eq!(response.status, 200);
    env.settle().await;
    // THEN the run fails naming the variable, nothing is booked or refunded,
    // the payment stays recorded and an admin is alerted.
    let effects = env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Failed);
    assert!(effects.steps.is_empty(), "{effects:#?}");
    assert!(format!("{effects:?}").contains("BOOKING_CAL_EVENT_TYPE_ID"));
    assert!(server.requests_to("POST", &bookings_path()).is_empty());
    assert!(server.requests_to("POST", &refunds_path()).is_empty());
    assert_eq!(payment_status(&docs).await.as_deref(), Some("recorded"));
    assert_eq!(server.requests_to("POST", SLACK).len(), 1);
}
