//! Expiration: the daily sweep (a cron tick, delivered as the platform
//! delivers it) finds packs past their 90 days; one with no session scheduled expires at once
//! and gives its seat back; one with sessions scheduled blocks new bookings
//! and expires after its last session is held.

use hookflow::RunStatus;
use mentorship::{PackStatus, ReleaseReason, SeatStatus};
use serde_json::json;

use crate::support::cancel_booking_path;
use crate::world::{Backend, SLACK, STRIPE_ORDER, World, step_ids};

pub const SWEEP: &str = "sweep-expired-packs";
pub const EXPIRE: &str = "expire-pack";

/// GIVEN a member with a pack bought on 2025-06-02 (expiring 2025-08-31
/// 10:15 UTC).
pub async fn bought<B: Backend>(world: World<B>) -> World<B> {
    world.buy().await;
    world
}

pub async fn an_expired_pack_without_scheduled_sessions_expires_and_releases_the_seat<
    B: Backend,
>(
    world: World<B>,
) {
    let world = bought(world).await;

    // WHEN the sweep runs on the day the pack expires (03:00, before 10:15)
    world.sweep_at("2025-08-31T03:00:00Z").await;
    // THEN nothing is expired yet
    let sweep = world.only_run(SWEEP).await;
    assert_eq!(sweep.run.status, RunStatus::Completed, "{sweep:#?}");
    assert_eq!(sweep.run.output.as_ref().unwrap()["expired"], 0);
    assert!(world.runs_of(EXPIRE).await.is_empty());

    // WHEN the next day's sweep runs
    world.sweep_at("2025-09-01T03:00:00Z").await;

    // THEN the pack is expired, the seat released, access revoked, the member told
    let expired = world.only_run(EXPIRE).await;
    assert_eq!(expired.run.status, RunStatus::Completed, "{expired:#?}");
    let output = expired.run.output.clone().unwrap();
    assert_eq!(output["seatReleased"], true);
    assert_eq!(output["checks"], 1);
    let pack = world.pack(STRIPE_ORDER).await;
    assert_eq!(pack.status, PackStatus::Expired);
    assert!(pack.bookings_blocked);
    let seat = world.seat().await;
    assert_eq!(seat.status, SeatStatus::Released);
    assert_eq!(seat.release_reason, Some(ReleaseReason::PackExpired));
    assert_eq!(
        world.metadata_updates().last(),
        Some(&json!({"dashboardAccess": false}))
    );
    let email = world.emails().pop().unwrap();
    assert_eq!(email["Tag"], "seat-released-email");
    assert!(email["TextBody"].as_str().unwrap().contains("expired"));

    // WHEN a later sweep runs, the pack is not expired twice
    world.sweep_at("2025-09-02T03:00:00Z").await;
    assert_eq!(world.runs_of(EXPIRE).await.len(), 1);
    let sweeps = world.runs_of(SWEEP).await;
    let last = sweeps.iter().max_by_key(|run| run.created_at).unwrap();
    assert_eq!(last.output.as_ref().unwrap()["expired"], 0);
}

pub async fn an_expired_pack_with_a_scheduled_session_waits_for_it<B: Backend>(world: World<B>) {
    // GIVEN a session booked for the day after the pack expires
    let world = bought(world).await;
    world.book("bk-late", "2025-09-02T16:00:00Z").await;

    // WHEN the sweep finds the pack expired
    world.sweep_at("2025-09-01T03:00:00Z").await;

    // THEN new bookings are blocked but the pack and seat stay
    let waiting = world.only_run(EXPIRE).await;
    assert_eq!(waiting.run.status, RunStatus::Sleeping, "{waiting:#?}");
    assert_eq!(step_ids(&waiting), ["check-pack-0", "wait-for-sessions-1"]);
    assert_eq!(
        waiting.steps[1].wake_at,
        Some(chrono_ms("2025-09-02T17:45:00Z")),
        "an hour after the last session ends"
    );
    let pack = world.pack(STRIPE_ORDER).await;
    assert!(pack.bookings_blocked);
    assert_eq!(pack.status, PackStatus::Active);
    assert_eq!(world.seat().await.status, SeatStatus::Reserved);
    world.book("bk-too-late", "2025-09-05T16:00:00Z").await;
    assert_eq!(
        world
            .server
            .requests_to("POST", &cancel_booking_path("bk-too-late"))
            .len(),
        1
    );

    // WHEN the session is held
    world.advance_to("2025-09-02T16:50:00Z").await;
    world.meeting_ended("bk-late").await;
    assert_eq!(world.seat().await.status, SeatStatus::Reserved);

    // THEN the re-check after it expires the pack and releases the seat
    world.advance_to("2025-09-02T18:00:00Z").await;
    let expired = world.only_run(EXPIRE).await;
    assert_eq!(expired.run.status, RunStatus::Completed, "{expired:#?}");
    assert_eq!(expired.run.output.as_ref().unwrap()["checks"], 2);
    let pack = world.pack(STRIPE_ORDER).await;
    assert_eq!(
        (pack.status, pack.sessions_completed),
        (PackStatus::Expired, 1)
    );
    assert_eq!(world.seat().await.status, SeatStatus::Released);
}

pub async fn a_session_never_reported_held_is_rechecked_daily_then_alerts_the_admins<B: Backend>(
    world: World<B>,
) {
    let world = bought(world).await;
    world.book("bk-ghost", "2025-09-02T16:00:00Z").await;
    world.sweep_at("2025-09-01T03:00:00Z").await;

    // WHEN the session is never reported held, for two weeks after it
    world.advance_to("2025-09-18T04:00:00Z").await;

    // THEN the run gives up, the admins get the run id and the error, the seat stays
    let failed = world.only_run(EXPIRE).await;
    assert_eq!(failed.run.status, RunStatus::Failed, "{failed:#?}");
    let error = failed.run.error.clone().unwrap_or_default();
    assert!(error.contains("still scheduled"), "{error}");
    let alert = world
        .server
        .requests_to("POST", SLACK)
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .find(|text| text.contains(EXPIRE))
        .expect("an admin alert");
    assert!(
        alert.contains(&failed.run.id) && alert.contains("still scheduled"),
        "{alert}"
    );
    assert_eq!(world.seat().await.status, SeatStatus::Reserved);
}

fn chrono_ms(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp_millis()
}
