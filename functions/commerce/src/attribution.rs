//! `process-attribution`: which marketing touches earned an order.
//!
//! On `attribution/conversion` (`orderId`, `tenantId`; sent once per order
//! by [`crate::orders`]; retried twice):
//! 1. `get-conversion`: the order;
//! 2. `find-touchpoints`: the visitor's touchpoints (the order's `visitorId`
//!    checkout attribute), those before the order;
//! 3. `calculate-attribution`: the order total credited to channels under
//!    every model ([`MODELS`]), in whole cents that add up to the total;
//! 4. `store-results`: `commerce_attribution/<tenant>:<order>`;
//! 5. `send-ga4`: a `purchase` to the tenant's GA4 stream (client id = the
//!    visitor), `send-meta`: a `Purchase` to its Meta pixel; each skipped
//!    when the tenant has none configured or the order is older than the
//!    API takes (GA4: 72 hours, Meta: 7 days, counted from the conversion
//!    event), each deduplicated by the order id.

use hookflow::Function;
use hookflow_clients::Services;
use hookflow_clients::ga4::Purchase;
use hookflow_clients::meta::ServerEvent;
use hookflow_docs::load_required;
use serde_json::{Value, json};

use crate::records::{
    ATTRIBUTION, AttributionResult, Credits, Journey, ORDERS, Order, TOUCHPOINTS, Touchpoint, key,
};
use crate::{DAY_MS, required, tenant_named};

/// The function id.
pub const ID: &str = "process-attribution";
/// An order to attribute.
pub const CONVERSION: &str = "attribution/conversion";
/// The models, each a split of the order total over the touchpoints.
pub const MODELS: [&str; 5] = [
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "position_based",
];
/// The channel of an order with no touchpoint before it.
pub const DIRECT: &str = "direct";
/// GA4 drops events older than this.
pub const GA4_MAX_AGE_MS: i64 = 3 * DAY_MS;
/// Meta refuses events older than this.
pub const META_MAX_AGE_MS: i64 = 7 * DAY_MS;
/// Time decay halves a touch's weight every 7 days before the order.
pub const HALF_LIFE_MS: i64 = 7 * DAY_MS;

/// Splits `total` cents in proportion to `weights`, rounding so the parts
/// add up to `total` exactly (largest remainders first, earlier on ties).
#[must_use]
pub fn split(total: i64, weights: &[f64]) -> Vec<i64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    #[allow(clippy::cast_possible_truncation)]
    let mut parts: Vec<i64> = exact.iter().map(|e| e.floor() as i64).collect();
    let mut left = total - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    #[allow(clippy::cast_precision_loss)]
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - parts[a] as f64, exact[b] - parts[b] as f64);
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(weights.len() * 2) {
        if left == 0 {
            break;
        }
        parts[i] += left.signum();
        left -= left.signum();
    }
    parts
}

/// The weights of `n` touches (oldest first) under `model`, with their
/// times and the order's.
#[must_use]
pub fn weights(model: &str, at: &[i64], ordered_at: i64) -> Vec<f64> {
    let n = at.len();
    let mut w = vec![0.0; n];
    if n == 0 {
        return w;
    }
    match model {
        "first_touch" => w[0] = 1.0,
        "last_touch" => w[n - 1] = 1.0,
        "time_decay" => {
            for (i, t) in at.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let age = (ordered_at - t).max(0) as f64 / HALF_LIFE_MS as f64;
                w[i] = (-age).exp2();
            }
        }
        "position_based" if n > 2 => {
            w[0] = 0.4;
            w[n - 1] = 0.4;
            #[allow(clippy::cast_precision_loss)]
            let middle = 0.2 / (n - 2) as f64;
            for weight in &mut w[1..n - 1] {
                *weight = middle;
            }
        }
        // linear, and position-based over one or two touches
        _ => w.fill(1.0),
    }
    w
}

/// The order total credited to channels under every model, from the
/// touchpoints before the order (none: all to [`DIRECT`]).
#[must_use]
pub fn attribute(touchpoints: &[Touchpoint], revenue_cents: i64, ordered_at: i64) -> Credits {
    let mut before: Vec<&Touchpoint> = touchpoints.iter().filter(|t| t.at <= ordered_at).collect();
    before.sort_by_key(|t| t.at);
    let at: Vec<i64> = before.iter().map(|t| t.at).collect();
    MODELS
        .iter()
        .map(|model| {
            let mut credit = std::collections::BTreeMap::new();
            if before.is_empty() {
                credit.insert(DIRECT.to_owned(), revenue_cents);
            } else {
                let parts = split(revenue_cents, &weights(model, &at, ordered_at));
                for (touch, cents) in before.iter().zip(parts) {
                    *credit.entry(touch.channel.clone()).or_insert(0) += cents;
                }
                credit.retain(|_, cents| *cents != 0);
            }
            ((*model).to_owned(), credit)
        })
        .collect()
}

