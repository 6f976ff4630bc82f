//! `process-order`: a paid order fulfilled through Printify.
//!
//! On `order/paid` (`orderId`; one run per order, and one at a time per
//! order, replays included):
//! 1. `load-order`: `paid` or `submitting` goes on; `fulfilling` without a
//!    confirmation goes straight to the email; anything else is skipped;
//! 2. `reserve-stock`: one hold per SKU under the order's id (a SKU without
//!    a stock record is print-on-demand without a cap); a SKU short of stock
//!    releases what was held, marks the order `fulfillment_failed` and alerts;
//! 3. `submit-to-printify` (retried with backoff): takes charge of the order
//!    (`paid` → `submitting`), creates the Printify order and records its id
//!    with `fulfilling`; a re-run that finds the id recorded creates nothing.
//!    Printify still refusing after the retries: `release-stock`,
//!    `mark-fulfillment-failed`, `alert-admin` (Slack), and the run ends;
//! 4. `commit-stock`: the held units leave `onHand`, the holds go;
//! 5. `email-confirmation` (Postmark), recorded as `confirmedAt`.
//!
//! Unset `PRINTIFY_API_TOKEN`, `PRINTIFY_SHOP_ID`, `POSTMARK_SERVER_TOKEN` or
//! `EMAIL_FROM` fails the run before any step (the order stays `paid`; set it
//! and replay).
//!
//! Invariants: holds are keyed by order, so a retried or replayed reservation
//! holds nothing twice and a release or commit touches only this order's
//! units. Printify has no idempotency key: only a crash (or a lost answer)
//! between Printify accepting the order and `submit-to-printify` recording
//! its id can create a second one, which Printify shows under the same
//! `external_id`.

use hookflow::{Concurrency, Ctx, Function, NonRetriable};
use hookflow_clients::{Email, EmailClient, LineItem, NewOrder, PrintifyClient, Services};
use hookflow_docs::DocStore;
use serde_json::{Value, json};

use crate::payments::ORDER_PAID;
use crate::records::{ORDERS, Order, OrderItem, OrderStatus, STOCK, Stock};

/// The function id.
pub const ID: &str = "process-order";
/// One run per order.
pub const ONE_RUN_PER_ORDER: &str = "event.data.orderId";

/// Holds `items` for `order_id`; `Ok(Some(sku))` names the first SKU short
/// of stock (nothing is left held then).
///
/// # Errors
/// Store failures.
pub async fn reserve(
    docs: &DocStore,
    order_id: &str,
    items: &[OrderItem],
) -> anyhow::Result<Option<String>> {
    for item in items {
        let held = docs
            .update_with::<Stock, _, _>(STOCK, &item.sku, |stock| {
                let Some(mut stock) = stock else {
                    return (None, true);
                };
                if stock.holds.contains_key(order_id) {
                    return (None, true);
                }
                if !stock.available || stock.free() < item.quantity {
                    return (None, false);
                }
                stock.holds.insert(order_id.to_owned(), item.quantity);
                (Some(stock), true)
            })
            .await?;
        if !held {
            release(docs, order_id, items).await?;
            return Ok(Some(item.sku.clone()));
        }
    }
    Ok(None)
}

/// Frees what `order_id` holds of `items`' SKUs.
///
/// # Errors
/// Store failures.
pub async fn release(docs: &DocStore, order_id: &str, items: &[OrderItem]) -> anyhow::Result<()> {
    for item in items {
        docs.update::<Stock, _>(STOCK, &item.sku, |stock| {
            let mut stock = stock?;
            stock.holds.remove(order_id)?;
            Some(stock)
        })
        .await?;
    }
    Ok(())
}

/// Turns `order_id`'s holds into sold units: each held quantity leaves
/// `onHand` and the hold goes (a second call finds no hold: no change).
///
/// # Errors
/// Store failures.
pub async fn commit(docs: &DocStore, order_id: &str, items: &[OrderItem]) -> anyhow::Result<()> {
    for item in items {
        docs.update::<Stock, _>(STOCK, &item.sku, |stock| {
            let mut stock = stock?;
            let held = stock.holds.remove(order_id)?;
            stock.on_hand = stock.on_hand.saturating_sub(held);
            Some(stock)
        })
        .await?;
    }
    Ok(())
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Fulfil a paid order").reads_env([
            "PRINTIFY_API_TOKEN",
            "PRINTIFY_SHOP_ID",
            "POSTMARK_SERVER_TOKEN",
            "EMAIL_FROM",
        ]))
        .on_event(ORDER_PAID)
        .idempotency(ONE_RUN_PER_ORDER)
        .concurrency(Concurrency::new(1).key(ONE_RUN_PER_ORDER))
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { fulfil(&services, ctx).await }
        })
}

