//! The course platform's records, as its workflows keep them in the document
//! store: users, and their communication preferences by type (`Newsletter`)
//! and channel (`Email`). The plan keeps these in the app's database; here
//! each is a document, keyed so a workflow reads one by id.

use serde::{Deserialize, Serialize};

/// Users, by id.
pub const USERS: &str = "users";
/// Communication preference types, by name (`Newsletter`).
pub const PREFERENCE_TYPES: &str = "communication_preference_types";
/// Communication channels, by name (`Email`).
pub const CHANNELS: &str = "communication_channels";
/// Communication preferences, by [`preference_key`].
pub const PREFERENCES: &str = "communication_preferences";

/// The preference type of broadcast emails.
pub const NEWSLETTER: &str = "Newsletter";
/// The channel of broadcast emails.
pub const EMAIL: &str = "Email";

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

/// Whether a user receives one type of communication on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationPreference {
    /// The user.
    pub user_id: String,
    /// The type ([`PreferenceType::id`]).
    pub preference_type_id: String,
    /// The channel ([`Channel::id`]).
    pub channel_id: String,
    /// False once the user unsubscribed.
    pub active: bool,
}

/// The key of a user's preference for one type.
#[must_use]
pub fn preference_key(user_id: &str, preference_type_id: &str) -> String {
    format!("{user_id}:{preference_type_id}")
}
