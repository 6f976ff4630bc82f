//! The world the course platform's scenarios run in: every registry function
//! (plus a spy that records the events nobody else handles) on a backend
//! ([`Backend`]: SQLite or moto) with a fake clock, one test server for
//! every API, the platform's settings, and its catalog: a cohort with
//! workshops and lessons, a self-paced workshop, a live event and a series.
//! Scenarios are written once over `World<B>` and run on both backends
//! ([`both!`](crate::both)).

use std::sync::Arc;
use std::time::Duration;

use course::*;
use hookflow::{Engine, Event, FakeClock, Function, Run, RunView, Store};
use hookflow_aws::AwsStore;
use hookflow_aws::testing::AwsTestEnv;
use hookflow_clients::testing::{Recorded, Reply, TestServer};
use hookflow_clients::{Services, Settings};
use hookflow_docs::DocStore;
use hookflow_embedded::SqliteStore;
use hookflow_embedded::testing::TestEnv;
use hookflow_webhooks::{ApiGatewayV2Request, test_secrets};
use serde::Serialize;
use serde_json::{Value, json};

pub const CHECKOUT: &str =
    include_str!("../../events/webhook-stripe-checkout-session-completed-course.json");
pub const REFUND: &str = include_str!("../../events/webhook-stripe-charge-refunded-course.json");
pub const BOUNCE: &str = include_str!("../../events/webhook-postmark-bounce.json");
pub const DELIVERY: &str = include_str!("../../events/webhook-postmark-delivery.json");

pub const DEMO: &str = include_str!("../../functions/course/demo.json");

pub const EMAILS: &str = "/resend/emails";
pub const GUILD: &str = "guild_course";
pub const SITE: &str = "https://course.example";
/// The test spy: completes with the data of the events only it handles.
pub const SPY: &str = "spy";
pub const SPIED: [&str; 3] = [
    "coupon/grant-entitlements-for-purchase",
    "discord/user-added-to-cohort",
    "discord/user-added-to-workshop",
];

/// What a scenario needs from a backend's test environment.
#[allow(async_fn_in_trait)] // tests run on one thread
pub trait Backend {
    type Store: Store;
    fn engine(&self) -> &Engine<Self::Store>;
    fn clock(&self) -> &FakeClock;
    async fn settle(&self);
    async fn advance(&self, by: Duration);
    async fn runs(&self) -> Vec<Run>;
}

impl Backend for TestEnv {
    type Store = SqliteStore;
    fn engine(&self) -> &Engine<SqliteStore> {
        self.runtime.engine()
    }
    fn clock(&self) -> &FakeClock {
        &self.clock
    }
    async fn settle(&self) {
        TestEnv::settle(self).await;
    }
    async fn advance(&self, by: Duration) {
        TestEnv::advance(self, by).await;
    }
    async fn runs(&self) -> Vec<Run> {
        TestEnv::runs(self).await
    }
}

impl Backend for AwsTestEnv {
    type Store = AwsStore;
    fn engine(&self) -> &Engine<AwsStore> {
        &self.engine
    }
    fn clock(&self) -> &FakeClock {
        &self.clock
    }
    async fn settle(&self) {
        AwsTestEnv::settle(self).await;
    }
    async fn advance(&self, by: Duration) {
        AwsTestEnv::advance(self, by).await;
    }
    async fn runs(&self) -> Vec<Run> {
        AwsTestEnv::runs(self).await
    }
}

pub struct World<B> {
    pub env: B,
    pub server: TestServer,
    pub docs: DocStore,
}

fn services(server: &TestServer, docs: DocStore) -> Services {
    let settings = Settings::default()
        .with_course("Course Site", "support@course.example", SITE)
        .with_discord_guild(GUILD);
    Services::new(docs, server.clients(), settings)
}

fn functions(services: &Services) -> Vec<Function> {
    let mut functions = hookflow_registry::functions_with(services);
    let mut spy = Function::new(SPY);
    for name in SPIED {
        spy = spy.on_event(name);
    }
    functions.push(spy.handler(|ctx| async move {
        Ok(json!({ "name": ctx.event.name, "data": ctx.event.data }))
    }));
    functions
}

/// Resend answers every send with a fresh id.
fn script(server: &TestServer) {
    server.on("POST", EMAILS, Reply::json(200, &json!({"id": "em_1"})));
}

/// GIVEN the platform on SQLite at the checkout sample's signing time.
pub async fn sqlite() -> World<TestEnv> {
    let server = TestServer::start().await;
    script(&server);
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(sample_time(CHECKOUT));
    let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
    let env = TestEnv::with_store(store, functions(&services(&server, docs.clone())), clock);
    let world = World { env, server, docs };
    world.seed().await;
    world
}

/// GIVEN the platform on DynamoDB, SQS and Scheduler (moto).
pub async fn aws() -> World<AwsTestEnv> {
    let server = TestServer::start().await;
    script(&server);
    let env = AwsTestEnv::with_docs(|docs| functions(&services(&server, docs))).await;
    env.clock.set(sample_time(CHECKOUT));
    let docs = env.docs();
    let world = World { env, server, docs };
    world.seed().await;
    world
}

fn sample_time(json: &str) -> i64 {
    ApiGatewayV2Request::from_json(json.as_bytes())
        .unwrap()
        .time_epoch_ms()
        .unwrap()
}

