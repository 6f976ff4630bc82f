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
    /// The onboarding run in charge.
    pub run_id: String,
    /// The linked Discord user, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_user_id: Option<String>,
    /// When `onboarding` last changed.
    pub updated_at: DateTime<Utc>,
}

impl Member {
    /// Run `run_id` takes charge of onboarding `clerk_id` unless another run
    /// has it or the member is onboarded; a flagged member starts over (they
    /// bought again). `Some` is the record to write; a re-run of the same run
    /// takes charge again.
    #[must_use]
    pub fn start(
        current: Option<&Self>,
        clerk_id: &str,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Option<Self> {
        match current {
            Some(member) if member.run_id == run_id => Some(member.clone()),
            Some(member) if member.onboarding != Onboarding::Flagged => None,
            _ => Some(Self {
                clerk_id: clerk_id.to_owned(),
                onboarding: Onboarding::Started,
                run_id: run_id.to_owned(),
                discord_user_id: current.and_then(|m| m.discord_user_id.clone()),
                updated_at: at,
            }),
        }
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
        let started = Member::start(None, "user_1", "run-1", t).unwrap();
        assert_eq!(started.onboarding, Onboarding::Started);
        assert_eq!(
            Member::start(Some(&started), "user_1", "run-1", t),
            Some(started.clone())
        );
        assert_eq!(Member::start(Some(&started), "user_1", "run-2", t), None);
        let onboarded = started.clone().finish(Onboarding::Onboarded, Some("d1"), t);
        assert_eq!(Member::start(Some(&onboarded), "user_1", "run-2", t), None);
        let flagged = started.finish(Onboarding::Flagged, None, t);
        let again = Member::start(Some(&flagged), "user_1", "run-3", t).unwrap();
        assert_eq!(
            (again.onboarding, again.run_id.as_str()),
            (Onboarding::Started, "run-3")
        );
    }
}
