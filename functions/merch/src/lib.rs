//! The merch shop (Clerk, Stripe, Printify): its records ([`records`]) and
//! its workflows, each its own function (and Lambda):
//! - [`customers`]: `sync-user`, Clerk users upserted or soft-deleted;
//! - [`payments`]: `handle-payment`, Stripe payment intents mark an order
//!   paid (emitting `order/paid`) or failed;
//! - [`orders`]: `process-order`, stock held, the Printify order created, the
//!   confirmation emailed; a Printify failure after retries releases the
//!   stock and alerts the admins;
//! - [`catalog`]: `update-printify-products` (Printify product webhooks,
//!   debounced per product), and the daily inventory sync and weekly product
//!   update crons;
//! - [`housekeeping`]: the weekly cleanup of unpaid orders and the monthly
//!   archive of finished ones.
//!
//! Crons run in `MERCH_TIME_ZONE` (default UTC). Every function's failure is
//! posted to Slack; failed runs are listed (`GET /runs?status=failed`) and
//! replayed, and messages that keep failing land in the dead-letter queue,
//! from where a redrive puts them back.

pub mod catalog;
pub mod customers;
pub mod housekeeping;
pub mod orders;
pub mod payments;
pub mod records;

pub use records::*;

use hookflow_clients::Services;

/// Every merch shop function, over `services`.
#[must_use]
pub fn functions(services: &Services) -> Vec<hookflow::Function> {
    vec![
        customers::function(services),
        payments::function(services),
        orders::function(services),
        catalog::function(services),
        catalog::daily_inventory_sync(services),
        catalog::weekly_product_update(services),
        housekeeping::cleanup(services),
        housekeeping::archive(services),
    ]
}