pub fn user(id: &str, email: &str, name: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        name: Some(name.into()),
    }
}

pub fn resource(id: &str, kind: &str, title: &str, children: &[&str]) -> ContentResource {
    ContentResource {
        id: id.into(),
        kind: kind.into(),
        fields: ResourceFields {
            title: Some(title.into()),
            slug: Some(id.replace('_', "-")),
            ..ResourceFields::default()
        },
        resources: children.iter().map(|&c| c.to_owned()).collect(),
    }
}

pub fn product(id: &str, kind: &str, resources: &[&str]) -> Product {
    Product {
        id: id.into(),
        name: format!("Product {id}"),
        kind: kind.into(),
        resources: resources.iter().map(|&r| r.to_owned()).collect(),
        discord_role_id: None,
    }
}

pub fn purchase(id: &str, user_id: &str, product_id: &str) -> Purchase {
    Purchase {
        id: id.into(),
        user_id: user_id.into(),
        product_id: product_id.into(),
        status: PurchaseStatus::Valid,
        total_amount: 49_900,
        quantity: 1,
        organization_id: None,
        bulk_coupon_id: None,
        redeemed_bulk_coupon_id: None,
        checkout_session_id: None,
        payment_intent_id: None,
    }
}

impl<B: Backend> World<B> {
    pub async fn put<T: Serialize>(&self, collection: &str, key: &str, value: &T) {
        assert!(
            self.docs.create(collection, key, value).await.unwrap(),
            "{collection}/{key} exists"
        );
    }

    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Option<T> {
        self.docs
            .get::<T>(collection, key)
            .await
            .unwrap()
            .map(|(v, _)| v)
    }

    /// The platform's setup and catalog, and its users Ada, Bob and Grace:
    /// `functions/course/demo.json`, what the README's walk-through loads.
    async fn seed(&self) {
        let demo: Vec<Value> = serde_json::from_str(DEMO).unwrap();
        for doc in demo {
            let (collection, key) = (
                doc["collection"].as_str().unwrap(),
                doc["key"].as_str().unwrap(),
            );
            self.put(collection, key, &doc["value"]).await;
        }
    }

    pub fn now_ms(&self) -> i64 {
        hookflow::Clock::now_ms(self.env.clock())
    }

    pub async fn advance(&self, by: Duration) {
        self.env.advance(by).await;
    }

    /// Delivers a signed sample through the webhook receiver at its signing
    /// time (or now, if later), then handles everything due.
    pub async fn deliver(&self, json: &str) {
        let sample = ApiGatewayV2Request::from_json(json.as_bytes()).unwrap();
        let at = sample.time_epoch_ms().unwrap();
        let provider = sample.provider().unwrap();
        let request = sample.into_webhook_request().unwrap();
        if at > self.now_ms() {
            self.env.clock().set(at);
        }
        let receiver = test_secrets::receiver().unwrap();
        let response = receiver
            .handle(provider, &request, &self.env.engine().ingest, self.now_ms())
            .await;
        assert_eq!(response.status, 200, "{}", response.body_string());
        self.env.settle().await;
    }

    /// Sends an event as the app would (`POST /events`), then handles what is due.
    pub async fn send(&self, name: &str, data: Value) {
        self.env
            .engine()
            .ingest(vec![Event::new(name, data)])
            .await
            .unwrap();
        self.env.settle().await;
    }

    pub async fn runs_of(&self, function_id: &str) -> Vec<Run> {
        let mut runs = self.env.runs().await;
        runs.retain(|run| run.function_id == function_id);
        runs
    }

    /// The one run of `function_id`.
    pub async fn only(&self, function_id: &str) -> Run {
        let runs = self.runs_of(function_id).await;
        assert_eq!(runs.len(), 1, "{function_id}: {runs:#?}");
        runs.into_iter().next().unwrap()
    }

    pub async fn view(&self, run_id: &str) -> RunView {
        self.env.engine().run_view(run_id).await.unwrap().unwrap()
    }

    /// The emails sent through Resend, as JSON.
    pub fn emails(&self) -> Vec<Value> {
        self.server
            .requests_to("POST", EMAILS)
            .iter()
            .map(Recorded::json)
            .collect()
    }

    /// The spied events named `name`, their data.
    pub async fn spied(&self, name: &str) -> Vec<Value> {
        self.runs_of(SPY)
            .await
            .into_iter()
            .filter_map(|run| run.output)
            .filter(|out| out["name"] == name)
            .map(|out| out["data"].clone())
            .collect()
    }

    /// One user's entitlements (all, revoked ones included), by id.
    pub async fn entitlements(&self, user_id: &str) -> Vec<Entitlement> {
        list_prefixed(&self.docs, ENTITLEMENTS, &entitlements_of(user_id))
            .await
            .unwrap()
    }

    /// The resources one user may open, sorted.
    pub async fn access(&self, user_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .entitlements(user_id)
            .await
            .into_iter()
            .filter(|e| e.is_active() && e.entitlement_type.ends_with("_content_access"))
            .filter_map(|e| e.resource_id)
            .collect();
        ids.sort();
        ids
    }
}

/// Runs each scenario (`async fn name<B: Backend>(world: World<B>)`) on
/// SQLite and on moto: `both!(scenario_a, scenario_b);`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::world::sqlite().await).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::world::aws().await).await;
                }
            )*
        }
    };
}
