//! [`Member`]: a mentee's onboarding, one per Clerk user, so a member who
//! buys again is not onboarded twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a member's onboarding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Onboarding {
    /// Waiting for the member to link Discord.
    Started,
    /// Discord linked, access granted.
    Onboarded,
    /// Never linked Discord after the reminder; an admin follows up.
    Flagged,
}

/// A member, stored in [`crate::MEMBERS`] under their Clerk user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The Clerk user id.
    pub clerk_id: String,
    /// Where onboarding is.
    pub onboarding: Onboarding,
    /// The pack whose purchase started this onboarding: its runs (a replay
    /// included) are in charge; another pack's are not.
    pub order_id: String,
    /// The linked Discord user, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_user_id: Option<String>,
    /// When `onboarding` last changed.
    pub updated_at: DateTime<Utc>,
}

impl Member {
    /// The onboarding started by pack `order_id` takes charge of `clerk_id`
    /// unless another pack's has it or the member is onboarded; a flagged
    /// member starts over (they bought again). `Some` is the record to write;
    /// a re-run or replay for the same pack takes charge again.
    #[must_use]
    pub fn start(
        current: Option<&Self>,
        clerk_id: &str,
        order_id: &str,
        at: DateTime<Utc>,
    ) -> Option<Self> {
        let busy = current.is_some_and(|member| match member.onboarding {
            Onboarding::Onboarded => true,
            Onboarding::Started => member.order_id != order_id,
            Onboarding::Flagged => false,
        });
        (!busy).then(|| Self {
            clerk_id: clerk_id.to_owned(),
            onboarding: Onboarding::Started,
            order_id: order_id.to_owned(),
            discord_user_id: current.and_then(|m| m.discord_user_id.clone()),
            updated_at: at,
        })
    }

    /// Moves onboarding to `onboarding` (with the Discord user, if linked).
    #[must_use]
    pub fn finish(
        mut self,
        onboarding: Onboarding,
        discord_user_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        self.onboarding = onboarding;
        if let Some(id) = discord_user_id {
            self.discord_user_id = Some(id.to_owned());
        }
        self.updated_at = at;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_onboarding_per_member_unless_flagged() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let started = Member::start(None, "user_1", "pack-1", t).unwrap();
        assert_eq!(started.onboarding, Onboarding::Started);
        assert_eq!(
            Member::start(Some(&started), "user_1", "pack-1", t),
            Some(started.clone()),
            "a replay of the same pack's onboarding takes charge again"
        );
        assert_eq!(Member::start(Some(&started), "user_1", "pack-2", t), None);
        let onboarded = started.clone().finish(Onboarding::Onboarded, Some("d1"), t);
        assert_eq!(Member::start(Some(&onboarded), "user_1", "pack-1", t), None);
        assert_eq!(Member::start(Some(&onboarded), "user_1", "pack-2", t), None);
        let flagged = started.finish(Onboarding::Flagged, None, t);
        let again = Member::start(Some(&flagged), "user_1", "pack-3", t).unwrap();
        assert_eq!(
            (again.onboarding, again.order_id.as_str()),
            (Onboarding::Started, "pack-3")
        );
    }
}
