//! The world the mentorship scenarios run in: every registry function on a
//! backend ([`Backend`]: SQLite or moto) with a fake clock, one test server
//! for every API, and the moves a member, Cal.com and a mentor make.
//! Scenarios are written once over `World<B>` and run on both backends.

use std::sync::Arc;
use std::time::Duration;

use hookflow::{Event, FakeClock, Run, RunView};
use hookflow_aws::testing::AwsTestEnv;
use hookflow_clients::testing::{Recorded, TestServer};
use hookflow_docs::DocStore;
use hookflow_embedded::SqliteStore;
use hookflow_embedded::testing::TestEnv;
use hookflow_webhooks::{Provider, WebhookRequest, cal, test_secrets};
use mentorship::{Member, Pack, Seat};
use serde_json::{Value, json};

use crate::support::{self, CHECKOUT, email_path, sample, script_success, services};

pub use hookflow_tests::backend::Backend;

pub use crate::support::{CLERK_ID, DISCORD_USER_ID, SLACK};

pub const PAYPAL: &str = include_str!("../../events/webhook-paypal-payment-capture-completed.json");
pub const PACK_BOOKING: &str = include_str!("../../events/webhook-cal-booking-created-pack.json");
pub const PACK_MEETING_ENDED: &str =
    include_str!("../../events/webhook-cal-meeting-ended-pack.json");
pub const STRIPE_ORDER: &str = "cs_test_a1hookflowCheckoutSession0001";
pub const PAYPAL_ORDER: &str = "5O190127TN364715T";
/// The booking in the pack samples.
pub const SAMPLE_BOOKING: &str = "bk8hookflowPackUid0001";

pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(24 * 3600);

pub struct World<B = TestEnv> {
    pub env: B,
    pub server: TestServer,
    pub docs: DocStore,
}

impl World<TestEnv> {
    /// GIVEN every function of the registry on SQLite, wired to one test
    /// server that answers every API with success.
    pub async fn new() -> Self {
        let server = TestServer::start().await;
        script_success(&server);
        let store = SqliteStore::in_memory().unwrap();
        let clock = FakeClock::new(sample(CHECKOUT).1);
        let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
        let mut functions = hookflow_registry::functions_with(&services(&server, docs.clone()));
        // The other apps' crons (a webhook queue every 5 minutes) would run
        // thousands of times in a 90-day walk of the fake clock.
        functions.retain(|f| {
            f.id() == crate::expiration::SWEEP
                || !f
                    .triggers()
                    .iter()
                    .any(|t| matches!(t, hookflow::function::Trigger::Cron { .. }))
        });
        let env = TestEnv::with_store(store, functions, clock);
        Self { env, server, docs }
    }
}

impl World<AwsTestEnv> {
    /// GIVEN every function of the registry on DynamoDB, SQS and Scheduler
    /// (moto), wired to one test server that answers every API with success.
    pub async fn aws() -> Self {
        let server = TestServer::start().await;
        script_success(&server);
        let env = AwsTestEnv::with_docs(|docs| {
            hookflow_registry::functions_with(&services(&server, docs))
        })
        .await;
        env.clock.set(sample(CHECKOUT).1);
        let docs = env.docs();
        Self { env, server, docs }
    }
}

impl<B: Backend> World<B> {
    pub fn now_ms(&self) -> i64 {
        hookflow::Clock::now_ms(self.env.clock())
    }

    /// Moves time forward by `by`, firing every timer on the way.
    pub async fn advance(&self, by: Duration) {
        self.env.advance(by).await;
    }

    /// Every run of `function_id`.
    pub async fn runs_of(&self, function_id: &str) -> Vec<Run> {
        let mut runs = self.env.runs().await;
        runs.retain(|run| run.function_id == function_id);
        runs
    }

    /// A run with its steps.
    pub async fn view(&self, run_id: &str) -> RunView {
        self.env.engine().run_view(run_id).await.unwrap().unwrap()
    }

    /// The daily sweep at `rfc3339` (the clock moves there first).
    pub async fn sweep_at(&self, rfc3339: &str) {
        self.advance_to(rfc3339).await;
        self.env.tick("sweep-expired-packs", self.now_ms()).await;
    }

    /// Moves the clock to `rfc3339`, firing every timer on the way.
    pub async fn advance_to(&self, rfc3339: &str) {
        let target: chrono::DateTime<chrono::Utc> = rfc3339.parse().unwrap();
        let by = target.timestamp_millis() - self.now_ms();
        self.advance(Duration::from_millis(u64::try_from(by).unwrap()))
            .await;
    }

    /// Delivers a webhook request through the receiver at `at` (or now, if
    /// later), then handles everything due.
    pub async fn deliver_request(&self, provider: Provider, request: &WebhookRequest, at: i64) {
        if at > self.now_ms() {
            self.env.clock().set(at);
        }
        let receiver = test_secrets::receiver().unwrap();
        let response = receiver
            .handle(provider, request, &self.env.engine().ingest, self.now_ms())
            .await;
        assert_eq!(response.status, 200, "{}", response.body_string());
        self.env.settle().await;
    }

    /// Delivers a signed sample at its signing time (or now, if later).
    pub async fn deliver(&self, json: &str) {
        let (request, at) = sample(json);
        self.deliver_request(support::provider(json), &request, at)
            .await;
    }

    /// Sends events as the app would (`POST /events`), then handles what is due.
    pub async fn send(&self, event: Event) {
        self.env.engine().ingest(vec![event]).await.unwrap();
        self.env.settle().await;
    }

    /// The member buys a pack with Stripe (the checkout sample).
    pub async fn buy(&self) {
        self.deliver(CHECKOUT).await;
    }

