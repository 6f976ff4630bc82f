//! The multi-tenant commerce platform's workflows end to end, on SQLite
//! (fake clock) and on moto, from the signed Shopify samples of two shops in
//! `events/`, with one recording server standing in for Shopify, Stripe,
//! Resend, Slack, Meta, GA4 and the tenants' webhook endpoints.

#[path = "commerce/platform.rs"]
mod platform;
#[path = "commerce/world.rs"]
mod world;

use platform::*;

hookflow_tests::both!(crate::world::sqlite, crate::world::aws =>
    orders_are_synced_attributed_and_credited_per_tenant,
    the_review_sequence_follows_delivery,
    a_review_skips_and_cancels_the_emails_of_its_order,
    the_review_throttle_spaces_each_tenants_emails,
    a_payout_retried_after_a_timeout_pays_once,
    a_refused_payout_is_marked_failed_and_alerts,
    a_payout_already_made_is_found_not_repeated,
    a_creator_application_is_confirmed_announced_and_tracked,
    the_metrics_cron_aggregates_yesterday_for_every_tenant,
    the_webhook_queue_never_runs_two_ticks_at_once,
    every_cron_is_due_at_its_time,
);

#[tokio::test]
async fn the_crons_fire_at_their_times_on_sqlite() {
    the_crons_fire_on_the_fake_clock(world::sqlite().await).await;
}
