//! `checkout-side-effects`: everything that follows a recorded payment.
//!
//! On `checkout/payment.recorded` (data: a [`Payment`]), each external call in
//! its own step, retried on its own:
//! 1. `track-payment`: PostHog `payment_recorded`; a failure is logged and the
//!    run goes on (analytics never blocks a booking);
//! 2. `create-booking`: the Cal.com booking for the mentor's slot;
//! 3. booked: `mark-booked`. Booking failed after its retries:
//!    `refund-payment` through Stripe with the step's idempotency key as the
//!    `Idempotency-Key` (a re-run or replay never refunds twice), then
//!    `mark-refunded`; if the refund fails too: `alert-admin` on Slack and
//!    `mark-refund-failed`. Either way `email-customer` (Postmark) says so.
//!
//! Before any step, a missing `BOOKING_CAL_EVENT_TYPE_ID` or `CAL_API_KEY`
//! fails the run at once (the payment stays `recorded`; set it and replay):
//! a configuration mistake never triggers a refund.
//!
//! Invariants: `load-payment` reads the stored payment first and does nothing
//! unless it is still `recorded`, so a second run for the same payment (a
//! replay) books and refunds nothing; the status is written only through
//! steps, so replays read the journal and never the store.

use chrono::{DateTime, Utc};
use hookflow::{Failure, Function, NonRetriable, StepError};
use hookflow_clients::{Attendee, CalClient, CreateBooking, Email, RefundReason, Services};
use record_checkout_payment::{PAYMENT_RECORDED, PAYMENTS, Payment, PaymentStatus};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "checkout-side-effects";

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let handler_services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Checkout side effects").reads_env([
            "STRIPE_API_KEY",
            "CAL_API_KEY",
            "POSTMARK_SERVER_TOKEN",
            "POSTHOG_API_KEY",
            "POSTHOG_HOST",
            "BOOKING_CAL_EVENT_TYPE_ID",
            "BOOKING_TIME_ZONE",
            "EMAIL_FROM",
        ]))
        .on_event(PAYMENT_RECORDED)
        .idempotency("event.data.session_id")
        .handler(move |ctx| run(handler_services.clone(), ctx))
}

async fn run(services: Services, ctx: hookflow::Ctx) -> anyhow::Result<Value> {
    let payment: Payment = serde_json::from_value(ctx.event.data.clone()).non_retriable()?;
    // Configuration errors fail the run before anything happens (never a
    // refund because a variable is unset); set it and replay the run.
    let event_type_id = services.settings.cal_event_type_id()?;
    if !services.clients.cal.is_enabled() {
        return Err(NonRetriable::new(format!(
            "Cal.com is not configured: set {}",
            CalClient::API_KEY_VAR
        ))
        .into());
    }
    let step = &ctx.step;
    let key = payment.session_id.clone();

    let docs = services.docs.clone();
    let stored: Option<PaymentStatus> = step
        .run("load-payment", || async move {
            let found = docs.get::<Payment>(PAYMENTS, &key).await?;
            Ok(found.map(|(payment, _)| payment.status))
        })
        .await?;
    if stored != Some(PaymentStatus::Recorded) {
        return Ok(json!({ "skipped": "payment not in status recorded", "status": stored }));
    }

    track_payment(&services, step, &payment).await;

    let booking = create_booking(&services, step, &payment, event_type_id).await;
    let status = match booking {
        Ok(uid) => {
            let booked = uid.clone();
            set_status(&services, step, "mark-booked", &payment, move |p| {
                p.status = PaymentStatus::Booked;
                p.booking_uid = Some(booked.clone());
            })
            .await?;
            return Ok(json!({ "status": PaymentStatus::Booked, "booking_uid": uid }));
        }
        Err(booking_err) => {
            tracing::warn!(session = %payment.session_id, error = %booking_err, "booking failed: refunding");
            match refund(&services, step, &payment).await {
                Ok(refund_id) => {
                    set_status(&services, step, "mark-refunded", &payment, move |p| {
                        p.status = PaymentStatus::Refunded;
                        p.refund_id = Some(refund_id.clone());
                    })
                    .await?;
                    PaymentStatus::Refunded
                }
                Err(refund_err) => {
                    let slack = services.clients.slack.clone();
                    let text = format!(
                        ":rotating_light: Refund failed for checkout `{}` (payment `{}`, {} {}, run `{}`). \
                         The booking failed ({booking_err}) and the refund failed ({refund_err}): refund by hand.",
                        payment.session_id,
                        payment.payment_intent,
                        payment.amount_total,
                        payment.currency,
                        step.run_id(),
                    );
                    step.run("alert-admin", || async move {
                        Ok(slack.post_message(&text).await?)
                    })
                    .await?;
                    set_status(&services, step, "mark-refund-failed", &payment, |p| {
                        p.status = PaymentStatus::RefundFailed;
                    })
                    .await?;
                    PaymentStatus::RefundFailed
                }
            }
        }
    };
    email_customer(&services, step, &payment, status).await?;
    Ok(json!({ "status": status }))
}