async fn set_status(
    ctx: &Ctx,
    docs: &DocStore,
    step: &str,
    order_id: &str,
    change: impl Fn(&mut Order) + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let (docs, key) = (docs.clone(), order_id.to_owned());
    ctx.step
        .run(step, move || async move {
            let now = docs.now_ms();
            docs.update::<Order, _>(ORDERS, &key, |order| {
                let mut order = order?;
                change(&mut order);
                order.updated_at = now;
                Some(order)
            })
            .await?;
            Ok(())
        })
        .await?;
    Ok(())
}

async fn alert(ctx: &Ctx, services: &Services, text: String) -> anyhow::Result<()> {
    let slack = services.clients.slack.clone();
    ctx.step
        .run("alert-admin", move || async move {
            Ok(slack.post_message(&text).await?)
        })
        .await?;
    Ok(())
}

/// Marks the order `fulfillment_failed` with `why`, tells the admins
/// `text`, and ends the run with that outcome.
async fn give_up(
    ctx: &Ctx,
    services: &Services,
    order_id: &str,
    why: String,
    text: String,
) -> anyhow::Result<Value> {
    let reason = why.clone();
    set_status(
        ctx,
        &services.docs,
        "mark-fulfillment-failed",
        order_id,
        move |o| {
            o.status = OrderStatus::FulfillmentFailed;
            o.failure = Some(reason.clone());
        },
    )
    .await?;
    alert(ctx, services, text).await?;
    Ok(json!({ "orderId": order_id, "status": OrderStatus::FulfillmentFailed, "failure": why }))
}

async fn fulfil(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let order_id = ctx.event.data["orderId"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| NonRetriable::new("order/paid without orderId"))?
        .to_owned();
    // A configuration mistake fails the run before any step: no stock is
    // held and the order stays `paid` (set the variable and replay), rather
    // than being marked failed as a refusal by Printify would.
    let shop = services.settings.printify_shop_id()?.to_owned();
    for (enabled, var) in [
        (
            services.clients.printify.is_enabled(),
            PrintifyClient::API_TOKEN_VAR,
        ),
        (
            services.clients.email.is_enabled(),
            EmailClient::SERVER_TOKEN_VAR,
        ),
    ] {
        if !enabled {
            return Err(NonRetriable::new(format!("not configured: set {var}")).into());
        }
    }
    let from = services.settings.email_from()?.to_owned();
    let docs = &services.docs;
    let (store, key) = (docs.clone(), order_id.clone());
    let order: Option<Order> = ctx
        .step
        .run("load-order", move || async move {
            Ok(store
                .get::<Order>(ORDERS, &key)
                .await?
                .map(|(order, _)| order))
        })
        .await?;
    let order = order.ok_or_else(|| NonRetriable::new(format!("Order {order_id} not found")))?;
    match order.status {
        OrderStatus::Paid | OrderStatus::Submitting => {}
        OrderStatus::Fulfilling if order.confirmed_at.is_none() => {
            let printify_id = order.printify_order_id.clone().unwrap_or_default();
            confirm(&ctx, services, &order, from).await?;
            return Ok(
                json!({ "orderId": order_id, "status": OrderStatus::Fulfilling, "printifyOrderId": printify_id }),
            );
        }
        status => {
            return Ok(json!({ "orderId": order_id, "skipped": "not paid", "status": status }));
        }
    }

    let (store, id, items) = (docs.clone(), order_id.clone(), order.items.clone());
    let short: Option<String> = ctx
        .step
        .run("reserve-stock", move || async move {
            reserve(&store, &id, &items).await
        })
        .await?;
    if let Some(sku) = short {
        let why = format!("out of stock: {sku}");
        let text = format!(
            ":warning: Order `{order_id}` cannot be fulfilled ({why}): refund or restock it."
        );
        return give_up(&ctx, services, &order_id, why, text).await;
    }

    let printify = services.clients.printify.clone();
    let new_order = NewOrder {
        external_id: order.id.clone(),
        label: order.id.clone(),
        line_items: order
            .items
            .iter()
            .map(|item| LineItem {
                product_id: item.product_id.clone(),
                variant_id: item.variant_id,
                quantity: item.quantity,
            })
            .collect(),
        shipping_method: 1,
        send_shipping_notification: true,
        address_to: order.shipping_address.clone(),
    };
    let (store, key) = (docs.clone(), order_id.clone());
    let submitted = ctx
        .step
        .run("submit-to-printify", move || async move {
            submit(&store, &printify, &shop, &key, &new_order).await
        })
        .await;
    let printify_id = match submitted {
        Ok(id) => id,
        Err(err) => {
            let why = err.to_string();
            let (store, id, items) = (docs.clone(), order_id.clone(), order.items.clone());
            ctx.step
                .run("release-stock", move || async move {
                    release(&store, &id, &items).await
                })
                .await?;
            let text = format!(
                ":rotating_light: Printify refused order `{order_id}` after retries ({why}). Its stock is released; refund or resubmit it."
            );
            return give_up(&ctx, services, &order_id, why, text).await;
        }
    };
    let (store, id, items) = (docs.clone(), order_id.clone(), order.items.clone());
    ctx.step
        .run("commit-stock", move || async move {
            commit(&store, &id, &items).await
        })
        .await?;
    confirm(&ctx, services, &order, from).await?;
    Ok(
        json!({ "orderId": order_id, "status": OrderStatus::Fulfilling, "printifyOrderId": printify_id }),
    )
}

