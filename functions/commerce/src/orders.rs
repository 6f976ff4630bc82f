//! `sync-shopify-order`: a shop's order, read back from Shopify and kept.
//!
//! On `shopify/orders/create` and `shopify/orders/updated` (the webhook's
//! tenant is the shop domain; one run at a time per order; retried 3 times):
//! 1. `fetch-order`: the order from that tenant's Shopify Admin API (the
//!    webhook body is not trusted to be current: updates arrive out of
//!    order);
//! 2. `save-order`: upserted under `<tenant>:<order id>`;
//! 3. `process-attribution`: an `attribution/conversion` event (see
//!    [`crate::attribution`]) while the order has no attribution result (its
//!    id is the order's, so a second sync within a day sends nothing new);
//! 4. `credit-creator`, when discount codes were used: the first code that
//!    belongs to a creator earns them their commission on the subtotal, as
//!    one ledger entry per order whichever sync (or replay) writes it;
//! 5. once the order is delivered (every line fulfilled, every shipment
//!    delivered, not cancelled) and no review email is scheduled:
//!    `schedule-review`, a `review/email.scheduled` event (sequence 1) whose
//!    `ts` is **5 days after delivery**, then `mark-review-scheduled` on the
//!    order, so later updates schedule nothing. An order delivered more than
//!    [`REVIEW_TOO_LATE_MS`] before the sync (a shop's history synced at
//!    onboarding) is not asked about;
//! 6. `queue-webhook`: when the tenant has an endpoint, an `order.synced`
//!    delivery for [`crate::webhook_queue`].

use hookflow::{Concurrency, Ctx, Event, Function, NonRetriable};
use hookflow_clients::{Services, ShopifyOrder, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::records::{
    ATTRIBUTION, CREATORS, Creator, DISCOUNT_CODES, LEDGER, LedgerEntry, LedgerKind, Line, ORDERS,
    Order, QueueStatus, QueuedWebhook, WEBHOOK_QUEUE, key,
};
use crate::{DAY_MS, millis, required, tenant_of_shop};

/// The function id.
pub const ID: &str = "sync-shopify-order";
/// A new order.
pub const CREATED: &str = "shopify/orders/create";
/// A changed order (fulfilment, delivery, refund, edit).
pub const UPDATED: &str = "shopify/orders/updated";
/// One run at a time per order of a shop.
pub const ONE_PER_ORDER: &str = "event.tenant + '/' + string(event.data.id)";
/// The review email goes out this long after delivery.
pub const REVIEW_DELAY_MS: i64 = 5 * DAY_MS;
/// Orders delivered longer ago than this when synced get no review email.
pub const REVIEW_TOO_LATE_MS: i64 = 30 * DAY_MS;

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Sync a Shopify order")
                .reads_env(["COMMERCE_TENANTS"]),
        )
        .on_event(CREATED)
        .on_event(UPDATED)
        .concurrency(Concurrency::new(1).key(ONE_PER_ORDER))
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { sync(&services, ctx).await }
        })
}

