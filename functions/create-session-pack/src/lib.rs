//! `create-session-pack`: turns a paid mentorship purchase into a session pack.
//!
//! On `purchase/mentorship` (a [`Purchase`]): create `packs/<orderId>` once
//! (a [`Pack`]: [`mentorship::SESSIONS_PER_PACK`] sessions, valid
//! [`mentorship::PACK_VALIDITY_DAYS`] days), give the pack the member's seat
//! (`seats/<clerkId>`: a first purchase reserves it, a renewal takes it over,
//! which is how a grace period knows the member renewed), then emit
//! [`PACK_CREATED`].
//!
//! Invariants: the pack is written with a conditional create keyed by the
//! order id, so a duplicate purchase event or a replayed run never writes a
//! second pack (nor resets a pack whose sessions have started); the seat goes
//! to the most recently bought pack, so a replayed older purchase never takes
//! it back from a renewal; the emitted event's id is derived from the order id.

use hookflow::{Event, Failure, Function};
use hookflow_clients::Services;
use mentorship::{PACKS, Pack, SEATS, Seat, utc};
use mentorship_purchase::Purchase;
use serde_json::json;

/// The function id.
pub const ID: &str = "create-session-pack";
/// The event that starts it.
pub const TRIGGER: &str = mentorship_purchase::PURCHASE;
/// The event it emits once the pack exists (data: a [`Pack`]).
pub const PACK_CREATED: &str = "pack/created";

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
                        Ok(Pack::new(purchase, utc(ts)))
                    })
                    .await?;
                let record = pack.clone();
                let store = docs.clone();
                let created: bool = ctx
                    .step
                    .run("create-pack", || async move {
                        Ok(store.create(PACKS, &record.order_id, &record).await?)
                    })
                    .await?;
                let (clerk_id, order_id) = (pack.clerk_id.clone(), pack.order_id.clone());
                let bought_at = pack.created_at;
                ctx.step
                    .run("reserve-seat", || async move {
                        docs.update(SEATS, &clerk_id, |seat: Option<Seat>| {
                            Seat::reserve(seat.as_ref(), &clerk_id, &order_id, bought_at)
                        })
                        .await?;
                        Ok(())
                    })
                    .await?;
                let event = Event::new(PACK_CREATED, serde_json::to_value(&pack)?)
                    .with_id(pack_created_id(&pack.order_id));
                ctx.step.send_event("emit-pack-created", [event]).await?;
                Ok(json!({ "order_id": pack.order_id, "created": created }))
            }
        })
}
