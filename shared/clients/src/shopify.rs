//! Shopify Admin (GraphQL API `2025-04`), one shop at a time: the
//! multi-tenant commerce platform reads each tenant's orders with that
//! tenant's access token.
//!
//! The client holds the connection pool and the base URL pattern (default
//! `https://{shop}/admin/api/2025-04`, overridden with `SHOPIFY_ADMIN_BASE`,
//! which must contain `{shop}`); the shop domain and the token come with each
//! call ([`ShopifyAdmin::shop`]), so one client serves every tenant. The token
//! travels in `X-Shopify-Access-Token` (sensitive, redacted from errors).
//!
//! GraphQL answers 200 even when it fails: errors in the body become
//! [`ClientError::GraphQl`], `THROTTLED` retried after a second (Shopify's
//! bucket refills at 50 points per second), anything else final.

use std::time::Duration;

use hookflow::{NonRetriable, RetryAfter};
use reqwest::header::HeaderName;
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ClientError, Result};
use crate::http::{Api, Credential, Env, HttpClient, optional};

/// The Admin API version the queries are written for.
pub const API_VERSION: &str = "2025-04";

/// Shopify Admin over one pool; [`Self::shop`] binds a shop and its token.
#[derive(Clone, Debug)]
pub struct ShopifyAdmin {
    http: HttpClient,
    base: String,
}

/// One shop's Admin API.
#[derive(Clone, Debug)]
pub struct ShopifyShop {
    api: Api,
}

/// An amount in the shop's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// Decimal string, as Shopify sends it (`"150.00"`).
    pub amount: String,
    /// ISO 4217 code.
    pub currency_code: String,
}

/// Currencies whose minor unit is the major one (ISO 4217 exponent 0).
const ZERO_DECIMAL: [&str; 17] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// Currencies with three decimals (ISO 4217 exponent 3).
const THREE_DECIMAL: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// How many decimals a currency's minor unit has (2 unless listed).
#[must_use]
pub fn currency_exponent(code: &str) -> u32 {
    let code = code.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    }
}

impl Money {
    /// The amount in the currency's minor unit (cents, or yen for JPY: what
    /// Stripe amounts use), rounded half up; `None` if it does not parse.
    #[must_use]
    pub fn minor_units(&self) -> Option<i64> {
        let exponent = currency_exponent(&self.currency_code);
        let text = self.amount.trim();
        let negative = text.starts_with('-');
        let (whole, frac) = text
            .trim_start_matches('-')
            .split_once('.')
            .unwrap_or((text.trim_start_matches('-'), ""));
        let whole: i64 = whole.parse().ok()?;
        // One digit more than the unit, to round.
        let mut digits: String = frac.chars().take(exponent as usize + 1).collect();
        while digits.len() < exponent as usize + 1 {
            digits.push('0');
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let tenths: i64 = digits.parse().ok()?;
        let scale = 10_i64.pow(exponent);
        let units = whole.checked_mul(scale)? + (tenths + 5) / 10;
        Some(if negative { -units } else { units })
    }
}

/// The buyer, when the order has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCustomer {
    /// Customer gid.
    pub id: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// Title.
    pub title: String,
    /// Quantity.
    pub quantity: i64,
    /// SKU.
    #[serde(default)]
    pub sku: Option<String>,
    /// Product gid.
    #[serde(default)]
    pub product_id: Option<String>,
}

/// A fulfillment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fulfillment {
    /// `SUCCESS`, `CANCELLED`, ...
    pub status: String,
    /// `DELIVERED`, `IN_TRANSIT`, ...
    #[serde(default)]
    pub display_status: Option<String>,
    /// When the carrier delivered it (RFC 3339).
    #[serde(default)]
    pub delivered_at: Option<String>,
}

/// An order, with what the commerce platform keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopifyOrder {
    /// Order gid (`gid://shopify/Order/820982911946154508`).
    pub id: String,
    /// The numeric id (the REST id, the webhook body's `id`).
    pub legacy_id: String,
    /// `#1001`.
    pub name: String,
    /// Contact email.
    #[serde(default)]
    pub email: Option<String>,
    /// When it was placed (RFC 3339).
    pub created_at: String,
    /// `PAID`, `REFUNDED`, ...
    #[serde(default)]
    pub financial_status: Option<String>,
    /// Current total (tax and shipping included).
    pub total: Money,
    /// Current subtotal (after discounts, before tax and shipping).
    pub subtotal: Money,
    /// `FULFILLED`, `PARTIALLY_FULFILLED`, `UNFULFILLED`, ...
    #[serde(default)]
    pub fulfillment_status: Option<String>,
    /// When it was cancelled (RFC 3339), if it was.
    #[serde(default)]
    pub cancelled_at: Option<String>,
    /// Discount codes applied.
    #[serde(default)]
    pub discount_codes: Vec<String>,
    /// The buyer.
    #[serde(default)]
    pub customer: Option<OrderCustomer>,
    /// What was bought.
    #[serde(default)]
    pub line_items: Vec<OrderLine>,
    /// Shipments.
    #[serde(default)]
    pub fulfillments: Vec<Fulfillment>,
    /// The checkout's custom attributes (the storefront's `visitorId`, ...).
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
}

