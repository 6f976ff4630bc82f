//! Google Calendar (API v3): read, create and edit the events of one calendar,
//! as a service account acting for a Workspace user (domain-wide delegation).
//!
//! Each call carries `Authorization: Bearer` with an access token the client
//! gets itself: it signs an RS256 JWT with the service account's key (`iss` the
//! account, `sub` the impersonated user, `aud` the token URL, valid one hour)
//! and exchanges it at the token URL. The token is cached, shared by clones,
//! and renewed a minute before it expires; a 401 renews it once and resends.
//!
//! Google sends no invitations or updates for these changes
//! (`sendUpdates=none`): the workflows send their own email. An insert is made
//! safe to re-run by choosing the event's id ([`NewEvent::id`]): the repeat
//! answers 409 and the client returns the event the first run made.
//!
//! Invariant: the private key, the signed assertion and the access token are
//! never logged, shown by `Debug` or put in an error message.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::token::TokenSource;
use crate::error::{ClientError, Result};
use crate::http::{Api, Env, HttpClient, base_from_env, base_url, optional, required};

mod token;

/// The API name in errors and logs.
const API: &str = "google_calendar";

/// Google Calendar for one calendar, as the impersonated user.
#[derive(Clone)]
pub struct GoogleCalendarClient {
    api: Api,
    auth: Auth,
    calendar_id: Arc<str>,
}

#[derive(Clone)]
enum Auth {
    /// Not configured: every call fails naming this variable.
    Disabled(&'static str),
    Tokens(Arc<TokenSource>),
}

impl std::fmt::Debug for GoogleCalendarClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No account, user or key: only the endpoint and whether it is on.
        f.debug_struct("GoogleCalendarClient")
            .field("api", &self.api)
            .field("enabled", &self.is_enabled())
            .finish_non_exhaustive()
    }
}

/// An event, as Google returns it. Fields Google omits are `None` (or empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarEvent {
    /// The event id (base32hex).
    pub id: String,
    /// `confirmed`, `tentative` or `cancelled` (a deleted event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Description (may contain HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<EventDateTime>,
    /// End (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventDateTime>,
    /// Guests (and the organizer, when listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<Attendee>,
    /// The organizer (the calendar's owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<Organizer>,
    /// The event's page in Google Calendar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_link: Option<String>,
    /// Whether guests may invite others (`None`: Google's default, true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guests_can_invite_others: Option<bool>,
    /// Whether guests see each other (`None`: Google's default, true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guests_can_see_other_guests: Option<bool>,
}

impl CalendarEvent {
    /// Whether the event was deleted (`status: cancelled`).
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.status.as_deref() == Some("cancelled")
    }
}

/// A start or end: `date_time` for a timed event, `date` for an all-day one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDateTime {
    /// The instant (sent as RFC 3339 in UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<DateTime<Utc>>,
    /// The day of an all-day event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// IANA time zone (`America/Los_Angeles`) the event is shown in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl EventDateTime {
    /// A timed start or end shown in `time_zone`.
    #[must_use]
    pub fn at(at: DateTime<Utc>, time_zone: &str) -> Self {
        Self {
            date_time: Some(at),
            date: None,
            time_zone: Some(time_zone.to_owned()),
        }
    }
}

/// A guest of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// Email address (how guests are matched).
    #[serde(default)]
    pub email: String,
    /// Name shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `needsAction`, `declined`, `tentative` or `accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
    /// Whether this guest is the organizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<bool>,
}

impl Attendee {
    /// A guest with only an email address.
    #[must_use]
    pub fn new(email: &str) -> Self {
        Self {
            email: email.to_owned(),
            ..Self::default()
        }
    }
}

/// The organizer of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organizer {
    /// Email address (empty if Google omits it).
    #[serde(default)]
    pub email: String,
    /// Name shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An event to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    /// A chosen id (5 to 1024 of `a`-`v` and `0`-`9`; a hex digest fits),
    /// which makes the insert idempotent; `None` lets Google pick one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Title.
    pub summary: String,
    /// Description (may contain HTML).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Start.
    pub start: EventDateTime,
    /// End (exclusive).
    pub end: EventDateTime,
    /// The organizer shown. Google makes the calendar's owner (the
    /// impersonated user) the organizer whatever this says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizer: Option<Organizer>,
    /// Guests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<Attendee>,
    /// Whether guests may invite others.
    pub guests_can_invite_others: bool,
    /// Whether guests see each other.
    pub guests_can_see_other_guests: bool,
}

