//! The commerce platform's APIs: Shopify Admin (GraphQL, per shop), Meta's
//! Conversions API, GA4's Measurement Protocol and outbound webhooks.

use std::time::Duration;

use hookflow::failure::Verdict;
use hookflow_clients::ga4::Purchase;
use hookflow_clients::meta::{ServerEvent, hash_email};
use hookflow_clients::outbound::{Delivery, signature};
use hookflow_clients::testing::{GA4_PREFIX, META_PREFIX, Reply, TestServer};
use serde_json::json;

use crate::{engine_verdict, setup};

const SHOP: &str = "acme.myshopify.com";

fn order_json() -> serde_json::Value {
    json!({"data": {"order": {
        "id": "gid://shopify/Order/1001", "legacyResourceId": "1001", "name": "#1001",
        "email": "ada@example.com", "createdAt": "2025-06-02T10:18:30Z",
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "FULFILLED", "cancelledAt": null,
        "currentTotalPriceSet": {"shopMoney": {"amount": "150.00", "currencyCode": "USD"}},
        "currentSubtotalPriceSet": {"shopMoney": {"amount": "135.00", "currencyCode": "USD"}},
        "discountCodes": ["ADA10"],
        "customer": {"id": "gid://shopify/Customer/7", "email": "ada@example.com", "firstName": "Ada"},
        "customAttributes": [{"key": "visitorId", "value": "v_1"}],
        "lineItems": {"nodes": [{"title": "Mug", "quantity": 2, "sku": "MUG", "product": {"id": "gid://shopify/Product/9"}}]},
        "fulfillments": [{"status": "SUCCESS", "displayStatus": "DELIVERED", "deliveredAt": "2025-06-05T12:00:00Z"}]
    }}})
}

#[tokio::test]
async fn a_shops_order_is_read_with_its_token() {
    let (server, clients) = setup().await;
    let path = TestServer::shopify_graphql_path(SHOP);
    server.on("POST", &path, Reply::json(200, &order_json()));
    let order = clients
        .shopify
        .shop(SHOP, "shpat_acme")
        .unwrap()
        .order("1001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.legacy_id, "1001");
    assert_eq!(order.total.minor_units(), Some(15_000));
    assert_eq!(order.discount_codes, ["ADA10"]);
    assert_eq!(order.attribute("visitorId"), Some("v_1"));
    assert_eq!(order.delivered_at(), Some("2025-06-05T12:00:00Z"));
    assert_eq!(order.subtotal.minor_units(), Some(13_500));
    assert_eq!(order.line_items[0].sku.as_deref(), Some("MUG"));
    let sent = server.requests_to("POST", &path);
    assert_eq!(sent[0].header("x-shopify-access-token"), Some("shpat_acme"));
    let body = sent[0].json();
    assert_eq!(body["variables"]["id"], "gid://shopify/Order/1001");
    assert!(body["query"].as_str().unwrap().contains("deliveredAt"));
}

#[tokio::test]
async fn shopify_graphql_errors_classify_throttling_apart() {
    let (server, clients) = setup().await;
    let path = TestServer::shopify_graphql_path(SHOP);
    let shop = clients.shopify.shop(SHOP, "shpat_acme").unwrap();
    server.on(
        "POST",
        &path,
        Reply::json(200, &json!({"data": {"order": null}})),
    );
    assert_eq!(shop.order("404").await.unwrap(), None);
    server.on(
        "POST",
        &path,
        Reply::json(
            200,
            &json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}),
        ),
    );
    let err = shop.order("1").await.unwrap_err();
    assert_eq!(
        engine_verdict(err),
        Verdict::RetryAfter(Duration::from_secs(1))
    );
    server.on(
        "POST",
        &path,
        Reply::json(
            200,
            &json!({"errors": [{"message": "Field 'x' doesn't exist", "extensions": {"code": "undefinedField"}}]}),
        ),
    );
    let err = shop.order("1").await.unwrap_err();
    assert!(err.to_string().contains("undefinedField"), "{err}");
    assert_eq!(engine_verdict(err), Verdict::Final);
    server.on(
        "POST",
        &path,
        Reply::json(401, &json!({"errors": "[API] Invalid API key"})),
    );
    let err = shop.order("1").await.unwrap_err();
    assert!(!err.to_string().contains("shpat_acme"));
    assert_eq!(engine_verdict(err), Verdict::Final);
}

