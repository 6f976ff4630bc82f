//! The merch shop end to end: Clerk users kept as customers, a paid order
//! printed and confirmed, a declined card, Printify refusing an order (stock
//! released, admins alerted), a burst of product updates synced once, the
//! catalog crons, and the housekeeping crons at their times in their zone.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use hookflow::RunStatus;
use hookflow_clients::testing::{PRINTIFY_PREFIX, Reply, SLACK_PATH};
use merch::{
    ARCHIVE, CUSTOMERS, CatalogProduct, Customer, ORDERS, Order, OrderStatus, PRODUCTS, STOCK,
    Stock,
};
use serde_json::{Value, json};

use crate::world::*;

pub async fn clerk_users_are_kept_as_customers_and_soft_deleted<B: Backend>(world: World<B>) {
    world.deliver(USER_CREATED).await;
    let ada: Customer = world
        .get(CUSTOMERS, "user_2hookflowClerkId0001")
        .await
        .unwrap();
    assert_eq!(
        (ada.email.as_deref(), ada.last_name.as_deref()),
        (Some("ada@example.com"), Some("Lovelace"))
    );
    world.deliver(USER_UPDATED).await;
    let ada: Customer = world
        .get(CUSTOMERS, "user_2hookflowClerkId0001")
        .await
        .unwrap();
    assert_eq!(
        (ada.email.as_deref(), ada.last_name.as_deref()),
        (Some("ada.lovelace@example.com"), Some("King"))
    );
    // An older version arriving late changes nothing.
    let late: Value = serde_json::from_str(
        serde_json::from_str::<Value>(USER_CREATED).unwrap()["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    world.send("clerk/user.created", late).await;
    let still: Customer = world
        .get(CUSTOMERS, "user_2hookflowClerkId0001")
        .await
        .unwrap();
    assert_eq!(still, ada);
    world.deliver(USER_DELETED).await;
    let gone: Customer = world
        .get(CUSTOMERS, "user_2hookflowClerkId0001")
        .await
        .unwrap();
    assert!(gone.deleted_at.is_some());
    assert_eq!(gone.email, ada.email, "kept for past orders");
    let outcomes: Vec<String> = world
        .runs_of("sync-user")
        .await
        .into_iter()
        .map(|r| r.output.unwrap()["outcome"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort();
    assert_eq!(sorted, ["created", "deleted", "stale", "updated"]);
}

pub async fn a_paid_order_is_printed_and_confirmed<B: Backend>(world: World<B>) {
    world.seed_orders().await;
    // WHEN Stripe says the payment went through
    world.deliver(PAID).await;
    // THEN the order is paid, fulfilled through Printify and confirmed
    let run = world.only("process-order").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let order = world.order("ord_1001").await;
    assert_eq!(order.status, OrderStatus::Fulfilling);
    assert_eq!(order.printify_order_id.as_deref(), Some("pf_order_1"));
    assert_eq!(
        order.payment_intent_id.as_deref(),
        Some("pi_3RhookflowMerch0001")
    );
    let sent = world.server.requests_to("POST", &orders_path());
    assert_eq!(sent.len(), 1);
    let body = sent[0].json();
    assert_eq!(body["external_id"], "ord_1001");
    assert_eq!(
        body["line_items"],
        json!([{"product_id": MUG, "variant_id": 17390, "quantity": 2}])
    );
    // AND the 2 mugs left stock for good (no hold left behind)
    let stock = world.stock().await;
    assert_eq!((stock.on_hand, stock.holds.len()), (8, 0));
    let emails = world.server.requests_to("POST", &email_path());
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].json()["To"], "ada@example.com");
    assert!(order.confirmed_at.is_some());
    // WHEN Stripe redelivers, nothing happens twice
    world.deliver(PAID).await;
    assert_eq!(world.runs_of("process-order").await.len(), 1);
    // WHEN an operator replays the payment and the fulfilment
    let paid = world.only("handle-payment").await;
    world.env.engine().replay(&paid.id).await.unwrap();
    world.env.engine().replay(&run.id).await.unwrap();
    world.env.settle().await;
    // THEN no second Printify order, email, or stock taken
    assert_eq!(world.runs_of("handle-payment").await.len(), 2);
    assert_eq!(world.server.requests_to("POST", &orders_path()).len(), 1);
    assert_eq!(world.server.requests_to("POST", &email_path()).len(), 1);
    assert_eq!(world.stock().await.on_hand, 8);
}

pub async fn a_declined_card_fails_the_order_and_starts_no_fulfilment<B: Backend>(world: World<B>) {
    world.seed_orders().await;
    world.deliver(DECLINED).await;
    let order = world.order("ord_1002").await;
    assert_eq!(order.status, OrderStatus::PaymentFailed);
    assert_eq!(order.failure.as_deref(), Some("Your card was declined."));
    assert!(world.runs_of("process-order").await.is_empty());
}

pub async fn printify_refusing_an_order_releases_its_stock_and_alerts<B: Backend>(world: World<B>) {
    world.seed_orders().await;
    world.server.on(
        "POST",
        &orders_path(),
        Reply::json(503, &json!({"error": "down"})),
    );
    world.deliver(PAID).await;
    // WHEN Printify stays down through every retry
    world.advance(Duration::from_secs(3600)).await;
    // THEN the stock is released, the order marked, the admins told
    let run = world.only("process-order").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["status"], "fulfillment_failed");
    assert_eq!(
        world.server.requests_to("POST", &orders_path()).len(),
        4,
        "1 + 3 retries"
    );
    assert!(world.stock().await.holds.is_empty());
    let order = world.order("ord_1001").await;
    assert_eq!(order.status, OrderStatus::FulfillmentFailed);
    let alerts = world.server.requests_to("POST", SLACK_PATH);
    assert!(
        alerts.iter().any(|a| a.text().contains("ord_1001")),
        "{alerts:?}"
    );
    assert!(
        world.server.requests_to("POST", &email_path()).is_empty(),
        "no confirmation"
    );
}

pub async fn an_order_short_of_stock_is_not_sent_to_printify<B: Backend>(world: World<B>) {
    world.seed_orders().await;
    // GIVEN ord_1001 also wants a poster (in stock), listed before the mugs,
    // and only 1 mug is left
    let poster = Stock {
        sku: "poster-a2".into(),
        on_hand: 5,
        holds: Default::default(),
        available: true,
    };
    world.put(STOCK, "poster-a2", &poster).await;
    world
        .docs
        .update::<Order, _>(ORDERS, "ord_1001", |o| {
            let mut o = o?;
            let poster = merch::OrderItem {
                product_id: "p_poster".into(),
                variant_id: 1,
                sku: "poster-a2".into(),
                quantity: 1,
            };
            o.items.insert(0, poster);
            Some(o)
        })
        .await
        .unwrap();
    world
        .docs
        .update::<Stock, _>(STOCK, "hookflow-mug-11oz", |s| {
            Some(Stock { on_hand: 1, ..s? })
        })
        .await
        .unwrap();
    world.deliver(PAID).await;
    let order = world.order("ord_1001").await;
    assert_eq!(order.status, OrderStatus::FulfillmentFailed);
    assert_eq!(
        order.failure.as_deref(),
        Some("out of stock: hookflow-mug-11oz")
    );
    assert!(world.server.requests_to("POST", &orders_path()).is_empty());
    // AND the poster held before the mugs failed is free again
    let poster: Stock = world.get(STOCK, "poster-a2").await.unwrap();
    assert!(poster.holds.is_empty(), "{poster:?}");
    assert!(world.stock().await.holds.is_empty());
}

fn mug(available: bool) -> Value {
    json!({"id": MUG, "title": "Mug 11oz", "description": "<p>A mug</p>", "visible": true,
           "variants": [{"id": 17390, "sku": "hookflow-mug-11oz", "price": 1200,
                         "is_enabled": true, "is_available": available}]})
}

pub async fn a_burst_of_product_updates_syncs_once<B: Backend>(world: World<B>) {
    world.seed_orders().await;
    world
        .server
        .on("GET", &product_path(MUG), Reply::json(200, &mug(true)));
    // WHEN Printify sends 20 updates of one product, a second apart
    world.deliver(PUBLISHED).await;
    for _ in 0..19 {
        world.advance(Duration::from_secs(1)).await;
        world
            .send("printify/product:publish:started", json!({"type": "product:publish:started", "resource": {"id": MUG, "type": "product"}}))
            .await;
    }
    world.advance(Duration::from_secs(31)).await;
    // THEN one sync ran, and the catalog has the product
    let synced: Vec<_> = world
        .runs_of("update-printify-products")
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Completed)
        .collect();
    assert_eq!(synced.len(), 1, "{synced:#?}");
    assert_eq!(world.server.requests_to("GET", &product_path(MUG)).len(), 1);
    let product: CatalogProduct = world.get(PRODUCTS, MUG).await.unwrap();
    assert_eq!(
        (product.title.as_str(), product.variants.len()),
        ("Mug 11oz", 1)
    );
    // AND a deleted product is marked deleted, not removed
    let gone = "5d39b159e7c48c000728c8aa";
    world
        .put(
            PRODUCTS,
            gone,
            &CatalogProduct {
                id: gone.into(),
                deleted_at: None,
                ..product.clone()
            },
        )
        .await;
    world.deliver(PRODUCT_DELETED).await;
    world.advance(Duration::from_secs(31)).await;
    let deleted: CatalogProduct = world.get(PRODUCTS, gone).await.unwrap();
    assert!(deleted.deleted_at.is_some() && !deleted.visible);
}

