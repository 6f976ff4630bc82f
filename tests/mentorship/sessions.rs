//! Sessions: Cal.com bookings fill the pack, meeting ends (or the mentor)
//! number the sessions, and after the 4th the seat is held 72 h for a
//! renewal before it is released.

use hookflow::RunStatus;
use hookflow_clients::testing::Reply;
use mentorship::{CompletionSource, PackStatus, ReleaseReason, SeatStatus, SessionStatus};
use serde_json::json;

use crate::support::cancel_booking_path;
use crate::world::{
    Backend, DAY, HOUR, PAYPAL, PAYPAL_ORDER, SAMPLE_BOOKING, STRIPE_ORDER, World, step_ids,
};

const COMPLETE: &str = "complete-session";

/// Bookings `b2`..`b4` after the sample's, each a day apart.
const MORE: [(&str, &str); 3] = [
    ("bk-2", "2025-06-19T16:00:00Z"),
    ("bk-3", "2025-06-26T16:00:00Z"),
    ("bk-4", "2025-07-03T16:00:00Z"),
];

/// GIVEN a member with a pack whose four sessions are booked.
async fn booked<B: Backend>(world: World<B>) -> World<B> {
    world.buy().await;
    world.deliver(crate::world::PACK_BOOKING).await;
    for (uid, start) in MORE {
        world.book(uid, start).await;
    }
    world
}

/// The session number of every `complete-session` run.
async fn numbers<B: Backend>(world: &World<B>) -> Vec<serde_json::Value> {
    let runs = world.runs_of(COMPLETE).await;
    runs.into_iter()
        .map(|run| run.output.unwrap_or_default()["session"].clone())
        .collect()
}

pub async fn bookings_are_recorded_and_held_sessions_numbered_once<B: Backend>(world: World<B>) {
    // GIVEN four booked sessions
    let world = booked(world).await;
    let pack = world.pack(STRIPE_ORDER).await;
    assert_eq!(pack.scheduled().count(), 4);
    let first = &pack.sessions[0];
    assert_eq!(first.booking_uid, SAMPLE_BOOKING);
    assert_eq!(
        first.starts_at.unwrap().to_rfc3339(),
        "2025-06-12T16:00:00+00:00"
    );
    assert_eq!(
        first.ends_at.unwrap().to_rfc3339(),
        "2025-06-12T16:45:00+00:00"
    );

    // WHEN Cal.com reports the sample meeting ended, twice, and its mentor marks it done too
    world.deliver(crate::world::PACK_MEETING_ENDED).await;
    world.deliver(crate::world::PACK_MEETING_ENDED).await;
    world.mentor_marks_done(STRIPE_ORDER, SAMPLE_BOOKING).await;
    // and the mentor marks the third booking done before the second is held
    world.mentor_marks_done(STRIPE_ORDER, "bk-3").await;
    world.meeting_ended("bk-2").await;

    // THEN each session counts once, numbered in the order they were held
    let pack = world.pack(STRIPE_ORDER).await;
    assert_eq!(pack.sessions_completed, 3);
    let held: Vec<_> = pack
        .sessions
        .iter()
        .map(|s| (s.booking_uid.as_str(), s.status, s.number, s.completed_by))
        .collect();
    assert_eq!(
        held,
        [
            (
                SAMPLE_BOOKING,
                SessionStatus::Completed,
                Some(1),
                Some(CompletionSource::Cal)
            ),
            (
                "bk-2",
                SessionStatus::Completed,
                Some(3),
                Some(CompletionSource::Cal)
            ),
            (
                "bk-3",
                SessionStatus::Completed,
                Some(2),
                Some(CompletionSource::Mentor)
            ),
            ("bk-4", SessionStatus::Scheduled, None, None),
        ]
    );
    let runs = world.runs_of(COMPLETE).await;
    assert!(runs.iter().all(|run| run.status == RunStatus::Completed));
    let mut sessions = numbers(&world).await;
    sessions.sort_by_key(|n| n.as_u64());
    assert_eq!(
        sessions,
        [json!(1), json!(2), json!(3)],
        "one run per session"
    );
    assert_eq!(pack.status, PackStatus::Active);
    assert_eq!(world.seat().await.status, SeatStatus::Reserved);
}