/// Takes charge of the order (`paid` → `submitting`), creates it in Printify
/// and records Printify's id with `fulfilling`; an id already recorded is
/// returned without a second order.
async fn submit(
    docs: &DocStore,
    printify: &PrintifyClient,
    shop: &str,
    order_id: &str,
    new_order: &NewOrder,
) -> anyhow::Result<String> {
    let now = docs.now_ms();
    let claimed = docs
        .update_with::<Order, _, _>(ORDERS, order_id, |order| {
            let Some(mut order) = order else {
                return (None, Err("gone".to_owned()));
            };
            if let Some(id) = &order.printify_order_id {
                return (None, Ok(Some(id.clone())));
            }
            match order.status {
                OrderStatus::Submitting => (None, Ok(None)),
                OrderStatus::Paid => {
                    order.status = OrderStatus::Submitting;
                    order.updated_at = now;
                    (Some(order), Ok(None))
                }
                other => (None, Err(format!("{other:?}"))),
            }
        })
        .await?;
    match claimed {
        Ok(Some(id)) => return Ok(id),
        Ok(None) => {}
        Err(state) => {
            return Err(NonRetriable::new(format!("order {order_id} is {state}, not paid")).into());
        }
    }
    let id = printify.create_order(shop, new_order).await?;
    let recorded = id.clone();
    docs.update::<Order, _>(ORDERS, order_id, |order| {
        let mut order = order?;
        order.status = OrderStatus::Fulfilling;
        order.printify_order_id = Some(recorded.clone());
        order.updated_at = now;
        Some(order)
    })
    .await?;
    Ok(id)
}

/// Emails the confirmation and records when.
async fn confirm(
    ctx: &Ctx,
    services: &Services,
    order: &Order,
    from: String,
) -> anyhow::Result<()> {
    let (client, docs, to, id) = (
        services.clients.email.clone(),
        services.docs.clone(),
        order.email.clone(),
        order.id.clone(),
    );
    let lines: Vec<String> = order
        .items
        .iter()
        .map(|i| format!("{} x {}", i.quantity, i.sku))
        .collect();
    ctx.step
        .run("email-confirmation", move || async move {
            let email = Email {
                from,
                to,
                subject: format!("Order {id} confirmed"),
                text_body: format!(
                    "Thank you! Your order {id} is being printed:\n{}\nYou will get the tracking number when it ships.",
                    lines.join("\n")
                ),
                html_body: None,
                tag: Some("order-confirmation".into()),
            };
            let sent = client.send_email(&email).await?;
            let now = docs.now_ms();
            docs.update::<Order, _>(ORDERS, &id, |order| {
                let mut order = order?;
                order.confirmed_at = Some(now);
                Some(order)
            })
            .await?;
            Ok(sent)
        })
        .await?;
    Ok(())
}
