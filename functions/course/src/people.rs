//! People: users, their linked accounts and roles, their communication
//! preferences, and the organizations they learn in.

use serde::{Deserialize, Serialize};

/// Users, by id.
pub const USERS: &str = "users";
/// A user's id by email address (lowercase), for webhooks that only know the
/// address (Postmark).
pub const USERS_BY_EMAIL: &str = "users_by_email";
/// Linked OAuth accounts, by [`account_key`].
pub const ACCOUNTS: &str = "accounts";
/// Roles, by name (`user`, `learner`).
pub const ROLES: &str = "roles";
/// Role grants, by [`user_role_key`].
pub const USER_ROLES: &str = "user_roles";
/// Communication preference types, by name (`Newsletter`).
pub const PREFERENCE_TYPES: &str = "communication_preference_types";
/// Communication channels, by name (`Email`).
pub const CHANNELS: &str = "communication_channels";
/// Communication preferences, by [`preference_key`].
pub const PREFERENCES: &str = "communication_preferences";
/// Organizations, by id.
pub const ORGANIZATIONS: &str = "organizations";
/// Organization memberships, by [`membership_key`].
pub const MEMBERSHIPS: &str = "organization_memberships";

/// The preference type of broadcast emails.
pub const NEWSLETTER: &str = "Newsletter";
/// The channel of broadcast emails.
pub const EMAIL: &str = "Email";
/// The role every new user gets.
pub const USER_ROLE: &str = "user";
/// The organization role of someone who takes courses.
pub const LEARNER_ROLE: &str = "learner";

/// A user of the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id.
    pub id: String,
    /// Where emails go.
    pub email: String,
    /// Display name, if known.
    #[serde(default)]
    pub name: Option<String>,
}

/// The key of [`USERS_BY_EMAIL`] for an address.
#[must_use]
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An OAuth account linked to a user (`discord`, `github`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The user it belongs to.
    pub user_id: String,
    /// The provider (`discord`).
    pub provider: String,
    /// The user's id at the provider (a Discord user id).
    pub provider_account_id: String,
    /// The OAuth2 access token the user granted (Discord: `guilds.join`),
    /// kept here by the app so events and run outputs never carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// The key of a user's account at `provider`.
#[must_use]
pub fn account_key(user_id: &str, provider: &str) -> String {
    format!("{user_id}:{provider}")
}

/// A role a user can hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// Its id.
    pub id: String,
    /// Its name (the document key).
    pub name: String,
}

/// A user holds a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRole {
    /// The user.
    pub user_id: String,
    /// The role ([`Role::id`]).
    pub role_id: String,
}

/// The key of a role grant.
#[must_use]
pub fn user_role_key(user_id: &str, role_id: &str) -> String {
    format!("{user_id}:{role_id}")
}

/// A kind of communication a user can opt out of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferenceType {
    /// Its id.
    pub id: String,
    /// Its name (the document key).
    pub name: String,
}

/// A way to reach a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// Its id.
    pub id: String,
    /// Its name (the document key).
    pub name: String,
}

/// Whether a user receives one type of communication on one channel, and
/// what the email provider last said about the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationPreference {
    /// The user.
    pub user_id: String,
    /// The type ([`PreferenceType::id`]).
    pub preference_type_id: String,
    /// The channel ([`Channel::id`]).
    pub channel_id: String,
    /// False once the user unsubscribed (or the address hard-bounced).
    pub active: bool,
    /// Why it went inactive without the user asking (`HardBounce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opted_out_reason: Option<String>,
    /// When the provider last reported a bounce (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounced_at: Option<i64>,
    /// When the provider last reported a delivery (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
}

impl CommunicationPreference {
    /// An active preference, as created on sign-up.
    #[must_use]
    pub fn active(user_id: &str, preference_type_id: &str, channel_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            preference_type_id: preference_type_id.to_owned(),
            channel_id: channel_id.to_owned(),
            active: true,
            opted_out_reason: None,
            bounced_at: None,
            delivered_at: None,
        }
    }
}

/// The key of a user's preference for one type.
#[must_use]
pub fn preference_key(user_id: &str, preference_type_id: &str) -> String {
    format!("{user_id}:{preference_type_id}")
}

/// A team, or a learner's own personal organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// True for a user's own organization ([`personal_organization_id`]).
    #[serde(default)]
    pub personal: bool,
}

/// The id of `user_id`'s personal organization.
#[must_use]
pub fn personal_organization_id(user_id: &str) -> String {
    format!("personal-{user_id}")
}

/// A user's membership of an organization, with their roles in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// The organization.
    pub organization_id: String,
    /// The member.
    pub user_id: String,
    /// Who invited them (the purchaser of a team seat), if anyone.
    #[serde(default)]
    pub invited_by_id: Option<String>,
    /// Role names (`learner`).
    pub roles: Vec<String>,
}

/// The key of a membership.
#[must_use]
pub fn membership_key(organization_id: &str, user_id: &str) -> String {
    format!("{organization_id}:{user_id}")
}

/// The `Newsletter` preference type and the `Email` channel, which every
/// preference of a broadcast names.
///
/// # Errors
/// Either missing: "Preference type or channel not found", which no retry
/// fixes ([`hookflow::NonRetriable`]); store failures.
pub async fn newsletter_on_email(
    docs: &hookflow_docs::DocStore,
) -> anyhow::Result<(PreferenceType, Channel)> {
    let kind = docs
        .get::<PreferenceType>(PREFERENCE_TYPES, NEWSLETTER)
        .await?;
    let channel = docs.get::<Channel>(CHANNELS, EMAIL).await?;
    match (kind, channel) {
        (Some((kind, _)), Some((channel, _))) => Ok((kind, channel)),
        _ => Err(hookflow::NonRetriable::new("Preference type or channel not found").into()),
    }
}
