//! Google Calendar: a service account's signed JWT traded for a cached token,
//! and the event calls made with it.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use hookflow::failure::Verdict;
use hookflow_clients::google_calendar::{Attendee, Organizer};
use hookflow_clients::testing::{
    GOOGLE_ACCESS_TOKEN, GOOGLE_CLIENT_EMAIL, GOOGLE_IMPERSONATE_USER, GOOGLE_TEST_PUBLIC_KEY,
    GOOGLE_TOKEN_PATH, Reply, TestServer,
};
use hookflow_clients::{
    ClientError, Clients, EventDateTime, EventPatch, GoogleCalendarClient, HttpClient, NewEvent,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::{engine_verdict, setup};

const EVENTS: &str = "/gcal/calendars/primary/events";
const EVENT: &str = "/gcal/calendars/primary/events/ev1";

fn event_json() -> Value {
    json!({
        "kind": "calendar#event", "id": "ev1", "status": "confirmed",
        "htmlLink": "https://www.google.com/calendar/event?eid=ZXYx",
        "summary": "Office hours", "description": "<p>Bring questions</p>",
        "start": {"dateTime": "2027-01-04T09:00:00-08:00", "timeZone": "America/Los_Angeles"},
        "end": {"dateTime": "2027-01-04T10:00:00-08:00", "timeZone": "America/Los_Angeles"},
        "organizer": {"email": GOOGLE_IMPERSONATE_USER, "displayName": "AI Hero", "self": true},
        "guestsCanInviteOthers": false,
        "attendees": [
            {"email": GOOGLE_IMPERSONATE_USER, "organizer": true, "responseStatus": "accepted"},
            {"email": "Ada@Example.com", "displayName": "Ada", "responseStatus": "needsAction"},
            {"email": "grace@example.com", "optional": true, "responseStatus": "accepted"},
        ],
    })
}

fn new_event() -> NewEvent {
    let start = Utc.with_ymd_and_hms(2027, 1, 4, 17, 0, 0).unwrap();
    NewEvent {
        id: None,
        summary: "Office hours".into(),
        description: Some("<p>Bring questions</p>".into()),
        location: None,
        start: EventDateTime::at(start, "America/Los_Angeles"),
        end: EventDateTime::at(start + chrono::Duration::hours(1), "America/Los_Angeles"),
        organizer: Some(Organizer {
            email: GOOGLE_IMPERSONATE_USER.into(),
            display_name: Some("AI Hero".into()),
        }),
        attendees: vec![Attendee {
            response_status: Some("accepted".into()),
            ..Attendee::new(GOOGLE_IMPERSONATE_USER)
        }],
        guests_can_invite_others: false,
        guests_can_see_other_guests: false,
    }
}

fn bearer() -> String {
    format!("Bearer {GOOGLE_ACCESS_TOKEN}")
}

#[tokio::test]
async fn the_first_call_trades_a_signed_jwt_for_a_token_it_sends_as_bearer() {
    // GIVEN an event on the impersonated user's primary calendar
    let (server, clients) = setup().await;
    server.on("GET", EVENT, Reply::json(200, &event_json()));

    // WHEN it is read
    let event = clients.google_calendar.get_event("ev1").await.unwrap();

    // THEN the client exchanged a JWT assertion, form-encoded, for a token
    let exchange = &server.requests_to("POST", GOOGLE_TOKEN_PATH)[0];
    let form = exchange.form();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    // AND the assertion is an RS256 JWT signed by the account's key, for its user
    let token_url = format!("{}{GOOGLE_TOKEN_PATH}", server.url());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&token_url]);
    validation.set_issuer(&[GOOGLE_CLIENT_EMAIL]);
    let key = DecodingKey::from_rsa_pem(GOOGLE_TEST_PUBLIC_KEY.as_bytes()).unwrap();
    let jwt = jsonwebtoken::decode::<Value>(&form["assertion"], &key, &validation).unwrap();
    assert_eq!(jwt.header.kid.as_deref(), Some("test-key-1"));
    let claims = jwt.claims;
    assert_eq!(claims["iss"], GOOGLE_CLIENT_EMAIL);
    assert_eq!(claims["sub"], GOOGLE_IMPERSONATE_USER);
    assert_eq!(claims["aud"], token_url.as_str());
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/calendar");
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["exp"].as_u64().unwrap() - iat, 3600);
    assert!(iat.abs_diff(u64::try_from(Utc::now().timestamp()).unwrap()) < 60);
    // AND the calendar call carried the token and decoded the event
    let get = &server.requests_to("GET", EVENT)[0];
    assert_eq!(get.header("authorization"), Some(bearer().as_str()));
    let event = event.unwrap();
    assert_eq!(event.status.as_deref(), Some("confirmed"));
    assert!(!event.is_cancelled());
    assert_eq!(
        event.start.unwrap(),
        EventDateTime::at(
            Utc.with_ymd_and_hms(2027, 1, 4, 17, 0, 0).unwrap(),
            "America/Los_Angeles"
        )
    );
    assert_eq!(event.attendees[1].display_name.as_deref(), Some("Ada"));
    assert_eq!(
        event.organizer.unwrap().display_name.as_deref(),
        Some("AI Hero")
    );
    assert_eq!(event.guests_can_invite_others, Some(false));
    assert_eq!(event.guests_can_see_other_guests, None);
    assert!(
        event
            .html_link
            .unwrap()
            .starts_with("https://www.google.com/calendar/")
    );
}

