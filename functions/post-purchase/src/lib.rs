//! `post-purchase`: fulfils a course purchase (the plan's
//! `post-purchase-workflow`).
//!
//! On `purchase/created` (`purchaseId`, `productType`, `checkoutSessionId`)
//! or `coupon/full-price-redeemed` (`purchaseId`, `productType`), for cohort
//! and self-paced products only, one run per purchase:
//! 1. load the purchase, its product and its buyer (any missing: fails at
//!    once, "Purchase not found" and so on);
//! 2. emit `coupon/grant-entitlements-for-purchase`;
//! 3. for a new purchase, look up its Stripe Checkout Session and revoke the
//!    entitlements of the coupons it used (`metadata.usedCouponIds`);
//! 4. for a redeemed team seat, load the team's coupon (who invited them);
//! 5. load each resource the product grants (a cohort, or workshops);
//! 6. a **team purchase** (seats for others): email the purchaser, per
//!    resource, the link that redeems a seat;
//!    an **individual purchase** (valid or regional-price): make the buyer a
//!    learner of the purchase's organization (or of their own), then per
//!    resource emit the Discord role event (`discord/user-added-to-cohort` or
//!    `-workshop`), grant the Discord role entitlement, grant content access
//!    to the resource and everything nested in it, and send the welcome email.
//!
//! Invariants: every step has a stable id (per resource: `...-{resourceId}`);
//! every record it writes, every event it emits and every email it sends has
//! an id derived from the purchase and resource (not from the run), so a
//! retried step, a re-sent event or an operator's replay of the run grants,
//! emits and sends nothing twice.

mod grant;
mod welcome;

use anyhow::Context as _;
use course::{
    COHORT, COHORT_PRODUCT, COUPONS, ContentResource, Coupon, PRODUCTS, PURCHASES, Product,
    Purchase, RESOURCES, SELF_PACED_PRODUCT, USERS, User, WORKSHOP, load_required,
};
use hookflow::{Ctx, Event, Failure, Function, NonRetriable};
use hookflow_clients::Services;
use hookflow_docs::DocStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use grant::{revoke_coupon_entitlements, used_coupon_ids};
pub use welcome::{individual_welcome, team_welcome};

/// The function id.
pub const ID: &str = "post-purchase";
/// A paid checkout became a purchase.
pub const PURCHASE_CREATED: &str = "purchase/created";
/// A team seat was redeemed with a full-price coupon.
pub const FULL_PRICE_REDEEMED: &str = "coupon/full-price-redeemed";
/// Only cohorts and self-paced workshops are fulfilled here.
pub const COURSE_PRODUCTS: &str =
    r#"event.data.productType == "cohort" || event.data.productType == "self-paced""#;
/// One run per purchase.
pub const ONE_RUN_PER_PURCHASE: &str = "event.data.purchaseId";
/// Emitted for the coupon entitlements a purchase unlocks.
pub const GRANT_COUPON_ENTITLEMENTS: &str = "coupon/grant-entitlements-for-purchase";
/// Emitted when a buyer joins a cohort that has a Discord role.
pub const USER_ADDED_TO_COHORT: &str = "discord/user-added-to-cohort";
/// Emitted when a buyer joins a workshop that has a Discord role.
pub const USER_ADDED_TO_WORKSHOP: &str = "discord/user-added-to-workshop";

/// The event's data (both triggers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseEvent {
    /// The purchase.
    pub purchase_id: String,
    /// `cohort` or `self-paced`.
    pub product_type: String,
    /// The Checkout Session (new purchases paid through Stripe).
    #[serde(default)]
    pub checkout_session_id: Option<String>,
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Fulfil a course purchase")
                .reads_env([
                    "STRIPE_API_KEY",
                    "RESEND_API_KEY",
                    "COURSE_SITE_TITLE",
                    "COURSE_SUPPORT_EMAIL",
                    "COURSE_PUBLIC_URL",
                ]),
        )
        .on_event_if(PURCHASE_CREATED, COURSE_PRODUCTS)
        .on_event_if(FULL_PRICE_REDEEMED, COURSE_PRODUCTS)
        .idempotency(ONE_RUN_PER_PURCHASE)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { fulfil(&services, ctx).await }
        })
}

