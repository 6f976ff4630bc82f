//! Cal.com: `X-Cal-Signature-256`, derived dedupe ids.

use hookflow::event::derived_id;
use hookflow_webhooks::{CalConfig, Provider};

use crate::support::{self, provider_suite};

const CREATED: &str = "webhook-cal-booking-created.json";
const CANCELLED: &str = "webhook-cal-booking-cancelled.json";
const STARTED: &str = "webhook-cal-meeting-started.json";
const ENDED: &str = "webhook-cal-meeting-ended.json";

provider_suite!(signed_body: CREATED, "x-cal-signature-256");

#[tokio::test]
async fn each_trigger_becomes_a_cal_event_named_after_it() {
    for (file, name) in [
        (CREATED, "cal/BOOKING_CREATED"),
        (CANCELLED, "cal/BOOKING_CANCELLED"),
        (STARTED, "cal/MEETING_STARTED"),
        (ENDED, "cal/MEETING_ENDED"),
    ] {
        let events = support::assert_accepted(file).await;
        assert_eq!(events.len(), 1, "{file}");
        assert_eq!(events[0].name, name);
    }
}

#[tokio::test]
async fn dedupe_ids_come_from_trigger_uid_and_created_at() {
    let created = support::assert_accepted(CREATED).await.remove(0);
    let cancelled = support::assert_accepted(CANCELLED).await.remove(0);
    let started = support::assert_accepted(STARTED).await.remove(0);
    let ended = support::assert_accepted(ENDED).await.remove(0);
    let created_at = created.data["createdAt"].as_str().unwrap();
    assert_eq!(
        created.id,
        derived_id(&["cal", "BOOKING_CREATED", "bk8hookflowUid0001", created_at])
    );
    let ids = [&created.id, &cancelled.id, &started.id, &ended.id];
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b, "distinct triggers of one booking must not collide");
        }
    }
}

#[tokio::test]
async fn no_secret_provided_header_is_rejected() {
    let sample = support::load(CREATED);
    let request =
        support::with_header(&sample.request, "X-Cal-Signature-256", "no-secret-provided");
    let response = support::assert_rejected_with(
        &support::receiver(),
        Provider::Cal,
        &request,
        sample.now_ms,
        401,
    )
    .await;
    assert!(
        response.body_string().contains("no signature"),
        "{}",
        response.body
    );
}

#[tokio::test]
async fn missing_trigger_event_is_400() {
    support::assert_missing_field_is_400(CREATED, "triggerEvent").await;
}

#[test]
fn the_no_secret_placeholder_is_not_a_usable_secret() {
    assert!(CalConfig::new("no-secret-provided").is_err());
}
