//! Clerk (Backend API v1): read users and update their public metadata.
//!
//! The secret key (`sk_...`) is a Bearer token. Clerk merges metadata updates
//! into what is stored (set a key to `null` to remove it), so an update step is
//! safe to re-run.

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Result;
use crate::http::{Api, Credential, HttpClient};

/// Clerk's Backend API.
#[derive(Clone, Debug)]
pub struct ClerkClient {
    api: Api,
}

/// A Clerk user (the fields the workflows use).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `user_...`
    pub id: String,
    /// The primary email address, if the user has one.
    pub primary_email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Public metadata (an object; `{}` when unset).
    pub public_metadata: Value,
}

/// The user as Clerk sends it.
#[derive(Deserialize)]
struct RawUser {
    id: String,
    #[serde(default)]
    primary_email_address_id: Option<String>,
    #[serde(default)]
    email_addresses: Vec<RawEmail>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    public_metadata: Value,
}

#[derive(Deserialize)]
struct RawEmail {
    id: String,
    email_address: String,
}

impl From<RawUser> for User {
    fn from(raw: RawUser) -> Self {
        let primary_email = raw.primary_email_address_id.and_then(|primary| {
            raw.email_addresses
                .into_iter()
                .find(|e| e.id == primary)
                .map(|e| e.email_address)
        });
        let public_metadata = match raw.public_metadata {
            Value::Null => Value::Object(serde_json::Map::new()),
            other => other,
        };
        Self {
            id: raw.id,
            primary_email,
            first_name: raw.first_name,
            last_name: raw.last_name,
            public_metadata,
        }
    }
}

impl ClerkClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://api.clerk.com/v1";
    /// Secret key (`sk_...`). Required.
    pub const SECRET_KEY_VAR: &'static str = "CLERK_SECRET_KEY";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "CLERK_API_BASE";

    crate::http::keyed_client!("clerk", SECRET_KEY_VAR);

    fn build(http: &HttpClient, secret_key: &str, base: Url) -> Result<Self> {
        let credential =
            Credential::new(Self::SECRET_KEY_VAR, AUTHORIZATION, "Bearer ", secret_key)?;
        Ok(Self {
            api: Api::new(http, "clerk", base, Some(credential)),
        })
    }

    /// Fetches a user (`GET /users/{id}`).
    ///
    /// # Errors
    /// [`crate::ClientError`]; an unknown user is a 404 and not retried.
    pub async fn get_user(&self, user_id: &str) -> Result<User> {
        const OP: &str = "get_user";
        let url = self.api.url(OP, &["users", user_id])?;
        let raw: RawUser = self
            .api
            .send_json(OP, self.api.request(Method::GET, url))
            .await?;
        Ok(raw.into())
    }

    /// Merges `public_metadata` into the user's (`PATCH /users/{id}/metadata`)
    /// and returns the updated user.
    ///
    /// # Errors
    /// [`crate::ClientError`]; an unknown user is a 404 and not retried.
    pub async fn update_public_metadata(
        &self,
        user_id: &str,
        public_metadata: Value,
    ) -> Result<User> {
        const OP: &str = "update_public_metadata";
        let url = self.api.url(OP, &["users", user_id, "metadata"])?;
        let body = serde_json::json!({ "public_metadata": public_metadata });
        let req = self.api.request(Method::PATCH, url).json(&body);
        let raw: RawUser = self.api.send_json(OP, req).await?;
        Ok(raw.into())
    }
}
