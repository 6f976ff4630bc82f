//! The commerce platform's records in the document store. Collections are
//! prefixed `commerce_`; every key but the webhook queue's starts with the
//! tenant id and `:`, so one tenant's records are one key range and no
//! workflow reads across tenants by mistake (queue rows carry their tenant).
//!
//! The storefront and admin app write creators, discount codes, payout
//! requests, applications and touchpoints; the workflows write orders,
//! reviews, review emails, ledger entries, attribution results, daily
//! metrics and the outbound webhook queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Orders, `<tenant>:<order id>` (Shopify's numeric id).
pub const ORDERS: &str = "commerce_orders";
/// Submitted reviews, `<tenant>:<order id>`.
pub const REVIEWS: &str = "commerce_reviews";
/// Review emails sent, `<tenant>:<order id>:<sequence>`.
pub const REVIEW_EMAILS: &str = "commerce_review_emails";
/// Creators, `<tenant>:<creator id>`.
pub const CREATORS: &str = "commerce_creators";
/// Discount codes, `<tenant>:<CODE>` (upper case) → `{"creatorId"}`.
pub const DISCOUNT_CODES: &str = "commerce_discount_codes";
/// The creators' ledger, `<tenant>:commission:<order id>` and
/// `<tenant>:payout:<request id>`: written once each.
pub const LEDGER: &str = "commerce_ledger";
/// Payout (withdrawal) requests, `<tenant>:<request id>`.
pub const PAYOUTS: &str = "commerce_payouts";
/// Creator applications, `<tenant>:<creator id>`.
pub const APPLICATIONS: &str = "commerce_applications";
/// A visitor's touchpoints, `<tenant>:<visitor id>`.
pub const TOUCHPOINTS: &str = "commerce_touchpoints";
/// Attribution results, `<tenant>:<order id>`.
pub const ATTRIBUTION: &str = "commerce_attribution";
/// Daily metrics, `<tenant>:<YYYY-MM-DD>`.
pub const METRICS: &str = "commerce_metrics";
/// Outbound webhooks waiting or dead, `<created ms, 13 digits>-<id>`.
pub const WEBHOOK_QUEUE: &str = "commerce_webhook_queue";

/// `<tenant>:<id>`.
#[must_use]
pub fn key(tenant: &str, id: &str) -> String {
    format!("{tenant}:{id}")
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// Title.
    pub title: String,
    /// Quantity.
    pub quantity: i64,
    /// SKU.
    #[serde(default)]
    pub sku: Option<String>,
}

/// An order, as last read from Shopify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The tenant.
    pub tenant_id: String,
    /// Shopify's numeric id.
    pub id: String,
    /// `#1001`.
    pub name: String,
    /// Contact email.
    #[serde(default)]
    pub email: Option<String>,
    /// The buyer's first name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// When it was placed (ms).
    pub created_at: i64,
    /// Total in minor units (tax and shipping included).
    pub total_cents: i64,
    /// Subtotal in minor units (after discounts, before tax and shipping):
    /// what commissions are paid on.
    #[serde(default)]
    pub subtotal_cents: i64,
    /// Shopify's financial status (`PAID`, `REFUNDED`, ...).
    #[serde(default)]
    pub financial_status: Option<String>,
    /// Cancelled in Shopify.
    #[serde(default)]
    pub cancelled: bool,
    /// ISO 4217.
    pub currency: String,
    /// Discount codes applied.
    #[serde(default)]
    pub discount_codes: Vec<String>,
    /// The storefront's visitor id (a checkout attribute), for attribution.
    #[serde(default)]
    pub visitor_id: Option<String>,
    /// What was bought.
    #[serde(default)]
    pub lines: Vec<Line>,
    /// When every shipment was delivered (ms).
    #[serde(default)]
    pub delivered_at: Option<i64>,
    /// Whether the first review email has been scheduled (once per order).
    #[serde(default)]
    pub review_scheduled: bool,
    /// When it was last synced (ms).
    pub synced_at: i64,
}

/// A submitted review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The tenant.
    pub tenant_id: String,
    /// The order reviewed.
    pub order_id: String,
    /// The review's id in the app.
    pub review_id: String,
    /// 1 to 5.
    #[serde(default)]
    pub rating: Option<u8>,
    /// When it was recorded (ms).
    pub submitted_at: i64,
}