pub async fn a_booking_the_pack_cannot_take_is_cancelled_in_cal<B: Backend>(world: World<B>) {
    // GIVEN four booked sessions
    let world = booked(world).await;
    // WHEN a fifth is booked
    world.book("bk-5", "2025-07-10T16:00:00Z").await;
    // THEN it is cancelled with the reason, and the pack is unchanged
    let cancels = world
        .server
        .requests_to("POST", &cancel_booking_path("bk-5"));
    assert_eq!(cancels.len(), 1);
    let reason = cancels[0].json()["cancellationReason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("all 4 sessions"), "{reason}");
    assert_eq!(world.pack(STRIPE_ORDER).await.sessions.len(), 4);

    // WHEN one booking is cancelled, the place is free again
    world
        .cal(crate::world::PACK_BOOKING, |body| {
            body["triggerEvent"] = json!("BOOKING_CANCELLED");
            body["payload"]["uid"] = json!("bk-4");
        })
        .await;
    world.book("bk-6", "2025-07-10T16:00:00Z").await;
    assert!(
        world
            .server
            .requests_to("POST", &cancel_booking_path("bk-6"))
            .is_empty()
    );
    let pack = world.pack(STRIPE_ORDER).await;
    assert_eq!(pack.scheduled().count(), 4);
    assert_eq!(pack.sessions[3].status, SessionStatus::Cancelled);
}

/// WHEN all four sessions of the booked pack are held, the last at `now`.
async fn hold_all<B: Backend>(world: &World<B>) {
    world.deliver(crate::world::PACK_MEETING_ENDED).await;
    for (uid, _) in MORE {
        world.meeting_ended(uid).await;
    }
}

pub async fn without_a_renewal_the_seat_is_released_72_hours_after_the_last_session<B: Backend>(
    world: World<B>,
) {
    let world = booked(world).await;
    hold_all(&world).await;
    let held_at = world.now_ms();

    // THEN the pack is complete and the seat in grace for 72 h
    let pack = world.pack(STRIPE_ORDER).await;
    assert_eq!(
        (pack.status, pack.sessions_completed),
        (PackStatus::Completed, 4)
    );
    let seat = world.seat().await;
    assert_eq!(seat.status, SeatStatus::Grace);
    assert_eq!(
        seat.grace_period_ends_at.unwrap().timestamp_millis(),
        held_at + 72 * 3_600_000
    );
    let last = world
        .runs_of(COMPLETE)
        .await
        .into_iter()
        .find(|run| run.status == RunStatus::Sleeping)
        .expect("the 4th session's run sleeps through the grace period");

    // WHEN 71 hours pass, nothing is released
    world.advance(71 * HOUR).await;
    assert_eq!(world.seat().await.status, SeatStatus::Grace);
    assert!(
        world
            .metadata_updates()
            .iter()
            .all(|m| m["dashboardAccess"] != false)
    );

    // WHEN the grace period ends
    world.advance(2 * HOUR).await;

    // THEN the seat is released, access revoked, the member told
    let seat = world.seat().await;
    assert_eq!(seat.status, SeatStatus::Released);
    assert_eq!(seat.release_reason, Some(ReleaseReason::NotRenewed));
    let view = world.view(&last.id).await;
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(view.run.output.as_ref().unwrap()["seat"], "released");
    assert_eq!(view.run.output.as_ref().unwrap()["session"], 4);
    assert!(step_ids(&view).starts_with(&[
        "record-session",
        "start-grace-period",
        "grace-period",
        "release-seat",
        "revoke-dashboard-access",
        "emit-seat-released",
    ]));
    assert_eq!(
        world.metadata_updates().last(),
        Some(&json!({"dashboardAccess": false}))
    );
    assert_eq!(
        world.email_tags().last().map(String::as_str),
        Some("seat-released-email")
    );
    let released = world.env.runs().await;
    assert!(released.iter().all(|run| run.status != RunStatus::Failed));
}

pub async fn a_renewal_during_the_grace_period_keeps_the_seat<B: Backend>(world: World<B>) {
    let world = booked(world).await;
    hold_all(&world).await;
    assert_eq!(world.seat().await.status, SeatStatus::Grace);

    // WHEN the member buys a new pack a day later
    world.advance(DAY).await;
    world.deliver(PAYPAL).await;
    let seat = world.seat().await;
    assert_eq!(
        (seat.status, seat.order_id.as_str()),
        (SeatStatus::Reserved, PAYPAL_ORDER)
    );

    // THEN the end of the grace period releases nothing
    world.advance(3 * DAY).await;
    let seat = world.seat().await;
    assert_eq!(
        (seat.status, seat.order_id.as_str()),
        (SeatStatus::Reserved, PAYPAL_ORDER)
    );
    let outputs: Vec<_> = world
        .runs_of(COMPLETE)
        .await
        .into_iter()
        .filter_map(|run| run.output)
        .filter(|out| out["seat"] == "renewed")
        .collect();
    assert_eq!(
        outputs.len(),
        1,
        "the 4th session's run ends with the renewal"
    );
    assert!(
        world
            .metadata_updates()
            .iter()
            .all(|m| m["dashboardAccess"] != false)
    );
    assert!(
        !world
            .email_tags()
            .iter()
            .any(|tag| tag.starts_with("seat-released"))
    );
}

pub async fn a_release_that_failed_is_finished_by_a_replay<B: Backend>(world: World<B>) {
    // GIVEN a pack used up, and Clerk refusing metadata updates
    let world = booked(world).await;
    hold_all(&world).await;
    let metadata = crate::support::clerk_metadata_path(crate::world::CLERK_ID);
    world
        .server
        .on("PATCH", &metadata, Reply::json(422, &json!({"errors": []})));

    // WHEN the grace period ends: the seat is released but access is not revoked
    world.advance(73 * HOUR).await;
    let failed = world
        .runs_of(COMPLETE)
        .await
        .into_iter()
        .find(|run| run.status == RunStatus::Failed)
        .expect("the 4th session's run fails at revoke-dashboard-access");
    assert_eq!(world.seat().await.status, SeatStatus::Released);
    assert!(
        !world
            .email_tags()
            .iter()
            .any(|t| t.starts_with("seat-released"))
    );

    // WHEN Clerk is fixed and an admin replays the run
    world.server.on(
        "PATCH",
        &metadata,
        Reply::json(200, &crate::support::clerk_user(json!({}))),
    );
    world.env.engine().replay(&failed.id).await.unwrap();
    world.env.settle().await;

    // THEN the replay carries on: access revoked, the member told, once
    let replayed = world
        .runs_of(COMPLETE)
        .await
        .into_iter()
        .find(|run| {
            run.output
                .as_ref()
                .is_some_and(|out| out["seat"] == "released")
        })
        .expect("the replay releases");
    let view = world.view(&replayed.id).await;
    assert_eq!(
        step_ids(&view),
        [
            "record-session",
            "start-grace-period",
            "release-seat",
            "revoke-dashboard-access",
            "emit-seat-released",
            "seat-released-look-up-member",
            "seat-released-email"
        ]
    );
    assert_eq!(
        world.metadata_updates().last(),
        Some(&json!({"dashboardAccess": false}))
    );
    let sent = world.email_tags();
    assert_eq!(
        sent.iter()
            .filter(|t| t.starts_with("seat-released"))
            .count(),
        1
    );
}