#[tokio::test]
async fn one_token_serves_every_call_of_every_clone_until_it_nears_expiry() {
    let (server, clients) = setup().await;
    server.on("GET", EVENT, Reply::json(200, &event_json()));
    let clone = clients.google_calendar.clone();

    clients.google_calendar.get_event("ev1").await.unwrap();
    clone.get_event("ev1").await.unwrap();

    assert_eq!(server.requests_to("POST", GOOGLE_TOKEN_PATH).len(), 1);
    assert_eq!(server.requests_to("GET", EVENT).len(), 2);

    // GIVEN a token about to expire (under the one-minute margin)
    let server = TestServer::start().await;
    server.on(
        "POST",
        GOOGLE_TOKEN_PATH,
        Reply::json(200, &json!({"access_token": "short", "expires_in": 30})),
    );
    server.on("GET", EVENT, Reply::json(200, &event_json()));
    let clients = server.clients();

    clients.google_calendar.get_event("ev1").await.unwrap();
    clients.google_calendar.get_event("ev1").await.unwrap();

    // THEN each call gets a fresh one
    assert_eq!(server.requests_to("POST", GOOGLE_TOKEN_PATH).len(), 2);
}

#[tokio::test]
async fn a_token_refused_mid_life_is_renewed_once() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "GET",
        EVENT,
        [
            Reply::json(
                401,
                &json!({"error": {"code": 401, "message": "Invalid Credentials"}}),
            ),
            Reply::json(200, &event_json()),
        ],
    );

    let event = clients.google_calendar.get_event("ev1").await.unwrap();

    assert!(event.is_some());
    assert_eq!(server.requests_to("POST", GOOGLE_TOKEN_PATH).len(), 2);
    assert_eq!(server.requests_to("GET", EVENT).len(), 2);
}

#[tokio::test]
async fn a_missing_or_purged_event_is_none_but_a_missing_token_endpoint_is_an_error() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "GET",
        EVENT,
        [
            Reply::json(
                404,
                &json!({"error": {"code": 404, "message": "Not Found"}}),
            ),
            Reply::json(
                410,
                &json!({"error": {"code": 410, "message": "Resource has been deleted"}}),
            ),
        ],
    );

    assert_eq!(
        clients.google_calendar.get_event("ev1").await.unwrap(),
        None
    );
    assert_eq!(
        clients.google_calendar.get_event("ev1").await.unwrap(),
        None
    );

    let server = TestServer::start().await;
    server.on("POST", GOOGLE_TOKEN_PATH, Reply::status(404));
    let err = server
        .clients()
        .google_calendar
        .get_event("ev1")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "google_oauth token: HTTP 404");
    assert_eq!(engine_verdict(err), Verdict::Final);
}

