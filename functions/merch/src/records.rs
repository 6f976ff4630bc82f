//! The merch shop's records in the document store. Collections are prefixed
//! `merch_` so the shop can share a store with the other apps.
//!
//! Stock is held per order (`holds`), so reserving and releasing are
//! idempotent single-document writes: a retried reservation finds its own
//! hold, a second release finds none.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Customers, by Clerk user id.
pub const CUSTOMERS: &str = "merch_customers";
/// Orders, by id.
pub const ORDERS: &str = "merch_orders";
/// Archived orders (moved by the monthly archive), by id.
pub const ARCHIVE: &str = "merch_orders_archive";
/// Stock per SKU.
pub const STOCK: &str = "merch_stock";
/// The catalog, by Printify product id.
pub const PRODUCTS: &str = "merch_products";

/// A customer, as Clerk last described them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// Clerk user id.
    pub id: String,
    /// Primary email, if any.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Clerk's `updated_at` of the version stored (ms): an older delivery
    /// never overwrites a newer one.
    pub clerk_updated_at: i64,
    /// When Clerk deleted the user (ms); the record stays for past orders.
    #[serde(default)]
    pub deleted_at: Option<i64>,
}

/// An order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created by the storefront, awaiting payment.
    Pending,
    /// Paid: to be fulfilled.
    Paid,
    /// Being sent to Printify (a run took charge; Printify's id not known).
    Submitting,
    /// The payment failed.
    PaymentFailed,
    /// Sent to Printify.
    Fulfilling,
    /// Printify refused it after retries (stock released, admins alerted).
    FulfillmentFailed,
    /// Never paid, cleaned up.
    Abandoned,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Printify product id.
    pub product_id: String,
    /// Printify variant id.
    pub variant_id: i64,
    /// The SKU stock is held under.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// An order from the storefront.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Its id (the storefront's).
    pub id: String,
    /// The customer (Clerk id).
    pub customer_id: String,
    /// Where the confirmation goes.
    pub email: String,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// Printify's `address_to` object, as the storefront collected it.
    #[serde(default)]
    pub shipping_address: Value,
    /// Its state.
    pub status: OrderStatus,
    /// The Stripe payment intent.
    #[serde(default)]
    pub payment_intent_id: Option<String>,
    /// Printify's order id, once created.
    #[serde(default)]
    pub printify_order_id: Option<String>,
    /// Why it failed, if it did.
    #[serde(default)]
    pub failure: Option<String>,
    /// When the storefront created it (ms).
    pub created_at: i64,
    /// When it last changed state (ms).
    #[serde(default)]
    pub updated_at: i64,
    /// When the confirmation email went out (ms).
    #[serde(default)]
    pub confirmed_at: Option<i64>,
}

/// Stock of one SKU, with what each unfulfilled order holds of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stock {
    /// The SKU.
    pub sku: String,
    /// Units on hand (print-on-demand items: a cap per period).
    pub on_hand: u32,
    /// Units held, by order id.
    #[serde(default)]
    pub holds: BTreeMap<String, u32>,
    /// Whether Printify can currently produce it (the inventory sync).
    #[serde(default = "yes")]
    pub available: bool,
}

const fn yes() -> bool {
    true
}

impl Stock {
    /// Units neither held nor gone.
    #[must_use]
    pub fn free(&self) -> u32 {
        self.on_hand.saturating_sub(self.holds.values().sum())
    }
}

/// A product variant in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    /// Printify variant id.
    pub id: i64,
    /// SKU.
    #[serde(default)]
    pub sku: String,
    /// Price in cents.
    #[serde(default)]
    pub price: i64,
    /// Offered in the shop.
    #[serde(default)]
    pub is_enabled: bool,
    /// Printify can produce it.
    #[serde(default)]
    pub is_available: bool,
}

/// A product of the catalog, as last synced from Printify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogProduct {
    /// Printify product id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description (HTML, as Printify has it).
    #[serde(default)]
    pub description: String,
    /// Variants.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Shown in the shop.
    pub visible: bool,
    /// When Printify deleted it (ms).
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// When it was last synced (ms).
    pub synced_at: i64,
}