pub async fn the_catalog_crons_import_and_mark_availability<B: Backend>(world: World<B>) {
    world.seed_orders().await;
    let page = |n: u32, ids: &[&str]| {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "title": id, "visible": true, "variants": []}))
            .collect();
        Reply::json(
            200,
            &json!({"current_page": n, "last_page": 2, "data": data}),
        )
    };
    let list = format!("{PRINTIFY_PREFIX}/shops/{SHOP}/products.json");
    world
        .server
        .on_sequence("GET", &list, [page(1, &["p_a", "p_b"]), page(2, &["p_c"])]);
    world
        .env
        .tick("weekly-product-update", world.now_ms())
        .await;
    let run = world.only("weekly-product-update").await;
    assert_eq!(
        run.output,
        Some(json!({"pages": 2, "products": 3})),
        "{run:#?}"
    );
    for id in ["p_a", "p_b", "p_c"] {
        assert!(
            world.get::<CatalogProduct>(PRODUCTS, id).await.is_some(),
            "{id}"
        );
    }
    // The mug's only variant can no longer be produced: its stock says so.
    world
        .put(
            PRODUCTS,
            MUG,
            &merch::catalog::entry(&serde_json::from_value(mug(true)).unwrap(), 0),
        )
        .await;
    world
        .server
        .on("GET", &product_path(MUG), Reply::json(200, &mug(false)));
    for id in ["p_a", "p_b", "p_c"] {
        world.server.on(
            "GET",
            &product_path(id),
            Reply::json(200, &json!({"id": id, "title": id, "visible": true})),
        );
    }
    world.env.tick("daily-inventory-sync", world.now_ms()).await;
    let run = world.only("daily-inventory-sync").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert!(!world.stock().await.available);
}

