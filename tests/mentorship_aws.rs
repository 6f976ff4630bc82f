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

use world::{World, scenarios};

scenarios!(World::aws();
    onboarding::linking_discord_grants_the_role_and_dashboard_access,
    onboarding::a_member_who_never_links_is_reminded_once_then_flagged,
    onboarding::linking_after_the_reminder_still_onboards,
    onboarding::a_second_pack_does_not_onboard_the_member_again,
    sessions::bookings_are_recorded_and_held_sessions_numbered_once,
    sessions::a_booking_the_pack_cannot_take_is_cancelled_in_cal,
    sessions::without_a_renewal_the_seat_is_released_72_hours_after_the_last_session,
    sessions::a_renewal_during_the_grace_period_keeps_the_seat,
    expiration::an_expired_pack_without_scheduled_sessions_expires_and_releases_the_seat,
    expiration::an_expired_pack_with_a_scheduled_session_waits_for_it,
    expiration::a_session_never_reported_held_is_rechecked_daily_then_alerts_the_admins,
);
