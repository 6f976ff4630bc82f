//! `record-checkout-payment`: the booking marketplace's entry point.
//!
//! On `stripe/checkout.session.completed` naming a mentor: validate the session (paid, with a
//! payment intent, and metadata naming the mentor, the slot and the customer),
//! record the payment exactly once in the `payments` collection keyed by the
//! Checkout Session id, and emit [`PAYMENT_RECORDED`] for
//! `checkout-side-effects`.
//!
//! Invariants: the payment is written with a conditional create, so a
//! redelivered webhook or a replayed run never writes twice (nor overwrites a
//! status a later step set); the emitted event's id is derived from the session
//! id, so a replay within the 24 h dedupe window starts no second booking.

use chrono::{DateTime, SecondsFormat};
use hookflow::{Event, Failure, Function};
use hookflow_clients::Services;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The event that starts it.
pub const TRIGGER: &str = "stripe/checkout.session.completed";
/// Only the booking storefront's sessions (they name a mentor); the other
/// apps sharing the Stripe account (the course platform) have their own.
pub const BOOKING_SESSION: &str = "event.data.data.object.metadata.mentorId != ''";
/// The event it emits once the payment is recorded (data: a [`Payment`]).
pub const PAYMENT_RECORDED: &str = "checkout/payment.recorded";
/// The document collection payments live in, keyed by Checkout Session id.
pub const PAYMENTS: &str = "payments";

/// The Checkout Session metadata keys the storefront sets.
pub mod metadata {
    /// The mentor booked.
    pub const MENTOR: &str = "mentorId";
    /// The slot's start, RFC 3339.
    pub const SLOT: &str = "slot";
    /// The customer's Clerk user id.
    pub const CUSTOMER: &str = "clerkId";
    /// The customer's email (falls back to `customer_details.email`).
    pub const CUSTOMER_EMAIL: &str = "customerEmail";
    /// The pack bought (optional).
    pub const PACK: &str = "packId";
}

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Recorded; the booking is not made yet.
    Recorded,
    /// The Cal.com booking exists.
    Booked,
    /// The booking failed and the payment was refunded.
    Refunded,
    /// The booking failed and so did the refund: an admin was alerted.
    RefundFailed,
}

/// A paid booking, as stored in [`PAYMENTS`] and carried by [`PAYMENT_RECORDED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The Checkout Session id (`cs_...`): the document key.
    pub session_id: String,
    /// The payment intent (`pi_...`), refunded if the booking fails.
    pub payment_intent: String,
    /// Amount paid, in the currency's smallest unit.
    pub amount_total: i64,
    /// Three-letter ISO currency code, lowercase.
    pub currency: String,
    /// The mentor booked.
    pub mentor_id: String,
    /// The slot's start, RFC 3339 in UTC.
    pub slot: String,
    /// The customer's Clerk user id.
    pub customer_id: String,
    /// The customer's email.
    pub customer_email: String,
    /// The customer's name, if Stripe collected it.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// The pack bought, if any.
    #[serde(default)]
    pub pack_id: Option<String>,
    /// Where it is in its life.
    pub status: PaymentStatus,
    /// The Cal.com booking uid, once booked.
    #[serde(default)]
    pub booking_uid: Option<String>,
    /// The Stripe refund id, once refunded.
    #[serde(default)]
    pub refund_id: Option<String>,
}

/// A completed Checkout Session that cannot become a booking (not retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkout session `{session}`: {problem}")]
pub struct InvalidSession {
    /// The session id (or `?`).
    pub session: String,
    /// What is wrong, naming the field.
    pub problem: String,
}

