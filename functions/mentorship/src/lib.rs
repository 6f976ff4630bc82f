//! The mentorship marketplace's domain records and the steps its workflows
//! share.
//!
//! Records live in the document store ([`hookflow_docs::DocStore`]), so the
//! workflows run unchanged on SQLite and DynamoDB:
//!
//! | collection | key | record |
//! |---|---|---|
//! | [`PACKS`] | order id | [`Pack`]: sessions bought, booked and held |
//! | [`SEATS`] | Clerk user id | [`Seat`]: the member's place with the mentors |
//! | [`MEMBERS`] | Clerk user id | [`Member`]: onboarding and Discord link |
//!
//! Each record changes only through the pure transitions defined here (run
//! inside [`hookflow_docs::DocStore::update_with`], so a concurrent writer makes
//! the transition re-run on fresh data), and each transition is idempotent:
//! applying it twice leaves the record as once and reports the same outcome,
//! which is what lets a step re-run after a crash.
//!
//! The events the workflows exchange:
//!
//! | event | data | sent by |
//! |---|---|---|
//! | `pack/created` | a [`Pack`] | `create-session-pack` |
//! | [`DISCORD_CONNECTED`] | `clerkId`, `discordUserId` | the app, after Discord OAuth |
//! | [`SESSION_COMPLETED`] | a [`SessionCompleted`] | `pack-bookings` (Cal.com meeting end) or the app (mentor marks done) |
//! | [`PACK_EXPIRED`] | `orderId`, `clerkId` | `sweep-expired-packs` |
//! | [`SEAT_RELEASED`] | `clerkId`, `orderId`, `reason` | `complete-session`, `expire-pack` |

mod member;
mod pack;
mod seat;
mod steps;

pub use member::{Member, Onboarding};
pub use pack::{
    BookingOutcome, Completion, CompletionSource, Expiration, Pack, PackStatus, Session,
    SessionStatus, SessionsExhausted,
};
pub use seat::{GraceStart, ReleaseReason, Seat, SeatStatus};
pub use steps::{
    Contact, PackNotFound, email_member, look_up_member, notify_member, release_seat, update_pack,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Session packs, keyed by the provider's order id.
pub const PACKS: &str = "packs";
/// Seat reservations, keyed by Clerk user id.
pub const SEATS: &str = "seats";
/// Members (onboarding state), keyed by Clerk user id.
pub const MEMBERS: &str = "members";
/// Sessions in a pack.
pub const SESSIONS_PER_PACK: u32 = 4;
/// How long a pack can be used after purchase.
pub const PACK_VALIDITY_DAYS: i64 = 90;
/// How long a seat stays reserved after a pack's last session, for a renewal.
pub const GRACE_PERIOD_HOURS: i64 = 72;

/// The app sends it once a member has linked their Discord account.
pub const DISCORD_CONNECTED: &str = "discord/connected";
/// A mentoring session was held (data: a [`SessionCompleted`]).
pub const SESSION_COMPLETED: &str = "session/completed";
/// A pack passed its expiry date (data: `orderId`, `clerkId`).
pub const PACK_EXPIRED: &str = "pack/expired";
/// A member's seat was released (data: `clerkId`, `orderId`, `reason`).
pub const SEAT_RELEASED: &str = "seat/released";

/// The data of a [`SESSION_COMPLETED`] event. The session's number is not
/// part of it: `complete-session` computes it from the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCompleted {
    /// The pack's order id.
    pub order_id: String,
    /// The Cal.com booking uid of the session.
    pub booking_uid: String,
    /// Who reported it.
    pub source: CompletionSource,
    /// When the meeting ended, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
}

/// The id of the [`SESSION_COMPLETED`] event for a booking, whoever reports
/// it: a meeting reported by Cal.com and by its mentor is one event.
#[must_use]
pub fn session_completed_id(order_id: &str, booking_uid: &str) -> String {
    format!("session-completed-{order_id}-{booking_uid}")
}

/// The id of the [`PACK_EXPIRED`] event for an order: one per pack.
#[must_use]
pub fn pack_expired_id(order_id: &str) -> String {
    format!("pack-expired-{order_id}")
}

/// Milliseconds since the epoch as a UTC time (the epoch when out of range).
#[must_use]
pub fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
