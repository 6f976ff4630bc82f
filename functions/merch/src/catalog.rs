//! The catalog, kept from Printify:
//! - `update-printify-products`: on `printify/product:publish:started`,
//!   `printify/product:publish:succeeded` or `printify/product:deleted`,
//!   debounced per product ([`DEBOUNCE`]: a burst of updates for one product
//!   causes one sync, with the last event; at least one every
//!   [`DEBOUNCE_CAP`] while updates keep coming); `sync-product` reads the product
//!   from Printify and upserts it, or marks it deleted (deleted event, or
//!   Printify no longer has it);
//! - `daily-inventory-sync` (02:00): per page of the catalog, re-reads each
//!   product's variants and marks each SKU's stock available or not;
//! - `weekly-product-update` (Monday 03:00): imports every Printify product,
//!   page by page.
//!
//! Crons run in `MERCH_TIME_ZONE`. Upserts are whole-document writes of what
//! Printify says, so repeating one changes nothing.

use std::time::Duration;

use hookflow::{Debounce, Function, NonRetriable};
use hookflow_clients::{PrintifyProduct, Services, Settings};
use hookflow_docs::DocStore;
use serde_json::json;

use crate::records::{CatalogProduct, PRODUCTS, STOCK, Stock, Variant};

/// The webhook function's id.
pub const ID: &str = "update-printify-products";
/// Publishing started.
pub const PUBLISH_STARTED: &str = "printify/product:publish:started";
/// Publishing finished.
pub const PUBLISH_SUCCEEDED: &str = "printify/product:publish:succeeded";
/// The product was deleted.
pub const DELETED: &str = "printify/product:deleted";
/// Quiet time before a product is synced.
pub const DEBOUNCE: Duration = Duration::from_secs(30);
/// A product updated without pause is still synced this often.
pub const DEBOUNCE_CAP: Duration = Duration::from_secs(5 * 60);
/// The debounce key: the product.
pub const PER_PRODUCT: &str = "event.data.resource.id";
/// The daily inventory sync.
pub const INVENTORY_ID: &str = "daily-inventory-sync";
/// At 02:00 every day.
pub const INVENTORY_SCHEDULE: &str = "0 2 * * *";
/// The weekly product update.
pub const WEEKLY_ID: &str = "weekly-product-update";
/// At 03:00 every Monday.
pub const WEEKLY_SCHEDULE: &str = "0 3 * * MON";
/// Products per step of the crons.
pub const PAGE_SIZE: u32 = 50;

/// The catalog entry for what Printify says, synced at `now`.
#[must_use]
pub fn entry(product: &PrintifyProduct, now: i64) -> CatalogProduct {
    CatalogProduct {
        id: product.id.clone(),
        title: product.title.clone(),
        description: product.description.clone(),
        variants: product
            .variants
            .iter()
            .map(|v| Variant {
                id: v.id,
                sku: v.sku.clone(),
                price: v.price,
                is_enabled: v.is_enabled,
                is_available: v.is_available,
            })
            .collect(),
        visible: product.visible,
        deleted_at: None,
        synced_at: now,
    }
}

/// Writes Printify's `product` (or its absence) into the catalog; returns
/// the outcome and the entry as stored now (`None`: none was ever stored).
async fn upsert(
    docs: &DocStore,
    id: &str,
    product: Option<&PrintifyProduct>,
) -> anyhow::Result<(&'static str, Option<CatalogProduct>)> {
    let now = docs.now_ms();
    let outcome = docs
        .update_with::<CatalogProduct, _, _>(PRODUCTS, id, |stored| match (product, stored) {
            (Some(product), _) => {
                let fresh = entry(product, now);
                (Some(fresh.clone()), ("upserted", Some(fresh)))
            }
            (None, Some(old)) if old.deleted_at.is_none() => {
                let gone = CatalogProduct {
                    deleted_at: Some(now),
                    visible: false,
                    ..old
                };
                (Some(gone.clone()), ("deleted", Some(gone)))
            }
            (None, old) => (None, ("deleted", old)),
        })
        .await?;
    Ok(outcome)
}

/// Marks each of `product`'s SKUs available or not in the stock records
/// (SKUs without a stock record are not capped and left alone).
async fn mark_availability(docs: &DocStore, product: &CatalogProduct) -> anyhow::Result<()> {
    for variant in &product.variants {
        if variant.sku.is_empty() {
            continue;
        }
        let available = variant.is_enabled && variant.is_available && product.deleted_at.is_none();
        docs.update::<Stock, _>(STOCK, &variant.sku, |stock| {
            let mut stock = stock?;
            (stock.available != available).then(|| {
                stock.available = available;
                stock
            })
        })
        .await?;
    }
    Ok(())
}

