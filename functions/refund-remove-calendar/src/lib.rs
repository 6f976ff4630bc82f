//! `refund-remove-calendar`: takes a refunded buyer of a live event off its
//! Google Calendar entries (the plan's `handle-refund-remove-calendar`).
//!
//! On `stripe/refund-processed` (`stripeChargeId`, `paymentIntentId`,
//! `purchaseId`):
//! 1. find the purchase (by `purchaseId`, else by the payment intent;
//!    "Purchase not found": fails at once) and its product (missing:
//!    `{ outcome: "error" }`);
//! 2. only a `live` product goes on (else `{ outcome: "skipped" }`), and only
//!    with an `event` or `event-series` resource;
//! 3. load the buyer's email ("User email not found": fails at once) and the
//!    event resource;
//! 4. a series: remove the buyer from each child event's entry, one step per
//!    child (`remove-attendee-{childId}`), results collected; a single event:
//!    remove them from its entry (`{ outcome: "skipped" }` without one).
//!
//! Invariants: removing an attendee who is not there changes nothing, so a
//! retried step is harmless; runs go one at a time, since a removal writes
//! the whole guest list back.

use course::{
    ContentResource, EVENT_SERIES, LIVE_PRODUCT, PRODUCTS, PURCHASES, PURCHASES_BY_PAYMENT,
    PaymentLink, Product, Purchase, RESOURCES, USERS, User,
};
use hookflow::{Concurrency, Ctx, Function, NonRetriable};
use hookflow_clients::Services;
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "refund-remove-calendar";
/// The event that starts it.
pub const TRIGGER: &str = "stripe/refund-processed";

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Remove a refunded buyer from the calendar")
                .reads_env([
                    "GOOG_CREDENTIALS_JSON",
                    "GOOG_CALENDAR_IMPERSONATE_USER",
                    "GOOG_CALENDAR_ID",
                ]),
        )
        .on_event(TRIGGER)
        // One at a time: removing an attendee reads the guest list and writes
        // it back whole, so two refunds of one event must not interleave.
        .concurrency(Concurrency::new(1))
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { remove(&services, ctx).await }
        })
}

async fn remove(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let data = &ctx.event.data;
    let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
    let (purchase_id, intent, charge) = (
        text("purchaseId"),
        text("paymentIntentId"),
        text("stripeChargeId"),
    );
    let docs = services.docs.clone();
    let purchase: Purchase = ctx
        .step
        .run("get-purchase", move || async move {
            // By the purchase `course-refund` names, else by payment intent.
            let mut id = (!purchase_id.is_empty()).then_some(purchase_id);
            if id.is_none() && !intent.is_empty() {
                id = docs
                    .get::<PaymentLink>(PURCHASES_BY_PAYMENT, &intent)
                    .await?
                    .map(|(link, _)| link.purchase_id);
            }
            let found = match id {
                Some(id) => docs.get::<Purchase>(PURCHASES, &id).await?,
                None => None,
            };
            match found {
                Some((purchase, _)) => Ok(purchase),
                None => {
                    Err(NonRetriable::new(format!("Purchase not found for charge {charge}")).into())
                }
            }
        })
        .await?;
    let (docs, product_id) = (services.docs.clone(), purchase.product_id.clone());
    let product: Option<Product> = ctx
        .step
        .run("get-product", move || async move {
            Ok(docs
                .get::<Product>(PRODUCTS, &product_id)
                .await?
                .map(|(p, _)| p))
        })
        .await?;
    let Some(product) = product else {
        return Ok(json!({ "outcome": "error", "reason": "Product not found" }));
    };
    if product.kind != LIVE_PRODUCT {
        return Ok(json!({ "outcome": "skipped", "reason": "Not a live event" }));
    }
    let (docs, ids) = (services.docs.clone(), product.resources.clone());
    let event: Option<ContentResource> = ctx
        .step
        .run("get-event-resource", move || async move {
            for id in ids {
                if let Some((resource, _)) = docs.get::<ContentResource>(RESOURCES, &id).await?
                    && resource.is_event()
                {
                    return Ok(Some(resource));
                }
            }
            Ok(None)
        })
        .await?;
    let Some(event) = event else {
        return Ok(json!({ "outcome": "skipped", "reason": "No event resource" }));
    };
    let (docs, user_id) = (services.docs.clone(), purchase.user_id.clone());
    let email: String = ctx
        .step
        .run("get-user-email", move || async move {
            match docs.get::<User>(USERS, &user_id).await? {
                Some((user, _)) if !user.email.is_empty() => Ok(user.email),
                _ => Err(NonRetriable::new("User email not found").into()),
            }
        })
        .await?;

    if event.kind == EVENT_SERIES {
        let (docs, children) = (services.docs.clone(), event.resources.clone());
        let children: Vec<ContentResource> = ctx
            .step
            .run("get-series-events", move || async move {
                let mut found = Vec::new();
                for id in children {
                    if let Some((child, _)) = docs.get::<ContentResource>(RESOURCES, &id).await? {
                        found.push(child);
                    }
                }
                Ok(found)
            })
            .await?;
        let mut results = Vec::new();
        for child in children {
            let Some(calendar_id) = child.fields.calendar_id.clone() else {
                results.push(
                    json!({ "eventId": child.id, "outcome": "skipped", "reason": "No calendarId" }),
                );
                continue;
            };
            let outcome = remove_attendee(&ctx, services, &child.id, &calendar_id, &email).await?;
            results.push(json!({ "eventId": child.id, "outcome": outcome }));
        }
        return Ok(json!({ "outcome": "event-series-processed", "childResults": results }));
    }
    let Some(calendar_id) = event.fields.calendar_id.clone() else {
        return Ok(json!({ "outcome": "skipped", "reason": "No calendarId" }));
    };
    let outcome = remove_attendee(&ctx, services, &event.id, &calendar_id, &email).await?;
    Ok(json!({ "outcome": outcome, "calendarId": calendar_id }))
}

/// Removes `email` from the entry `calendar_id` in step
/// `remove-attendee-{event_id}`: `success`, or `gone` when the entry no
/// longer exists.
async fn remove_attendee(
    ctx: &Ctx,
    services: &Services,
    event_id: &str,
    calendar_id: &str,
    email: &str,
) -> anyhow::Result<&'static str> {
    let (calendar, entry, email) = (
        services.clients.google_calendar.clone(),
        calendar_id.to_owned(),
        email.to_owned(),
    );
    let found = ctx
        .step
        .run(&format!("remove-attendee-{event_id}"), move || async move {
            Ok(calendar.remove_attendee(&entry, &email).await?.is_some())
        })
        .await?;
    Ok(if found { "success" } else { "gone" })
}
