//! The world the commerce platform's scenarios run in: every registry
//! function on a backend (SQLite or moto) with a fake clock, one test server
//! for every API (Shopify for each shop, Stripe, Resend, Slack, Meta, GA4 and
//! the tenants' webhook endpoints), and three tenants:
//! - `north` (`hookflow-test.myshopify.com`): Meta, GA4 and an outbound
//!   webhook endpoint configured;
//! - `south` (`hookflow-south.myshopify.com`): nothing optional;
//! - `west` (`hookflow-west.myshopify.com`): no samples, for the crons.

use commerce::{Creator, Order, key};
use hookflow_aws::testing::AwsTestEnv;
use hookflow_clients::testing::{
    GA4_PREFIX, META_PREFIX, RESEND_PREFIX, Reply, SLACK_PATH, TestServer,
};
use hookflow_clients::{Services, Settings, Tenant, Tenants};
use hookflow_docs::DocStore;
use hookflow_embedded::testing::TestEnv;
use serde_json::{Value, json};

pub use hookflow_tests::backend::Backend;
use hookflow_tests::world::{Base, sample_time};

pub const NORTH_CREATED: &str = include_str!("../../events/webhook-shopify-orders-create.json");
pub const NORTH_DELIVERED: &str = include_str!("../../events/webhook-shopify-orders-updated.json");
pub const SOUTH_CREATED: &str =
    include_str!("../../events/webhook-shopify-orders-create-south.json");
pub const SOUTH_DELIVERED: &str =
    include_str!("../../events/webhook-shopify-orders-updated-south.json");

pub const NORTH_SHOP: &str = "hookflow-test.myshopify.com";
pub const SOUTH_SHOP: &str = "hookflow-south.myshopify.com";
pub const NORTH_ORDER: &str = "820982911946154508";
pub const SOUTH_ORDER: &str = "450789469";
/// When the samples' orders were delivered (the Shopify API says so).
pub const NORTH_DELIVERED_AT: &str = "2025-06-02T10:30:00Z";
pub const SOUTH_DELIVERED_AT: &str = "2025-06-02T10:45:00Z";

pub const TRANSFERS: &str = "/stripe/v1/transfers";
pub const HOOKS: &str = "/hooks/north";

pub fn emails_path() -> String {
    format!("{RESEND_PREFIX}/emails")
}

pub fn meta_path() -> String {
    format!("{META_PREFIX}/px_north/events")
}

pub fn ga4_path() -> String {
    format!("{GA4_PREFIX}/mp/collect")
}

pub fn shopify(shop: &str) -> String {
    TestServer::shopify_graphql_path(shop)
}

fn tenant(id: &str, shop: &str) -> Tenant {
    Tenant {
        id: id.into(),
        name: format!("{}{}", id[..1].to_uppercase(), &id[1..]),
        shop_domain: shop.into(),
        shopify_token: format!("shpat_{id}"),
        email_from: Some(format!("{id} <reviews@{id}.example>")),
        review_url: None,
        meta_pixel_id: None,
        meta_access_token: None,
        ga4_measurement_id: None,
        ga4_api_secret: None,
        webhook_url: None,
        webhook_secret: None,
        active: true,
    }
}

fn tenants(server: &TestServer) -> Tenants {
    let mut north = tenant("north", NORTH_SHOP);
    north.review_url = Some("https://north.example/review".into());
    north.meta_pixel_id = Some("px_north".into());
    north.meta_access_token = Some("EAAB_north".into());
    north.ga4_measurement_id = Some("G-NORTH".into());
    north.ga4_api_secret = Some("ga_north".into());
    north.webhook_url = Some(format!("{}{HOOKS}", server.url()));
    north.webhook_secret = Some("whsec_north".into());
    Tenants::new(vec![
        north,
        tenant("south", SOUTH_SHOP),
        tenant("west", "hookflow-west.myshopify.com"),
    ])
}

/// The Shopify Admin API's answer for an order.
pub fn order_answer(
    legacy_id: &str,
    (email, first_name): (&str, &str),
    (total, subtotal, currency): (&str, &str, &str),
    discount_codes: &[&str],
    visitor: &str,
    delivered_at: Option<&str>,
) -> Value {
    let fulfillments = match delivered_at {
        Some(at) => json!([{"status": "SUCCESS", "displayStatus": "DELIVERED", "deliveredAt": at}]),
        None => json!([]),
    };
    json!({"data": {"order": {
        "id": format!("gid://shopify/Order/{legacy_id}"), "legacyResourceId": legacy_id,
        "name": format!("#{}", &legacy_id[legacy_id.len() - 4..]), "email": email,
        "createdAt": "2025-06-02T10:18:30Z", "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": if delivered_at.is_some() { "FULFILLED" } else { "UNFULFILLED" },
        "cancelledAt": null,
        "currentTotalPriceSet": {"shopMoney": {"amount": total, "currencyCode": currency}},
        "currentSubtotalPriceSet": {"shopMoney": {"amount": subtotal, "currencyCode": currency}},
        "discountCodes": discount_codes,
        "customer": {"id": "gid://shopify/Customer/1", "email": email, "firstName": first_name},
        "customAttributes": [{"key": "visitorId", "value": visitor}],
        "lineItems": {"nodes": [{"title": "Linen shirt", "quantity": 1, "sku": "SHIRT-M", "product": {"id": "gid://shopify/Product/9"}}]},
        "fulfillments": fulfillments,
    }}})
}