#[tokio::test]
async fn discount_codes_are_created_once() {
    use hookflow_clients::shopify::NewDiscountCode;
    let (server, clients) = setup().await;
    let path = TestServer::shopify_graphql_path(SHOP);
    let shop = clients.shopify.shop(SHOP, "shpat_acme").unwrap();
    let created = json!({"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"}, "userErrors": []}}});
    let taken = json!({"data": {"discountCodeBasicCreate": {"codeDiscountNode": null,
        "userErrors": [{"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique."}]}}});
    let invalid = json!({"data": {"discountCodeBasicCreate": {"codeDiscountNode": null,
        "userErrors": [{"field": ["basicCodeDiscount", "customerGets"], "code": "INVALID", "message": "Value is invalid"}]}}});
    server.on_sequence(
        "POST",
        &path,
        [
            Reply::json(200, &created),
            Reply::json(200, &taken),
            Reply::json(200, &invalid),
        ],
    );
    let code = NewDiscountCode {
        title: "Review thanks",
        code: "THANKS10-1001",
        percentage: 0.1,
        starts_at: "2025-06-07T10:30:00Z",
        ends_at: None,
    };
    assert!(shop.create_discount_code(&code).await.unwrap());
    assert!(
        !shop.create_discount_code(&code).await.unwrap(),
        "a retry finds it"
    );
    let err = shop.create_discount_code(&code).await.unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Final);
    let body = server.requests_to("POST", &path)[0].json();
    assert_eq!(body["variables"]["d"]["code"], "THANKS10-1001");
    assert_eq!(body["variables"]["d"]["usageLimit"], 1);
    assert_eq!(
        body["variables"]["d"]["customerGets"]["value"]["percentage"],
        0.1
    );
}

#[tokio::test]
async fn meta_events_carry_the_token_in_the_body_and_hashed_emails() {
    let (server, clients) = setup().await;
    let path = format!("{META_PREFIX}/px_1/events");
    server.on(
        "POST",
        &path,
        Reply::json(200, &json!({"events_received": 1})),
    );
    let event = ServerEvent::website(
        "Lead",
        "lead-acme-c1",
        1_748_859_330_000,
        Some("Ada@Example.com"),
    )
    .with_custom_data(json!({"tenant": "acme"}));
    let got = clients
        .meta
        .send("px_1", "EAAB_secret", &[event])
        .await
        .unwrap();
    assert_eq!(got.events_received, 1);
    let sent = &server.requests_to("POST", &path)[0];
    assert_eq!(sent.query, None, "no token in the URL");
    let body = sent.json();
    assert_eq!(body["access_token"], "EAAB_secret");
    assert_eq!(
        body["data"][0]["user_data"]["em"][0],
        hash_email("ada@example.com")
    );
    assert_eq!(body["data"][0]["event_id"], "lead-acme-c1");
    // A refused token is final and never echoed.
    server.on(
        "POST",
        &path,
        Reply::json(
            400,
            &json!({"error": {"message": "Invalid OAuth access token EAAB_secret"}}),
        ),
    );
    let err = clients
        .meta
        .send("px_1", "EAAB_secret", &[])
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("EAAB_secret"), "{err}");
    assert_eq!(engine_verdict(err), Verdict::Final);
}

#[tokio::test]
async fn ga4_purchases_go_to_the_measurement_protocol() {
    let (server, clients) = setup().await;
    let path = format!("{GA4_PREFIX}/mp/collect");
    server.on("POST", &path, Reply::status(204));
    let purchase = Purchase {
        transaction_id: "1001".into(),
        value: 150.0,
        currency: "USD".into(),
        source: Some("instagram".into()),
        medium: None,
        campaign: None,
    };
    clients
        .ga4
        .purchase("G-1", "ga_secret", "v_1", 1_748_859_330_000, &purchase)
        .await
        .unwrap();
    let sent = &server.requests_to("POST", &path)[0];
    assert_eq!(
        sent.query.as_deref(),
        Some("measurement_id=G-1&api_secret=ga_secret")
    );
    let body = sent.json();
    assert_eq!(body["client_id"], "v_1");
    assert_eq!(body["events"][0]["name"], "purchase");
    assert_eq!(body["events"][0]["params"]["transaction_id"], "1001");
    assert!(body["events"][0]["params"].get("medium").is_none());
}

#[tokio::test]
async fn outbound_webhooks_are_signed_and_keep_their_id() {
    let (server, clients) = setup().await;
    server.on("POST", "/hooks/acme", Reply::status(204));
    let url = format!("{}/hooks/acme", server.url());
    let body = r#"{"order":"1001"}"#;
    let delivery = Delivery {
        url: &url,
        secret: "whsec_acme",
        id: "row_1",
        topic: "order.synced",
        body,
        now_ms: 1_748_859_330_000,
    };
    clients.outbound.deliver(&delivery).await.unwrap();
    let sent = &server.requests_to("POST", "/hooks/acme")[0];
    assert_eq!(sent.text(), body);
    assert_eq!(sent.header("hookflow-delivery"), Some("row_1"));
    assert_eq!(sent.header("hookflow-topic"), Some("order.synced"));
    assert_eq!(
        sent.header("hookflow-signature"),
        Some(signature("whsec_acme", 1_748_859_330, body).as_str())
    );
    // A failing endpoint is an error the queue counts; a bad URL is refused.
    server.on("POST", "/hooks/acme", Reply::status(500));
    assert!(clients.outbound.deliver(&delivery).await.is_err());
    let bad = Delivery {
        url: "ftp://x",
        ..delivery
    };
    assert!(clients.outbound.deliver(&bad).await.is_err());
}