pub async fn the_housekeeping_crons_abandon_and_archive_by_the_tick<B: Backend>(world: World<B>) {
    let now = world.now_ms();
    let day = 24 * 3600 * 1000;
    // The tick is 6 days ahead of the clock: what is due is decided by it.
    let tick = now + 6 * day;
    // GIVEN unpaid orders 2 days and 0 days old, an order shipped 100 days
    // before the tick, and a failed order still holding a mug
    world
        .put(
            ORDERS,
            "ord_old",
            &merch_order("ord_old", OrderStatus::Pending, now - 2 * day),
        )
        .await;
    world
        .put(
            ORDERS,
            "ord_new",
            &merch_order("ord_new", OrderStatus::Pending, now),
        )
        .await;
    world
        .put(
            ORDERS,
            "ord_done",
            &merch_order("ord_done", OrderStatus::Fulfilling, tick - 100 * day),
        )
        .await;
    world
        .put(
            ORDERS,
            "ord_failed",
            &merch_order("ord_failed", OrderStatus::FulfillmentFailed, now),
        )
        .await;
    let held = Stock {
        sku: "hookflow-mug-11oz".into(),
        on_hand: 10,
        holds: [("ord_failed".to_owned(), 1)].into(),
        available: true,
    };
    world.put(STOCK, "hookflow-mug-11oz", &held).await;
    world.env.tick("cleanup-old-data", tick).await;
    assert_eq!(
        world.order("ord_old").await.status,
        OrderStatus::Abandoned,
        "8 days old at the tick"
    );
    assert_eq!(
        world.order("ord_new").await.status,
        OrderStatus::Pending,
        "6 days old at the tick"
    );
    assert!(
        world.stock().await.holds.is_empty(),
        "the failed order's hold is released"
    );
    world.env.tick("monthly-archive", tick).await;
    assert!(world.get::<Order>(ORDERS, "ord_done").await.is_none());
    assert!(world.get::<Order>(ARCHIVE, "ord_done").await.is_some());
    assert!(
        world.get::<Order>(ORDERS, "ord_old").await.is_some(),
        "abandoned just now: kept"
    );
}