#[tokio::test]
async fn insert_posts_the_event_without_notifying_guests() {
    let (server, clients) = setup().await;
    server.on("POST", EVENTS, Reply::json(200, &event_json()));

    let event = clients
        .google_calendar
        .insert_event(&new_event())
        .await
        .unwrap();

    assert_eq!(event.id, "ev1");
    let req = &server.requests_to("POST", EVENTS)[0];
    assert_eq!(req.header("authorization"), Some(bearer().as_str()));
    assert_eq!(req.query.as_deref(), Some("sendUpdates=none"));
    assert_eq!(
        req.json(),
        json!({
            "summary": "Office hours", "description": "<p>Bring questions</p>",
            "start": {"dateTime": "2027-01-04T17:00:00Z", "timeZone": "America/Los_Angeles"},
            "end": {"dateTime": "2027-01-04T18:00:00Z", "timeZone": "America/Los_Angeles"},
            "organizer": {"email": GOOGLE_IMPERSONATE_USER, "displayName": "AI Hero"},
            "attendees": [{"email": GOOGLE_IMPERSONATE_USER, "responseStatus": "accepted"}],
            "guestsCanInviteOthers": false, "guestsCanSeeOtherGuests": false,
        })
    );
}

#[tokio::test]
async fn an_insert_repeated_with_its_id_returns_the_event_the_first_made() {
    // GIVEN the first run's insert already made event ev1
    let (server, clients) = setup().await;
    let duplicate =
        json!({"error": {"code": 409, "message": "The requested identifier already exists."}});
    server.on("POST", EVENTS, Reply::json(409, &duplicate));
    server.on("GET", EVENT, Reply::json(200, &event_json()));
    let event = NewEvent {
        id: Some("ev1".into()),
        ..new_event()
    };

    // WHEN the step re-runs
    let again = clients.google_calendar.insert_event(&event).await.unwrap();

    // THEN it gets that event back
    assert_eq!(again.id, "ev1");
    assert_eq!(server.requests_to("POST", EVENTS)[0].json()["id"], "ev1");
    // AND without a chosen id a 409 stays a final error
    let err = clients
        .google_calendar
        .insert_event(&new_event())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(engine_verdict(err), Verdict::Final);
}

#[tokio::test]
async fn patch_sends_only_the_fields_given() {
    let (server, clients) = setup().await;
    server.on("PATCH", EVENT, Reply::json(200, &event_json()));

    let patch = EventPatch {
        summary: Some("Office hours (moved)".into()),
        location: Some("Zoom".into()),
        ..EventPatch::default()
    };
    clients
        .google_calendar
        .patch_event("ev1", &patch)
        .await
        .unwrap();
    clients
        .google_calendar
        .patch_event("ev1", &json!({"status": "cancelled"}))
        .await
        .unwrap();

    let sent = server.requests_to("PATCH", EVENT);
    assert_eq!(sent[0].header("authorization"), Some(bearer().as_str()));
    assert_eq!(sent[0].query.as_deref(), Some("sendUpdates=none"));
    assert_eq!(
        sent[0].json(),
        json!({"summary": "Office hours (moved)", "location": "Zoom"})
    );
    assert_eq!(sent[1].json(), json!({"status": "cancelled"}));
    let err = clients
        .google_calendar
        .patch_event("ev1", &json!(["not", "an", "object"]))
        .await
        .unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Final);
    assert_eq!(server.requests_to("PATCH", EVENT).len(), 2);
}

