//! `pack-bookings`: keeps each session pack in step with its Cal.com bookings.
//!
//! A mentee books from the app's Cal.com embed, which puts the pack's order
//! id in the booking's metadata (`metadata.orderId`); only those bookings
//! trigger this function.
//!
//! | trigger | what happens |
//! |---|---|
//! | `cal/BOOKING_CREATED` | the session is recorded as scheduled in `packs/<orderId>`; a booking the pack cannot take (expired, blocked, every session booked or held) is cancelled in Cal.com with the reason |
//! | `cal/BOOKING_CANCELLED` | the scheduled session is marked cancelled, freeing its place |
//! | `cal/MEETING_ENDED` | emits `session/completed` (`source: cal`) for `complete-session` |
//!
//! Invariants: pack changes are conditional read-modify-writes and
//! idempotent (a redelivered webhook changes nothing); the emitted
//! `session/completed` has the id a mentor's report of the same session has,
//! so the session is counted once.

use chrono::{DateTime, Utc};
use hookflow::{Event, Function, NonRetriable};
use hookflow_clients::Services;
use mentorship::{
    BookingOutcome, CompletionSource, SESSION_COMPLETED, SessionCompleted, session_completed_id,
    update_pack,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "pack-bookings";
/// A booking was made.
pub const BOOKING_CREATED: &str = "cal/BOOKING_CREATED";
/// A booking was cancelled.
pub const BOOKING_CANCELLED: &str = "cal/BOOKING_CANCELLED";
/// A meeting ended.
pub const MEETING_ENDED: &str = "cal/MEETING_ENDED";
/// Booking webhooks nest the booking under `payload`.
pub const HAS_ORDER: &str = "event.data.payload.metadata.orderId != ''";
/// Meeting webhooks carry the booking at the top level.
pub const MEETING_HAS_ORDER: &str = "event.data.metadata.orderId != ''";

/// The booking a Cal.com webhook is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackBooking {
    /// The pack's order id (`metadata.orderId`).
    pub order_id: String,
    /// The booking uid.
    pub uid: String,
    /// Start, if given.
    pub start_time: Option<DateTime<Utc>>,
    /// End, if given.
    pub end_time: Option<DateTime<Utc>>,
}

impl PackBooking {
    /// The booking in a Cal.com webhook's data (under `payload` for booking
    /// triggers, at the top level for meeting ones).
    ///
    /// # Errors
    /// [`NonRetriable`] naming the missing field.
    pub fn from_cal(data: &Value) -> Result<Self, NonRetriable> {
        let booking = if data["payload"].is_object() {
            &data["payload"]
        } else {
            data
        };
        let text = |v: &Value, field: &str| {
            v.as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| NonRetriable::new(format!("Cal.com booking without {field}")))
        };
        let time = |v: &Value| v.as_str().and_then(|t| t.parse().ok());
        Ok(Self {
            order_id: text(&booking["metadata"]["orderId"], "metadata.orderId")?,
            uid: text(&booking["uid"], "uid")?,
            start_time: time(&booking["startTime"]),
            end_time: time(&booking["endTime"]),
        })
    }
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Track a pack's bookings")
                .reads_env(["CAL_API_KEY"]),
        )
        .on_event_if(BOOKING_CREATED, HAS_ORDER)
        .on_event_if(BOOKING_CANCELLED, HAS_ORDER)
        .on_event_if(MEETING_ENDED, MEETING_HAS_ORDER)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let booking = PackBooking::from_cal(&ctx.event.data)?;
                match ctx.event.name.as_str() {
                    BOOKING_CREATED => record_booking(&services, &ctx.step, booking).await,
                    BOOKING_CANCELLED => {
                        let docs = services.docs.clone();
                        let (order, uid) = (booking.order_id.clone(), booking.uid.clone());
                        let cancelled: bool = ctx
                            .step
                            .run("record-cancellation", || async move {
                                update_pack(&docs, &order, |pack| {
                                    let cancelled = pack.cancel(&uid);
                                    (cancelled, cancelled)
                                })
                                .await
                            })
                            .await?;
                        Ok(json!({ "uid": booking.uid, "cancelled": cancelled }))
                    }
                    _ => {
                        let completed = SessionCompleted {
                            order_id: booking.order_id.clone(),
                            booking_uid: booking.uid.clone(),
                            source: CompletionSource::Cal,
                            ended_at: booking.end_time,
                        };
                        let event =
                            Event::new(SESSION_COMPLETED, serde_json::to_value(&completed)?)
                                .with_id(session_completed_id(&booking.order_id, &booking.uid));
                        ctx.step
                            .send_event("emit-session-completed", [event])
                            .await?;
                        Ok(json!({ "uid": booking.uid, "sessionCompleted": true }))
                    }
                }
            }
        })
}

/// Records a new booking in its pack; cancels it in Cal.com when refused.
async fn record_booking(
    services: &Services,
    step: &hookflow::Step,
    booking: PackBooking,
) -> anyhow::Result<Value> {
    let docs = services.docs.clone();
    let b = booking.clone();
    let outcome: BookingOutcome = step
        .run("record-booking", || async move {
            update_pack(&docs, &b.order_id, |pack| {
                let outcome = pack.book(&b.uid, b.start_time, b.end_time);
                (outcome == BookingOutcome::Scheduled, outcome)
            })
            .await
        })
        .await?;
    if let BookingOutcome::Refused(reason) = &outcome {
        let cal = services.clients.cal.clone();
        let (uid, reason) = (booking.uid.clone(), format!("Not bookable: {reason}."));
        step.run("cancel-booking", || async move {
            cal.cancel_booking(&uid, &reason).await?;
            Ok(())
        })
        .await?;
    }
    Ok(json!({ "uid": booking.uid, "booking": outcome }))
}
