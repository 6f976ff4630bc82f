//! Review emails.
//!
//! `send-review-email`, on `review/email.scheduled` (`tenantId`, `orderId`,
//! `sequence`), **throttled to 10 runs per second per tenant**: runs over the
//! limit wait for their turn (none is dropped, unlike a rate limit), so a
//! tenant's burst of deliveries neither trips the email provider's limit nor
//! delays another tenant's emails. Retried 3 times. Resend's own limit is
//! per account (all tenants): raise it to at least 10/s per active tenant,
//! or its 429s are retried after their `Retry-After`, each using a retry.
//! 1. `check-reviewed`: a review of the order ends the run (`skipped`);
//! 2. `get-order` (a cancelled or refunded order ends the run, `skipped`),
//!    `calculate-incentive` (10% off the next order for the first email,
//!    15% for the follow-up, a code per order and sequence);
//! 3. `create-discount`: the code in the tenant's shop (one use, 60 days;
//!    a retry finds it taken and goes on);
//! 4. `send-email` (Resend, idempotency key per order and sequence; a sent
//!    email is recorded, so a replay days later sends nothing);
//! 5. after sequence 1, `schedule-followup`: sequence 2, due **7 days after
//!    the first was due** (the event's `ts`, not the clock, so a retried or
//!    replayed run schedules the same thing).
//!
//! A `review/submitted` for the same tenant and order cancels a run that is
//! waiting (for its throttle turn, or a retry) or running (at its next step).
//! The events themselves are delayed by `ts`: a run exists only once its
//! email is due, so a review submitted earlier is found by `check-reviewed`.
//!
//! `record-review`, on `review/submitted` (`tenantId`, `orderId`,
//! `reviewId`, `rating`): `save-review`, the first review of an order kept.

use std::time::Duration;

use hookflow::{CancelOn, Ctx, Event, Function, Throttle};
use hookflow_clients::shopify::NewDiscountCode;
use hookflow_clients::{ResendEmail, Services, Tenant};
use hookflow_docs::load_required;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::emails::render;
use crate::records::{ORDERS, Order, REVIEW_EMAILS, REVIEWS, Review, ReviewEmail, key};
use crate::{DAY_MS, required, sender, tenant_named};

/// The email function.
pub const SEND_ID: &str = "send-review-email";
/// The recording function.
pub const RECORD_ID: &str = "record-review";
/// A review email is due.
pub const SCHEDULED: &str = "review/email.scheduled";
/// A shopper reviewed an order.
pub const SUBMITTED: &str = "review/submitted";
/// Emails per second per tenant.
pub const PER_SECOND: u32 = 10;
/// The follow-up comes this long after the first email was due.
pub const FOLLOW_UP_MS: i64 = 7 * DAY_MS;
/// How long a review code can be used.
pub const CODE_VALID_MS: i64 = 60 * DAY_MS;
/// The same tenant and order.
pub const SAME_ORDER: &str =
    "event.data.tenantId == async.data.tenantId && event.data.orderId == async.data.orderId";

/// The `review/email.scheduled` event for `sequence`, due at `due` (ms);
/// its id is the order's and sequence's, so it is sent once.
#[must_use]
pub fn scheduled_event(tenant: &str, order_id: &str, sequence: u32, due: i64) -> Event {
    Event::new(
        SCHEDULED,
        json!({"tenantId": tenant, "orderId": order_id, "sequence": sequence}),
    )
    .with_id(format!("review-{tenant}-{order_id}-{sequence}"))
    .with_ts(due)
    .with_tenant(tenant)
}

/// The incentive of an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incentive {
    /// Percent off the next order.
    pub percent_off: u32,
    /// The code.
    pub code: String,
}

/// 10% for the first email, 15% for the follow-up, a code per order and
/// sequence.
#[must_use]
pub fn incentive(order: &Order, sequence: u32) -> Incentive {
    let percent_off = if sequence <= 1 { 10 } else { 15 };
    Incentive {
        percent_off,
        code: format!("THANKS{percent_off}-{}", order.id),
    }
}

/// `send-review-email`.
#[must_use]
pub fn send_function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(SEND_ID).name("Ask for a review").reads_env([
            "COMMERCE_TENANTS",
            "RESEND_API_KEY",
            "EMAIL_FROM",
        ]))
        .on_event(SCHEDULED)
        .throttle(Throttle::new(PER_SECOND, Duration::from_secs(1)).key("event.data.tenantId"))
        .cancel_on(CancelOn::event(SUBMITTED).when(SAME_ORDER))
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { send(&services, ctx).await }
        })
}