#[tokio::test]
async fn remove_attendee_writes_back_every_other_guest_untouched() {
    let (server, clients) = setup().await;
    server.on("GET", EVENT, Reply::json(200, &event_json()));
    let mut patched = event_json();
    patched["attendees"].as_array_mut().unwrap().remove(1);
    server.on("PATCH", EVENT, Reply::json(200, &patched));

    let event = clients
        .google_calendar
        .remove_attendee("ev1", " ada@example.COM ")
        .await
        .unwrap()
        .unwrap();

    let sent = &server.requests_to("PATCH", EVENT)[0];
    assert_eq!(sent.query.as_deref(), Some("sendUpdates=none"));
    assert_eq!(
        sent.json(),
        json!({"attendees": [
            {"email": GOOGLE_IMPERSONATE_USER, "organizer": true, "responseStatus": "accepted"},
            {"email": "grace@example.com", "optional": true, "responseStatus": "accepted"},
        ]})
    );
    let emails: Vec<&str> = event.attendees.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(emails, [GOOGLE_IMPERSONATE_USER, "grace@example.com"]);
}

#[tokio::test]
async fn remove_attendee_writes_under_the_etag_and_starts_again_when_the_event_changed() {
    let (server, clients) = setup().await;
    // GIVEN the event at etag "1", then (a guest added by hand) at etag "2"
    let mut first = event_json();
    first["etag"] = json!("\"1\"");
    let mut second = event_json();
    second["etag"] = json!("\"2\"");
    second["attendees"]
        .as_array_mut()
        .unwrap()
        .push(json!({"email": "new@example.com"}));
    server.on_sequence(
        "GET",
        EVENT,
        [Reply::json(200, &first), Reply::json(200, &second)],
    );
    server.on_sequence(
        "PATCH",
        EVENT,
        [
            Reply::json(
                412,
                &json!({"error": {"code": 412, "message": "Precondition Failed"}}),
            ),
            Reply::json(200, &second),
        ],
    );
    // WHEN Ada is removed
    clients
        .google_calendar
        .remove_attendee("ev1", "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    // THEN the first write carried etag 1 and was refused; the second, from a
    // fresh read, carried etag 2 and kept the guest added meanwhile
    let sent = server.requests_to("PATCH", EVENT);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].header("if-match"), Some("\"1\""));
    assert_eq!(sent[1].header("if-match"), Some("\"2\""));
    let kept: Vec<String> = sent[1].json()["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_owned())
        .collect();
    assert!(kept.contains(&"new@example.com".to_owned()), "{kept:?}");
    assert!(!kept.contains(&"ada@example.com".to_owned()), "{kept:?}");
}

#[tokio::test]
async fn remove_attendee_writes_nothing_for_a_stranger_or_a_gone_event() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "GET",
        EVENT,
        [Reply::json(200, &event_json()), Reply::status(404)],
    );

    let unchanged = clients
        .google_calendar
        .remove_attendee("ev1", "linus@example.com")
        .await
        .unwrap()
        .unwrap();
    let gone = clients
        .google_calendar
        .remove_attendee("ev1", "ada@example.com")
        .await
        .unwrap();

    assert_eq!(unchanged.attendees.len(), 3);
    assert_eq!(gone, None);
    assert!(server.requests_to("PATCH", EVENT).is_empty());
}

#[tokio::test]
async fn an_outage_is_retried_and_a_refusal_is_final() {
    let (server, clients) = setup().await;
    server.on_sequence(
        "GET",
        EVENT,
        [
            Reply::json(
                500,
                &json!({"error": {"code": 500, "message": "Backend Error"}}),
            ),
            Reply::json(
                403,
                &json!({"error": {"code": 403, "message": "Forbidden"}}),
            ),
        ],
    );

    let outage = clients.google_calendar.get_event("ev1").await.unwrap_err();
    assert_eq!(outage.status(), Some(500));
    assert_eq!(engine_verdict(outage), Verdict::Retry);
    let refused = clients.google_calendar.get_event("ev1").await.unwrap_err();
    assert_eq!(engine_verdict(refused), Verdict::Final);

    // A delegation not granted: the token endpoint refuses the assertion.
    let server = TestServer::start().await;
    server.on(
        "POST",
        GOOGLE_TOKEN_PATH,
        Reply::json(
            401,
            &json!({"error": "unauthorized_client", "error_description": "Client is unauthorized"}),
        ),
    );
    let err = server
        .clients()
        .google_calendar
        .get_event("ev1")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "google_oauth token: HTTP 401 (Client is unauthorized)"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);
    assert!(server.requests_to("GET", EVENT).is_empty());
}

