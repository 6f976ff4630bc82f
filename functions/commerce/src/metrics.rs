//! `aggregate-daily-metrics`: every active tenant's yesterday, at 02:00 UTC.
//!
//! 1. `get-tenants`: the active tenants (checkpointed, so a retry walks the
//!    same list);
//! 2. `metrics-<tenant>`, one step per tenant: orders placed on the day
//!    before the tick (UTC), their revenue, distinct buyers, and revenue by
//!    channel (last-touch attribution), stored as
//!    `commerce_metrics/<tenant>:<YYYY-MM-DD>` (rewritten by a re-run).
//!
//! "Yesterday" is the tick's, not the clock's inside a retried step: a
//! tick retried after midnight still computes the day it was meant for.
//! A tenant's orders are read in pages of 100; a tenant with very many
//! orders per day would keep a per-day index instead.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration as Days, NaiveTime, Utc};
use hookflow::{Function, NonRetriable};
use hookflow_clients::Services;
use hookflow_docs::DocStore;
use serde_json::json;

use crate::DAY_MS;
use crate::records::{ATTRIBUTION, AttributionResult, DailyMetrics, METRICS, ORDERS, Order, key};

/// The function id.
pub const ID: &str = "aggregate-daily-metrics";
/// 02:00 UTC daily.
pub const SCHEDULE: &str = "0 2 * * *";

/// The UTC day before `tick` (ms): its date and `[start, end)` in ms.
///
/// # Errors
/// [`NonRetriable`] for a tick out of range.
pub fn yesterday(tick: i64) -> anyhow::Result<(String, i64, i64)> {
    let at: DateTime<Utc> = DateTime::from_timestamp_millis(tick)
        .ok_or_else(|| NonRetriable::new(format!("tick {tick} out of range")))?;
    let day = at.date_naive() - Days::days(1);
    let start = day.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
    Ok((day.format("%Y-%m-%d").to_string(), start, start + DAY_MS))
}

/// One tenant's metrics for `[start, end)`.
///
/// # Errors
/// Store failures.
pub async fn aggregate(
    docs: &DocStore,
    tenant: &str,
    date: &str,
    (start, end): (i64, i64),
    tick: i64,
) -> anyhow::Result<DailyMetrics> {
    let orders: Vec<Order> = docs.list_prefixed(ORDERS, &key(tenant, "")).await?;
    let mut metrics = DailyMetrics {
        tenant_id: tenant.to_owned(),
        date: date.to_owned(),
        orders: 0,
        revenue_cents: 0,
        customers: 0,
        revenue_by_channel: BTreeMap::new(),
        computed_at: tick,
    };
    let mut buyers = BTreeSet::new();
    for order in orders
        .iter()
        .filter(|o| (start..end).contains(&o.created_at))
    {
        metrics.orders += 1;
        metrics.revenue_cents += order.total_cents;
        if let Some(email) = &order.email {
            buyers.insert(email.to_lowercase());
        }
        let attributed = docs
            .get::<AttributionResult>(ATTRIBUTION, &key(tenant, &order.id))
            .await?;
        let channels = attributed
            .and_then(|(a, _)| a.models.get("last_touch").cloned())
            .unwrap_or_else(|| BTreeMap::from([("unattributed".to_owned(), order.total_cents)]));
        for (channel, cents) in channels {
            *metrics.revenue_by_channel.entry(channel).or_insert(0) += cents;
        }
    }
    metrics.customers = u32::try_from(buyers.len()).unwrap_or(u32::MAX);
    Ok(metrics)
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Aggregate yesterday's metrics")
                .reads_env(["COMMERCE_TENANTS"]),
        )
        .on_cron(SCHEDULE)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let tick = ctx.event.ts;
                let (date, start, end) = yesterday(tick)?;
                let active: Vec<String> = services
                    .settings
                    .tenants()
                    .all()
                    .iter()
                    .filter(|t| t.active)
                    .map(|t| t.id.clone())
                    .collect();
                let tenants: Vec<String> = ctx
                    .step
                    .run("get-tenants", move || async move { Ok(active) })
                    .await?;
                let mut totals = BTreeMap::new();
                for tenant in &tenants {
                    let (docs, t, d) = (services.docs.clone(), tenant.clone(), date.clone());
                    let revenue: i64 = ctx
                        .step
                        .run(&format!("metrics-{tenant}"), move || async move {
                            let metrics = aggregate(&docs, &t, &d, (start, end), tick).await?;
                            let revenue = metrics.revenue_cents;
                            docs.update::<DailyMetrics, _>(METRICS, &key(&t, &d), |_| {
                                Some(metrics.clone())
                            })
                            .await?;
                            Ok(revenue)
                        })
                        .await?;
                    totals.insert(tenant.clone(), revenue);
                }
                Ok(json!({"date": date, "tenantsProcessed": tenants.len(), "revenueCents": totals}))
            }
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn yesterday_is_the_ticks() {
        // 2025-06-03T02:00:00Z
        let (date, start, end) = super::yesterday(1_748_916_000_000).unwrap();
        assert_eq!(date, "2025-06-02");
        assert_eq!(start, 1_748_822_400_000);
        assert_eq!(end - start, super::DAY_MS);
    }
}