/// PostHog `payment_recorded`; a failure is logged, never propagated.
async fn track_payment(services: &Services, step: &hookflow::Step, payment: &Payment) {
    let posthog = services.clients.posthog.clone();
    let distinct_id = payment.customer_id.clone();
    let properties = json!({
        "session_id": payment.session_id,
        "mentor_id": payment.mentor_id,
        "slot": payment.slot,
        "amount": payment.amount_total,
        "currency": payment.currency,
        "pack_id": payment.pack_id,
    });
    let tracked = step
        .run("track-payment", || async move {
            Ok(posthog
                .capture(&distinct_id, "payment_recorded", properties)
                .await?)
        })
        .await;
    if let Err(err) = tracked {
        tracing::warn!(error = %err, "analytics failed; the booking goes on");
    }
}

/// The Cal.com booking's uid.
async fn create_booking(
    services: &Services,
    step: &hookflow::Step,
    payment: &Payment,
    event_type_id: i64,
) -> Result<String, StepError> {
    let cal = services.clients.cal.clone();
    let settings = services.settings.clone();
    let payment = payment.clone();
    step.run("create-booking", || async move {
        let start: DateTime<Utc> = payment.slot.parse().non_retriable()?;
        let booking = CreateBooking {
            event_type_id,
            start,
            attendee: Attendee {
                name: payment
                    .customer_name
                    .clone()
                    .unwrap_or_else(|| payment.customer_email.clone()),
                email: payment.customer_email.clone(),
                time_zone: settings.booking_time_zone().to_owned(),
            },
            metadata: [
                ("checkoutSessionId".to_owned(), payment.session_id.clone()),
                ("mentorId".to_owned(), payment.mentor_id.clone()),
                ("clerkId".to_owned(), payment.customer_id.clone()),
            ]
            .into(),
        };
        Ok(cal.create_booking(&booking).await?.uid)
    })
    .await
}

/// Refunds the whole payment once (the step's idempotency key); the refund id.
async fn refund(
    services: &Services,
    step: &hookflow::Step,
    payment: &Payment,
) -> Result<String, StepError> {
    let stripe = services.clients.stripe.clone();
    let payment_intent = payment.payment_intent.clone();
    let idempotency = step.clone();
    step.run("refund-payment", || async move {
        let key = idempotency.idempotency_key();
        let refund = stripe
            .create_refund(
                &payment_intent,
                None,
                Some(RefundReason::RequestedByCustomer),
                &key,
            )
            .await?;
        Ok(refund.id)
    })
    .await
}

/// Writes the payment's new status in its own step.
async fn set_status(
    services: &Services,
    step: &hookflow::Step,
    id: &str,
    payment: &Payment,
    change: impl Fn(&mut Payment) + Send + Sync + 'static,
) -> Result<(), StepError> {
    let docs = services.docs.clone();
    let fallback = payment.clone();
    step.run(id, || async move {
        docs.update::<Payment, _>(PAYMENTS, &fallback.session_id, |stored| {
            let mut next = stored.unwrap_or_else(|| fallback.clone());
            change(&mut next);
            Some(next)
        })
        .await?;
        Ok(())
    })
    .await
}

/// Tells the customer the booking failed, and whether the money is back.
async fn email_customer(
    services: &Services,
    step: &hookflow::Step,
    payment: &Payment,
    status: PaymentStatus,
) -> Result<(), StepError> {
    let email = services.clients.email.clone();
    let settings = services.settings.clone();
    let name = payment
        .customer_name
        .clone()
        .unwrap_or_else(|| "there".into());
    let money = match status {
        PaymentStatus::Refunded => {
            "We have refunded your payment in full; it reaches your account in 5-10 days."
        }
        _ => "Your refund is being handled by our team, who will contact you shortly.",
    };
    let text_body = format!(
        "Hi {name},\n\nWe could not book your session on {} with your mentor. {money}\n\nSorry for the trouble.",
        payment.slot
    );
    let to = payment.customer_email.clone();
    step.run("email-customer", || async move {
        let message = Email {
            from: settings.email_from()?.to_owned(),
            to,
            subject: "Your booking could not be made".into(),
            text_body,
            html_body: None,
            tag: Some("booking-failed".into()),
        };
        Ok(email.send_email(&message).await?)
    })
    .await
    .map(drop)
}
