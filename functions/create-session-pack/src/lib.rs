//! `create-session-pack`: turns a paid mentorship purchase into a session pack.
//!
//! On `purchase/mentorship` (a [`Purchase`]): create `packs/<orderId>` once
//! ([`Pack`]: [`SESSIONS_PER_PACK`] sessions, none completed, `active`), then
//! emit [`PACK_CREATED`].
//!
//! Invariants: the pack is written with a conditional create keyed by the
//! order id, so a duplicate purchase event or a replayed run never writes a
//! second pack (nor resets a pack whose sessions have started); the emitted
//! event's id is derived from the order id.

use chrono::{DateTime, SecondsFormat};
use hookflow::{Event, Failure, Function};
use hookflow_clients::Services;
use mentorship_purchase::{Provider, Purchase};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The function id.
pub const ID: &str = "create-session-pack";
/// The event that starts it.
pub const TRIGGER: &str = mentorship_purchase::PURCHASE;
/// The event it emits once the pack exists (data: a [`Pack`]).
pub const PACK_CREATED: &str = "pack/created";
/// The document collection packs live in, keyed by order id.
pub const PACKS: &str = "packs";
/// Sessions in a pack.
pub const SESSIONS_PER_PACK: u32 = 4;

/// Where a pack is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackStatus {
    /// Paid for; sessions can be booked.
    Active,
    /// All sessions done or the pack expired.
    Expired,
}

/// A session pack, as stored in [`PACKS`] and carried by [`PACK_CREATED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pack {
    /// The provider's order id: the document key.
    pub order_id: String,
    /// The owner's Clerk user id.
    pub clerk_id: String,
    /// The pack bought.
    pub pack_id: String,
    /// Who took the payment.
    pub provider: Provider,
    /// Sessions the pack holds.
    pub sessions_total: u32,
    /// Sessions held so far.
    pub sessions_completed: u32,
    /// Where it is in its life.
    pub status: PackStatus,
    /// When the purchase event arrived, RFC 3339 in UTC.
    pub created_at: String,
}

impl Pack {
    /// A new, unused pack for `purchase`, created at `ts_ms`.
    #[must_use]
    pub fn new(purchase: Purchase, ts_ms: i64) -> Self {
        let created_at = DateTime::from_timestamp_millis(ts_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        Self {
            order_id: purchase.order_id,
            clerk_id: purchase.clerk_id,
            pack_id: purchase.pack_id,
            provider: purchase.provider,
            sessions_total: SESSIONS_PER_PACK,
            sessions_completed: 0,
            status: PackStatus::Active,
            created_at,
        }
    }
}

/// A `purchase/mentorship` event whose data is not a [`Purchase`] (not retried).
#[derive(Debug, thiserror::Error)]
#[error("not a purchase/mentorship (clerkId, orderId, packId, provider): {0}")]
pub struct InvalidPurchase(#[source] pub serde_json::Error);

/// The id of the [`PACK_CREATED`] event for an order: one per pack.
#[must_use]
pub fn pack_created_id(order_id: &str) -> String {
    format!("pack-created-{order_id}")
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let docs = services.docs.clone();
    services
        .alert_on_failure(Function::new(ID).name("Create a session pack"))
        .on_event(TRIGGER)
        .handler(move |ctx| {
            let docs = docs.clone();
            async move {
                let data = ctx.event.data.clone();
                let ts = ctx.event.ts;
                let pack: Pack = ctx
                    .step
                    .run("validate-purchase", || async move {
                        let purchase = serde_json::from_value::<Purchase>(data)
                            .map_err(InvalidPurchase)
                            .non_retriable()?;
                        Ok(Pack::new(purchase, ts))
                    })
                    .await?;
                let record = pack.clone();
                let created: bool = ctx
                    .step
                    .run("create-pack", || async move {
                        Ok(docs.create(PACKS, &record.order_id, &record).await?)
                    })
                    .await?;
                let event = Event::new(PACK_CREATED, serde_json::to_value(&pack)?)
                    .with_id(pack_created_id(&pack.order_id));
                ctx.step.send_event("emit-pack-created", [event]).await?;
                Ok(json!({ "order_id": pack.order_id, "created": created }))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purchase_becomes_an_active_pack() {
        let purchase: Purchase = serde_json::from_value(json!({
            "clerkId": "user_1", "orderId": "cs_1", "packId": "pack_a", "provider": "stripe"
        }))
        .unwrap();
        let pack = Pack::new(purchase, 1_748_859_330_000);
        assert_eq!(pack.order_id, "cs_1");
        assert_eq!(pack.sessions_total, 4);
        assert_eq!(pack.sessions_completed, 0);
        assert_eq!(pack.status, PackStatus::Active);
        assert_eq!(pack.created_at, "2025-06-02T10:15:30Z");
    }
}
