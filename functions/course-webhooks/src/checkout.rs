//! `course-checkout`: `stripe/checkout.session.completed` for a course
//! product (`metadata.productId` set) → a [`Purchase`] and `purchase/created`.
//!
//! The session's metadata names the product and the buyer (`userId`), and
//! may carry `quantity` (seats: more than one makes a team purchase with a
//! bulk coupon of that many uses), `organizationId` and `usedCouponIds`
//! (read later by `post-purchase` from the session itself). An unpaid session
//! is skipped. The purchase id is derived from the session id and written
//! with create-if-absent, so a redelivered webhook records nothing twice; the
//! emitted event's id is derived from the purchase.

use course::{
    COUPONS, Coupon, PRODUCTS, PURCHASES, PURCHASES_BY_PAYMENT, PaymentLink, Product, Purchase,
    PurchaseStatus, load_required,
};
use hookflow::{Ctx, Event, Function, NonRetriable};
use hookflow_clients::Services;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "course-checkout";
/// The webhook event.
pub const TRIGGER: &str = "stripe/checkout.session.completed";
/// Only sessions of the course storefront.
pub const COURSE_SESSION: &str = "event.data.data.object.metadata.productId != ''";
/// The event it emits.
pub const PURCHASE_CREATED: &str = "purchase/created";

/// What the run reads of a Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// `cs_...`
    pub session_id: String,
    /// The product bought.
    pub product_id: String,
    /// The buyer.
    pub user_id: String,
    /// Seats (1 unless a team bought several).
    pub quantity: u32,
    /// The organization bought for, if any.
    pub organization_id: Option<String>,
    /// `pi_...`
    pub payment_intent_id: Option<String>,
    /// Amount paid, smallest currency unit.
    pub total_amount: i64,
}

impl Checkout {
    /// Reads the webhook's session; `None` when it is not paid.
    ///
    /// # Errors
    /// A missing field or a malformed quantity, named.
    pub fn from_webhook(data: &Value) -> Result<Option<Self>, NonRetriable> {
        let session = &data["data"]["object"];
        if session["payment_status"] != "paid" {
            return Ok(None);
        }
        let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let metadata = &session["metadata"];
        let required = |key: &str| {
            text(&metadata[key])
                .ok_or_else(|| NonRetriable::new(format!("metadata.{key} is missing or empty")))
        };
        let quantity = match text(&metadata["quantity"]) {
            None => 1,
            Some(q) => q.parse::<u32>().ok().filter(|q| *q >= 1).ok_or_else(|| {
                NonRetriable::new(format!("metadata.quantity {q:?} is not a count"))
            })?,
        };
        Ok(Some(Self {
            session_id: text(&session["id"])
                .ok_or_else(|| NonRetriable::new("session id missing"))?,
            product_id: required("productId")?,
            user_id: required("userId")?,
            quantity,
            organization_id: text(&metadata["organizationId"]),
            payment_intent_id: text(&session["payment_intent"]),
            total_amount: session["amount_total"].as_i64().unwrap_or_default(),
        }))
    }

    /// The purchase's id.
    #[must_use]
    pub fn purchase_id(&self) -> String {
        format!("purchase-{}", self.session_id)
    }
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Record a course purchase"))
        .on_event_if(TRIGGER, COURSE_SESSION)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { record(&services, ctx).await }
        })
}

async fn record(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let Some(checkout) = Checkout::from_webhook(&ctx.event.data)? else {
        return Ok(json!({ "skipped": "session not paid" }));
    };
    let product: Product = load_required(
        &ctx,
        &services.docs,
        "load-product",
        (PRODUCTS, &checkout.product_id),
        "Product not found",
    )
    .await?;
    let (docs, bought) = (services.docs.clone(), checkout.clone());
    let purchase: Purchase = ctx
        .step
        .run("record-purchase", move || async move {
            let purchase_id = bought.purchase_id();
            let bulk_coupon_id =
                (bought.quantity > 1).then(|| format!("bulk-{}", bought.session_id));
            if let Some(coupon_id) = &bulk_coupon_id {
                let coupon = Coupon {
                    id: coupon_id.clone(),
                    max_uses: bought.quantity,
                    used_count: 0,
                    restricted_to_product_id: Some(bought.product_id.clone()),
                    bulk_purchase_id: Some(purchase_id.clone()),
                };
                docs.create(COUPONS, coupon_id, &coupon).await?;
            }
            let purchase = Purchase {
                id: purchase_id.clone(),
                user_id: bought.user_id,
                product_id: bought.product_id,
                status: PurchaseStatus::Valid,
                total_amount: bought.total_amount,
                quantity: bought.quantity,
                organization_id: bought.organization_id,
                bulk_coupon_id,
                redeemed_bulk_coupon_id: None,
                checkout_session_id: Some(bought.session_id),
                payment_intent_id: bought.payment_intent_id.clone(),
            };
            docs.create(PURCHASES, &purchase_id, &purchase).await?;
            if let Some(intent) = &bought.payment_intent_id {
                let link = PaymentLink {
                    purchase_id: purchase_id.clone(),
                };
                docs.create(PURCHASES_BY_PAYMENT, intent, &link).await?;
            }
            // A redelivery returns the purchase as first recorded.
            Ok(docs
                .get::<Purchase>(PURCHASES, &purchase_id)
                .await?
                .map_or(purchase, |(stored, _)| stored))
        })
        .await?;
    let created = Event::new(
        PURCHASE_CREATED,
        json!({
            "purchaseId": purchase.id,
            "productType": product.kind,
            "checkoutSessionId": checkout.session_id,
        }),
    )
    .with_id(format!("purchase-created-{}", purchase.id));
    ctx.step
        .send_event("emit-purchase-created", [created])
        .await?;
    Ok(
        json!({ "purchaseId": purchase.id, "productType": product.kind, "seats": purchase.quantity }),
    )
}