/// North's order, delivered or not yet.
pub fn north_order(delivered: bool) -> Value {
    order_answer(
        NORTH_ORDER,
        ("ada@example.com", "Ada"),
        ("150.00", "150.00", "USD"),
        &[],
        "v_ada_01",
        delivered.then_some(NORTH_DELIVERED_AT),
    )
}

/// South's order (code GRACE15), delivered or not yet.
pub fn south_order(delivered: bool) -> Value {
    order_answer(
        SOUTH_ORDER,
        ("grace@example.com", "Grace"),
        ("64.90", "59.00", "EUR"),
        &["GRACE15"],
        "v_grace_01",
        delivered.then_some(SOUTH_DELIVERED_AT),
    )
}

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
        .with_tenants(tenants(server))
        .with_email_from("Platform <hello@platform.example>");
    Services::new(docs, server.clients(), settings)
}

fn script(server: &TestServer) {
    server.on(
        "POST",
        &shopify(NORTH_SHOP),
        Reply::json(200, &north_order(false)),
    );
    server.on(
        "POST",
        &shopify(SOUTH_SHOP),
        Reply::json(200, &south_order(false)),
    );
    server.on(
        "POST",
        &emails_path(),
        Reply::json(200, &json!({"id": "em_1"})),
    );
    server.on("POST", SLACK_PATH, Reply::text(200, "ok"));
    server.on(
        "POST",
        &meta_path(),
        Reply::json(200, &json!({"events_received": 1})),
    );
    server.on("POST", &ga4_path(), Reply::status(204));
    server.on("POST", HOOKS, Reply::status(204));
    server.on(
        "GET",
        TRANSFERS,
        Reply::json(
            200,
            &json!({"object": "list", "data": [], "has_more": false}),
        ),
    );
    server.on(
        "POST",
        TRANSFERS,
        Reply::json(
            200,
            &json!({"id": "tr_1", "amount": 2500, "currency": "usd", "destination": "acct_ada"}),
        ),
    );
}

fn functions(server: &TestServer, docs: DocStore) -> Vec<hookflow::Function> {
    hookflow_registry::functions_with(&services(server, docs))
}

/// GIVEN the platform on SQLite at the first sample's signing time.
pub async fn sqlite() -> World<TestEnv> {
    let server = TestServer::start().await;
    script(&server);
    World(Base::sqlite(server, sample_time(NORTH_CREATED), functions))
}

/// GIVEN the platform on DynamoDB, SQS and Scheduler (moto).
pub async fn aws() -> World<AwsTestEnv> {
    let server = TestServer::start().await;
    script(&server);
    World(Base::aws(server, sample_time(NORTH_CREATED), functions).await)
}

/// A creator of `tenant` with a Stripe account and a 10% commission.
pub fn creator(tenant: &str, id: &str) -> Creator {
    Creator {
        tenant_id: tenant.into(),
        id: id.into(),
        name: format!("Creator {id}"),
        email: format!("{id}@creators.example"),
        commission_percent: 10,
        stripe_account: Some(format!("acct_{id}")),
    }
}

/// A bare order record of `tenant` placed at `at` (ms).
pub fn order_record(tenant: &str, id: &str, email: &str, total_cents: i64, at: i64) -> Order {
    Order {
        tenant_id: tenant.into(),
        id: id.into(),
        name: format!("#{id}"),
        email: Some(email.into()),
        first_name: Some("Sam".into()),
        created_at: at,
        total_cents,
        subtotal_cents: total_cents,
        financial_status: Some("PAID".into()),
        cancelled: false,
        currency: "USD".into(),
        discount_codes: vec![],
        visitor_id: None,
        lines: vec![],
        delivered_at: None,
        review_scheduled: false,
        synced_at: at,
    }
}

impl<B: Backend> World<B> {
    /// A creator and their discount code.
    pub async fn seed_creator(&self, tenant: &str, id: &str, code: &str) {
        let c = creator(tenant, id);
        self.put(commerce::CREATORS, &key(tenant, id), &c).await;
        self.put(
            commerce::DISCOUNT_CODES,
            &key(tenant, code),
            &json!({"creatorId": id}),
        )
        .await;
    }

    /// The emails sent through Resend, as JSON.
    pub fn emails(&self) -> Vec<Value> {
        self.server
            .requests_to("POST", &emails_path())
            .iter()
            .map(hookflow_clients::testing::Recorded::json)
            .collect()
    }
}
