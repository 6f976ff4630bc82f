//! The multi-tenant commerce platform (Shopify shops, their creators and
//! payouts): its records ([`records`]) and its workflows, each its own
//! function (and Lambda):
//! - [`orders`]: `sync-shopify-order`, a shop's order read back from
//!   Shopify, saved, attributed, credited to the creator whose code it used,
//!   and its review email scheduled 5 days after delivery;
//! - [`reviews`]: `send-review-email` (throttled per tenant, a follow-up 7
//!   days later, cancelled by a review) and `record-review`;
//! - [`payouts`]: `process-payout`, a creator paid through Stripe Connect
//!   exactly once;
//! - [`applications`]: `process-creator-application`, a confirmation email,
//!   a Slack notice and a Meta lead;
//! - [`attribution`]: `process-attribution`, touchpoints credited under five
//!   models and reported to GA4 and Meta;
//! - [`metrics`]: `aggregate-daily-metrics`, one step per tenant, nightly;
//! - [`webhook_queue`]: `process-webhook-queue`, outbound webhooks to the
//!   tenants' endpoints, every 5 minutes, never two ticks at once.
//!
//! Tenants and their credentials come from `COMMERCE_TENANTS`
//! ([`hookflow_clients::Tenants`]); a Shopify event's tenant is its shop
//! domain (`X-Shopify-Shop-Domain`), every other event names `tenantId`.

pub mod applications;
pub mod attribution;
mod emails;
pub mod metrics;
pub mod orders;
pub mod payouts;
pub mod records;
pub mod reviews;
pub mod webhook_queue;

pub use records::*;

use hookflow::{Event, NonRetriable};
use hookflow_clients::{Services, Tenant};

/// Every commerce function, over `services`.
#[must_use]
pub fn functions(services: &Services) -> Vec<hookflow::Function> {
    vec![
        orders::function(services),
        reviews::send_function(services),
        reviews::record_function(services),
        payouts::function(services),
        applications::function(services),
        attribution::function(services),
        metrics::function(services),
        webhook_queue::function(services),
    ]
}

/// The string field `field` of the event's data; missing or empty, the run
/// fails at once.
///
/// # Errors
/// [`NonRetriable`] naming the field.
pub fn required(event: &Event, field: &str) -> anyhow::Result<String> {
    let value = &event.data[field];
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if text.is_empty() {
        return Err(NonRetriable::new(format!("{} without {field}", event.name)).into());
    }
    Ok(text)
}

/// The tenant a Shopify event came from (its shop domain).
///
/// # Errors
/// [`NonRetriable`] when the event has no shop or no tenant has it.
pub fn tenant_of_shop<'a>(services: &'a Services, event: &Event) -> anyhow::Result<&'a Tenant> {
    let shop = event
        .tenant
        .as_deref()
        .ok_or_else(|| NonRetriable::new(format!("{} without a shop domain", event.name)))?;
    services.settings.tenants().by_shop(shop).ok_or_else(|| {
        NonRetriable::new(format!("no tenant has the shop {shop} (COMMERCE_TENANTS)")).into()
    })
}

/// The tenant an event names in `data.tenantId`.
///
/// # Errors
/// [`NonRetriable`] when it names none or an unknown one.
pub fn tenant_named<'a>(services: &'a Services, event: &Event) -> anyhow::Result<&'a Tenant> {
    let id = required(event, "tenantId")?;
    tenant_by_id(services, &id)
}

/// The tenant with this id.
///
/// # Errors
/// [`NonRetriable`] when none has it.
pub fn tenant_by_id<'a>(services: &'a Services, id: &str) -> anyhow::Result<&'a Tenant> {
    Ok(services.settings.tenant(id)?)
}

/// Who the tenant's emails come from: its `emailFrom`, else `EMAIL_FROM`.
///
/// # Errors
/// [`hookflow_clients::SettingError`] when neither is set.
pub fn sender(services: &Services, tenant: &Tenant) -> anyhow::Result<String> {
    match &tenant.email_from {
        Some(from) => Ok(from.clone()),
        None => Ok(services.settings.email_from()?.to_owned()),
    }
}

/// Milliseconds since the epoch of an RFC 3339 time.
///
/// # Errors
/// [`NonRetriable`] when it does not parse.
pub fn millis(rfc3339: &str) -> anyhow::Result<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp_millis())
        .map_err(|e| NonRetriable::new(format!("bad time {rfc3339:?}: {e}")).into())
}

/// Step `step`: `event` to the tenant's Meta pixel, or a `skipped` note when
/// the tenant has none.
///
/// # Errors
/// The Meta call's error (retried unless final), a step error.
pub async fn track_meta(
    ctx: &hookflow::Ctx,
    services: &Services,
    tenant: &Tenant,
    step: &str,
    event: hookflow_clients::meta::ServerEvent,
) -> anyhow::Result<serde_json::Value> {
    let meta = services.clients.meta.clone();
    let pixel = tenant.meta().map(|(p, t)| (p.to_owned(), t.to_owned()));
    Ok(ctx
        .step
        .run(step, move || async move {
            let Some((pixel, token)) = pixel else {
                return Ok(serde_json::json!({"skipped": "no Meta pixel configured"}));
            };
            let got = meta.send(&pixel, &token, &[event]).await?;
            Ok(serde_json::json!({"eventsReceived": got.events_received}))
        })
        .await?)
}

/// A day, in milliseconds.
pub const DAY_MS: i64 = 24 * 3600 * 1000;
