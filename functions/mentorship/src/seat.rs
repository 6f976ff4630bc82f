//! [`Seat`]: a member's place with the mentors, one per member, held by their
//! latest pack. A renewal (a newer pack) takes the seat over, which is how a
//! grace period or an expiring pack knows the member renewed: the seat no
//! longer names its order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a seat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    /// Held by `orderId`'s pack.
    Reserved,
    /// The pack is used up; kept until `gracePeriodEndsAt` for a renewal.
    Grace,
    /// Given back.
    Released,
}

/// Why a seat was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The grace period after the last session ended without a renewal.
    NotRenewed,
    /// The pack expired.
    PackExpired,
}

/// A member's seat, stored in [`crate::SEATS`] under their Clerk user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seat {
    /// The member.
    pub clerk_id: String,
    /// The pack holding it.
    pub order_id: String,
    /// Where it is.
    pub status: SeatStatus,
    /// When the pack holding it was bought.
    pub reserved_at: DateTime<Utc>,
    /// End of the grace period, while in grace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    /// When it was released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
    /// Why it was released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_reason: Option<ReleaseReason>,
}

/// What putting a seat into grace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "endsAt")]
pub enum GraceStart {
    /// In grace until then.
    Started(DateTime<Utc>),
    /// A newer pack holds the seat: nothing to release.
    Renewed,
    /// The seat is already released (or was never reserved): nothing to
    /// wait for.
    Released,
}

impl Seat {
    /// `order_id`'s pack, bought at `bought_at`, takes `clerk_id`'s seat (a
    /// first purchase, a renewal, or a return after a release). `None` (write
    /// nothing) when it already holds it or a pack bought later does.
    #[must_use]
    pub fn reserve(
        current: Option<&Self>,
        clerk_id: &str,
        order_id: &str,
        bought_at: DateTime<Utc>,
    ) -> Option<Self> {
        if current.is_some_and(|seat| seat.order_id == order_id || seat.reserved_at > bought_at) {
            return None;
        }
        Some(Self {
            clerk_id: clerk_id.to_owned(),
            order_id: order_id.to_owned(),
            status: SeatStatus::Reserved,
            reserved_at: bought_at,
            grace_period_ends_at: None,
            released_at: None,
            release_reason: None,
        })
    }

    /// Puts the seat into grace until `ends_at` if `order_id` still holds it;
    /// already in grace for it keeps the first end.
    pub fn start_grace(&mut self, order_id: &str, ends_at: DateTime<Utc>) -> GraceStart {
        if self.order_id != order_id {
            return GraceStart::Renewed;
        }
        match self.status {
            SeatStatus::Reserved => {
                self.status = SeatStatus::Grace;
                self.grace_period_ends_at = Some(ends_at);
                GraceStart::Started(ends_at)
            }
            SeatStatus::Grace => GraceStart::Started(self.grace_period_ends_at.unwrap_or(ends_at)),
            SeatStatus::Released => GraceStart::Released,
        }
    }

    /// Releases the seat at `at` if `order_id` still holds it (else a renewal
    /// took it over). `true` when it is released for `order_id` and `reason`,
    /// by this call or an earlier one (so a replay carries on with what
    /// follows a release); `false` when a renewal holds it or it was
    /// released for another reason.
    pub fn release(&mut self, order_id: &str, reason: ReleaseReason, at: DateTime<Utc>) -> bool {
        if self.order_id != order_id {
            return false;
        }
        if self.status == SeatStatus::Released {
            return self.release_reason == Some(reason);
        }
        self.status = SeatStatus::Released;
        self.released_at = Some(at);
        self.release_reason = Some(reason);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        format!("2025-07-01T{hour:02}:00:00Z").parse().unwrap()
    }

    #[test]
    fn a_grace_period_ends_in_a_release_unless_a_renewal_took_the_seat() {
        // GIVEN a seat held by pack A, in grace
        let mut seat = Seat::reserve(None, "user_1", "A", at(1)).unwrap();
        assert_eq!(seat.start_grace("A", at(9)), GraceStart::Started(at(9)));
        assert_eq!(
            seat.start_grace("A", at(10)),
            GraceStart::Started(at(9)),
            "a re-run keeps the first end"
        );
        // WHEN no renewal came, the grace period's end releases it, once
        let mut lapsed = seat.clone();
        assert!(lapsed.release("A", ReleaseReason::NotRenewed, at(9)));
        assert!(
            lapsed.release("A", ReleaseReason::NotRenewed, at(10)),
            "released already, for this pack and reason"
        );
        assert_eq!(
            lapsed.released_at,
            Some(at(9)),
            "a repeat writes nothing new"
        );
        assert!(!lapsed.release("A", ReleaseReason::PackExpired, at(10)));
        assert_eq!(lapsed.status, SeatStatus::Released);
        assert_eq!(lapsed.start_grace("A", at(9)), GraceStart::Released);
        // WHEN pack B renewed during the grace period, A can no longer release it
        let mut renewed = Seat::reserve(Some(&seat), "user_1", "B", at(5)).unwrap();
        assert!(!renewed.release("A", ReleaseReason::NotRenewed, at(9)));
        assert_eq!(renewed.start_grace("A", at(9)), GraceStart::Renewed);
        assert_eq!(renewed.status, SeatStatus::Reserved);
        assert_eq!(renewed.grace_period_ends_at, None);
        assert!(Seat::reserve(Some(&renewed), "user_1", "B", at(5)).is_none());
        assert!(
            Seat::reserve(Some(&renewed), "user_1", "A", at(1)).is_none(),
            "an older purchase, replayed, does not take the seat back"
        );
        let back = Seat::reserve(Some(&lapsed), "user_1", "C", at(10)).unwrap();
        assert_eq!(
            back.status,
            SeatStatus::Reserved,
            "a new pack after a release"
        );
    }
}
