//! `expire-pack`: expires one session pack, waiting for its booked sessions.
//!
//! On `pack/expired` (`orderId`, from the `sweep-expired-packs` sweep): block new
//! bookings on the pack. With no session scheduled, mark it `expired`,
//! release the member's seat unless a renewal holds it (revoking dashboard
//! access and emailing them), or else email them that the pack expired.
//! With sessions scheduled, sleep until the last is over and check again;
//! sessions still unreported after their time are re-checked daily, and
//! after [`MAX_RECHECKS`] checks the run fails (the admins are alerted with
//! the run id) rather than release a seat with sessions outstanding.
//!
//! Invariants: one run per pack ([`ONE_RUN_PER_PACK`] and the event id);
//! every check is one conditional read-modify-write of the pack, and a pack
//! that completed meanwhile (its last session held) is left to
//! `complete-session`'s grace period; the seat release is idempotent, so a
//! replay of a run that failed after expiring the pack carries on.

use chrono::{DateTime, Duration, Utc};
use hookflow::{Function, NonRetriable};
use hookflow_clients::Services;
use mentorship::{
    Expiration, PACK_EXPIRED, PackStatus, ReleaseReason, notify_member, release_seat, update_pack,
    utc,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The function id.
pub const ID: &str = "expire-pack";
/// The event that starts it.
pub const TRIGGER: &str = PACK_EXPIRED;
/// One run per pack.
pub const ONE_RUN_PER_PACK: &str = "event.data.orderId";
/// Checks of a pack whose sessions stay scheduled before giving up.
pub const MAX_RECHECKS: u32 = 14;
/// How long after the last scheduled session the re-check runs (time for
/// Cal.com's meeting-end webhook or the mentor's report to arrive).
pub const AFTER_LAST_SESSION: Duration = Duration::hours(1);
/// How often overdue sessions are re-checked.
pub const OVERDUE_RECHECK: Duration = Duration::days(1);

/// One expiration check: what it found, whose pack, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// The outcome.
    pub expiration: Expiration,
    /// The pack's owner.
    pub clerk_id: String,
    /// When to check again (only while sessions are scheduled).
    pub recheck_at: Option<DateTime<Utc>>,
}

/// When to check again after `expiration` found at `now`.
#[must_use]
pub fn recheck_at(expiration: &Expiration, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match expiration {
        Expiration::AwaitingSessions { recheck_at, .. } if *recheck_at > now => {
            Some(*recheck_at + AFTER_LAST_SESSION)
        }
        Expiration::AwaitingSessions { .. } => Some(now + OVERDUE_RECHECK),
        _ => None,
    }
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Expire a session pack").reads_env([
            "CLERK_SECRET_KEY",
            "POSTMARK_SERVER_TOKEN",
            "EMAIL_FROM",
        ]))
        .on_event(TRIGGER)
        .idempotency(ONE_RUN_PER_PACK)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let order_id = ctx.event.data["orderId"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| NonRetriable::new("pack/expired without data.orderId"))?
                    .to_owned();
                let mut check_number = 0;
                let check = loop {
                    let docs = services.docs.clone();
                    let order = order_id.clone();
                    let check: Check = ctx
                        .step
                        .run(&format!("check-pack-{check_number}"), || async move {
                            let now = utc(docs.now_ms());
                            let (expiration, clerk_id) = update_pack(&docs, &order, |pack| {
                                let expiration = pack.expire(now);
                                let write = !matches!(expiration, Expiration::Settled { .. });
                                (write, (expiration, pack.clerk_id.clone()))
                            })
                            .await?;
                            let recheck_at = recheck_at(&expiration, now);
                            Ok(Check {
                                expiration,
                                clerk_id,
                                recheck_at,
                            })
                        })
                        .await?;
                    let (Expiration::AwaitingSessions { scheduled, .. }, Some(wake)) =
                        (&check.expiration, check.recheck_at)
                    else {
                        break check;
                    };
                    if check_number == MAX_RECHECKS {
                        return Err(NonRetriable::new(format!(
                            "pack `{order_id}` expired but {scheduled} session(s) are still \
                             scheduled after {MAX_RECHECKS} checks: mark them done or cancel \
                             them, then replay this run"
                        ))
                        .into());
                    }
                    check_number += 1;
                    ctx.step
                        .sleep_until(
                            &format!("wait-for-sessions-{check_number}"),
                            wake.timestamp_millis(),
                        )
                        .await?;
                };
                // An `expired` pack is this run's own doing when replayed: carry on.
                if let Expiration::Settled { status } = check.expiration
                    && status != PackStatus::Expired
                {
                    return Ok(json!({ "orderId": order_id, "settled": status }));
                }
                let released = release_seat(
                    &services,
                    &ctx.step,
                    &check.clerk_id,
                    &order_id,
                    ReleaseReason::PackExpired,
                )
                .await?;
                if !released {
                    let subject = "Your mentorship session pack has expired";
                    notify_member(
                        &services,
                        &ctx.step,
                        &check.clerk_id,
                        "pack-expired",
                        subject,
                        |name| {
                            format!(
                                "Hi {name},\n\nYour session pack {order_id} has expired. Your seat \
                             stays with your newer pack.\n"
                            )
                        },
                    )
                    .await?;
                }
                Ok(json!({
                    "orderId": order_id,
                    "status": "expired",
                    "seatReleased": released,
                    "checks": check_number + 1,
                }))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rechecks_follow_the_last_session_then_go_daily() {
        let now: DateTime<Utc> = "2025-09-01T03:00:00Z".parse().unwrap();
        let later = now + Duration::days(4);
        let awaiting = |at| Expiration::AwaitingSessions {
            scheduled: 1,
            recheck_at: at,
        };
        assert_eq!(
            recheck_at(&awaiting(later), now),
            Some(later + AFTER_LAST_SESSION)
        );
        assert_eq!(recheck_at(&awaiting(now), now), Some(now + OVERDUE_RECHECK));
        assert_eq!(recheck_at(&Expiration::Expired, now), None);
    }
}
