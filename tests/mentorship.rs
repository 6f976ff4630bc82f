//! The mentorship marketplace end to end on the embedded backend with a fake
//! clock, from the signed samples in `events/` through the real webhook
//! receiver and every function of the registry, with one recording server
//! standing in for Clerk, Discord, Cal.com, Postmark and Slack (the same
//! scenarios run on moto in `mentorship_aws.rs`):
//! - `purchase`: Stripe and PayPal purchases become one pack each;
//! - `onboarding`: the Discord link, the reminder, the flag;
//! - `sessions`: bookings, numbered sessions, the 72 h grace period;
//! - `expiration`: the daily sweep, with and without scheduled sessions.

#[allow(dead_code)] // shared with tests/booking.rs; only part of it is used here
#[path = "booking/support.rs"]
mod support;

#[path = "mentorship/expiration.rs"]
mod expiration;
#[path = "mentorship/onboarding.rs"]
mod onboarding;
#[path = "mentorship/purchase.rs"]
mod purchase;
#[path = "mentorship/sessions.rs"]
mod sessions;
#[allow(dead_code)] // `World::aws` is for mentorship_aws.rs
#[path = "mentorship/world.rs"]
mod world;

use world::World;

/// Every scenario on SQLite.
mod on_sqlite {
    use crate::world::{World, every_scenario};

    every_scenario!(World::new());
}

/// On `hookflow dev` the sweep is a real cron: it runs every day at 03:00.
#[tokio::test]
async fn the_sweep_runs_every_day_on_its_cron() {
    let world = expiration::bought(World::new().await).await;
    world.env.runtime.start().await.unwrap();
    world.advance_to("2025-09-01T04:00:00Z").await;
    let sweeps = world.runs_of(expiration::SWEEP).await;
    assert_eq!(
        sweeps.len(),
        91,
        "one sweep a day from 2025-06-03 to 2025-09-01"
    );
    assert!(
        sweeps
            .iter()
            .all(|run| run.status == hookflow::RunStatus::Completed)
    );
    assert_eq!(
        world.only_run(expiration::EXPIRE).await.run.status,
        hookflow::RunStatus::Completed
    );
}