async fn send(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let tenant = tenant_named(services, &ctx.event)?.clone();
    let order_id = required(&ctx.event, "orderId")?;
    let sequence = u32::try_from(ctx.event.data["sequence"].as_u64().unwrap_or(1)).unwrap_or(1);
    let from = sender(services, &tenant)?;
    let docs = services.docs.clone();
    let k = key(&tenant.id, &order_id);

    let (d, rk) = (docs.clone(), k.clone());
    let reviewed: bool = ctx
        .step
        .run("check-reviewed", move || async move {
            Ok(d.get::<Review>(REVIEWS, &rk).await?.is_some())
        })
        .await?;
    if reviewed {
        return Ok(json!({"skipped": true, "reason": "already_reviewed", "sequence": sequence}));
    }
    let order: Order = load_required(
        &ctx,
        &docs,
        "get-order",
        (ORDERS, &k),
        &format!("order {order_id} of {} not found", tenant.id),
    )
    .await?;
    let refunded = matches!(
        order.financial_status.as_deref(),
        Some("REFUNDED" | "VOIDED" | "PARTIALLY_REFUNDED")
    );
    if order.cancelled || refunded {
        return Ok(
            json!({"skipped": true, "reason": "cancelled_or_refunded", "sequence": sequence}),
        );
    }
    let o = order.clone();
    let offer: Incentive = ctx
        .step
        .run("calculate-incentive", move || async move {
            Ok(incentive(&o, sequence))
        })
        .await?;
    let Some(to) = order.email.clone() else {
        return Ok(json!({"skipped": true, "reason": "no_email", "sequence": sequence}));
    };
    let shop = services
        .clients
        .shopify
        .shop(&tenant.shop_domain, &tenant.shopify_token)?;
    let (code, percent, starts) = (offer.code.clone(), offer.percent_off, ctx.event.ts);
    ctx.step
        .run("create-discount", move || async move {
            let iso = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            };
            let discount = NewDiscountCode {
                title: &format!("Review thanks {code}"),
                code: &code,
                percentage: f64::from(percent) / 100.0,
                starts_at: &iso(starts),
                ends_at: Some(&iso(starts + CODE_VALID_MS)),
            };
            Ok(shop.create_discount_code(&discount).await?)
        })
        .await?;
    let html = render(
        "review.html",
        json!({
            "first_name": order.first_name, "order": order.name,
            "items": order.lines.iter().map(|l| l.title.clone()).collect::<Vec<_>>(),
            "sequence": sequence, "link": review_link(&tenant, &order.id),
            "percent_off": offer.percent_off, "code": offer.code, "shop": tenant.display_name(),
        }),
    )?;
    let email = ResendEmail {
        from,
        to: vec![to],
        subject: format!("How was your order {}?", order.name),
        html,
        ..ResendEmail::default()
    };
    let (d, resend) = (docs.clone(), services.clients.resend.clone());
    let sent_key = format!("{k}:{sequence}");
    let idempotency = format!("review-{}-{order_id}-{sequence}", tenant.id);
    let o = offer.clone();
    let email_id: String = ctx
        .step
        .run("send-email", move || async move {
            if let Some((sent, _)) = d.get::<ReviewEmail>(REVIEW_EMAILS, &sent_key).await? {
                return Ok(sent.email_id);
            }
            let email_id = resend.send(&email, &idempotency).await?;
            let record = ReviewEmail {
                email_id: email_id.clone(),
                incentive_code: o.code,
                percent_off: o.percent_off,
                sent_at: d.now_ms(),
            };
            d.create(REVIEW_EMAILS, &sent_key, &record).await?;
            Ok(email_id)
        })
        .await?;

    let mut follow_up = Value::Null;
    if sequence == 1 {
        let due = ctx.event.ts + FOLLOW_UP_MS;
        let event = scheduled_event(&tenant.id, &order_id, 2, due);
        ctx.step.send_event("schedule-followup", [event]).await?;
        follow_up = json!(due);
    }
    Ok(
        json!({"sequence": sequence, "emailId": email_id, "incentive": offer, "followUpAt": follow_up}),
    )
}

/// Where the email's button goes: the tenant's `reviewUrl`, else its shop's
/// `/pages/reviews`, with `?order=<id>`.
#[must_use]
pub fn review_link(tenant: &Tenant, order_id: &str) -> String {
    let base = tenant
        .review_url
        .clone()
        .unwrap_or_else(|| format!("https://{}/pages/reviews", tenant.shop_domain));
    let join = if base.contains('?') { '&' } else { '?' };
    format!("{base}{join}order={order_id}")
}

/// `record-review`.
#[must_use]
pub fn record_function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(RECORD_ID)
                .name("Record a review")
                .reads_env(["COMMERCE_TENANTS"]),
        )
        .on_event(SUBMITTED)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let tenant = tenant_named(&services, &ctx.event)?.id.clone();
                let order_id = required(&ctx.event, "orderId")?;
                let review = Review {
                    tenant_id: tenant.clone(),
                    order_id: order_id.clone(),
                    review_id: required(&ctx.event, "reviewId")?,
                    rating: ctx.event.data["rating"]
                        .as_u64()
                        .and_then(|r| u8::try_from(r).ok()),
                    submitted_at: ctx.event.ts,
                };
                let docs = services.docs.clone();
                let first: bool = ctx
                    .step
                    .run("save-review", move || async move {
                        Ok(docs
                            .create(REVIEWS, &key(&tenant, &order_id), &review)
                            .await?)
                    })
                    .await?;
                Ok(json!({"firstReview": first}))
            }
        })
}