/// The fields to change on an event (`PATCH`): `None` leaves a field as it is;
/// `attendees`, when set, replaces the whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPatch {
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<EventDateTime>,
    /// End.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<EventDateTime>,
    /// The whole guest list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<Attendee>>,
    /// `confirmed` to restore a cancelled event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Whether guests may invite others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guests_can_invite_others: Option<bool>,
    /// Whether guests see each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guests_can_see_other_guests: Option<bool>,
}

/// How many times [`GoogleCalendarClient::remove_attendee`] reads and
/// writes when the event keeps changing under it.
pub const REMOVE_ATTEMPTS: u32 = 5;

impl GoogleCalendarClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://www.googleapis.com/calendar/v3";
    /// Token URL when neither the variable nor the key names one.
    pub const DEFAULT_TOKEN_URL: &'static str = "https://oauth2.googleapis.com/token";
    /// The calendar used when [`Self::CALENDAR_ID_VAR`] is unset.
    pub const DEFAULT_CALENDAR_ID: &'static str = "primary";
    /// The OAuth scope requested.
    pub const SCOPE: &'static str = "https://www.googleapis.com/auth/calendar";
    /// The service account's JSON key (`client_email`, `private_key`,
    /// `token_uri`). Required to call; unset, the client is disabled.
    pub const CREDENTIALS_VAR: &'static str = "GOOG_CREDENTIALS_JSON";
    /// The user the service account acts as (the JWT `sub`, the organizer).
    /// Required to call; unset, the client is disabled.
    pub const IMPERSONATE_USER_VAR: &'static str = "GOOG_CALENDAR_IMPERSONATE_USER";
    /// The calendar. Optional (default `primary`: the user's own).
    pub const CALENDAR_ID_VAR: &'static str = "GOOG_CALENDAR_ID";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "GOOG_CALENDAR_API_BASE";
    /// Token URL override. Optional (default: the key's `token_uri`).
    pub const TOKEN_URL_VAR: &'static str = "GOOG_OAUTH_TOKEN_URL";

    /// A client for the impersonated user's primary calendar, at Google's
    /// endpoints.
    ///
    /// # Errors
    /// [`ClientError::MissingConfig`] for an empty argument, or
    /// [`ClientError::InvalidConfig`] for a key that does not parse or sign.
    pub fn new(http: &HttpClient, credentials_json: &str, impersonate_user: &str) -> Result<Self> {
        Self::build(
            http,
            credentials_json,
            impersonate_user,
            Self::DEFAULT_CALENDAR_ID,
            base_url(Self::BASE_VAR, Self::DEFAULT_BASE)?,
            None,
        )
    }

    /// From the variables above: the key and the user are required, the rest
    /// optional.
    ///
    /// # Errors
    /// [`ClientError::MissingConfig`] naming the unset required variables, or
    /// [`ClientError::InvalidConfig`].
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let vars = Self::unset_vars(env);
        if !vars.is_empty() {
            return Err(ClientError::MissingConfig { vars });
        }
        let token_url = optional(env, Self::TOKEN_URL_VAR)
            .map(|url| base_url(Self::TOKEN_URL_VAR, &url))
            .transpose()?;
        Self::build(
            http,
            &required(env, Self::CREDENTIALS_VAR)?,
            &required(env, Self::IMPERSONATE_USER_VAR)?,
            &optional(env, Self::CALENDAR_ID_VAR)
                .unwrap_or_else(|| Self::DEFAULT_CALENDAR_ID.to_owned()),
            base_from_env(env, Self::BASE_VAR, Self::DEFAULT_BASE)?,
            token_url,
        )
    }

    /// A client whose every call fails at once (not retried) with
    /// [`ClientError::Disabled`] naming [`Self::CREDENTIALS_VAR`].
    ///
    /// # Errors
    /// Never in practice; kept fallible like the other constructors.
    pub fn disabled(http: &HttpClient) -> Result<Self> {
        Self::disabled_for(http, Self::CREDENTIALS_VAR)
    }

    fn disabled_for(http: &HttpClient, var: &'static str) -> Result<Self> {
        Ok(Self {
            api: Api::disabled(http, API, var)?,
            auth: Auth::Disabled(var),
            calendar_id: Self::DEFAULT_CALENDAR_ID.into(),
        })
    }

    /// From configuration like [`Self::from_env`], or disabled (naming the
    /// first unset one) when the key or the user is unset.
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] for a malformed value.
    pub fn from_env_or_disabled(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        match Self::unset_vars(env).first() {
            Some(var) => Self::disabled_for(http, var),
            None => Self::from_env(http, env),
        }
    }

    /// The required variables that are unset, in the order above.
    fn unset_vars(env: Env<'_>) -> Vec<&'static str> {
        [Self::CREDENTIALS_VAR, Self::IMPERSONATE_USER_VAR]
            .into_iter()
            .filter(|var| optional(env, var).is_none())
            .collect()
    }

    fn build(
        http: &HttpClient,
        credentials_json: &str,
        impersonate_user: &str,
        calendar_id: &str,
        base: Url,
        token_url: Option<Url>,
    ) -> Result<Self> {
        let source = TokenSource::new(http, credentials_json, impersonate_user, token_url)?;
        Ok(Self {
            api: Api::new(http, API, base, None),
            auth: Auth::Tokens(Arc::new(source)),
            calendar_id: calendar_id.trim().into(),
        })
    }

    /// Whether calls are sent (false for a disabled client).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        matches!(self.auth, Auth::Tokens(_))
    }

    /// The variable that would enable a disabled client.
    #[must_use]
    pub fn disabled_var(&self) -> Option<&'static str> {
        match self.auth {
            Auth::Disabled(var) => Some(var),
            Auth::Tokens(_) => None,
        }
    }

    /// The user the service account acts as, if configured.
    #[must_use]
    pub fn impersonated_user(&self) -> Option<&str> {
        match &self.auth {
            Auth::Tokens(source) => Some(source.subject()),
            Auth::Disabled(_) => None,
        }
    }

    /// The calendar the events are on.
    #[must_use]
    pub fn calendar_id(&self) -> &str {
        &self.calendar_id
    }

    /// The same client on another calendar.
    #[must_use]
    pub fn with_calendar_id(mut self, calendar_id: &str) -> Self {
        self.calendar_id = calendar_id.trim().into();
        self
    }

    /// The same client at another base URL (a test server, a proxy),
    /// `/calendar/v3` included; the token URL is unchanged.
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] if `base` is not an http(s) URL.
    pub fn with_base_url(self, base: &str) -> Result<Self> {
        Ok(Self {
            api: self.api.with_base(base_url(Self::BASE_VAR, base)?),
            ..self
        })
    }

    /// The event, or `None` if it does not exist or was purged (404, 410).
    /// A deleted event that Google still keeps comes back cancelled.
    ///
    /// # Errors
    /// [`ClientError`]; a 5xx is retried, another 4xx is not.
    pub async fn get_event(&self, event_id: &str) -> Result<Option<CalendarEvent>> {
        const OP: &str = "get_event";
        let url = self.event_url(OP, event_id)?;
        gone_as_none(self.call(OP, Method::GET, url, None).await)
    }

    /// Creates `event` (`POST /calendars/{calendar}/events`). With
    /// [`NewEvent::id`] set, a repeat (409: the id exists) returns the existing
    /// event instead, cancelled if it was deleted since.
    ///
    /// # Errors
    /// [`ClientError`]; a rejected event (400) is not retried.
    pub async fn insert_event(&self, event: &NewEvent) -> Result<CalendarEvent> {
        const OP: &str = "insert_event";
        let mut url = self
            .api
            .url(OP, &["calendars", &self.calendar_id, "events"])?;
        url.query_pairs_mut().append_pair("sendUpdates", "none");
        let body = to_body(OP, event)?;
        let inserted = self.call(OP, Method::POST, url, Some(&body)).await;
        match (&event.id, inserted) {
            (Some(id), Err(err)) if calendar_status(&err) == Some(409) => {
                self.get_event(id).await?.ok_or(err)
            }
            (_, inserted) => inserted,
        }
    }

    /// Changes the fields in `patch` (an [`EventPatch`] or any JSON object;
    /// `PATCH /calendars/{calendar}/events/{id}`) and returns the event.
    ///
    /// # Errors
    /// [`ClientError`]; an unknown event (404) is not retried.
    pub async fn patch_event<P: Serialize + ?Sized>(
        &self,
        event_id: &str,
        patch: &P,
    ) -> Result<CalendarEvent> {
        const OP: &str = "patch_event";
        let body = to_body(OP, patch)?;
        let url = self.patch_url(OP, event_id)?;
        self.call(OP, Method::PATCH, url, Some(&body)).await
    }

    /// Takes the guest `email` (any case) off the event and returns it:
    /// unchanged, with no write, if they were not a guest; `None` if the event
    /// is gone. The other guests are written back exactly as Google had them,
    /// under `If-Match` with the etag read: if the event changed in between
    /// (a guest added by hand, another removal), Google answers 412 and the
    /// removal starts again from a fresh read, up to [`REMOVE_ATTEMPTS`] times.
    ///
    /// # Errors
    /// [`ClientError`]; a 5xx is retried, another 4xx (or a 412 on every
    /// attempt) is not.
    pub async fn remove_attendee(
        &self,
        event_id: &str,
        email: &str,
    ) -> Result<Option<CalendarEvent>> {
        const OP: &str = "remove_attendee";
        let email = email.trim().to_lowercase();
        let mut attempt = 1;
        loop {
            let url = self.event_url(OP, event_id)?;
            let Some(event) = gone_as_none(self.call::<Value>(OP, Method::GET, url, None).await)?
            else {
                return Ok(None);
            };
            let guests = event
                .get("attendees")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let kept: Vec<&Value> = guests
                .iter()
                .filter(|guest| {
                    guest
                        .get("email")
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .is_none_or(|other| other.to_lowercase() != email)
                })
                .collect();
            if kept.len() == guests.len() {
                return decode(OP, event).map(Some);
            }
            let body = serde_json::json!({ "attendees": kept });
            let etag = event.get("etag").and_then(Value::as_str);
            let url = self.patch_url(OP, event_id)?;
            match self
                .call_if_match(OP, Method::PATCH, url, Some(&body), etag)
                .await
            {
                Err(err) if calendar_status(&err) == Some(412) && attempt < REMOVE_ATTEMPTS => {
                    attempt += 1;
                }
                answer => return gone_as_none(answer),
            }
        }
    }

    fn event_url(&self, operation: &'static str, event_id: &str) -> Result<Url> {
        let path = ["calendars", &self.calendar_id, "events", event_id];
        self.api.url(operation, &path)
    }

    fn patch_url(&self, operation: &'static str, event_id: &str) -> Result<Url> {
        let mut url = self.event_url(operation, event_id)?;
        url.query_pairs_mut().append_pair("sendUpdates", "none");
        Ok(url)
    }

    /// Sends one authorized request; a 401 (a token revoked or expired early)
    /// drops the cached token and sends once more with a fresh one.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<T> {
        self.call_if_match(operation, method, url, body, None).await
    }

    /// [`Self::call`], sent with `If-Match: etag` when one is given (Google
    /// answers 412 if the event changed since it had that etag).
    async fn call_if_match<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<T> {
        let tokens = match &self.auth {
            Auth::Disabled(var) => return Err(ClientError::disabled(API, operation, var)),
            Auth::Tokens(tokens) => tokens,
        };
        let send = |bearer: HeaderValue| {
            let mut req = self
                .api
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, bearer);
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(etag) = if_match.and_then(|etag| HeaderValue::from_str(etag).ok()) {
                req = req.header(reqwest::header::IF_MATCH, etag);
            }
            self.api.send_json(operation, req)
        };
        let bearer = tokens.bearer().await?;
        match send(bearer.clone()).await {
            Err(err) if calendar_status(&err) == Some(401) => {
                tokens.forget(&bearer).await;
                send(tokens.bearer().await?).await
            }
            answer => answer,
        }
    }
}

/// A 404 or 410 from the Calendar API (not the token endpoint) as `None`.
fn gone_as_none<T>(answer: Result<T>) -> Result<Option<T>> {
    match answer {
        Ok(found) => Ok(Some(found)),
        Err(err) if matches!(calendar_status(&err), Some(404 | 410)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The status of a non-2xx answer from the Calendar API itself.
fn calendar_status(err: &ClientError) -> Option<u16> {
    err.as_status()
        .filter(|status| status.api() == API)
        .map(crate::StatusError::status)
}

fn to_body<B: Serialize + ?Sized>(operation: &'static str, body: &B) -> Result<Value> {
    serde_json::to_value(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            ClientError::invalid_argument(API, operation, "the body is not a JSON object")
        })
}

fn decode<T: DeserializeOwned>(operation: &'static str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|source| ClientError::Decode {
        api: API,
        operation,
        source,
    })
}