fn lookup(vars: BTreeMap<String, String>) -> impl Fn(&str) -> Option<String> {
    move |name| vars.get(name).cloned()
}

#[tokio::test]
async fn an_unconfigured_client_fails_naming_the_variable_without_a_request() {
    let http = HttpClient::new().unwrap();

    let clients = Clients::from_env_or_disabled(&http, &|_| None).unwrap();
    let err = clients.google_calendar.get_event("ev1").await.unwrap_err();
    assert!(matches!(err, ClientError::Disabled { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "google_calendar get_event: google_calendar is not configured: set GOOG_CREDENTIALS_JSON"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);

    // Half configured: the missing half is named.
    let only_key = lookup(BTreeMap::from([(
        "GOOG_CREDENTIALS_JSON".to_owned(),
        TestServer::google_credentials_json(),
    )]));
    let client = GoogleCalendarClient::from_env_or_disabled(&http, &only_key).unwrap();
    assert_eq!(
        client.disabled_var(),
        Some("GOOG_CALENDAR_IMPERSONATE_USER")
    );
    let err = client.remove_attendee("ev1", "a@b.c").await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("set GOOG_CALENDAR_IMPERSONATE_USER"),
        "{err}"
    );
    let err = GoogleCalendarClient::from_env(&http, &|_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing configuration: set GOOG_CREDENTIALS_JSON, GOOG_CALENDAR_IMPERSONATE_USER"
    );
}

#[tokio::test]
async fn a_broken_key_fails_at_start_up_without_showing_it() {
    let http = HttpClient::new().unwrap();
    let server = TestServer::start().await;
    for broken in [
        r#"{"client_email": "a@b.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"}"#,
        r#"{"private_key": "secret"}"#,
        "secret",
    ] {
        let mut env = server.env();
        env.insert("GOOG_CREDENTIALS_JSON".into(), broken.into());

        let err = Clients::from_env_or_disabled(&http, &lookup(env)).unwrap_err();

        assert!(
            matches!(
                err,
                ClientError::InvalidConfig {
                    var: "GOOG_CREDENTIALS_JSON",
                    ..
                }
            ),
            "{err:?}"
        );
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert!(
            !shown.contains("secret") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn the_calendar_and_endpoints_come_from_configuration() {
    let server = TestServer::start().await;
    let mut env = server.env();
    env.insert(
        "GOOG_CALENDAR_ID".into(),
        "team@group.calendar.google.com".into(),
    );
    let http = HttpClient::new().unwrap();
    let client = GoogleCalendarClient::from_env(&http, &lookup(env)).unwrap();
    let path = "/gcal/calendars/team@group.calendar.google.com/events/ev1";
    server.on("GET", path, Reply::json(200, &event_json()));

    assert_eq!(client.calendar_id(), "team@group.calendar.google.com");
    assert_eq!(client.impersonated_user(), Some(GOOGLE_IMPERSONATE_USER));
    assert!(client.get_event("ev1").await.unwrap().is_some());
    let err = client.get_event("..").await.unwrap_err();
    assert_eq!(engine_verdict(err), Verdict::Final);
    // Defaults: Google's endpoints.
    let default = GoogleCalendarClient::new(
        &http,
        &TestServer::google_credentials_json(),
        GOOGLE_IMPERSONATE_USER,
    )
    .unwrap();
    assert_eq!(default.calendar_id(), "primary");
    let debug = format!("{default:?}");
    assert!(debug.contains("www.googleapis.com"), "{debug}");
    assert!(
        !debug.contains(GOOGLE_IMPERSONATE_USER) && !debug.contains("PRIVATE"),
        "{debug}"
    );
}