/// The record of a Shopify order for `tenant`, keeping what the platform
/// added to an earlier version (`existing`).
///
/// # Errors
/// [`NonRetriable`] for a time or amount that does not parse.
pub fn record(
    tenant: &str,
    order: &ShopifyOrder,
    existing: Option<&Order>,
    now: i64,
) -> anyhow::Result<Order> {
    let minor = |money: &hookflow_clients::shopify::Money| {
        money
            .minor_units()
            .ok_or_else(|| NonRetriable::new(format!("bad amount {:?}", money.amount)))
    };
    Ok(Order {
        tenant_id: tenant.to_owned(),
        id: order.legacy_id.clone(),
        name: order.name.clone(),
        email: order
            .email
            .clone()
            .or_else(|| order.customer.as_ref().and_then(|c| c.email.clone())),
        first_name: order.customer.as_ref().and_then(|c| c.first_name.clone()),
        created_at: millis(&order.created_at)?,
        total_cents: minor(&order.total)?,
        subtotal_cents: minor(&order.subtotal)?,
        financial_status: order.financial_status.clone(),
        cancelled: order.cancelled_at.is_some(),
        currency: order.total.currency_code.clone(),
        discount_codes: order.discount_codes.clone(),
        visitor_id: order.attribute("visitorId").map(str::to_owned),
        lines: order
            .line_items
            .iter()
            .map(|l| Line {
                title: l.title.clone(),
                quantity: l.quantity,
                sku: l.sku.clone(),
            })
            .collect(),
        delivered_at: order.delivered_at().map(millis).transpose()?,
        review_scheduled: existing.is_some_and(|o| o.review_scheduled),
        synced_at: now,
    })
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    attributed: bool,
    review_scheduled: bool,
    delivered_at: Option<i64>,
    discount_codes: Vec<String>,
    subtotal_cents: i64,
    currency: String,
}

async fn sync(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let tenant = tenant_of_shop(services, &ctx.event)?.clone();
    let order_id = required(&ctx.event, "id")?;
    let docs = &services.docs;

    let shop = services
        .clients
        .shopify
        .shop(&tenant.shop_domain, &tenant.shopify_token)?;
    let id = order_id.clone();
    let order: ShopifyOrder = ctx
        .step
        .run("fetch-order", move || async move {
            match shop.order(&id).await? {
                Some(order) => Ok(order),
                None => Err(NonRetriable::new(format!("order {id} is not in the shop")).into()),
            }
        })
        .await?;

    let (d, t) = (docs.clone(), tenant.id.clone());
    let saved: Saved = ctx
        .step
        .run("save-order", move || async move {
            let now = d.now_ms();
            let k = key(&t, &order.legacy_id);
            let mut failure = None;
            let written = d
                .update::<Order, _>(ORDERS, &k, |existing| {
                    match record(&t, &order, existing.as_ref(), now) {
                        Ok(next) => Some(next),
                        Err(err) => {
                            failure = Some(err);
                            None
                        }
                    }
                })
                .await?;
            if let Some(err) = failure {
                return Err(err);
            }
            let order = written.ok_or_else(|| anyhow::anyhow!("order not written"))?;
            let attributed = d.get_doc(ATTRIBUTION, &k).await?.is_some();
            Ok(Saved {
                attributed,
                review_scheduled: order.review_scheduled,
                delivered_at: order.delivered_at,
                discount_codes: order.discount_codes,
                subtotal_cents: order.subtotal_cents,
                currency: order.currency,
            })
        })
        .await?;

    if !saved.attributed {
        let conversion = Event::new(
            crate::attribution::CONVERSION,
            json!({"orderId": order_id, "tenantId": tenant.id}),
        )
        .with_id(format!("conversion-{}-{order_id}", tenant.id))
        .with_tenant(tenant.id.clone());
        ctx.step
            .send_event("process-attribution", [conversion])
            .await?;
    }
    let mut credited = Value::Null;
    if !saved.discount_codes.is_empty() {
        credited = credit_creator(&ctx, services, &tenant, &order_id, &saved).await?;
    }
    let mut review = Value::Null;
    if let Some(delivered_at) = saved.delivered_at
        && !saved.review_scheduled
    {
        review = schedule_review(&ctx, services, &tenant, &order_id, delivered_at).await?;
    }

    let mut queued = false;
    if tenant.webhook().is_some() {
        queued = queue_webhook(&ctx, services, &tenant, &order_id).await?;
    }
    Ok(json!({
        "tenantId": tenant.id,
        "orderId": order_id,
        "attributionRequested": !saved.attributed,
        "credited": credited,
        "review": review,
        "webhookQueued": queued,
    }))
}

