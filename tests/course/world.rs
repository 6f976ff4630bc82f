//! The world the course platform's scenarios run in: every registry function
//! (plus a spy that records the events nobody else handles) on a backend
//! ([`Backend`]: SQLite or moto) with a fake clock, one test server for
//! every API, the platform's settings, and its catalog: a cohort with
//! workshops and lessons, a self-paced workshop, a live event and a series.
//! Scenarios are written once over `World<B>` and run on both backends
//! (`hookflow_tests::both!`).

use course::*;
use hookflow::Function;
use hookflow_aws::testing::AwsTestEnv;
use hookflow_clients::testing::{Recorded, Reply, TestServer};
use hookflow_clients::{Services, Settings};
use hookflow_docs::DocStore;
use hookflow_embedded::testing::TestEnv;
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

pub use hookflow_tests::backend::Backend;
use hookflow_tests::world::{Base, sample_time};

/// The platform's world: a [`Base`] and its fixtures.
pub struct World<B>(Base<B>);

impl<B> std::ops::Deref for World<B> {
    type Target = Base<B>;
    fn deref(&self) -> &Base<B> {
        &self.0
    }
}

fn services(server: &TestServer, docs: DocStore) -> Services {
    let settings = Settings::default()
        .with_course("Course Site", "support@course.example", SITE)
        .with_discord_guild(GUILD);
    Services::new(docs, server.clients(), settings)
}

fn functions(server: &TestServer, docs: DocStore) -> Vec<Function> {
    let mut functions = hookflow_registry::functions_with(&services(server, docs));
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
    let world = World(Base::sqlite(server, sample_time(CHECKOUT), functions));
    world.seed().await;
    world
}

/// GIVEN the platform on DynamoDB, SQS and Scheduler (moto).
pub async fn aws() -> World<AwsTestEnv> {
    let server = TestServer::start().await;
    script(&server);
    let world = World(Base::aws(server, sample_time(CHECKOUT), functions).await);
    world.seed().await;
    world
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
        self.docs
            .list_prefixed(ENTITLEMENTS, &entitlements_of(user_id))
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
