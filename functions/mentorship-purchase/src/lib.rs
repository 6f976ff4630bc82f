//! `mentorship-purchase`: the mentorship marketplace's entry point.
//!
//! On `stripe/checkout.session.completed` (only sessions whose metadata names a
//! `packId`) and on `paypal/PAYMENT.CAPTURE.COMPLETED`: validate the payment
//! and normalize it into one [`PURCHASE`] event ([`Purchase`]: `clerkId`,
//! `orderId`, `packId`, `provider`) for `create-session-pack`.
//!
//! Invariants: the emitted event's id is derived from the provider and the
//! order id ([`purchase_event_id`]), so a redelivered webhook or a replayed run
//! never emits a second purchase; a payment that cannot become a purchase fails
//! at once (not retried), naming the field.

use hookflow::{Event, Failure, Function};
use hookflow_clients::Services;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "mentorship-purchase";
/// The Stripe trigger (filtered by [`STRIPE_HAS_PACK`]).
pub const STRIPE_TRIGGER: &str = "stripe/checkout.session.completed";
/// Only Checkout Sessions buying a pack are mentorship purchases.
pub const STRIPE_HAS_PACK: &str = "event.data.data.object.metadata.packId != ''";
/// The PayPal trigger.
pub const PAYPAL_TRIGGER: &str = "paypal/PAYMENT.CAPTURE.COMPLETED";
/// The event it emits (data: a [`Purchase`]).
pub const PURCHASE: &str = "purchase/mentorship";

/// Who took the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// A Stripe Checkout Session.
    Stripe,
    /// A PayPal capture.
    Paypal,
}

impl Provider {
    /// The lowercase name used in ids.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Paypal => "paypal",
        }
    }
}

/// A paid mentorship pack, whichever provider took the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// The buyer's Clerk user id.
    pub clerk_id: String,
    /// The provider's order id: the Checkout Session id (`cs_...`) or the
    /// PayPal order id (the capture id when PayPal names no order).
    pub order_id: String,
    /// The pack bought.
    pub pack_id: String,
    /// Who took the payment.
    pub provider: Provider,
}

