//! Printify: a product, a page of products, an order.

use hookflow::failure::Verdict;
use hookflow_clients::testing::{PRINTIFY_TOKEN, Reply};
use hookflow_clients::{LineItem, NewOrder};
use serde_json::json;

use crate::{engine_verdict, setup};

const PRODUCT: &str = "/printify/v1/shops/815256/products/5d39b159e7c48c000728c89f.json";
const ORDERS: &str = "/printify/v1/shops/815256/orders.json";

fn product_json() -> serde_json::Value {
    json!({
        "id": "5d39b159e7c48c000728c89f", "title": "Mug 11oz", "description": "<p>A mug</p>",
        "visible": true, "tags": ["mug"],
        "variants": [{"id": 17390, "sku": "hookflow-mug-11oz", "price": 1200,
                      "is_enabled": true, "is_available": true, "cost": 500}],
    })
}

#[tokio::test]
async fn a_product_is_read_with_the_token_and_a_gone_one_is_none() {
    let (server, clients) = setup().await;
    server.on("GET", PRODUCT, Reply::json(200, &product_json()));
    let product = clients
        .printify
        .product("815256", "5d39b159e7c48c000728c89f")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(product.title, "Mug 11oz");
    assert_eq!(product.variants[0].sku, "hookflow-mug-11oz");
    assert!(product.variants[0].is_available);
    let bearer = format!("Bearer {PRINTIFY_TOKEN}");
    assert_eq!(
        server.requests_to("GET", PRODUCT)[0].header("authorization"),
        Some(bearer.as_str())
    );

    server.on(
        "GET",
        PRODUCT,
        Reply::json(404, &json!({"error": "Not found"})),
    );
    let gone = clients
        .printify
        .product("815256", "5d39b159e7c48c000728c89f")
        .await
        .unwrap();
    assert_eq!(gone, None);
}

#[tokio::test]
async fn products_are_read_by_page() {
    let (server, clients) = setup().await;
    let path = "/printify/v1/shops/815256/products.json";
    server.on(
        "GET",
        path,
        Reply::json(
            200,
            &json!({"current_page": 2, "last_page": 3, "data": [product_json()]}),
        ),
    );
    let page = clients.printify.products("815256", 2, 50).await.unwrap();
    assert_eq!(
        (page.current_page, page.last_page, page.data.len()),
        (2, 3, 1)
    );
    assert_eq!(
        server.requests_to("GET", path)[0].query.as_deref(),
        Some("page=2&limit=50")
    );
}

#[tokio::test]
async fn an_order_is_created_and_a_rejection_is_final_while_an_outage_is_retried() {
    let (server, clients) = setup().await;
    let order = NewOrder {
        external_id: "ord_1".into(),
        label: "ord_1".into(),
        line_items: vec![LineItem {
            product_id: "p1".into(),
            variant_id: 17390,
            quantity: 2,
        }],
        shipping_method: 1,
        send_shipping_notification: true,
        address_to: json!({"first_name": "Ada", "country": "GB"}),
    };
    server.on(
        "POST",
        ORDERS,
        Reply::json(200, &json!({"id": "5a96f649b2439217d070f507"})),
    );
    let id = clients
        .printify
        .create_order("815256", &order)
        .await
        .unwrap();
    assert_eq!(id, "5a96f649b2439217d070f507");
    let sent = server.requests_to("POST", ORDERS)[0].json();
    assert_eq!(sent["external_id"], "ord_1");
    assert_eq!(
        sent["line_items"],
        json!([{"product_id": "p1", "variant_id": 17390, "quantity": 2}])
    );

    server.on(
        "POST",
        ORDERS,
        Reply::json(422, &json!({"error": "Validation failed"})),
    );
    let rejected = clients
        .printify
        .create_order("815256", &order)
        .await
        .unwrap_err();
    assert_eq!(engine_verdict(rejected), Verdict::Final);
    server.on("POST", ORDERS, Reply::json(503, &json!({})));
    let outage = clients
        .printify
        .create_order("815256", &order)
        .await
        .unwrap_err();
    assert_eq!(engine_verdict(outage), Verdict::Retry);
}