async fn fulfil(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let event: PurchaseEvent = serde_json::from_value(ctx.event.data.clone()).non_retriable()?;
    let docs = &services.docs;
    let purchase: Purchase = load_required(
        &ctx,
        docs,
        "load-purchase",
        (PURCHASES, &event.purchase_id),
        "Purchase not found",
    )
    .await?;
    let product: Product = load_required(
        &ctx,
        docs,
        "load-product",
        (PRODUCTS, &purchase.product_id),
        "Product not found",
    )
    .await?;
    let user: User = load_required(
        &ctx,
        docs,
        "load-user",
        (USERS, &purchase.user_id),
        "User not found",
    )
    .await?;
    let redemption = ctx.event.name == FULL_PRICE_REDEEMED;

    let grant = Event::new(
        GRANT_COUPON_ENTITLEMENTS,
        json!({ "purchaseId": purchase.id, "userId": user.id, "productId": product.id }),
    )
    .with_id(format!("grant-coupon-entitlements-{}", purchase.id));
    ctx.step
        .send_event("grant-coupon-entitlements", [grant])
        .await?;

    let mut revoked = 0;
    if let (false, Some(session_id)) = (redemption, event.checkout_session_id.clone()) {
        let (services, user_id) = (services.clone(), user.id.clone());
        revoked = ctx
            .step
            .run("mark-entitlement-coupons-used", move || async move {
                let session = services
                    .clients
                    .stripe
                    .retrieve_checkout_session(&session_id)
                    .await?;
                let used = used_coupon_ids(&session.metadata);
                revoke_coupon_entitlements(&services.docs, &user_id, &used).await
            })
            .await?;
    }

    let mut invited_by = None;
    if redemption {
        let coupon_id = purchase.redeemed_bulk_coupon_id.clone().ok_or_else(|| {
            NonRetriable::new("a full-price redemption without redeemedBulkCouponId")
        })?;
        let coupon: Coupon = load_required(
            &ctx,
            docs,
            "load-bulk-coupon",
            (COUPONS, &coupon_id),
            "Coupon not found",
        )
        .await?;
        if let Some(bulk_purchase_id) = coupon.bulk_purchase_id {
            let bulk: Purchase = load_required(
                &ctx,
                docs,
                "load-bulk-purchase",
                (PURCHASES, &bulk_purchase_id),
                "Bulk purchase not found",
            )
            .await?;
            invited_by = Some(bulk.user_id);
        }
    }

    let resources = gather_resources(&ctx, docs, &product).await?;
    let public_url = services.settings.course_public_url()?.to_owned();

    if purchase.is_team() && !redemption {
        let coupon_id = purchase.bulk_coupon_id.clone().unwrap_or_default();
        let coupon: Coupon = load_required(
            &ctx,
            docs,
            "load-team-coupon",
            (COUPONS, &coupon_id),
            "Coupon not found",
        )
        .await?;
        for resource in &resources {
            let email = team_welcome(&product, resource, &user, &coupon, &public_url);
            let step = format!("send-team-welcome-email-{}", resource.id);
            send(&ctx, services, &step, (&purchase.id, &resource.id), email).await?;
        }
        return Ok(json!({
            "purchaseId": purchase.id,
            "purchase": "team",
            "seats": coupon.max_uses,
            "resources": resources.iter().map(|r| &r.id).collect::<Vec<_>>(),
        }));
    }
    if !purchase.grants_access() {
        return Ok(json!({ "purchaseId": purchase.id, "skipped": "purchase grants no access" }));
    }

    let (store, who, ids) = (
        docs.clone(),
        user.id.clone(),
        (purchase.organization_id.clone(), invited_by.clone()),
    );
    let organization_id: String = ctx
        .step
        .run("ensure-organization-membership", move || async move {
            grant::ensure_membership(&store, &who, ids.0.as_deref(), ids.1.as_deref()).await
        })
        .await?;

    let (content_kind, role_kind) = product
        .entitlement_types()
        .context("only cohort and self-paced products are fulfilled")
        .non_retriable()?;
    let mut granted = Vec::new();
    for resource in &resources {
        let role = resource
            .fields
            .discord_role_id
            .clone()
            .or_else(|| product.discord_role_id.clone());
        if let Some(role) = &role {
            ctx.step
                .send_event(
                    &format!("discord-role-event-{}", resource.id),
                    [discord_event(&product, resource, &user, role)
                        .with_id(format!("discord-role-{}-{}", purchase.id, resource.id))],
                )
                .await?;
            let (store, grant) = (
                docs.clone(),
                grant::Grant::new(&purchase, &user, &organization_id),
            );
            let (resource_id, role) = (resource.id.clone(), role.clone());
            ctx.step
                .run(
                    &format!("create-discord-entitlement-{}", resource.id),
                    move || async move {
                        grant
                            .discord_role(&store, role_kind, &resource_id, &role)
                            .await
                    },
                )
                .await?;
        }
        let (store, grant, root) = (
            docs.clone(),
            grant::Grant::new(&purchase, &user, &organization_id),
            resource.clone(),
        );
        let ids: Vec<String> = ctx
            .step
            .run(
                &format!("create-content-entitlements-{}", resource.id),
                move || async move { grant.content_access(&store, content_kind, &root).await },
            )
            .await?;
        granted.extend(ids);
        let email =
            individual_welcome(&product, resource, &user, invited_by.is_some(), &public_url);
        let step = format!("send-welcome-email-{}", resource.id);
        send(&ctx, services, &step, (&purchase.id, &resource.id), email).await?;
    }
    Ok(json!({
        "purchaseId": purchase.id,
        "purchase": if redemption { "redeemed-seat" } else { "individual" },
        "organizationId": organization_id,
        "resources": resources.iter().map(|r| &r.id).collect::<Vec<_>>(),
        "entitlements": granted,
        "revokedCouponEntitlements": revoked,
    }))
}

