//! `sweep-expired-packs`: the daily sweep for session packs past their expiry
//! date.
//!
//! Every day at 03:00 UTC ([`SCHEDULE`]): walk `packs` page by page
//! ([`PAGE_SIZE`] per step) and emit one [`PACK_EXPIRED`] per active pack
//! whose `expiresAt` has passed and whose bookings are not blocked yet;
//! `expire-pack` handles each in its own run (its own retries, its own wait
//! for scheduled sessions).
//!
//! Invariants: the tick's time, not the wall clock, decides what is expired,
//! so a replayed or late tick decides the same; each pack's event id is
//! derived from its order id, so overlapping sweeps start one `expire-pack`
//! run per pack; a pack already being expired (bookings blocked) is skipped.
//!
//! Cost: one consistent Query page per [`PAGE_SIZE`] packs. Past tens of
//! thousands of packs, index them by expiry date instead of scanning.

use chrono::{DateTime, Utc};
use hookflow::{Event, Function};
use hookflow_clients::Services;
use mentorship::{PACK_EXPIRED, PACKS, Pack, PackStatus, pack_expired_id, utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The function id.
pub const ID: &str = "sweep-expired-packs";
/// Daily at 03:00 UTC.
pub const SCHEDULE: &str = "0 3 * * *";
/// Packs read per step.
pub const PAGE_SIZE: usize = 100;

/// One page of the sweep: the expired packs found and where to go on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// `(orderId, clerkId)` of each pack to expire.
    pub expired: Vec<(String, String)>,
    /// The last key read, when there may be more.
    pub next: Option<String>,
}

/// Whether the sweep at `now` should expire `pack`.
#[must_use]
pub fn is_due(pack: &Pack, now: DateTime<Utc>) -> bool {
    pack.status == PackStatus::Active && !pack.bookings_blocked && pack.expires_at <= now
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let docs = services.docs.clone();
    services
        .alert_on_failure(Function::new(ID).name("Expire session packs"))
        .on_cron(SCHEDULE)
        .handler(move |ctx| {
            let docs = docs.clone();
            async move {
                let now = utc(ctx.event.ts);
                let mut after: Option<String> = None;
                let (mut scanned_pages, mut expired) = (0_usize, 0_usize);
                loop {
                    let (store, from) = (docs.clone(), after.clone());
                    let page: Page = ctx
                        .step
                        .run(&format!("scan-packs-{scanned_pages}"), || async move {
                            let found = store.list_docs(PACKS, from.as_deref(), PAGE_SIZE).await?;
                            let next = (found.len() == PAGE_SIZE)
                                .then(|| found.last().map(|doc| doc.key.clone()))
                                .flatten();
                            let mut expired = Vec::new();
                            for doc in found {
                                let pack: Pack = serde_json::from_value(doc.value)?;
                                if is_due(&pack, now) {
                                    expired.push((pack.order_id, pack.clerk_id));
                                }
                            }
                            Ok(Page { expired, next })
                        })
                        .await?;
                    if !page.expired.is_empty() {
                        let events = page.expired.iter().map(|(order_id, clerk_id)| {
                            Event::new(
                                PACK_EXPIRED,
                                json!({ "orderId": order_id, "clerkId": clerk_id }),
                            )
                            .with_id(pack_expired_id(order_id))
                        });
                        ctx.step
                            .send_event(&format!("emit-pack-expired-{scanned_pages}"), events)
                            .await?;
                    }
                    scanned_pages += 1;
                    expired += page.expired.len();
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                Ok(json!({ "pages": scanned_pages, "expired": expired }))
            }
        })
}
