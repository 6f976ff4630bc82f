//! The course platform's workflows end to end, on SQLite (fake clock) and on
//! moto, from the signed samples in `events/` and the app's own events, with
//! one recording server standing in for Stripe, Resend, Discord and Google.

#[path = "course/world.rs"]
mod world;

#[path = "course/broadcast.rs"]
mod broadcast;
#[path = "course/events.rs"]
mod events;
#[path = "course/people.rs"]
mod people;
#[path = "course/purchase.rs"]
mod purchase;

use events::*;
use people::*;
use purchase::*;

hookflow_tests::both!(crate::world::sqlite, crate::world::aws =>
    an_individual_cohort_purchase_is_fulfilled_from_the_signed_checkout,
    a_team_purchase_emails_the_purchaser_the_seat_link,
    a_redeemed_seat_gives_the_learner_access_in_the_team,
    a_self_paced_purchase_grants_the_workshop_and_other_products_are_not_ours,
    a_missing_purchase_fails_at_once,
    a_new_user_gets_a_role_and_a_preference_once_per_address,
    a_linked_discord_account_gets_its_roles_after_ten_seconds_keeping_manual_ones,
    a_github_link_or_a_vanished_account_changes_no_roles,
    a_linked_learner_gets_the_role_of_a_cohort_they_join,
    a_hard_bounce_unsubscribes_the_address_and_a_delivery_is_recorded,
    a_calendar_entry_is_created_updated_and_recreated_after_cancellation,
    an_event_without_times_is_skipped_and_a_missing_one_fails_at_once,
    a_refunded_series_buyer_is_removed_from_every_child_event,
    a_cohort_change_fans_out_one_run_per_learner,
);