    /// The member links Discord in the app.
    pub async fn connect_discord(&self, clerk_id: &str) {
        self.send(Event::new(
            "discord/connected",
            json!({ "clerkId": clerk_id, "discordUserId": DISCORD_USER_ID }),
        ))
        .await;
    }

    /// Cal.com reports the pack sample's booking, changed by `edit` (a new
    /// uid and times), re-signed.
    pub async fn cal(&self, sample_json: &str, edit: impl FnOnce(&mut Value)) {
        let (request, _) = sample(sample_json);
        let mut body: Value = serde_json::from_slice(&request.body).unwrap();
        edit(&mut body);
        let body = serde_json::to_vec(&body).unwrap();
        let signature = cal::signature(test_secrets::CAL_WEBHOOK_SECRET.as_bytes(), &body);
        let request = WebhookRequest::new(body)
            .with_header("content-type", "application/json")
            .with_header("x-cal-signature-256", signature);
        self.deliver_request(Provider::Cal, &request, self.now_ms())
            .await;
    }

    /// The member books session `uid` of the Stripe pack at `start` (RFC 3339, 45 min).
    pub async fn book(&self, uid: &str, start: &str) {
        let start: chrono::DateTime<chrono::Utc> = start.parse().unwrap();
        let end = start + chrono::Duration::minutes(45);
        self.cal(PACK_BOOKING, |body| {
            body["payload"]["uid"] = json!(uid);
            body["payload"]["startTime"] = json!(start);
            body["payload"]["endTime"] = json!(end);
        })
        .await;
    }

    /// Cal.com reports the meeting of booking `uid` ended.
    pub async fn meeting_ended(&self, uid: &str) {
        self.cal(PACK_MEETING_ENDED, |body| body["uid"] = json!(uid))
            .await;
    }

    /// The mentor marks session `uid` of `order_id` done in the app.
    pub async fn mentor_marks_done(&self, order_id: &str, uid: &str) {
        self.send(Event::new(
            "session/completed",
            json!({ "orderId": order_id, "bookingUid": uid, "source": "mentor" }),
        ))
        .await;
    }

    pub async fn pack(&self, order_id: &str) -> Pack {
        self.docs
            .get::<Pack>("packs", order_id)
            .await
            .unwrap()
            .expect("pack")
            .0
    }

    pub async fn pack_doc(&self, order_id: &str) -> Option<(Value, u64)> {
        self.docs
            .get_doc("packs", order_id)
            .await
            .unwrap()
            .map(|doc| (doc.value, doc.version))
    }

    pub async fn seat(&self) -> Seat {
        self.docs
            .get::<Seat>("seats", CLERK_ID)
            .await
            .unwrap()
            .expect("seat")
            .0
    }

    pub async fn member(&self) -> Option<Member> {
        self.docs
            .get::<Member>("members", CLERK_ID)
            .await
            .unwrap()
            .map(|(member, _)| member)
    }

    /// Every email sent, as Postmark got them.
    pub fn emails(&self) -> Vec<Value> {
        self.server
            .requests_to("POST", &email_path())
            .iter()
            .map(Recorded::json)
            .collect()
    }

    /// The `Tag` of every email sent, in order.
    pub fn email_tags(&self) -> Vec<String> {
        self.emails()
            .iter()
            .map(|email| email["Tag"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every Clerk metadata update for the sample member, in order.
    pub fn metadata_updates(&self) -> Vec<Value> {
        self.server
            .requests_to("PATCH", &support::clerk_metadata_path(CLERK_ID))
            .iter()
            .map(|r| r.json()["public_metadata"].clone())
            .collect()
    }

    /// The only run of `function_id`, with its steps.
    pub async fn only_run(&self, function_id: &str) -> RunView {
        let runs = self.runs_of(function_id).await;
        assert_eq!(
            runs.len(),
            1,
            "expected one run of {function_id}: {runs:#?}"
        );
        self.view(&runs[0].id).await
    }
}

/// The ids of a run's steps, in order.
pub fn step_ids(view: &RunView) -> Vec<&str> {
    view.steps.iter().map(|s| s.id.as_str()).collect()
}

/// One `#[tokio::test]` per scenario (`module::name`), each on a new world
/// built by `$world` (`World::new()` or `World::aws()`).
macro_rules! scenarios {
    ($world:expr; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                crate::$module::$name($world.await).await;
            }
        )*
    };
}
pub(crate) use scenarios;

/// Every scenario of `onboarding`, `sessions` and `expiration`, each a test
/// on a new world built by `$world`.
macro_rules! every_scenario {
    ($world:expr) => {
        $crate::world::scenarios!($world;
        onboarding::linking_discord_grants_the_role_and_dashboard_access,
        onboarding::a_member_who_never_links_is_reminded_once_then_flagged,
        onboarding::linking_after_the_reminder_still_onboards,
        onboarding::a_second_pack_does_not_onboard_the_member_again,
        onboarding::a_failed_onboarding_replayed_starts_over,
        sessions::bookings_are_recorded_and_held_sessions_numbered_once,
        sessions::a_booking_the_pack_cannot_take_is_cancelled_in_cal,
        sessions::without_a_renewal_the_seat_is_released_72_hours_after_the_last_session,
        sessions::a_renewal_during_the_grace_period_keeps_the_seat,
        sessions::a_release_that_failed_is_finished_by_a_replay,
        expiration::an_expired_pack_without_scheduled_sessions_expires_and_releases_the_seat,
        expiration::an_expired_pack_with_a_scheduled_session_waits_for_it,
        expiration::a_session_never_reported_held_is_rechecked_daily_then_alerts_the_admins,
        );
    };
}
pub(crate) use every_scenario;