/// A review email sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewEmail {
    /// The provider's message id.
    pub email_id: String,
    /// The discount code offered.
    pub incentive_code: String,
    /// Percent off.
    pub percent_off: u32,
    /// When (ms).
    pub sent_at: i64,
}

/// A creator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Creator {
    /// The tenant.
    pub tenant_id: String,
    /// Creator id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Commission on attributed orders, in percent.
    #[serde(default)]
    pub commission_percent: u32,
    /// Stripe Connect account (`acct_...`) payouts go to.
    #[serde(default)]
    pub stripe_account: Option<String>,
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// Earned on an order with the creator's code.
    Commission,
    /// Paid out.
    Payout,
}

/// A ledger entry (commissions positive, payouts negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// The tenant.
    pub tenant_id: String,
    /// The creator.
    pub creator_id: String,
    /// Commission or payout.
    pub kind: LedgerKind,
    /// Minor units, signed.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// The order or payout request.
    pub reference: String,
    /// When (ms).
    pub at: i64,
}

/// A payout request's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Requested, not yet approved.
    Requested,
    /// Approved: to be paid.
    Approved,
    /// Paid; `transferId` says where.
    Completed,
    /// The provider refused it; `failure` says why.
    Failed,
}

/// A creator's payout (withdrawal) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayoutRequest {
    /// Request id.
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Who is paid.
    pub creator_id: String,
    /// Minor units.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// Its state.
    pub status: PayoutStatus,
    /// The provider's transfer id, once paid.
    #[serde(default)]
    pub transfer_id: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub failure: Option<String>,
    /// Last change (ms).
    #[serde(default)]
    pub updated_at: i64,
}

/// A creator's application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The tenant.
    pub tenant_id: String,
    /// The applicant's creator id.
    pub creator_id: String,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Social handles, links, ...
    #[serde(default)]
    pub details: Value,
}

/// One marketing touch of a visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touchpoint {
    /// `instagram`, `google`, `email`, `direct`, ...
    pub channel: String,
    /// When (ms).
    pub at: i64,
    /// `utm_campaign`.
    #[serde(default)]
    pub campaign: Option<String>,
}

/// A visitor's touchpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journey {
    /// In any order; the attribution sorts them.
    pub touchpoints: Vec<Touchpoint>,
}

/// Credit per channel (minor units) under each model.
pub type Credits = BTreeMap<String, BTreeMap<String, i64>>;

/// An order's attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributionResult {
    /// The tenant.
    pub tenant_id: String,
    /// The order.
    pub order_id: String,
    /// The order's total (minor units).
    pub revenue_cents: i64,
    /// When the order was placed (ms): the metrics' day.
    pub ordered_at: i64,
    /// Touchpoints before the order.
    pub touchpoints: usize,
    /// Model → channel → credit.
    pub models: Credits,
}

/// One tenant's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyMetrics {
    /// The tenant.
    pub tenant_id: String,
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Orders placed.
    pub orders: u32,
    /// Their total (minor units).
    pub revenue_cents: i64,
    /// Distinct buyers (by email).
    pub customers: u32,
    /// Revenue by channel, last-touch model.
    pub revenue_by_channel: BTreeMap<String, i64>,
    /// The tick that computed it (ms).
    pub computed_at: i64,
}

/// A queued outbound webhook's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// To be delivered at `nextAttemptAt`.
    Pending,
    /// Gave up after [`crate::webhook_queue::MAX_ATTEMPTS`].
    Dead,
}

/// An outbound webhook waiting for delivery (deleted once delivered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedWebhook {
    /// Delivery id (`Hookflow-Delivery`).
    pub id: String,
    /// The tenant whose endpoint receives it.
    pub tenant_id: String,
    /// `order.synced`, ...
    pub topic: String,
    /// The body.
    pub payload: Value,
    /// Its state.
    pub status: QueueStatus,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before (ms).
    pub next_attempt_at: i64,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When it was queued (ms).
    pub created_at: i64,
}

impl QueuedWebhook {
    /// Its key in [`WEBHOOK_QUEUE`]: oldest first.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{:013}-{}", self.created_at.max(0), self.id)
    }
}
