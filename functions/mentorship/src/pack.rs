//! [`Pack`]: the sessions a member bought with one order, and its life:
//! booked sessions are recorded, held sessions numbered, and an expired pack
//! blocks new bookings until its booked sessions are held.

use chrono::{DateTime, Duration, Utc};
use hookflow::NonRetriable;
use mentorship_purchase::{Provider, Purchase};
use serde::{Deserialize, Serialize};

use crate::{PACK_VALIDITY_DAYS, SESSIONS_PER_PACK};

/// Where a pack is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackStatus {
    /// Paid for; sessions can be booked (unless `bookingsBlocked`).
    Active,
    /// Every session held.
    Completed,
    /// Past its expiry date with no session left to hold.
    Expired,
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Booked, not held yet.
    Scheduled,
    /// Held.
    Completed,
    /// Booking cancelled.
    Cancelled,
}

/// Who reported a session as held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionSource {
    /// Cal.com's `MEETING_ENDED` webhook.
    Cal,
    /// The mentor marked it done in the app.
    Mentor,
}

/// One session of a pack, by its Cal.com booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The Cal.com booking uid.
    pub booking_uid: String,
    /// Where it is.
    pub status: SessionStatus,
    /// Booked start, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// Booked end, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// 1 for the pack's first held session, and so on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// When it was recorded as held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Who reported it held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_by: Option<CompletionSource>,
    /// The id of the `session/completed` event that recorded it held (a
    /// replay of that event's run carries on where it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_event_id: Option<String>,
}

impl Session {
    /// When a scheduled session is over: its end, else its start plus an
    /// hour, else `None` (unknown).
    #[must_use]
    pub fn over_at(&self) -> Option<DateTime<Utc>> {
        self.ends_at
            .or_else(|| self.starts_at.map(|start| start + Duration::hours(1)))
    }
}

/// A session pack, stored in [`crate::PACKS`] under its order id and carried
/// by `pack/created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pack {
    /// The provider's order id: the document key.
    pub order_id: String,
    /// The owner's Clerk user id.
    pub clerk_id: String,
    /// The pack bought.
    pub pack_id: String,
    /// Who took the payment.
    pub provider: Provider,
    /// Sessions the pack holds.
    pub sessions_total: u32,
    /// Sessions held so far.
    pub sessions_completed: u32,
    /// Where it is in its life.
    pub status: PackStatus,
    /// When the purchase arrived.
    pub created_at: DateTime<Utc>,
    /// When it stops being usable ([`PACK_VALIDITY_DAYS`] after purchase).
    pub expires_at: DateTime<Utc>,
    /// Set once expired: no new booking is accepted.
    #[serde(default)]
    pub bookings_blocked: bool,
    /// Booked and held sessions, in booking order.
    #[serde(default)]
    pub sessions: Vec<Session>,
}

/// What recording a booking did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum BookingOutcome {
    /// The session is scheduled (or its times updated).
    Scheduled,
    /// The booking was already recorded as held or cancelled.
    AlreadyRecorded,
    /// The pack cannot take it (the text says why); cancel the booking.
    Refused(String),
}

/// What recording a held session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// The session's number in the pack.
    pub number: u32,
    /// `false` when another report already recorded the session (a
    /// duplicate); `true` for the report that did, also when it is replayed.
    pub newly: bool,
    /// It was the pack's last session.
    pub last: bool,
}

/// What an expiration check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Expiration {
    /// The pack is expired now: release the seat.
    Expired,
    /// Bookings are blocked; sessions are still scheduled, the last over at
    /// `recheck_at`: check again then.
    AwaitingSessions {
        /// Sessions still scheduled.
        scheduled: usize,
        /// When the last of them is over.
        recheck_at: DateTime<Utc>,
    },
    /// Nothing to do: the pack is `completed` or already `expired`.
    Settled {
        /// Its status.
        status: PackStatus,
    },
}

/// A held session on a pack whose sessions are all held (not retried).
#[derive(Debug, thiserror::Error)]
#[error("pack `{order_id}` has no session left: all {total} are held (booking `{booking_uid}`)")]
pub struct SessionsExhausted {
    /// The pack.
    pub order_id: String,
    /// The booking reported held.
    pub booking_uid: String,
    /// Sessions in the pack.
    pub total: u32,
    /// Fails the step at once.
    #[source]
    marker: NonRetriable,
}

impl Pack {
    /// A new, unused pack for `purchase`, bought at `at`.
    #[must_use]
    pub fn new(purchase: Purchase, at: DateTime<Utc>) -> Self {
        Self {
            order_id: purchase.order_id,
            clerk_id: purchase.clerk_id,
            pack_id: purchase.pack_id,
            provider: purchase.provider,
            sessions_total: SESSIONS_PER_PACK,
            sessions_completed: 0,
            status: PackStatus::Active,
            created_at: at,
            expires_at: at + Duration::days(PACK_VALIDITY_DAYS),
            bookings_blocked: false,
            sessions: Vec::new(),
        }
    }

