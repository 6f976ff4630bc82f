//! `booking-analytics`: booking and sign-up webhooks as PostHog events.
//!
//! | trigger | PostHog event |
//! |---|---|
//! | `cal/BOOKING_CREATED` | `booking_created` |
//! | `cal/BOOKING_CANCELLED` | `booking_cancelled` |
//! | `cal/MEETING_STARTED` | `meeting_started` |
//! | `cal/MEETING_ENDED` | `meeting_ended` |
//! | `clerk/user.created` | `user_signed_up` |
//!
//! The person is the Clerk user id when known (a Clerk event, or a booking
//! made by `checkout-side-effects`, whose metadata carries `clerkId`), else the
//! attendee's email. One `capture` step per event; PostHog errors are retried
//! like any step (a capture is harmless to repeat).

use hookflow::{Failure, Function, NonRetriable};
use hookflow_clients::Services;
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "booking-analytics";

/// Trigger event name and the PostHog event it becomes.
pub const EVENTS: [(&str, &str); 5] = [
    ("cal/BOOKING_CREATED", "booking_created"),
    ("cal/BOOKING_CANCELLED", "booking_cancelled"),
    ("cal/MEETING_STARTED", "meeting_started"),
    ("cal/MEETING_ENDED", "meeting_ended"),
    ("clerk/user.created", "user_signed_up"),
];

/// One analytics event to capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// PostHog's event name.
    pub event: &'static str,
    /// The person.
    pub distinct_id: String,
    /// Event properties.
    pub properties: Value,
}

/// What a trigger event becomes.
///
/// # Errors
/// [`NonRetriable`] for an event this function does not handle or one with
/// nobody to attribute it to.
pub fn capture_for(name: &str, data: &Value) -> Result<Capture, NonRetriable> {
    let event = EVENTS
        .iter()
        .find(|(trigger, _)| *trigger == name)
        .map(|(_, event)| *event)
        .ok_or_else(|| NonRetriable::new(format!("booking-analytics does not handle `{name}`")))?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    if name.starts_with("clerk/") {
        let user = &data["data"];
        let distinct_id = text(&user["id"])
            .ok_or_else(|| NonRetriable::new("clerk user.created without data.id"))?;
        let email = user["email_addresses"]
            .as_array()
            .and_then(|emails| {
                emails
                    .iter()
                    .find(|e| e["id"] == user["primary_email_address_id"])
                    .or_else(|| emails.first())
            })
            .and_then(|e| text(&e["email_address"]));
        return Ok(Capture {
            event,
            distinct_id,
            properties: json!({ "email": email, "source": "clerk" }),
        });
    }
    // Cal.com: booking triggers nest the booking under `payload`, meeting ones do not.
    let booking = if data["payload"].is_object() {
        &data["payload"]
    } else {
        data
    };
    let attendee = text(&booking["attendees"][0]["email"]);
    let distinct_id = text(&booking["metadata"]["clerkId"])
        .or_else(|| attendee.clone())
        .ok_or_else(|| {
            NonRetriable::new(format!("{name} without an attendee to attribute it to"))
        })?;
    let booking_id = if booking["bookingId"].is_null() {
        &booking["id"]
    } else {
        &booking["bookingId"]
    };
    Ok(Capture {
        event,
        distinct_id,
        properties: json!({
            "booking_uid": booking["uid"],
            "booking_id": booking_id,
            "event_type_id": booking["eventTypeId"],
            "start_time": booking["startTime"],
            "end_time": booking["endTime"],
            "attendee_email": attendee,
            "cancellation_reason": booking["cancellationReason"],
            "source": "cal",
        }),
    })
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let posthog = services.clients.posthog.clone();
    let mut function = services.alert_on_failure(
        Function::new(ID)
            .name("Booking analytics")
            .reads_env(["POSTHOG_API_KEY", "POSTHOG_HOST"]),
    );
    for (trigger, _) in EVENTS {
        function = function.on_event(trigger);
    }
    function.handler(move |ctx| {
        let posthog = posthog.clone();
        async move {
            let capture = capture_for(&ctx.event.name, &ctx.event.data).non_retriable()?;
            let event = capture.event;
            ctx.step
                .run("capture", || async move {
                    Ok(posthog
                        .capture(&capture.distinct_id, capture.event, capture.properties)
                        .await?)
                })
                .await?;
            Ok(json!({ "captured": event }))
        }
    })
}
