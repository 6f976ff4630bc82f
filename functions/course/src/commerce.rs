//! Commerce: products, purchases, coupons, and the entitlements a purchase
//! (or a coupon) grants.

use serde::{Deserialize, Serialize};

/// Products, by id.
pub const PRODUCTS: &str = "products";
/// Purchases, by id.
pub const PURCHASES: &str = "purchases";
/// A purchase's id by its Stripe payment intent ([`PaymentLink`]), so a
/// refund (which names the charge and its payment intent) finds it.
pub const PURCHASES_BY_PAYMENT: &str = "purchases_by_payment";
/// Coupons, by id.
pub const COUPONS: &str = "coupons";
/// Entitlements, by [`entitlement_key`] (so one user's list by prefix).
pub const ENTITLEMENTS: &str = "entitlements";
/// Who is enrolled in a cohort, by [`enrollment_key`] (so one cohort's list
/// by prefix).
pub const ENROLLMENTS: &str = "cohort_enrollments";

/// A cohort-based course.
pub const COHORT_PRODUCT: &str = "cohort";
/// A self-paced workshop.
pub const SELF_PACED_PRODUCT: &str = "self-paced";
/// A live event (or series).
pub const LIVE_PRODUCT: &str = "live";

/// Access to a cohort's content.
pub const COHORT_CONTENT_ACCESS: &str = "cohort_content_access";
/// A cohort's Discord role.
pub const COHORT_DISCORD_ROLE: &str = "cohort_discord_role";
/// Access to a workshop's content.
pub const WORKSHOP_CONTENT_ACCESS: &str = "workshop_content_access";
/// A workshop's Discord role.
pub const WORKSHOP_DISCORD_ROLE: &str = "workshop_discord_role";

/// Something for sale: what type it is and which resources it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `cohort`, `self-paced`, `live`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resources it grants (a cohort, workshops, an event), by id.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The Discord role its buyers get when the resource names none.
    #[serde(default)]
    pub discord_role_id: Option<String>,
}

impl Product {
    /// The entitlement types a purchase of it grants: content access and the
    /// Discord role (`None` for products that grant neither).
    #[must_use]
    pub fn entitlement_types(&self) -> Option<(&'static str, &'static str)> {
        match self.kind.as_str() {
            COHORT_PRODUCT => Some((COHORT_CONTENT_ACCESS, COHORT_DISCORD_ROLE)),
            SELF_PACED_PRODUCT => Some((WORKSHOP_CONTENT_ACCESS, WORKSHOP_DISCORD_ROLE)),
            _ => None,
        }
    }
}

/// A purchase's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseStatus {
    /// Paid in full.
    Valid,
    /// Paid at a regional (PPP) price: access with restrictions.
    Restricted,
    /// Refunded: no longer grants access.
    Refunded,
}

/// A purchase of a product by a user: one seat, or seats for a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// Its id.
    pub id: String,
    /// The buyer (or the redeemer of a team seat).
    pub user_id: String,
    /// What was bought.
    pub product_id: String,
    /// Its state.
    pub status: PurchaseStatus,
    /// Amount paid, in the currency's smallest unit.
    #[serde(default)]
    pub total_amount: i64,
    /// Seats bought (more than one: a team purchase).
    #[serde(default = "one")]
    pub quantity: u32,
    /// The organization it was bought for, if any.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// A team purchase's coupon, whose codes the team redeems for seats.
    #[serde(default)]
    pub bulk_coupon_id: Option<String>,
    /// The team coupon this seat was redeemed from (a full-price redemption).
    #[serde(default)]
    pub redeemed_bulk_coupon_id: Option<String>,
    /// The Stripe Checkout Session it came from.
    #[serde(default)]
    pub checkout_session_id: Option<String>,
    /// The Stripe payment intent that paid for it.
    #[serde(default)]
    pub payment_intent_id: Option<String>,
}

const fn one() -> u32 {
    1
}

impl Purchase {
    /// A team purchase: seats for others, redeemed through its coupon.
    #[must_use]
    pub fn is_team(&self) -> bool {
        self.bulk_coupon_id.is_some()
    }

    /// Grants access to its buyer (paid, possibly at a regional price).
    #[must_use]
    pub fn grants_access(&self) -> bool {
        matches!(
            self.status,
            PurchaseStatus::Valid | PurchaseStatus::Restricted
        )
    }
}

/// The purchase a Stripe payment intent paid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentLink {
    /// The purchase.
    pub purchase_id: String,
}

/// A coupon: a team's seats (a bulk coupon) or a code that grants
/// entitlements on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coupon {
    /// Its id (the code).
    pub id: String,
    /// How many times it can be redeemed.
    pub max_uses: u32,
    /// How many times it was.
    #[serde(default)]
    pub used_count: u32,
    /// The product it is for, if restricted to one.
    #[serde(default)]
    pub restricted_to_product_id: Option<String>,
    /// The team purchase that paid for it (a bulk coupon).
    #[serde(default)]
    pub bulk_purchase_id: Option<String>,
}

/// What a user may do: see a resource's content, hold a Discord role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entitlement {
    /// Its id (derived from its source and resource; see [`entitlement_id`]).
    pub id: String,
    /// Whose it is.
    pub user_id: String,
    /// `cohort_content_access`, `cohort_discord_role`, ...
    pub entitlement_type: String,
    /// The resource it opens, if any.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// `PURCHASE`, `COUPON` or `MANUAL`.
    pub source_type: String,
    /// The purchase or coupon that granted it.
    pub source_id: String,
    /// The organization it was granted in.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The cohort whose content it opens (kept in step with the cohort by
    /// `cohort-entitlement-sync`).
    #[serde(default)]
    pub cohort_id: Option<String>,
    /// The Discord role of a `*_discord_role` entitlement.
    #[serde(default)]
    pub discord_role_id: Option<String>,
    /// When it was revoked (ms); revoked entitlements are kept, not deleted.
    #[serde(default)]
    pub deleted_at: Option<i64>,
}

impl Entitlement {
    /// Not revoked.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// The id of the entitlement of `kind` that `source_id` grants for
/// `resource_id`: the same inputs always give the same id.
#[must_use]
pub fn entitlement_id(source_id: &str, kind: &str, resource_id: &str) -> String {
    format!("{source_id}:{kind}:{resource_id}")
}

/// The key of an entitlement: the user's id, then its own.
#[must_use]
pub fn entitlement_key(user_id: &str, entitlement_id: &str) -> String {
    format!("{user_id}/{entitlement_id}")
}

/// The key prefix of one user's entitlements.
#[must_use]
pub fn entitlements_of(user_id: &str) -> String {
    format!("{user_id}/")
}

/// A user enrolled in a cohort (by a purchase or a redeemed seat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    /// The cohort resource.
    pub cohort_id: String,
    /// The learner.
    pub user_id: String,
    /// The purchase that enrolled them.
    pub purchase_id: String,
    /// The organization they learn in.
    #[serde(default)]
    pub organization_id: Option<String>,
}

/// The key of an enrollment: the cohort, then the user.
#[must_use]
pub fn enrollment_key(cohort_id: &str, user_id: &str) -> String {
    format!("{cohort_id}/{user_id}")
}

/// The key prefix of one cohort's enrollments.
#[must_use]
pub fn enrollments_in(cohort_id: &str) -> String {
    format!("{cohort_id}/")
}
