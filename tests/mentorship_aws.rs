//! Every mentorship scenario once on the AWS backend (DynamoDB,
//! SQS and Scheduler on a local moto server): the same scenario code as
//! `mentorship.rs`, so 7-day waits, the 72 h grace period and the re-check
//! after a pack's last session are Scheduler timers here, and the daily sweep
//! is the message the template's schedule puts on the router queue.

#[allow(dead_code)] // shared with tests/booking.rs; only part of it is used here
#[path = "booking/support.rs"]
mod support;

#[path = "mentorship/expiration.rs"]
mod expiration;
#[path = "mentorship/onboarding.rs"]
mod onboarding;
#[path = "mentorship/sessions.rs"]
mod sessions;
#[allow(dead_code)] // the SQLite-only helpers
#[path = "mentorship/world.rs"]
mod world;

use world::{World, every_scenario};

every_scenario!(World::aws());
