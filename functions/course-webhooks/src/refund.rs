//! `course-refund`: `stripe/charge.refunded` for a course charge
//! (`metadata.productId` set on the payment intent, which Stripe copies to
//! the charge) → the purchase marked `Refunded` and `stripe/refund-processed`
//! (`stripeChargeId`, `paymentIntentId`, `purchaseId`) for
//! `refund-remove-calendar` and any other refund work.
//!
//! A partial refund leaves the purchase as it is; a charge with no recorded
//! purchase is skipped (it was not sold through
//! the course storefront's checkout). Marking is idempotent and the emitted
//! event's id is derived from the charge.

use course::{PURCHASES, PURCHASES_BY_PAYMENT, PaymentLink, Purchase, PurchaseStatus};
use hookflow::{Ctx, Event, Function, NonRetriable};
use hookflow_clients::Services;
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "course-refund";
/// The webhook event.
pub const TRIGGER: &str = "stripe/charge.refunded";
/// Only charges of the course storefront.
pub const COURSE_CHARGE: &str = "event.data.data.object.metadata.productId != ''";
/// The event it emits.
pub const REFUND_PROCESSED: &str = "stripe/refund-processed";

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Record a course refund"))
        .on_event_if(TRIGGER, COURSE_CHARGE)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { refund(&services, ctx).await }
        })
}

async fn refund(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let charge = &ctx.event.data["data"]["object"];
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let charge_id = text(&charge["id"]).ok_or_else(|| NonRetriable::new("charge id missing"))?;
    if charge["refunded"] != true {
        return Ok(json!({ "skipped": "partial refund: the purchase stands" }));
    }
    let Some(intent) = text(&charge["payment_intent"]) else {
        return Ok(json!({ "skipped": "charge has no payment intent" }));
    };
    let (docs, by) = (services.docs.clone(), intent.clone());
    let purchase_id: Option<String> = ctx
        .step
        .run("mark-purchase-refunded", move || async move {
            let Some((link, _)) = docs.get::<PaymentLink>(PURCHASES_BY_PAYMENT, &by).await? else {
                return Ok(None);
            };
            docs.update::<Purchase, _>(PURCHASES, &link.purchase_id, |current| {
                let mut purchase = current?;
                (purchase.status != PurchaseStatus::Refunded).then(|| {
                    purchase.status = PurchaseStatus::Refunded;
                    purchase
                })
            })
            .await?;
            Ok(Some(link.purchase_id))
        })
        .await?;
    let Some(purchase_id) = purchase_id else {
        return Ok(json!({ "skipped": "no purchase for this payment" }));
    };
    let processed = Event::new(
        REFUND_PROCESSED,
        json!({ "stripeChargeId": charge_id, "paymentIntentId": intent, "purchaseId": purchase_id }),
    )
    .with_id(format!("refund-processed-{charge_id}"));
    ctx.step
        .send_event("emit-refund-processed", [processed])
        .await?;
    Ok(json!({ "purchaseId": purchase_id, "stripeChargeId": charge_id }))
}
