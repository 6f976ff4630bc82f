use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use hookflow::failure::Verdict;
use hookflow_clients::testing::{CAL_KEY, Reply};
use hookflow_clients::{Attendee, CalClient, CreateBooking};
use serde_json::json;

use crate::{engine_verdict, setup};

const BOOKINGS: &str = "/cal/v2/bookings";

fn booking() -> CreateBooking {
    CreateBooking {
        event_type_id: 42,
        start: Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap(),
        attendee: Attendee {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            time_zone: "Europe/London".into(),
        },
        metadata: BTreeMap::from([("paymentId".to_owned(), "pay_1".to_owned())]),
    }
}

#[tokio::test]
async fn create_booking_sends_the_versioned_json_request() {
    // GIVEN Cal.com accepts the booking
    let (server, clients) = setup().await;
    server.on(
        "POST",
        BOOKINGS,
        Reply::json(
            201,
            &json!({"status": "success", "data": {
                "id": 7, "uid": "bk_abc", "status": "accepted", "title": "Mentoring",
                "start": "2027-01-04T09:00:00.000Z", "end": "2027-01-04T10:00:00.000Z",
            }}),
        ),
    );

    // WHEN a booking is created
    let created = clients.cal.create_booking(&booking()).await.unwrap();

    // THEN the request carried the key, the API version and the camelCase body
    let req = &server.requests_to("POST", BOOKINGS)[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {CAL_KEY}").as_str())
    );
    assert_eq!(req.header("cal-api-version"), Some(CalClient::API_VERSION));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.json(),
        json!({
            "eventTypeId": 42,
            "start": "2027-01-04T09:00:00Z",
            "attendee": {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/London"},
            "metadata": {"paymentId": "pay_1"},
        })
    );
    assert_eq!(created.id, 7);
    assert_eq!(created.uid, "bk_abc");
    assert_eq!(created.status, "accepted");
}

#[tokio::test]
async fn a_slot_already_taken_is_final() {
    let (server, clients) = setup().await;
    server.on(
        "POST",
        BOOKINGS,
        Reply::json(
            409,
            &json!({"status": "error", "error": {
                "code": "ConflictException", "message": "The slot is no longer available",
            }}),
        ),
    );

    let err = clients.cal.create_booking(&booking()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "cal create_booking: HTTP 409 (ConflictException: The slot is no longer available)"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);
}

#[tokio::test]
async fn cancel_booking_posts_the_reason_to_the_uid() {
    let (server, clients) = setup().await;
    let path = "/cal/v2/bookings/bk_abc/cancel";
    server.on(
        "POST",
        path,
        Reply::json(200, &json!({"status": "success", "data": {}})),
    );

    clients
        .cal
        .cancel_booking("bk_abc", "refunded")
        .await
        .unwrap();

    let req = &server.requests_to("POST", path)[0];
    assert_eq!(req.header("cal-api-version"), Some(CalClient::API_VERSION));
    assert_eq!(req.json(), json!({"cancellationReason": "refunded"}));
}
