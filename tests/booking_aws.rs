//! The booking marketplace once on the AWS backend (DynamoDB, SQS, Scheduler
//! on a local moto server): the signed checkout sample through the webhook
//! receiver, the happy path and the refund path, every external API on one
//! recording `TestServer`.

#[path = "booking/support.rs"]
#[allow(dead_code)] // the Cal.com and Clerk samples are used by `booking.rs`
mod support;

use std::time::Duration;

use hookflow::RunStatus;
use hookflow_aws::testing::AwsTestEnv;
use hookflow_clients::testing::{Reply, TestServer};
use hookflow_webhooks::test_secrets;
use support::*;

/// GIVEN the registry on moto WHEN the checkout sample is delivered twice.
async fn world(server: &TestServer) -> AwsTestEnv {
    let env = AwsTestEnv::with_docs(|docs| booking_functions(&services(server, docs))).await;
    let (request, at) = sample(CHECKOUT);
    env.clock.set(at);
    let receiver = test_secrets::receiver().unwrap();
    for _ in 0..2 {
        let response = receiver
            .handle(provider(CHECKOUT), &request, &env.engine.ingest, at)
            .await;
        assert_eq!(response.status, 200, "{}", response.body_string());
    }
    env.settle().await;
    env
}

#[tokio::test]
async fn a_paid_checkout_is_booked_on_aws() {
    let server = TestServer::start().await;
    script_success(&server);
    let env = world(&server).await;
    let effects = env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Completed, "{effects:#?}");
    assert_eq!(
        env.only_run("record-checkout-payment").await.run.status,
        RunStatus::Completed
    );
    assert_eq!(payment_status(&env.docs()).await.as_deref(), Some("booked"));
    let bookings = server.requests_to("POST", &bookings_path());
    assert_eq!(bookings.len(), 1);
    assert_booking_request(&bookings[0].json());
    assert_eq!(server.requests_to("POST", &capture_path()).len(), 1);
    assert!(server.requests_to("POST", &refunds_path()).is_empty());
}

#[tokio::test]
async fn a_failed_booking_is_refunded_once_on_aws() {
    let server = TestServer::start().await;
    script_success(&server);
    server.on("POST", &bookings_path(), Reply::status(503));
    let env = world(&server).await;
    env.advance(Duration::from_secs(15 * 60)).await;
    let effects = env.only_run("checkout-side-effects").await;
    assert_eq!(effects.run.status, RunStatus::Completed, "{effects:#?}");
    assert_eq!(
        server.requests_to("POST", &bookings_path()).len(),
        5,
        "{effects:#?}"
    );
    let refunds = server.requests_to("POST", &refunds_path());
    assert_eq!(refunds.len(), 1);
    assert!(
        refunds[0]
            .header("idempotency-key")
            .unwrap()
            .starts_with("hf-")
    );
    assert_eq!(
        refunds[0].form()["payment_intent"],
        "pi_3RhookflowPayment0001"
    );
    assert_eq!(
        payment_status(&env.docs()).await.as_deref(),
        Some("refunded")
    );
    assert_eq!(server.requests_to("POST", &email_path()).len(), 1);
}
