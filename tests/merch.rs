//! The merch shop's workflows end to end, on SQLite (fake clock) and on moto,
//! from the signed samples in `events/` (Clerk users, Stripe payment intents,
//! Printify product events), with one recording server standing in for
//! Printify, Postmark and Slack.

#[path = "merch/shop.rs"]
mod shop;
#[path = "merch/world.rs"]
mod world;

use shop::*;

hookflow_tests::both!(crate::world::sqlite, crate::world::aws =>
    clerk_users_are_kept_as_customers_and_soft_deleted,
    a_paid_order_is_printed_and_confirmed,
    a_declined_card_fails_the_order_and_starts_no_fulfilment,
    printify_refusing_an_order_releases_its_stock_and_alerts,
    an_order_short_of_stock_is_not_sent_to_printify,
    a_burst_of_product_updates_syncs_once,
    the_catalog_crons_import_and_mark_availability,
    the_housekeeping_crons_abandon_and_archive_by_the_tick,
    every_cron_is_due_at_its_time_in_its_zone,
);

#[tokio::test]
async fn the_cleanup_cron_fires_at_its_local_time_on_sqlite() {
    the_cleanup_cron_fires_at_four_on_sunday_new_york_time(world::sqlite().await).await;
}
