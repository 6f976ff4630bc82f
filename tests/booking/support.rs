//! Shared fixtures for the booking marketplace tests: the signed samples in
//! `events/`, one recording server standing in for every external API, and
//! the replies each scenario scripts.

use hookflow::Function;
use hookflow_clients::testing::{
    CAL_PREFIX, CLERK_PREFIX, DISCORD_PREFIX, POSTHOG_PREFIX, POSTMARK_PREFIX, Reply, SLACK_PATH,
    STRIPE_PREFIX, TestServer,
};
use hookflow_clients::{Services, Settings};
use hookflow_docs::DocStore;
use hookflow_webhooks::{ApiGatewayV2Request, Provider, WebhookRequest};
use serde_json::{Value, json};

pub const CHECKOUT: &str =
    include_str!("../../events/webhook-stripe-checkout-session-completed.json");
pub const BOOKING_CREATED: &str = include_str!("../../events/webhook-cal-booking-created.json");
pub const BOOKING_CANCELLED: &str = include_str!("../../events/webhook-cal-booking-cancelled.json");
pub const MEETING_STARTED: &str = include_str!("../../events/webhook-cal-meeting-started.json");
pub const MEETING_ENDED: &str = include_str!("../../events/webhook-cal-meeting-ended.json");
pub const USER_CREATED: &str = include_str!("../../events/webhook-clerk-user-created.json");

pub const SESSION_ID: &str = "cs_test_a1hookflowCheckoutSession0001";
/// The buyer in the samples.
pub const CLERK_ID: &str = "user_2hookflowClerkId0001";
pub const DISCORD_CONNECT_URL: &str = "https://app.example.com/connect/discord";
pub const GUILD_ID: &str = "1300000000000000200";
pub const MENTEE_ROLE_ID: &str = "1300000000000000700";
/// The buyer's Discord user, once linked.
pub const DISCORD_USER_ID: &str = "1300000000000000400";
/// The booking marketplace's functions (the checkout sample also buys a
/// mentorship pack; these tests leave that side out).
pub const BOOKING_FUNCTIONS: [&str; 3] = [
    "record-checkout-payment",
    "checkout-side-effects",
    "booking-analytics",
];
pub const EVENT_TYPE_ID: i64 = 1234;
pub const EMAIL_FROM: &str = "Bookings <bookings@example.com>";

pub fn capture_path() -> String {
    format!("{POSTHOG_PREFIX}/capture/")
}
pub fn bookings_path() -> String {
    format!("{CAL_PREFIX}/bookings")
}
pub fn refunds_path() -> String {
    format!("{STRIPE_PREFIX}/v1/refunds")
}
pub fn email_path() -> String {
    format!("{POSTMARK_PREFIX}/email")
}
pub const SLACK: &str = SLACK_PATH;
pub fn clerk_user_path(clerk_id: &str) -> String {
    format!("{CLERK_PREFIX}/users/{clerk_id}")
}
pub fn clerk_metadata_path(clerk_id: &str) -> String {
    format!("{CLERK_PREFIX}/users/{clerk_id}/metadata")
}
pub fn mentee_role_path(discord_user_id: &str) -> String {
    format!("{DISCORD_PREFIX}/guilds/{GUILD_ID}/members/{discord_user_id}/roles/{MENTEE_ROLE_ID}")
}
pub fn cancel_booking_path(uid: &str) -> String {
    format!("{CAL_PREFIX}/bookings/{uid}/cancel")
}

/// The sample buyer as Clerk returns them, with `public_metadata`.
pub fn clerk_user(public_metadata: Value) -> Value {
    json!({
        "id": CLERK_ID,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "primary_email_address_id": "idn_1",
        "email_addresses": [{"id": "idn_1", "email_address": "ada@example.com"}],
        "public_metadata": public_metadata,
    })
}

/// A sample's webhook request and the time API Gateway received it.
pub fn sample(json: &str) -> (WebhookRequest, i64) {
    let sample = ApiGatewayV2Request::from_json(json.as_bytes()).unwrap();
    let at = sample.time_epoch_ms().unwrap();
    (sample.into_webhook_request().unwrap(), at)
}

/// Which provider a sample belongs to.
pub fn provider(json: &str) -> Provider {
    ApiGatewayV2Request::from_json(json.as_bytes())
        .unwrap()
        .provider()
        .unwrap()
}

/// Every API answering success.
pub fn script_success(server: &TestServer) {
    server.on(
        "POST",
        &capture_path(),
        Reply::json(200, &json!({"status": 1})),
    );
    server.on(
        "POST",
        &bookings_path(),
        Reply::json(
            201,
            &json!({"status": "success", "data": {"id": 91, "uid": "bk_hookflow_1", "status": "accepted", "start": "2025-06-10T15:00:00Z"}}),
        ),
    );
    server.on(
        "POST",
        &refunds_path(),
        Reply::json(
            200,
            &json!({"id": "re_hookflow_1", "amount": 15000, "currency": "usd", "status": "succeeded", "payment_intent": "pi_3RhookflowPayment0001"}),
        ),
    );
    server.on("POST", SLACK, Reply::text(200, "ok"));
    server.on(
        "GET",
        &clerk_user_path(CLERK_ID),
        Reply::json(200, &clerk_user(json!({}))),
    );
    server.on(
        "PATCH",
        &clerk_metadata_path(CLERK_ID),
        Reply::json(200, &clerk_user(json!({}))),
    );
    server.on(
        "PUT",
        &mentee_role_path(DISCORD_USER_ID),
        Reply::status(204),
    );
    server.on(
        "POST",
        &email_path(),
        Reply::json(
            200,
            &json!({"MessageID": "msg-1", "ErrorCode": 0, "Message": "OK"}),
        ),
    );
}

/// The services a workflow under test gets: every API on `server`.
pub fn services(server: &TestServer, docs: DocStore) -> Services {
    Services::new(
        docs,
        server.clients(),
        Settings::default()
            .with_cal_event_type_id(EVENT_TYPE_ID)
            .with_email_from(EMAIL_FROM)
            .with_discord(DISCORD_CONNECT_URL, GUILD_ID, MENTEE_ROLE_ID),
    )
}

/// The booking marketplace's functions over `services`.
pub fn booking_functions(services: &Services) -> Vec<Function> {
    hookflow_registry::functions_with(services)
        .into_iter()
        .filter(|f| BOOKING_FUNCTIONS.contains(&f.id()))
        .collect()
}

/// The stored payment's status.
pub async fn payment_status(docs: &DocStore) -> Option<String> {
    docs.get_doc("payments", SESSION_ID)
        .await
        .unwrap()
        .map(|doc| doc.value["status"].as_str().unwrap().to_owned())
}

/// The Cal.com booking request the sample's payment produces.
pub fn assert_booking_request(body: &Value) {
    assert_eq!(body["eventTypeId"], EVENT_TYPE_ID);
    assert_eq!(body["start"], "2025-06-10T15:00:00Z");
    assert_eq!(body["attendee"]["email"], "ada@example.com");
    assert_eq!(body["attendee"]["name"], "Ada Lovelace");
    assert_eq!(body["metadata"]["checkoutSessionId"], SESSION_ID);
    assert_eq!(body["metadata"]["mentorId"], "mentor_42");
}