/// Minor units as a major-unit amount (analytics want `150.0`).
#[allow(clippy::cast_precision_loss)] // order totals are far below 2^52 cents
fn major(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Attribute an order")
                .reads_env(["COMMERCE_TENANTS"]),
        )
        .on_event(CONVERSION)
        .retries(2)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let tenant = tenant_named(&services, &ctx.event)?.clone();
                let order_id = required(&ctx.event, "orderId")?;
                let docs = services.docs.clone();
                let k = key(&tenant.id, &order_id);
                let order: Order = load_required(
                    &ctx,
                    &docs,
                    "get-conversion",
                    (ORDERS, &k),
                    &format!("order {order_id} of {} not found", tenant.id),
                )
                .await?;
                let (d, visitor) = (
                    docs.clone(),
                    order.visitor_id.as_ref().map(|v| key(&tenant.id, v)),
                );
                let ordered_at = order.created_at;
                let touchpoints: Vec<Touchpoint> = ctx
                    .step
                    .run("find-touchpoints", move || async move {
                        let Some(visitor) = visitor else {
                            return Ok(Vec::new());
                        };
                        let journey = d.get::<Journey>(TOUCHPOINTS, &visitor).await?;
                        let mut touches = journey.map(|(j, _)| j.touchpoints).unwrap_or_default();
                        touches.retain(|t| t.at <= ordered_at);
                        Ok(touches)
                    })
                    .await?;
                let (tp, revenue) = (touchpoints.clone(), order.total_cents);
                let models: Credits = ctx
                    .step
                    .run("calculate-attribution", move || async move {
                        Ok(attribute(&tp, revenue, ordered_at))
                    })
                    .await?;
                let result = AttributionResult {
                    tenant_id: tenant.id.clone(),
                    order_id: order_id.clone(),
                    revenue_cents: revenue,
                    ordered_at,
                    touchpoints: touchpoints.len(),
                    models: models.clone(),
                };
                let (d, rk) = (docs.clone(), k.clone());
                ctx.step
                    .run("store-results", move || async move {
                        d.update::<AttributionResult, _>(ATTRIBUTION, &rk, |_| {
                            Some(result.clone())
                        })
                        .await?;
                        Ok(())
                    })
                    .await?;

                let first = touchpoints.iter().min_by_key(|t| t.at).cloned();
                let purchase = Purchase {
                    transaction_id: order_id.clone(),
                    value: major(revenue),
                    currency: order.currency.clone(),
                    source: first.as_ref().map(|t| t.channel.clone()),
                    medium: None,
                    campaign: first.and_then(|t| t.campaign),
                };
                let age = ctx.event.ts - ordered_at;
                let (ga4, stream, client) = (
                    services.clients.ga4.clone(),
                    tenant
                        .ga4()
                        .filter(|_| age <= GA4_MAX_AGE_MS)
                        .map(|(m, s)| (m.to_owned(), s.to_owned())),
                    order.visitor_id.clone(),
                );
                let ga4_sent: Value = ctx
                    .step
                    .run("send-ga4", move || async move {
                        let (Some((id, secret)), Some(client)) = (stream, client) else {
                            return Ok(json!({"skipped": "no GA4 stream or visitor, or too old"}));
                        };
                        ga4.purchase(&id, &secret, &client, ordered_at, &purchase)
                            .await?;
                        Ok(json!({"sent": true}))
                    })
                    .await?;
                let event = ServerEvent::website(
                    "Purchase",
                    &format!("purchase-{}-{order_id}", tenant.id),
                    ordered_at,
                    order.email.as_deref(),
                )
                .with_custom_data(json!({
                    "currency": order.currency, "order_id": order_id, "value": major(revenue),
                }));
                let meta_sent = if age > META_MAX_AGE_MS {
                    json!({"skipped": "older than Meta takes"})
                } else {
                    crate::track_meta(&ctx, &services, &tenant, "send-meta", event).await?
                };
                Ok(
                    json!({"orderId": order_id, "models": MODELS, "touchpoints": touchpoints.len(),
                    "ga4": ga4_sent, "meta": meta_sent}),
                )
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(channel: &str, days_before: i64) -> Touchpoint {
        Touchpoint {
            channel: channel.into(),
            at: 100 * DAY_MS - days_before * DAY_MS,
            campaign: None,
        }
    }

    #[test]
    fn every_model_credits_the_whole_total_in_cents() {
        let touches = [
            touch("email", 1),
            touch("instagram", 20),
            touch("google", 10),
            touch("tiktok", 3),
        ];
        for total in [10_001, 9_999, 1] {
            for (model, credit) in &attribute(&touches, total, 100 * DAY_MS) {
                assert_eq!(credit.values().sum::<i64>(), total, "{model}: {credit:?}");
            }
        }
        let credits = attribute(&touches, 10_000, 100 * DAY_MS);
        assert_eq!(credits.len(), MODELS.len());
        assert_eq!(credits["first_touch"]["instagram"], 10_000);
        assert_eq!(credits["last_touch"]["email"], 10_000);
        assert_eq!(credits["linear"]["google"], 2_500);
        // 40% first, 40% last, 20% over the two in the middle
        assert_eq!(credits["position_based"]["instagram"], 4_000);
        assert_eq!(credits["position_based"]["google"], 1_000);
        // Newer touches weigh more
        let decay = &credits["time_decay"];
        assert!(decay["email"] > decay["tiktok"] && decay["tiktok"] > decay["google"]);
        assert!(decay["google"] > decay["instagram"]);
    }

    #[test]
    fn touches_after_the_order_do_not_count_and_none_is_direct() {
        let credits = attribute(&[touch("email", -1)], 500, 100 * DAY_MS);
        for credit in credits.values() {
            assert_eq!(credit.get(DIRECT), Some(&500));
        }
        let one = attribute(&[touch("google", 2)], 500, 100 * DAY_MS);
        assert!(one.values().all(|c| c.get("google") == Some(&500)));
    }

    #[test]
    fn splits_round_to_the_total() {
        assert_eq!(split(100, &[1.0, 1.0, 1.0]), [34, 33, 33]);
        assert_eq!(split(0, &[1.0, 2.0]), [0, 0]);
        assert_eq!(split(-10, &[1.0, 1.0, 1.0]).iter().sum::<i64>(), -10);
        assert!(split(5, &[]).is_empty());
    }
}