/// `update-printify-products`.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Sync a Printify product")
                .reads_env(["PRINTIFY_API_TOKEN", "PRINTIFY_SHOP_ID"]),
        )
        .on_event(PUBLISH_STARTED)
        .on_event(PUBLISH_SUCCEEDED)
        .on_event(DELETED)
        .debounce(
            Debounce::new(DEBOUNCE)
                .key(PER_PRODUCT)
                .timeout(DEBOUNCE_CAP),
        )
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let id = ctx.event.data["resource"]["id"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        NonRetriable::new("a Printify product event without resource.id")
                    })?
                    .to_owned();
                let deleted = ctx.event.name == DELETED;
                let shop = services.settings.printify_shop_id()?.to_owned();
                let (docs, printify, key) = (
                    services.docs.clone(),
                    services.clients.printify.clone(),
                    id.clone(),
                );
                let outcome: String = ctx
                    .step
                    .run("sync-product", move || async move {
                        let product = if deleted {
                            None
                        } else {
                            printify.product(&shop, &key).await?
                        };
                        let (outcome, stored) = upsert(&docs, &key, product.as_ref()).await?;
                        if let Some(stored) = stored {
                            mark_availability(&docs, &stored).await?;
                        }
                        Ok(outcome.to_owned())
                    })
                    .await?;
                Ok(json!({ "productId": id, "outcome": outcome }))
            }
        })
}

/// `daily-inventory-sync`.
#[must_use]
pub fn daily_inventory_sync(services: &Services) -> Function {
    let services = services.clone();
    let zone = services.settings.merch_time_zone().to_owned();
    services
        .alert_on_failure(
            Function::new(INVENTORY_ID)
                .name("Sync stock availability from Printify")
                .reads_env(["PRINTIFY_API_TOKEN", "PRINTIFY_SHOP_ID"]),
        )
        .on_cron_in_setting(INVENTORY_SCHEDULE, zone, Settings::MERCH_TIME_ZONE_VAR)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let shop = services.settings.printify_shop_id()?.to_owned();
                let (mut after, mut pages, mut synced) = (None::<String>, 0_u32, 0_usize);
                loop {
                    let (docs, printify, shop, from) = (
                        services.docs.clone(),
                        services.clients.printify.clone(),
                        shop.clone(),
                        after.clone(),
                    );
                    let (count, next): (usize, Option<String>) = ctx
                        .step
                        .run(&format!("sync-page-{pages}"), move || async move {
                            let page = docs
                                .list_docs(PRODUCTS, from.as_deref(), PAGE_SIZE as usize)
                                .await?;
                            let next = (page.len() == PAGE_SIZE as usize)
                                .then(|| page.last().map(|d| d.key.clone()))
                                .flatten();
                            let mut count = 0;
                            for doc in page {
                                let stored: CatalogProduct = serde_json::from_value(doc.value)?;
                                if stored.deleted_at.is_some() {
                                    continue;
                                }
                                let fresh = printify.product(&shop, &stored.id).await?;
                                let (_, now) = upsert(&docs, &stored.id, fresh.as_ref()).await?;
                                if let Some(now) = now {
                                    mark_availability(&docs, &now).await?;
                                }
                                count += 1;
                            }
                            Ok((count, next))
                        })
                        .await?;
                    pages += 1;
                    synced += count;
                    match next {
                        Some(key) => after = Some(key),
                        None => break,
                    }
                }
                Ok(json!({ "pages": pages, "products": synced }))
            }
        })
}

/// `weekly-product-update`.
#[must_use]
pub fn weekly_product_update(services: &Services) -> Function {
    let services = services.clone();
    let zone = services.settings.merch_time_zone().to_owned();
    services
        .alert_on_failure(
            Function::new(WEEKLY_ID)
                .name("Import the Printify catalog")
                .reads_env(["PRINTIFY_API_TOKEN", "PRINTIFY_SHOP_ID"]),
        )
        .on_cron_in_setting(WEEKLY_SCHEDULE, zone, Settings::MERCH_TIME_ZONE_VAR)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let shop = services.settings.printify_shop_id()?.to_owned();
                let (mut page, mut imported) = (1_u32, 0_usize);
                loop {
                    let (docs, printify, shop) = (
                        services.docs.clone(),
                        services.clients.printify.clone(),
                        shop.clone(),
                    );
                    let (count, last): (usize, u32) = ctx
                        .step
                        .run(&format!("import-page-{page}"), move || async move {
                            let found = printify.products(&shop, page, PAGE_SIZE).await?;
                            for product in &found.data {
                                upsert(&docs, &product.id, Some(product)).await?;
                            }
                            Ok((found.data.len(), found.last_page))
                        })
                        .await?;
                    imported += count;
                    if page >= last || count == 0 {
                        break;
                    }
                    page += 1;
                }
                Ok(json!({ "pages": page, "products": imported }))
            }
        })
}