/// A payment that cannot become a purchase (not retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} payment `{payment}`: {problem}")]
pub struct InvalidPurchase {
    /// `stripe` or `paypal`.
    pub provider: &'static str,
    /// The session or capture id (or `?`).
    pub payment: String,
    /// What is wrong, naming the field.
    pub problem: String,
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Purchase {
    /// The purchase a `stripe/checkout.session.completed` event's data
    /// describes, or `None` when the session is not paid yet.
    ///
    /// # Errors
    /// [`InvalidPurchase`] naming the missing field.
    pub fn from_stripe(data: &Value) -> Result<Option<Self>, InvalidPurchase> {
        let session = &data["data"]["object"];
        let order_id = text(&session["id"]);
        let fail = |problem: String| InvalidPurchase {
            provider: Provider::Stripe.as_str(),
            payment: order_id.clone().unwrap_or_else(|| "?".into()),
            problem,
        };
        let Some(order_id) = order_id.clone() else {
            return Err(fail("`id` is missing".into()));
        };
        if session["payment_status"].as_str() != Some("paid") {
            return Ok(None);
        }
        let meta = &session["metadata"];
        let clerk_id = text(&meta["clerkId"])
            .or_else(|| text(&session["client_reference_id"]))
            .ok_or_else(|| fail("metadata.clerkId is missing or empty".into()))?;
        let pack_id = text(&meta["packId"])
            .ok_or_else(|| fail("metadata.packId is missing or empty".into()))?;
        Ok(Some(Self {
            clerk_id,
            order_id,
            pack_id,
            provider: Provider::Stripe,
        }))
    }

    /// The purchase a `paypal/PAYMENT.CAPTURE.COMPLETED` event's data
    /// describes; `resource.custom_id` is the JSON `{"clerkId", "packId"}` the
    /// storefront set on the order.
    ///
    /// # Errors
    /// [`InvalidPurchase`] naming the missing or malformed field.
    pub fn from_paypal(data: &Value) -> Result<Self, InvalidPurchase> {
        let capture = &data["resource"];
        let capture_id = text(&capture["id"]);
        let fail = |problem: String| InvalidPurchase {
            provider: Provider::Paypal.as_str(),
            payment: capture_id.clone().unwrap_or_else(|| "?".into()),
            problem,
        };
        let Some(capture_id) = capture_id.clone() else {
            return Err(fail("resource.id is missing".into()));
        };
        let status = capture["status"].as_str().unwrap_or("?");
        if status != "COMPLETED" {
            return Err(fail(format!(
                "resource.status is `{status}`, not COMPLETED"
            )));
        }
        let custom = text(&capture["custom_id"])
            .ok_or_else(|| fail("resource.custom_id is missing".into()))?;
        let custom: Value = serde_json::from_str(&custom).map_err(|e| {
            fail(format!(
                "resource.custom_id is not JSON {{\"clerkId\", \"packId\"}}: {e}"
            ))
        })?;
        let field = |key: &str| {
            text(&custom[key])
                .ok_or_else(|| fail(format!("resource.custom_id.{key} is missing or empty")))
        };
        let clerk_id = field("clerkId")?;
        let pack_id = field("packId")?;
        let order_id =
            text(&capture["supplementary_data"]["related_ids"]["order_id"]).unwrap_or(capture_id);
        Ok(Self {
            clerk_id,
            order_id,
            pack_id,
            provider: Provider::Paypal,
        })
    }
}

/// The id of the [`PURCHASE`] event for an order: one per provider and order.
#[must_use]
pub fn purchase_event_id(provider: Provider, order_id: &str) -> String {
    format!("purchase-mentorship-{}-{order_id}", provider.as_str())
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    services
        .alert_on_failure(Function::new(ID).name("Normalize a mentorship purchase"))
        .on_event_if(STRIPE_TRIGGER, STRIPE_HAS_PACK)
        .on_event(PAYPAL_TRIGGER)
        .handler(|ctx| async move {
            let name = ctx.event.name.clone();
            let data = ctx.event.data.clone();
            let purchase: Option<Purchase> = ctx
                .step
                .run("validate-purchase", || async move {
                    if name == PAYPAL_TRIGGER {
                        Purchase::from_paypal(&data).map(Some).non_retriable()
                    } else {
                        Purchase::from_stripe(&data).non_retriable()
                    }
                })
                .await?;
            let Some(purchase) = purchase else {
                return Ok(json!({ "skipped": "session not paid" }));
            };
            let event = Event::new(PURCHASE, serde_json::to_value(&purchase)?)
                .with_id(purchase_event_id(purchase.provider, &purchase.order_id));
            ctx.step.send_event("emit-purchase", [event]).await?;
            Ok(json!({ "order_id": purchase.order_id, "provider": purchase.provider }))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(sample: &str) -> Value {
        let sample: Value = serde_json::from_str(sample).unwrap();
        serde_json::from_str(sample["body"].as_str().unwrap()).unwrap()
    }

    fn stripe() -> Value {
        body(include_str!(
            "../../../events/webhook-stripe-checkout-session-completed.json"
        ))
    }

    fn paypal() -> Value {
        body(include_str!(
            "../../../events/webhook-paypal-payment-capture-completed.json"
        ))
    }

    #[test]
    fn the_stripe_sample_is_a_purchase() {
        let purchase = Purchase::from_stripe(&stripe()).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&purchase).unwrap(),
            json!({
                "clerkId": "user_2hookflowClerkId0001",
                "orderId": "cs_test_a1hookflowCheckoutSession0001",
                "packId": "pack_3_sessions",
                "provider": "stripe",
            })
        );
    }

    #[test]
    fn the_paypal_sample_is_a_purchase() {
        let purchase = Purchase::from_paypal(&paypal()).unwrap();
        assert_eq!(
            serde_json::to_value(&purchase).unwrap(),
            json!({
                "clerkId": "user_2hookflowClerkId0001",
                "orderId": "5O190127TN364715T",
                "packId": "pack_3_sessions",
                "provider": "paypal",
            })
        );
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut data = stripe();
        data["data"]["object"]["metadata"]["packId"] = json!(" ");
        let err = Purchase::from_stripe(&data).unwrap_err().to_string();
        assert!(
            err.contains("metadata.packId") && err.contains("cs_test_"),
            "{err}"
        );

        for (custom, expect) in [
            (json!("not json"), "resource.custom_id is not JSON"),
            (json!("{\"packId\":\"p\"}"), "resource.custom_id.clerkId"),
            (Value::Null, "resource.custom_id is missing"),
        ] {
            let mut data = paypal();
            data["resource"]["custom_id"] = custom;
            let err = Purchase::from_paypal(&data).unwrap_err().to_string();
            assert!(
                err.contains(expect) && err.contains("2HK12345AB678901C"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unpaid_session_is_skipped() {
        let mut data = stripe();
        data["data"]["object"]["payment_status"] = json!("unpaid");
        assert_eq!(Purchase::from_stripe(&data).unwrap(), None);
    }
}
