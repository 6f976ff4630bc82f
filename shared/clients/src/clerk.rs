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
use crate::http::{Api, Credential, Env, HttpClient, base_from_env, base_url, required};

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

    /// A client with this secret key at the default base URL.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] / [`crate::ClientError::InvalidConfig`]
    /// for an empty or malformed key.
    pub fn new(http: &HttpClient, secret_key: &str) -> Result<Self> {
        Self::build(
            http,
            secret_key,
            base_url(Self::BASE_VAR, Self::DEFAULT_BASE)?,
        )
    }

    /// From `CLERK_SECRET_KEY` and optional `CLERK_API_BASE`.
    ///
    /// # Errors
    /// [`crate::ClientError::MissingConfig`] naming `CLERK_SECRET_KEY`, or
    /// [`crate::ClientError::InvalidConfig`].
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let key = required(env, Self::SECRET_KEY_VAR)?;
        Self::build(
            http,
            &key,
            base_from_env(env, Self::BASE_VAR, Self::DEFAULT_BASE)?,
        )
    }

    /// A client whose every call fails at once (not retried) with
    /// [`crate::ClientError::Disabled`] naming `SECRET_KEY_VAR`: for a process that must
    /// start without this API configured (`hookflow dev` on a fresh machine).
    ///
    /// # Errors
    /// Never in practice; kept fallible like the other constructors.
    pub fn disabled(http: &HttpClient) -> Result<Self> {
        Ok(Self {
            api: Api::disabled(http, "clerk", Self::SECRET_KEY_VAR)?,
        })
    }

    /// From configuration like `from_env`, or [`Self::disabled`] when the
    /// credential is unset.
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] for a malformed value.
    pub fn from_env_or_disabled(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        if crate::http::optional(env, Self::SECRET_KEY_VAR).is_none() {
            return Self::disabled(http);
        }
        Self::from_env(http, env)
    }

    /// Whether calls are sent (false for a disabled client).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.api.is_enabled()
    }

    /// The same client at another base URL (include the `/v1`).
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidConfig`] if `base` is not an http(s) URL.
    pub fn with_base_url(self, base: &str) -> Result<Self> {
        Ok(Self {
            api: self.api.with_base(base_url(Self::BASE_VAR, base)?),
        })
    }

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