    fn session_mut(&mut self, booking_uid: &str) -> Option<&mut Session> {
        self.sessions
            .iter_mut()
            .find(|s| s.booking_uid == booking_uid)
    }

    /// Sessions booked and not held yet.
    pub fn scheduled(&self) -> impl Iterator<Item = &Session> {
        self.sessions
            .iter()
            .filter(|s| s.status == SessionStatus::Scheduled)
    }

    /// Records the booking `booking_uid` as a scheduled session, unless the
    /// pack is expired, blocked or full (held + scheduled = total). A booking
    /// already scheduled gets its new times (a reschedule).
    pub fn book(
        &mut self,
        booking_uid: &str,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
    ) -> BookingOutcome {
        if let Some(session) = self.session_mut(booking_uid) {
            if session.status != SessionStatus::Scheduled {
                return BookingOutcome::AlreadyRecorded;
            }
            session.starts_at = starts_at.or(session.starts_at);
            session.ends_at = ends_at.or(session.ends_at);
            return BookingOutcome::Scheduled;
        }
        let refusal = if self.status != PackStatus::Active {
            Some(format!("the pack is {:?}", self.status).to_lowercase())
        } else if self.bookings_blocked {
            Some("the pack has expired; its bookings are blocked".to_owned())
        } else if self.sessions_completed as usize + self.scheduled().count()
            >= self.sessions_total as usize
        {
            Some(format!(
                "all {} sessions of the pack are booked or held",
                self.sessions_total
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return BookingOutcome::Refused(reason);
        }
        self.sessions.push(Session {
            booking_uid: booking_uid.to_owned(),
            status: SessionStatus::Scheduled,
            starts_at,
            ends_at,
            number: None,
            completed_at: None,
            completed_by: None,
            completion_event_id: None,
        });
        BookingOutcome::Scheduled
    }

    /// Marks a scheduled booking cancelled; `false` when it is not scheduled.
    pub fn cancel(&mut self, booking_uid: &str) -> bool {
        match self.session_mut(booking_uid) {
            Some(session) if session.status == SessionStatus::Scheduled => {
                session.status = SessionStatus::Cancelled;
                true
            }
            _ => false,
        }
    }

    /// Records the session of `booking_uid` as held at `at`, reported by
    /// the event `event_id`, and numbers it: held sessions so far + 1. A
    /// session already held keeps its number (`newly` only for the event that
    /// recorded it). Holding the last session completes the pack.
    ///
    /// # Errors
    /// [`SessionsExhausted`] when every session is already held.
    pub fn complete(
        &mut self,
        booking_uid: &str,
        source: CompletionSource,
        event_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Completion, SessionsExhausted> {
        let total = self.sessions_total;
        if let Some(session) = self.session_mut(booking_uid)
            && session.status == SessionStatus::Completed
        {
            let number = session.number.unwrap_or(0);
            return Ok(Completion {
                number,
                newly: session.completion_event_id.as_deref() == Some(event_id),
                last: number == total,
            });
        }
        let number = self.sessions_completed + 1;
        if number > total {
            return Err(SessionsExhausted {
                order_id: self.order_id.clone(),
                booking_uid: booking_uid.to_owned(),
                total,
                marker: NonRetriable::new("no session left in the pack"),
            });
        }
        let held = Session {
            booking_uid: booking_uid.to_owned(),
            status: SessionStatus::Completed,
            starts_at: None,
            ends_at: None,
            number: Some(number),
            completed_at: Some(at),
            completed_by: Some(source),
            completion_event_id: Some(event_id.to_owned()),
        };
        match self.session_mut(booking_uid) {
            Some(session) => {
                session.status = SessionStatus::Completed;
                session.number = held.number;
                session.completed_at = held.completed_at;
                session.completed_by = held.completed_by;
                session.completion_event_id = held.completion_event_id;
            }
            None => self.sessions.push(held),
        }
        self.sessions_completed = number;
        if number == total {
            self.status = PackStatus::Completed;
        }
        Ok(Completion {
            number,
            newly: true,
            last: number == total,
        })
    }

    /// The expiration check at `now` of a pack past its expiry date: blocks
    /// new bookings; expires the pack when no session is scheduled, else
    /// says when to check again (when the last scheduled session is over, and
    /// never before `now`). Sessions with unknown times count as over now.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Expiration {
        if self.status != PackStatus::Active {
            return Expiration::Settled {
                status: self.status,
            };
        }
        self.bookings_blocked = true;
        let scheduled = self.scheduled().count();
        if scheduled == 0 {
            self.status = PackStatus::Expired;
            return Expiration::Expired;
        }
        let last = self.scheduled().filter_map(Session::over_at).max();
        Expiration::AwaitingSessions {
            scheduled,
            recheck_at: last.map_or(now, |last| last.max(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().unwrap()
    }

    fn pack() -> Pack {
        let purchase: Purchase = serde_json::from_value(json!({
            "clerkId": "user_1", "orderId": "cs_1", "packId": "pack_a", "provider": "stripe"
        }))
        .unwrap();
        Pack::new(purchase, at("2025-06-02T10:15:30Z"))
    }

    #[test]
    fn a_new_pack_is_active_for_its_validity_and_stored_in_camel_case() {
        let pack = pack();
        assert_eq!(pack.sessions_total, SESSIONS_PER_PACK);
        assert_eq!(pack.expires_at, at("2025-08-31T10:15:30Z"));
        let stored = serde_json::to_value(&pack).unwrap();
        assert_eq!(stored["orderId"], "cs_1");
        assert_eq!(stored["clerkId"], "user_1");
        assert_eq!(stored["createdAt"], "2025-06-02T10:15:30Z");
        assert_eq!(stored["status"], "active");
        assert_eq!(serde_json::from_value::<Pack>(stored).unwrap(), pack);
    }

    #[test]
    fn sessions_are_numbered_in_the_order_they_are_held_and_once() {
        // GIVEN a pack with two booked sessions
        let mut pack = pack();
        let t = at("2025-06-10T15:00:00Z");
        assert_eq!(pack.book("b1", Some(t), None), BookingOutcome::Scheduled);
        assert_eq!(pack.book("b2", Some(t), None), BookingOutcome::Scheduled);
        // WHEN the second is held first, then the first, then reported again
        let second = pack.complete("b2", CompletionSource::Cal, "e1", t).unwrap();
        let first = pack
            .complete("b1", CompletionSource::Mentor, "e2", t)
            .unwrap();
        let again = pack
            .complete("b2", CompletionSource::Mentor, "e3", t)
            .unwrap();
        let replayed = pack.complete("b2", CompletionSource::Cal, "e1", t).unwrap();
        // THEN numbers follow the held order and a repeat changes nothing
        assert_eq!((second.number, second.newly), (1, true));
        assert_eq!((first.number, first.newly), (2, true));
        assert_eq!((again.number, again.newly), (1, false));
        assert_eq!(
            (replayed.number, replayed.newly),
            (1, true),
            "the recording event's replay carries on"
        );
        assert_eq!(pack.sessions_completed, 2);
        // An unbooked session (mentor marked it done) counts too; the 4th completes the pack.
        assert!(
            !pack
                .complete("b3", CompletionSource::Mentor, "e4", t)
                .unwrap()
                .last
        );
        let last = pack.complete("b4", CompletionSource::Cal, "e5", t).unwrap();
        assert!(last.last && last.number == 4);
        assert_eq!(pack.status, PackStatus::Completed);
        let err = pack
            .complete("b5", CompletionSource::Cal, "e6", t)
            .unwrap_err();
        assert!(err.to_string().contains("no session left"), "{err}");
        assert!(
            pack.complete("b4", CompletionSource::Cal, "e7", t)
                .unwrap()
                .last
        );
    }

    #[test]
    fn bookings_beyond_the_pack_or_after_expiry_are_refused() {
        let mut pack = pack();
        for uid in ["b1", "b2", "b3", "b4"] {
            assert_eq!(pack.book(uid, None, None), BookingOutcome::Scheduled);
        }
        assert!(matches!(
            pack.book("b5", None, None),
            BookingOutcome::Refused(reason) if reason.contains("booked or held")
        ));
        assert!(pack.cancel("b4"));
        assert!(!pack.cancel("b4"), "cancelling twice changes nothing");
        assert_eq!(pack.book("b4", None, None), BookingOutcome::AlreadyRecorded);
        assert_eq!(pack.book("b5", None, None), BookingOutcome::Scheduled);
        pack.bookings_blocked = true;
        assert!(matches!(
            pack.book("b6", None, None),
            BookingOutcome::Refused(reason) if reason.contains("blocked")
        ));
    }

    #[test]
    fn expiry_waits_for_scheduled_sessions_then_expires() {
        // GIVEN an expired pack with two sessions still scheduled
        let mut pack = pack();
        let now = at("2025-09-01T03:00:00Z");
        pack.book("b1", Some(at("2025-09-03T15:00:00Z")), None);
        pack.book(
            "b2",
            Some(at("2025-09-05T15:00:00Z")),
            Some(at("2025-09-05T15:30:00Z")),
        );
        // WHEN it is checked: bookings are blocked until the last is over
        assert_eq!(
            pack.expire(now),
            Expiration::AwaitingSessions {
                scheduled: 2,
                recheck_at: at("2025-09-05T15:30:00Z")
            }
        );
        assert!(pack.bookings_blocked);
        assert_eq!(pack.status, PackStatus::Active);
        // THEN once both are held (or cancelled) it expires, once
        pack.complete("b1", CompletionSource::Cal, "e1", now)
            .unwrap();
        pack.cancel("b2");
        assert_eq!(pack.expire(now), Expiration::Expired);
        assert_eq!(
            pack.expire(now),
            Expiration::Settled {
                status: PackStatus::Expired
            }
        );
    }
}
