//! `complete-session`: counts a held mentoring session and, after a pack's
//! last one, gives the member [`GRACE_PERIOD_HOURS`] to renew before their
//! seat is released.
//!
//! On `session/completed` (a [`SessionCompleted`], from Cal.com's meeting
//! end via `pack-bookings` or from the app when a mentor marks a session
//! done): record the session as held in `packs/<orderId>`, numbered held
//! sessions so far + 1 (the caller never sends a number). After the pack's
//! last session: put the seat into grace (`seats/<clerkId>`:
//! `gracePeriodEndsAt` = now + 72 h), sleep until then, and release the seat
//! (revoke dashboard access, email the member) unless a renewal pack took the
//! seat over in the meantime.
//!
//! Invariants: a session reported twice (Cal.com and the mentor, or a
//! redelivery) is counted once and only the report that recorded it goes on
//! to the grace period (a replay of its run included); the release is conditional on the seat still naming this
//! pack, so a renewal at any time before the end of the grace period wins.

use chrono::Duration;
use hookflow::{Failure, Function};
use hookflow_clients::Services;
use mentorship::{
    Completion, GRACE_PERIOD_HOURS, GraceStart, ReleaseReason, SEATS, SESSION_COMPLETED, Seat,
    SessionCompleted, release_seat, update_pack, utc,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The function id.
pub const ID: &str = "complete-session";
/// The event that starts it.
pub const TRIGGER: &str = SESSION_COMPLETED;
/// One run per session, whoever reports it.
pub const ONE_RUN_PER_SESSION: &str = "event.data.orderId + '/' + event.data.bookingUid";

/// What recording the session found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    completion: Completion,
    clerk_id: String,
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Complete a session").reads_env([
            "CLERK_SECRET_KEY",
            "POSTMARK_SERVER_TOKEN",
            "EMAIL_FROM",
        ]))
        .on_event(TRIGGER)
        .idempotency(ONE_RUN_PER_SESSION)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let session: SessionCompleted =
                    serde_json::from_value(ctx.event.data.clone()).non_retriable()?;
                let docs = services.docs.clone();
                let s = session.clone();
                let event_id = ctx.event.id.clone();
                let recorded: Recorded = ctx
                    .step
                    .run("record-session", || async move {
                        let at = s.ended_at.unwrap_or_else(|| utc(docs.now_ms()));
                        let outcome = update_pack(&docs, &s.order_id, |pack| {
                            let outcome = pack.complete(&s.booking_uid, s.source, &event_id, at);
                            let write = outcome.as_ref().is_ok_and(|c| c.newly);
                            (write, outcome.map(|c| (c, pack.clerk_id.clone())))
                        })
                        .await?;
                        let (completion, clerk_id) = outcome?;
                        Ok(Recorded {
                            completion,
                            clerk_id,
                        })
                    })
                    .await?;
                let Completion {
                    number,
                    newly,
                    last,
                } = recorded.completion;
                if !newly || !last {
                    return Ok(json!({ "session": number, "duplicate": !newly }));
                }

                let docs = services.docs.clone();
                let (member, order) = (recorded.clerk_id.clone(), session.order_id.clone());
                let grace: GraceStart = ctx
                    .step
                    .run("start-grace-period", || async move {
                        let ends_at = utc(docs.now_ms()) + Duration::hours(GRACE_PERIOD_HOURS);
                        Ok(docs
                            .update_with(SEATS, &member, |seat: Option<Seat>| match seat {
                                Some(mut seat) => {
                                    let grace = seat.start_grace(&order, ends_at);
                                    let write = matches!(grace, GraceStart::Started(_));
                                    (write.then_some(seat), grace)
                                }
                                None => (None, GraceStart::Released),
                            })
                            .await?)
                    })
                    .await?;
                let ends_at = match grace {
                    GraceStart::Started(ends_at) => {
                        ctx.step
                            .sleep_until("grace-period", ends_at.timestamp_millis())
                            .await?;
                        Some(ends_at)
                    }
                    GraceStart::Renewed => {
                        return Ok(json!({ "session": number, "seat": "renewed" }));
                    }
                    // Released before: a replay of a run that failed after the
                    // release carries on with what follows it.
                    GraceStart::Released => None,
                };
                let released = release_seat(
                    &services,
                    &ctx.step,
                    &recorded.clerk_id,
                    &session.order_id,
                    ReleaseReason::NotRenewed,
                )
                .await?;
                let seat = match (released, ends_at) {
                    (true, _) => "released",
                    (false, Some(_)) => "renewed",
                    (false, None) => "not_held",
                };
                Ok(json!({ "session": number, "gracePeriodEndsAt": ends_at, "seat": seat }))
            }
        })
}
