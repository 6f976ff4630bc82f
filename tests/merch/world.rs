//! The world the merch shop's scenarios run in: every registry function on a
//! backend (SQLite or moto) with a fake clock, one test server for every API
//! (Printify, Postmark, Slack answering success unless a scenario says
//! otherwise), crons in `America/New_York`, and an order waiting for payment.

use hookflow_aws::testing::AwsTestEnv;
use hookflow_clients::testing::{POSTMARK_PREFIX, PRINTIFY_PREFIX, Reply, SLACK_PATH, TestServer};
use hookflow_clients::{Services, Settings};
use hookflow_docs::DocStore;
use hookflow_embedded::testing::TestEnv;
use merch::{ORDERS, Order, OrderItem, OrderStatus, STOCK, Stock};
use serde_json::json;

pub use hookflow_tests::backend::Backend;
use hookflow_tests::world::{Base, sample_time};

pub const PAID: &str = include_str!("../../events/webhook-stripe-payment-intent-succeeded.json");
pub const DECLINED: &str = include_str!("../../events/webhook-stripe-payment-intent-failed.json");
pub const USER_CREATED: &str = include_str!("../../events/webhook-clerk-user-created.json");
pub const USER_UPDATED: &str = include_str!("../../events/webhook-clerk-user-updated.json");
pub const USER_DELETED: &str = include_str!("../../events/webhook-clerk-user-deleted.json");
pub const PUBLISHED: &str =
    include_str!("../../events/webhook-printify-product-publish-started.json");
pub const PRODUCT_DELETED: &str =
    include_str!("../../events/webhook-printify-product-deleted.json");

pub const SHOP: &str = "815256";
pub const ZONE: &str = "America/New_York";
pub const MUG: &str = "5d39b159e7c48c000728c89f";

pub fn orders_path() -> String {
    format!("{PRINTIFY_PREFIX}/shops/{SHOP}/orders.json")
}

pub fn product_path(id: &str) -> String {
    format!("{PRINTIFY_PREFIX}/shops/{SHOP}/products/{id}.json")
}

pub fn email_path() -> String {
    format!("{POSTMARK_PREFIX}/email")
}

/// The shop's world: a [`Base`] and its fixtures.
pub struct World<B>(Base<B>);

impl<B> std::ops::Deref for World<B> {
    type Target = Base<B>;
    fn deref(&self) -> &Base<B> {
        &self.0
    }
}

fn services(server: &TestServer, docs: DocStore) -> Services {
    let settings = Settings::default()
        .with_merch(SHOP, ZONE)
        .with_email_from("Shop <shop@example.com>");
    Services::new(docs, server.clients(), settings)
}

fn script(server: &TestServer) {
    server.on(
        "POST",
        &orders_path(),
        Reply::json(200, &json!({"id": "pf_order_1"})),
    );
    server.on(
        "POST",
        &email_path(),
        Reply::json(200, &json!({"ErrorCode": 0, "MessageID": "m1"})),
    );
    server.on("POST", SLACK_PATH, Reply::text(200, "ok"));
    server.set_default(Reply::json(200, &json!({})));
}

fn functions(server: &TestServer, docs: DocStore) -> Vec<hookflow::Function> {
    hookflow_registry::functions_with(&services(server, docs))
}

/// GIVEN the shop on SQLite at the first sample's signing time.
pub async fn sqlite() -> World<TestEnv> {
    let server = TestServer::start().await;
    script(&server);
    World(Base::sqlite(server, sample_time(USER_CREATED), functions))
}

/// GIVEN the shop on DynamoDB, SQS and Scheduler (moto).
pub async fn aws() -> World<AwsTestEnv> {
    let server = TestServer::start().await;
    script(&server);
    World(Base::aws(server, sample_time(USER_CREATED), functions).await)
}

/// An order of `quantity` mugs waiting for payment.
pub fn order(id: &str, quantity: u32, created_at: i64) -> Order {
    Order {
        id: id.into(),
        customer_id: "user_2hookflowClerkId0001".into(),
        email: "ada@example.com".into(),
        items: vec![OrderItem {
            product_id: MUG.into(),
            variant_id: 17390,
            sku: "hookflow-mug-11oz".into(),
            quantity,
        }],
        shipping_address: json!({"first_name": "Ada", "country": "GB"}),
        status: OrderStatus::Pending,
        payment_intent_id: None,
        printify_order_id: None,
        failure: None,
        created_at,
        updated_at: created_at,
        confirmed_at: None,
    }
}

impl<B: Backend> World<B> {
    pub async fn order(&self, id: &str) -> Order {
        self.get(ORDERS, id).await.unwrap()
    }

    pub async fn stock(&self) -> Stock {
        self.get(STOCK, "hookflow-mug-11oz").await.unwrap()
    }

    /// GIVEN orders `ord_1001` (2 mugs) and `ord_1002` (1 mug), and 10 mugs
    /// in stock.
    pub async fn seed_orders(&self) {
        let now = self.now_ms();
        self.put(ORDERS, "ord_1001", &order("ord_1001", 2, now))
            .await;
        self.put(ORDERS, "ord_1002", &order("ord_1002", 1, now))
            .await;
        let stock = Stock {
            sku: "hookflow-mug-11oz".into(),
            on_hand: 10,
            holds: Default::default(),
            available: true,
        };
        self.put(STOCK, "hookflow-mug-11oz", &stock).await;
    }
}