impl ShopifyOrder {
    /// When the order was delivered: the latest `deliveredAt` of its
    /// fulfillments, once every line is fulfilled (`FULFILLED`), the order
    /// is not cancelled and every live shipment is delivered.
    #[must_use]
    pub fn delivered_at(&self) -> Option<&str> {
        if self.fulfillment_status.as_deref() != Some("FULFILLED") || self.cancelled_at.is_some() {
            return None;
        }
        let live: Vec<&Fulfillment> = self
            .fulfillments
            .iter()
            .filter(|f| f.status != "CANCELLED")
            .collect();
        if live.is_empty() || live.iter().any(|f| f.delivered_at.is_none()) {
            return None;
        }
        live.iter().filter_map(|f| f.delivered_at.as_deref()).max()
    }

    /// A custom attribute's value.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The order query: only the fields [`ShopifyOrder`] keeps.
pub const ORDER_QUERY: &str = "query Order($id: ID!) { order(id: $id) { id legacyResourceId name email createdAt displayFinancialStatus displayFulfillmentStatus cancelledAt currentTotalPriceSet { shopMoney { amount currencyCode } } currentSubtotalPriceSet { shopMoney { amount currencyCode } } discountCodes customer { id email firstName } customAttributes { key value } lineItems(first: 100) { nodes { title quantity sku product { id } } } fulfillments(first: 20) { status displayStatus deliveredAt } } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlOrder {
    id: String,
    legacy_resource_id: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
    created_at: String,
    #[serde(default)]
    display_financial_status: Option<String>,
    #[serde(default)]
    display_fulfillment_status: Option<String>,
    #[serde(default)]
    cancelled_at: Option<String>,
    current_total_price_set: GqlMoneyBag,
    current_subtotal_price_set: GqlMoneyBag,
    #[serde(default)]
    discount_codes: Vec<String>,
    #[serde(default)]
    customer: Option<OrderCustomer>,
    #[serde(default)]
    custom_attributes: Vec<GqlAttribute>,
    line_items: GqlNodes<GqlLine>,
    #[serde(default)]
    fulfillments: Vec<Fulfillment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlMoneyBag {
    shop_money: Money,
}

#[derive(Deserialize)]
struct GqlAttribute {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct GqlNodes<T> {
    nodes: Vec<T>,
}

#[derive(Deserialize)]
struct GqlLine {
    title: String,
    quantity: i64,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    product: Option<GqlId>,
}

#[derive(Deserialize)]
struct GqlId {
    id: String,
}

impl From<GqlOrder> for ShopifyOrder {
    fn from(o: GqlOrder) -> Self {
        Self {
            id: o.id,
            legacy_id: o.legacy_resource_id,
            name: o.name,
            email: o.email,
            created_at: o.created_at,
            financial_status: o.display_financial_status,
            total: o.current_total_price_set.shop_money,
            subtotal: o.current_subtotal_price_set.shop_money,
            fulfillment_status: o.display_fulfillment_status,
            cancelled_at: o.cancelled_at,
            discount_codes: o.discount_codes,
            customer: o.customer,
            line_items: o
                .line_items
                .nodes
                .into_iter()
                .map(|l| OrderLine {
                    title: l.title,
                    quantity: l.quantity,
                    sku: l.sku.filter(|s| !s.is_empty()),
                    product_id: l.product.map(|p| p.id),
                })
                .collect(),
            fulfillments: o.fulfillments,
            attributes: o
                .custom_attributes
                .into_iter()
                .filter_map(|a| Some((a.key, a.value?)))
                .collect(),
        }
    }
}

impl ShopifyAdmin {
    /// Default base URL pattern.
    pub const DEFAULT_BASE: &'static str = "https://{shop}/admin/api/2025-04";
    /// Base URL pattern override (must contain `{shop}`). Optional.
    pub const BASE_VAR: &'static str = "SHOPIFY_ADMIN_BASE";
    /// Where the access token goes.
    pub const TOKEN_HEADER: &'static str = "x-shopify-access-token";

    /// Over `http`, at the default base.
    #[must_use]
    pub fn new(http: &HttpClient) -> Self {
        Self {
            http: http.clone(),
            base: Self::DEFAULT_BASE.to_owned(),
        }
    }