impl Payment {
    /// The payment a `stripe/checkout.session.completed` event's data
    /// describes, or `None` when the session is not paid yet (an asynchronous
    /// payment method: Stripe sends `checkout.session.async_payment_succeeded`
    /// later).
    ///
    /// # Errors
    /// [`InvalidSession`] naming the missing or malformed field.
    pub fn from_checkout_event(data: &Value) -> Result<Option<Self>, InvalidSession> {
        let session = &data["data"]["object"];
        let session_id = session["id"].as_str().unwrap_or("?").to_owned();
        let fail = |problem: String| InvalidSession {
            session: session_id.clone(),
            problem,
        };
        let text = |value: &Value| {
            value
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if session_id == "?" || session_id.is_empty() {
            return Err(fail("`id` is missing".into()));
        }
        if session["payment_status"].as_str() != Some("paid") {
            return Ok(None);
        }
        let meta = &session["metadata"];
        let field = |key: &str| {
            text(&meta[key]).ok_or_else(|| fail(format!("metadata.{key} is missing or empty")))
        };
        let mentor_id = field(metadata::MENTOR)?;
        let customer_id = field(metadata::CUSTOMER)?;
        let slot = field(metadata::SLOT)?;
        let slot = DateTime::parse_from_rfc3339(&slot)
            .map_err(|e| {
                fail(format!(
                    "metadata.{} `{slot}` is not RFC 3339: {e}",
                    metadata::SLOT
                ))
            })?
            .to_utc()
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let customer_email = text(&meta[metadata::CUSTOMER_EMAIL])
            .or_else(|| text(&session["customer_details"]["email"]))
            .ok_or_else(|| {
                fail("no customer email (metadata.customerEmail or customer_details.email)".into())
            })?;
        let payment_intent = text(&session["payment_intent"])
            .ok_or_else(|| fail("`payment_intent` is missing (needed to refund)".into()))?;
        let amount_total = session["amount_total"]
            .as_i64()
            .ok_or_else(|| fail("`amount_total` is missing".into()))?;
        let currency =
            text(&session["currency"]).ok_or_else(|| fail("`currency` is missing".into()))?;
        Ok(Some(Self {
            session_id,
            payment_intent,
            amount_total,
            currency,
            mentor_id,
            slot,
            customer_id,
            customer_email,
            customer_name: text(&session["customer_details"]["name"]),
            pack_id: text(&meta[metadata::PACK]),
            status: PaymentStatus::Recorded,
            booking_uid: None,
            refund_id: None,
        }))
    }
}

/// The id of the [`PAYMENT_RECORDED`] event for a session: one per session.
#[must_use]
pub fn payment_recorded_id(session_id: &str) -> String {
    format!("payment-recorded-{session_id}")
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let docs = services.docs.clone();
    services
        .alert_on_failure(
            Function::new("record-checkout-payment").name("Record a checkout payment"),
        )
        .on_event_if(TRIGGER, BOOKING_SESSION)
        .handler(move |ctx| {
            let docs = docs.clone();
            async move {
                let data = ctx.event.data.clone();
                let payment: Option<Payment> = ctx
                    .step
                    .run("validate-session", || async move {
                        Payment::from_checkout_event(&data).non_retriable()
                    })
                    .await?;
                let Some(payment) = payment else {
                    return Ok(json!({ "skipped": "session not paid" }));
                };
                let record = payment.clone();
                let created: bool = ctx
                    .step
                    .run("record-payment", || async move {
                        Ok(docs.create(PAYMENTS, &record.session_id, &record).await?)
                    })
                    .await?;
                let event = Event::new(PAYMENT_RECORDED, serde_json::to_value(&payment)?)
                    .with_id(payment_recorded_id(&payment.session_id));
                ctx.step
                    .send_event("emit-payment-recorded", [event])
                    .await?;
                Ok(json!({ "session_id": payment.session_id, "created": created }))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/webhook-stripe-checkout-session-completed.json"
        ))
        .unwrap();
        serde_json::from_str(sample["body"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn the_sample_session_is_a_valid_payment() {
        let payment = Payment::from_checkout_event(&sample()).unwrap().unwrap();
        assert_eq!(payment.session_id, "cs_test_a1hookflowCheckoutSession0001");
        assert_eq!(payment.payment_intent, "pi_3RhookflowPayment0001");
        assert_eq!(payment.mentor_id, "mentor_42");
        assert_eq!(payment.slot, "2025-06-10T15:00:00Z");
        assert_eq!(payment.customer_id, "user_2hookflowClerkId0001");
        assert_eq!(payment.customer_email, "ada@example.com");
        assert_eq!(payment.amount_total, 15000);
        assert_eq!(payment.status, PaymentStatus::Recorded);
    }

    #[test]
    fn invalid_metadata_is_named() {
        for (key, value, expect) in [
            ("mentorId", Value::Null, "metadata.mentorId is missing"),
            ("slot", json!("next tuesday"), "not RFC 3339"),
            ("clerkId", json!(" "), "metadata.clerkId is missing"),
        ] {
            let mut data = sample();
            data["data"]["object"]["metadata"][key] = value;
            let err = Payment::from_checkout_event(&data).unwrap_err();
            assert!(err.to_string().contains(expect), "{err}");
            assert!(
                err.to_string()
                    .contains("cs_test_a1hookflowCheckoutSession0001")
            );
        }
    }

    #[test]
    fn an_unpaid_session_is_skipped() {
        let mut data = sample();
        data["data"]["object"]["payment_status"] = json!("unpaid");
        assert_eq!(Payment::from_checkout_event(&data).unwrap(), None);
    }
}