fn merch_order(id: &str, status: OrderStatus, at: i64) -> Order {
    Order {
        status,
        ..order(id, 1, at)
    }
}

/// Each cron's next firing after 2025-06-01 (a Sunday) 00:00 UTC, in New
/// York time (EDT, UTC-4), from the registry's definitions (the deployed
/// schedules take the same zone from `MerchTimeZone`: `hookflow template`).
pub async fn every_cron_is_due_at_its_time_in_its_zone<B: Backend>(world: World<B>) {
    let registry = world.env.engine().registry();
    let start = Utc
        .with_ymd_and_hms(2025, 6, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let next = |id: &str| {
        let at = registry.get(id).unwrap().next_cron_after(start).unwrap();
        chrono::DateTime::from_timestamp_millis(at)
            .unwrap()
            .to_rfc3339()
    };
    assert_eq!(next("daily-inventory-sync"), "2025-06-01T06:00:00+00:00"); // 02:00 EDT
    assert_eq!(next("cleanup-old-data"), "2025-06-01T08:00:00+00:00"); // Sunday 04:00 EDT
    assert_eq!(next("weekly-product-update"), "2025-06-02T07:00:00+00:00"); // Monday 03:00 EDT
    assert_eq!(next("monthly-archive"), "2025-06-01T09:00:00+00:00"); // the 1st, 05:00 EDT
}

/// On SQLite the engine fires crons itself: moving the fake clock past
/// Sunday 04:00 in New York (08:00 UTC) starts the cleanup at that instant.
pub async fn the_cleanup_cron_fires_at_four_on_sunday_new_york_time(
    world: World<hookflow_embedded::testing::TestEnv>,
) {
    // As `hookflow dev` does when it starts.
    world.env.engine().schedule_crons().await.unwrap();
    let sunday = Utc
        .with_ymd_and_hms(2025, 6, 8, 8, 0, 0)
        .unwrap()
        .timestamp_millis();
    world
        .advance(Duration::from_millis(
            u64::try_from(sunday - world.now_ms() - 60_000).unwrap(),
        ))
        .await;
    assert!(
        world.runs_of("cleanup-old-data").await.is_empty(),
        "not a minute early"
    );
    world.advance(Duration::from_secs(120)).await;
    let run = world.only("cleanup-old-data").await;
    assert_eq!(run.event.ts, sunday);
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
}