/// `credit-creator`: the first code that belongs to a creator earns them
/// their commission on the order total, once per order.
async fn credit_creator(
    ctx: &Ctx,
    services: &Services,
    tenant: &Tenant,
    order_id: &str,
    saved: &Saved,
) -> anyhow::Result<Value> {
    let (docs, t, order_id) = (
        services.docs.clone(),
        tenant.id.clone(),
        order_id.to_owned(),
    );
    let (codes, base, currency) = (
        saved.discount_codes.clone(),
        saved.subtotal_cents,
        saved.currency.clone(),
    );
    Ok(ctx
        .step
        .run("credit-creator", move || async move {
            for code in &codes {
                let index = key(&t, &code.to_uppercase());
                let Some((owner, _)) = docs.get::<Value>(DISCOUNT_CODES, &index).await? else {
                    continue;
                };
                let Some(creator_id) = owner["creatorId"].as_str() else {
                    continue;
                };
                let Some((creator, _)) =
                    docs.get::<Creator>(CREATORS, &key(&t, creator_id)).await?
                else {
                    continue;
                };
                let amount = base * i64::from(creator.commission_percent) / 100;
                let entry = LedgerEntry {
                    tenant_id: t.clone(),
                    creator_id: creator.id.clone(),
                    kind: LedgerKind::Commission,
                    amount_cents: amount,
                    currency: currency.clone(),
                    reference: order_id.clone(),
                    at: docs.now_ms(),
                };
                let created = docs
                    .create(LEDGER, &key(&t, &format!("commission:{order_id}")), &entry)
                    .await?;
                return Ok(json!({"creatorId": creator.id, "code": code,
                    "amountCents": amount, "newEntry": created}));
            }
            Ok(Value::Null)
        })
        .await?)
}

/// `schedule-review` and `mark-review-scheduled`: the first review email's
/// event, due 5 days after delivery. The event's id is the order's, so a run
/// that fails between the two steps and is replayed within a day sends
/// nothing twice; after the mark, no sync schedules again.
async fn schedule_review(
    ctx: &Ctx,
    services: &Services,
    tenant: &Tenant,
    order_id: &str,
    delivered_at: i64,
) -> anyhow::Result<Value> {
    let due = delivered_at + REVIEW_DELAY_MS;
    if ctx.event.ts - delivered_at > REVIEW_TOO_LATE_MS {
        return Ok(json!({"scheduled": false, "reason": "delivered_too_long_ago"}));
    }
    let event = crate::reviews::scheduled_event(&tenant.id, order_id, 1, due);
    ctx.step.send_event("schedule-review", [event]).await?;
    let (docs, k) = (services.docs.clone(), key(&tenant.id, order_id));
    ctx.step
        .run("mark-review-scheduled", move || async move {
            docs.update::<Order, _>(ORDERS, &k, |order| {
                let mut order = order?;
                (!order.review_scheduled).then(|| {
                    order.review_scheduled = true;
                    order
                })
            })
            .await?;
            Ok(())
        })
        .await?;
    Ok(json!({"scheduled": true, "dueAt": due}))
}

/// `queue-webhook`: an `order.synced` delivery for the tenant's endpoint,
/// keyed by the triggering event (a retried step queues it once).
async fn queue_webhook(
    ctx: &Ctx,
    services: &Services,
    tenant: &Tenant,
    order_id: &str,
) -> anyhow::Result<bool> {
    let row = QueuedWebhook {
        id: format!("order-synced-{}", ctx.event.id),
        tenant_id: tenant.id.clone(),
        topic: "order.synced".into(),
        payload: json!({"tenantId": tenant.id, "orderId": order_id, "topic": ctx.event.name}),
        status: QueueStatus::Pending,
        attempts: 0,
        next_attempt_at: ctx.event.ts,
        last_error: None,
        created_at: ctx.event.ts,
    };
    let docs = services.docs.clone();
    Ok(ctx
        .step
        .run("queue-webhook", move || async move {
            Ok(docs.create(WEBHOOK_QUEUE, &row.key(), &row).await?)
        })
        .await?)
}
