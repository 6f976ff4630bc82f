//! Housekeeping crons, in `MERCH_TIME_ZONE`:
//! - `cleanup-old-data` (Sunday 04:00): orders still `pending` [`ABANDON_AFTER`]
//!   after they were created are marked `abandoned`, and stock still held for
//!   failed or abandoned orders is released;
//! - `monthly-archive` (the 1st, 05:00): finished orders (`fulfilling`,
//!   `fulfillment_failed`, `payment_failed`, `abandoned`) untouched for
//!   [`ARCHIVE_AFTER`] move to `merch_orders_archive`.
//!
//! Both walk the orders page by page ([`PAGE_SIZE`] per step) and decide by
//! the tick's time, not the clock inside a retried step. The archive writes
//! the copy before deleting the order at the version it read, so a crash in
//! between leaves a copy and the original, and the next month finishes the
//! move (overwriting the copy with the order as it is then).

use std::time::Duration;

use hookflow::Function;
use hookflow_clients::{Services, Settings};
use hookflow_docs::{DocStore, Document};
use serde_json::json;

use crate::records::{ARCHIVE, ORDERS, Order, OrderStatus};

/// The weekly cleanup.
pub const CLEANUP_ID: &str = "cleanup-old-data";
/// At 04:00 every Sunday.
pub const CLEANUP_SCHEDULE: &str = "0 4 * * SUN";
/// The monthly archive.
pub const ARCHIVE_ID: &str = "monthly-archive";
/// At 05:00 on the 1st.
pub const ARCHIVE_SCHEDULE: &str = "0 5 1 * *";
/// An unpaid order this old is abandoned.
pub const ABANDON_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// A finished order untouched this long is archived.
pub const ARCHIVE_AFTER: Duration = Duration::from_secs(90 * 24 * 3600);
/// Orders read per step.
pub const PAGE_SIZE: usize = 100;

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What one page of a walk did: how many orders it changed, and where the
/// next page starts (`None`: this was the last).
type Page = (usize, Option<String>);

async fn page_of(
    docs: &DocStore,
    after: Option<&str>,
) -> anyhow::Result<(Vec<Document>, Option<String>)> {
    let page = docs.list_docs(ORDERS, after, PAGE_SIZE).await?;
    let next = (page.len() == PAGE_SIZE)
        .then(|| page.last().map(|d| d.key.clone()))
        .flatten();
    Ok((page, next))
}

async fn abandon_page(docs: &DocStore, after: Option<&str>, tick: i64) -> anyhow::Result<Page> {
    let (page, next) = page_of(docs, after).await?;
    let mut changed = 0;
    for doc in page {
        let order: Order = serde_json::from_value(doc.value)?;
        if matches!(
            order.status,
            OrderStatus::FulfillmentFailed | OrderStatus::PaymentFailed | OrderStatus::Abandoned
        ) {
            // Holds a failed or stopped run left behind go back to stock.
            crate::orders::release(docs, &order.id, &order.items).await?;
            continue;
        }
        if order.status != OrderStatus::Pending || order.created_at > tick - ms(ABANDON_AFTER) {
            continue;
        }
        let moved = docs
            .update::<Order, _>(ORDERS, &order.id, |current| {
                let mut current = current?;
                (current.status == OrderStatus::Pending).then(|| {
                    current.status = OrderStatus::Abandoned;
                    current.updated_at = tick;
                    current
                })
            })
            .await?;
        changed += usize::from(moved.is_some());
    }
    Ok((changed, next))
}

async fn archive_page(docs: &DocStore, after: Option<&str>, tick: i64) -> anyhow::Result<Page> {
    let (page, next) = page_of(docs, after).await?;
    let mut moved = 0;
    for doc in page {
        let order: Order = serde_json::from_value(doc.value.clone())?;
        let finished = matches!(
            order.status,
            OrderStatus::Fulfilling
                | OrderStatus::FulfillmentFailed
                | OrderStatus::PaymentFailed
                | OrderStatus::Abandoned
        );
        if !finished || order.updated_at.max(order.created_at) > tick - ms(ARCHIVE_AFTER) {
            continue;
        }
        // Overwrite: a copy left by an earlier, interrupted move may be older.
        let value = doc.value.clone();
        docs.update::<serde_json::Value, _>(ARCHIVE, &doc.key, |_| Some(value.clone()))
            .await?;
        if docs.delete_doc(ORDERS, &doc.key, doc.version).await? {
            moved += 1;
        }
    }
    Ok((moved, next))
}

/// A cron over every order, page by page, in `MERCH_TIME_ZONE`.
fn walk<F, Fut>(
    services: &Services,
    id: &'static str,
    name: &str,
    schedule: &str,
    step: &'static str,
    page: F,
) -> Function
where
    F: Fn(DocStore, Option<String>, i64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Page>> + Send + 'static,
{
    let docs = services.docs.clone();
    let zone = services.settings.merch_time_zone().to_owned();
    services
        .alert_on_failure(Function::new(id).name(name))
        .on_cron_in_setting(schedule, zone, Settings::MERCH_TIME_ZONE_VAR)
        .retries(3)
        .handler(move |ctx| {
            let (docs, page) = (docs.clone(), page.clone());
            async move {
                let tick = ctx.event.ts;
                let (mut after, mut n, mut changed) = (None::<String>, 0_usize, 0_usize);
                loop {
                    let (docs, page, from) = (docs.clone(), page.clone(), after.clone());
                    let (count, next): Page = ctx
                        .step
                        .run(&format!("{step}-{n}"), move || async move {
                            page(docs, from, tick).await
                        })
                        .await?;
                    changed += count;
                    n += 1;
                    match next {
                        Some(key) => after = Some(key),
                        None => break,
                    }
                }
                Ok(json!({ "pages": n, "changed": changed }))
            }
        })
}

/// `cleanup-old-data`.
#[must_use]
pub fn cleanup(services: &Services) -> Function {
    walk(
        services,
        CLEANUP_ID,
        "Abandon unpaid orders",
        CLEANUP_SCHEDULE,
        "abandon-page",
        |docs, after, tick| async move { abandon_page(&docs, after.as_deref(), tick).await },
    )
}

/// `monthly-archive`.
#[must_use]
pub fn archive(services: &Services) -> Function {
    walk(
        services,
        ARCHIVE_ID,
        "Archive finished orders",
        ARCHIVE_SCHEDULE,
        "archive-page",
        |docs, after, tick| async move { archive_page(&docs, after.as_deref(), tick).await },
    )
}
