//! `handle-payment`: Stripe's word on an order's payment.
//!
//! On `stripe/payment_intent.succeeded` or `stripe/payment_intent.payment_failed`
//! whose payment intent names the order (`metadata.orderId`, set by the
//! storefront): mark the order `paid` (from `pending`, `payment_failed`: a
//! second attempt may succeed, or `abandoned`: a late payment) and emit
//! `order/paid` for `process-order` (again if the order is already paid by
//! this intent: a re-run after the write must not lose the event), or
//! mark it `payment_failed` (from `pending` only). An unknown order fails at
//! once; an order already past payment is left alone. The emitted event's id
//! is derived from the order, so a redelivery starts no second fulfilment.

use hookflow::{Event, Function, NonRetriable};
use hookflow_clients::Services;
use serde_json::{Value, json};

use crate::records::{ORDERS, Order, OrderStatus};

/// The function id.
pub const ID: &str = "handle-payment";
/// The payment went through.
pub const SUCCEEDED: &str = "stripe/payment_intent.succeeded";
/// The payment failed.
pub const FAILED: &str = "stripe/payment_intent.payment_failed";
/// Only the shop's payment intents.
pub const SHOP_PAYMENT: &str = "event.data.data.object.metadata.orderId != ''";
/// Emitted once an order is paid.
pub const ORDER_PAID: &str = "order/paid";

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let docs = services.docs.clone();
    services
        .alert_on_failure(Function::new(ID).name("Record an order's payment"))
        .on_event_if(SUCCEEDED, SHOP_PAYMENT)
        .on_event_if(FAILED, SHOP_PAYMENT)
        .retries(3)
        .handler(move |ctx| {
            let docs = docs.clone();
            async move {
                let intent = &ctx.event.data["data"]["object"];
                let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                let (order_id, intent_id) =
                    (text(&intent["metadata"]["orderId"]), text(&intent["id"]));
                let paid = ctx.event.name == SUCCEEDED;
                let failure = text(&intent["last_payment_error"]["message"]);
                let now = ctx.event.ts;
                let key = order_id.clone();
                let moved: bool = ctx
                    .step
                    .run(
                        if paid {
                            "mark-order-paid"
                        } else {
                            "mark-order-failed"
                        },
                        move || async move {
                            let mut found = false;
                            let moved = docs
                                .update_with::<Order, _, _>(ORDERS, &key, |stored| {
                                    let Some(mut order) = stored else {
                                        return (None, false);
                                    };
                                    found = true;
                                    let from = order.status;
                                    // Already paid by this intent: a re-run of this step
                                    // (its first run wrote, then the run stopped before
                                    // the event went out) must still emit `order/paid`.
                                    if paid
                                        && from == OrderStatus::Paid
                                        && order.payment_intent_id.as_deref()
                                            == Some(intent_id.as_str())
                                    {
                                        return (None, true);
                                    }
                                    let to = match (paid, from) {
                                        // A late payment revives an abandoned order.
                                        (
                                            true,
                                            OrderStatus::Pending
                                            | OrderStatus::PaymentFailed
                                            | OrderStatus::Abandoned,
                                        ) => OrderStatus::Paid,
                                        (false, OrderStatus::Pending) => OrderStatus::PaymentFailed,
                                        _ => return (None, false),
                                    };
                                    order.status = to;
                                    order.payment_intent_id = Some(intent_id.clone());
                                    order.failure =
                                        (!paid).then(|| failure.clone()).filter(|f| !f.is_empty());
                                    order.updated_at = now;
                                    (Some(order), true)
                                })
                                .await?;
                            if !found {
                                return Err(
                                    NonRetriable::new(format!("Order {key} not found")).into()
                                );
                            }
                            Ok(moved)
                        },
                    )
                    .await?;
                if moved && paid {
                    let event = Event::new(ORDER_PAID, json!({ "orderId": order_id }))
                        .with_id(format!("order-paid-{order_id}"));
                    ctx.step.send_event("emit-order-paid", [event]).await?;
                }
                Ok(json!({ "orderId": order_id, "paid": paid, "changed": moved }))
            }
        })
}
