//! Cal.com (API v2): create and cancel bookings.
//!
//! The API key is a Bearer token; every request names the API version in
//! `cal-api-version`. Cal.com has no idempotency key: a slot that is already
//! taken answers 4xx and is not retried, so a step that re-runs after a booking
//! was made should look for its own booking (by `metadata`) before refunding.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Result;
use crate::http::{Api, Credential, HttpClient};

/// Cal.com's API v2.
#[derive(Clone, Debug)]
pub struct CalClient {
    api: Api,
}

/// A booking to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBooking {
    /// The event type booked.
    pub event_type_id: i64,
    /// Start of the slot, sent as RFC 3339 in UTC (`2024-08-13T09:00:00Z`).
    #[serde(serialize_with = "rfc3339")]
    pub start: DateTime<Utc>,
    /// Who attends.
    pub attendee: Attendee,
    /// Up to 50 string pairs stored with the booking (e.g. the payment id).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// The person who booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// IANA time zone (`Europe/Berlin`).
    pub time_zone: String,
}

/// A booking, as Cal.com returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Booking {
    /// Numeric id.
    pub id: i64,
    /// Unique id used in URLs and webhooks (cancel by this).
    pub uid: String,
    /// `accepted`, `pending`, `cancelled`, ...
    pub status: String,
    /// Start, RFC 3339.
    #[serde(default)]
    pub start: Option<String>,
    /// End, RFC 3339.
    #[serde(default)]
    pub end: Option<String>,
}

/// Cal.com wraps every answer as `{"status": "success", "data": ...}`.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

impl CalClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://api.cal.com/v2";
    /// The `cal-api-version` sent with every request.
    pub const API_VERSION: &'static str = "2024-08-13";
    /// API key (`cal_...`). Required.
    pub const API_KEY_VAR: &'static str = "CAL_API_KEY";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "CAL_API_BASE";

    crate::http::keyed_client!("cal", API_KEY_VAR);

    fn build(http: &HttpClient, api_key: &str, base: Url) -> Result<Self> {
        let credential = Credential::new(Self::API_KEY_VAR, AUTHORIZATION, "Bearer ", api_key)?;
        let version = (
            HeaderName::from_static("cal-api-version"),
            HeaderValue::from_static(Self::API_VERSION),
        );
        Ok(Self {
            api: Api::new(http, "cal", base, Some(credential)).with_headers(vec![version]),
        })
    }

    /// Books a slot (`POST /bookings`).
    ///
    /// # Errors
    /// [`crate::ClientError`]; a slot already taken or outside the event type's
    /// availability is a 4xx and not retried.
    pub async fn create_booking(&self, booking: &CreateBooking) -> Result<Booking> {
        const OP: &str = "create_booking";
        let url = self.api.url(OP, &["bookings"])?;
        let req = self.api.request(Method::POST, url).json(booking);
        let answer: Envelope<Booking> = self.api.send_json(OP, req).await?;
        Ok(answer.data)
    }

    /// Cancels a booking by its uid (`POST /bookings/{uid}/cancel`).
    ///
    /// # Errors
    /// [`crate::ClientError`]; an unknown uid is a 404 and not retried.
    pub async fn cancel_booking(&self, uid: &str, reason: &str) -> Result<()> {
        const OP: &str = "cancel_booking";
        let url = self.api.url(OP, &["bookings", uid, "cancel"])?;
        let body = serde_json::json!({ "cancellationReason": reason });
        let req = self.api.request(Method::POST, url).json(&body);
        self.api.send(OP, req).await.map(drop)
    }
}