/// The product's resources this workflow fulfils, each loaded in its own
/// step: the cohorts of a cohort product, the workshops of a self-paced one.
async fn gather_resources(
    ctx: &Ctx,
    docs: &DocStore,
    product: &Product,
) -> anyhow::Result<Vec<ContentResource>> {
    let wanted = match product.kind.as_str() {
        COHORT_PRODUCT => COHORT,
        SELF_PACED_PRODUCT => WORKSHOP,
        _ => return Ok(Vec::new()),
    };
    let mut resources = Vec::new();
    for id in &product.resources {
        let resource: ContentResource = load_required(
            ctx,
            docs,
            &format!("load-resource-{id}"),
            (RESOURCES, id),
            &format!("Resource {id} not found"),
        )
        .await?;
        if resource.kind == wanted {
            resources.push(resource);
        }
    }
    Ok(resources)
}

/// The Discord role event for a buyer joining `resource`.
fn discord_event(product: &Product, resource: &ContentResource, user: &User, role: &str) -> Event {
    if product.kind == COHORT_PRODUCT {
        Event::new(
            USER_ADDED_TO_COHORT,
            json!({ "cohortId": resource.id, "userId": user.id, "discordRoleId": role }),
        )
    } else {
        Event::new(
            USER_ADDED_TO_WORKSHOP,
            json!({ "workshopId": resource.id, "userId": user.id, "discordRoleId": role }),
        )
    }
}

/// Emails already sent, by key (see [`send`]).
pub const SENT_EMAILS: &str = "course_emails_sent";

/// Sends `email` in step `step`, once per purchase and resource however
/// often the step is retried or the run replayed: the key is derived from
/// `(purchase, resource)`, sent as Resend's idempotency key (which covers a
/// crash between the send and its record, for Resend's 24 h) and recorded in
/// [`SENT_EMAILS`] after the send (which covers any later replay).
async fn send(
    ctx: &Ctx,
    services: &Services,
    step: &str,
    (purchase_id, resource_id): (&str, &str),
    email: welcome::Welcome,
) -> anyhow::Result<String> {
    let services = services.clone();
    let key = format!(
        "hf-{}",
        hookflow::event::derived_id(&["welcome", &email.template, purchase_id, resource_id])
    );
    Ok(ctx
        .step
        .run(step, move || async move {
            if let Some((sent, _)) = services.docs.get::<Value>(SENT_EMAILS, &key).await? {
                return Ok(sent["id"].as_str().unwrap_or_default().to_owned());
            }
            let message = email.into_resend(services.settings.course_sender()?);
            let id = services.clients.resend.send(&message, &key).await?;
            services
                .docs
                .create(SENT_EMAILS, &key, &json!({ "id": id }))
                .await?;
            Ok(id)
        })
        .await?)
}