    /// From configuration: `SHOPIFY_ADMIN_BASE` if set.
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] if the override lacks `{shop}` or is not
    /// an http(s) URL.
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let client = Self::new(http);
        match optional(env, Self::BASE_VAR) {
            Some(base) => client.with_base_url(&base),
            None => Ok(client),
        }
    }

    /// With another base URL pattern (`{shop}` is replaced by the domain).
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] if it lacks `{shop}` or is not a URL.
    pub fn with_base_url(mut self, base: &str) -> Result<Self> {
        if !base.contains("{shop}") {
            return Err(ClientError::InvalidConfig {
                var: Self::BASE_VAR,
                source: "the base URL pattern must contain {shop}".into(),
            });
        }
        crate::http::base_url(
            Self::BASE_VAR,
            &base.replace("{shop}", "shop.myshopify.com"),
        )?;
        self.base = base.trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// One shop's API with its Admin access token.
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for a domain that is not a host name
    /// (letters, digits, `-` and `.`), [`ClientError::MissingConfig`] for an
    /// empty token.
    pub fn shop(&self, domain: &str, token: &str) -> Result<ShopifyShop> {
        let valid = !domain.is_empty()
            && !domain.starts_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid {
            return Err(ClientError::invalid_argument(
                "shopify",
                "shop",
                "the shop domain is not a host name",
            ));
        }
        let base = crate::http::base_url(Self::BASE_VAR, &self.base.replace("{shop}", domain))?;
        let credential = Credential::new(
            "COMMERCE_TENANTS",
            HeaderName::from_static(Self::TOKEN_HEADER),
            "",
            token,
        )?;
        Ok(ShopifyShop {
            api: Api::new(&self.http, "shopify", base, Some(credential)),
        })
    }
}

#[derive(Deserialize)]
struct GqlAnswer<T> {
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

#[derive(Deserialize)]
struct GqlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Value,
}

#[derive(Deserialize)]
struct OrderData {
    order: Option<GqlOrder>,
}

impl ShopifyShop {
    /// The URL of the GraphQL endpoint.
    fn graphql_url(&self, op: &'static str) -> Result<Url> {
        self.api.url(op, &["graphql.json"])
    }

    async fn query<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        query: &str,
        variables: Value,
    ) -> Result<Option<T>> {
        let url = self.graphql_url(op)?;
        let req = self
            .api
            .request(Method::POST, url)
            .json(&json!({"query": query, "variables": variables}));
        let answer: GqlAnswer<T> = self.api.send_json(op, req).await?;
        if let Some(first) = answer.errors.into_iter().next() {
            let code = first.extensions["code"]
                .as_str()
                .unwrap_or("ERROR")
                .to_owned();
            let verdict: Box<dyn std::error::Error + Send + Sync> = if code == "THROTTLED" {
                Box::new(RetryAfter::new(Duration::from_secs(1), "shopify throttled"))
            } else {
                Box::new(NonRetriable::new("shopify rejected the query"))
            };
            let message: String = first.message.chars().take(200).collect();
            return Err(ClientError::GraphQl {
                api: "shopify",
                operation: op,
                code,
                message,
                verdict,
            });
        }
        Ok(answer.data)
    }

    /// An order by its numeric id or gid; `None` when the shop has no such
    /// order.
    ///
    /// # Errors
    /// [`ClientError`]: transport and 5xx retried, throttling retried after a
    /// second, a bad token (401) or another GraphQL error final.
    pub async fn order(&self, id: &str) -> Result<Option<ShopifyOrder>> {
        const OP: &str = "order";
        let gid = if id.starts_with("gid://") {
            id.to_owned()
        } else {
            format!("gid://shopify/Order/{id}")
        };
        let data: Option<OrderData> = self.query(OP, ORDER_QUERY, json!({"id": gid})).await?;
        Ok(data.and_then(|d| d.order).map(ShopifyOrder::from))
    }
}

/// A one-use percentage code for every product, for one customer's next
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDiscountCode<'a> {
    /// Shown in the admin.
    pub title: &'a str,
    /// What the shopper types.
    pub code: &'a str,
    /// Off every product, as a fraction (`0.1` = 10%).
    pub percentage: f64,
    /// From when (RFC 3339).
    pub starts_at: &'a str,
    /// Until when (RFC 3339).
    pub ends_at: Option<&'a str>,
}

/// The discount mutation.
pub const DISCOUNT_MUTATION: &str = "mutation Code($d: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $d) { codeDiscountNode { id } userErrors { field code message } } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiscountData {
    discount_code_basic_create: Option<DiscountPayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiscountPayload {
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct UserError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

impl ShopifyShop {
    /// Creates a discount code; `false` when the shop already has that code
    /// (a retried step: Shopify answers `TAKEN`).
    ///
    /// # Errors
    /// [`ClientError`]; any other refusal ([`ClientError::GraphQl`] with the
    /// user error's code) is final.
    pub async fn create_discount_code(&self, discount: &NewDiscountCode<'_>) -> Result<bool> {
        const OP: &str = "create_discount_code";
        let variables = json!({"d": {
            "title": discount.title,
            "code": discount.code,
            "startsAt": discount.starts_at,
            "endsAt": discount.ends_at,
            "usageLimit": 1,
            "appliesOncePerCustomer": true,
            "customerSelection": {"all": true},
            "customerGets": {"value": {"percentage": discount.percentage}, "items": {"all": true}},
        }});
        let data: Option<DiscountData> = self.query(OP, DISCOUNT_MUTATION, variables).await?;
        let errors = data
            .and_then(|d| d.discount_code_basic_create)
            .map(|p| p.user_errors)
            .unwrap_or_default();
        match errors.into_iter().next() {
            None => Ok(true),
            Some(e) if e.code.as_deref() == Some("TAKEN") => Ok(false),
            Some(e) => Err(ClientError::GraphQl {
                api: "shopify",
                operation: OP,
                code: e.code.unwrap_or_else(|| "USER_ERROR".into()),
                message: e.message.chars().take(200).collect(),
                verdict: Box::new(NonRetriable::new("shopify refused the discount")),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: &str) -> Money {
        Money {
            amount: amount.into(),
            currency_code: "USD".into(),
        }
    }

    #[test]
    fn amounts_become_minor_units_of_their_currency() {
        assert_eq!(money("150.00").minor_units(), Some(15_000));
        assert_eq!(money("19.9").minor_units(), Some(1_990));
        assert_eq!(money("7").minor_units(), Some(700));
        assert_eq!(money("0.015").minor_units(), Some(2));
        assert_eq!(money("-3.50").minor_units(), Some(-350));
        assert_eq!(money("abc").minor_units(), None);
        assert_eq!(money("1.x").minor_units(), None);
        let yen = Money {
            amount: "2500.0".into(),
            currency_code: "JPY".into(),
        };
        assert_eq!(yen.minor_units(), Some(2_500));
        let dinar = Money {
            amount: "1.2345".into(),
            currency_code: "KWD".into(),
        };
        assert_eq!(dinar.minor_units(), Some(1_235));
    }

    #[test]
    fn an_order_is_delivered_when_every_live_fulfillment_is() {
        let f = |status: &str, at: Option<&str>| Fulfillment {
            status: status.into(),
            display_status: None,
            delivered_at: at.map(str::to_owned),
        };
        let mut order = ShopifyOrder {
            id: "gid://shopify/Order/1".into(),
            legacy_id: "1".into(),
            name: "#1".into(),
            email: None,
            created_at: "2025-06-02T10:18:30Z".into(),
            financial_status: None,
            total: money("1.00"),
            subtotal: money("1.00"),
            fulfillment_status: Some("FULFILLED".into()),
            cancelled_at: None,
            discount_codes: vec![],
            customer: None,
            line_items: vec![],
            fulfillments: vec![],
            attributes: vec![],
        };
        assert_eq!(order.delivered_at(), None);
        order.fulfillments = vec![
            f("SUCCESS", Some("2025-06-05T10:00:00Z")),
            f("SUCCESS", None),
            f("CANCELLED", None),
        ];
        assert_eq!(order.delivered_at(), None);
        order.fulfillments[1].delivered_at = Some("2025-06-06T09:00:00Z".into());
        assert_eq!(order.delivered_at(), Some("2025-06-06T09:00:00Z"));
        // Lines still to ship, or a cancelled order: not delivered.
        order.fulfillment_status = Some("PARTIALLY_FULFILLED".into());
        assert_eq!(order.delivered_at(), None);
        order.fulfillment_status = Some("FULFILLED".into());
        order.cancelled_at = Some("2025-06-07T00:00:00Z".into());
        assert_eq!(order.delivered_at(), None);
    }

    #[test]
    fn a_shop_must_be_a_host_name() {
        let admin = ShopifyAdmin::new(&HttpClient::new().unwrap());
        assert!(admin.shop("acme.myshopify.com", "shpat_x").is_ok());
        for bad in [
            "",
            "acme/../x",
            "a b",
            ".x",
            "acme.myshopify.com/evil",
            "ACME",
        ] {
            assert!(admin.shop(bad, "shpat_x").is_err(), "{bad}");
        }
        assert!(admin.shop("acme.myshopify.com", " ").is_err());
        assert!(admin.clone().with_base_url("http://127.0.0.1:1/x").is_err());
    }
}
