//! Printify (API v1): the merch shop's catalog and its print-on-demand
//! orders.
//!
//! The personal access token goes in `Authorization: Bearer`. Reading a
//! product or a page of products is safe to repeat. Creating an order is
//! not (Printify has no idempotency key): the order carries the shop's own
//! order id as `external_id`, and the workflow creates it in a step whose
//! checkpoint records Printify's id, so only a crash between Printify's
//! answer and the checkpoint can repeat it (an operator then cancels the
//! duplicate in Printify, which shows both under one external id).

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::http::{Api, Credential, HttpClient};

/// Printify's API, authenticated with a personal access token.
#[derive(Clone, Debug)]
pub struct PrintifyClient {
    api: Api,
}

/// A product as Printify describes it (the fields the shop keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintifyProduct {
    /// Printify product id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description (HTML).
    #[serde(default)]
    pub description: String,
    /// Shown in the sales channel.
    #[serde(default)]
    pub visible: bool,
    /// Its variants.
    #[serde(default)]
    pub variants: Vec<PrintifyVariant>,
}

/// A variant of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintifyVariant {
    /// Variant id.
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
    /// Printify can produce it now.
    #[serde(default)]
    pub is_available: bool,
}

/// One page of a shop's products.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProductPage {
    /// This page's number (from 1).
    pub current_page: u32,
    /// The last page's number.
    pub last_page: u32,
    /// The products.
    pub data: Vec<PrintifyProduct>,
}

/// One line of a new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineItem {
    /// Printify product id.
    pub product_id: String,
    /// Variant id.
    pub variant_id: i64,
    /// How many.
    pub quantity: u32,
}

/// An order to create.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOrder {
    /// The shop's own order id.
    pub external_id: String,
    /// A label shown in Printify (the order id again, by default).
    pub label: String,
    /// What to print.
    pub line_items: Vec<LineItem>,
    /// 1 = standard shipping.
    pub shipping_method: u32,
    /// Let Printify email the customer the tracking number.
    pub send_shipping_notification: bool,
    /// Printify's `address_to` object.
    pub address_to: Value,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl PrintifyClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://api.printify.com/v1";
    /// Personal access token. Required to call; unset, the client is disabled.
    pub const API_TOKEN_VAR: &'static str = "PRINTIFY_API_TOKEN";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "PRINTIFY_API_BASE";

    crate::http::keyed_client!("printify", API_TOKEN_VAR);

    fn build(http: &HttpClient, token: &str, base: Url) -> Result<Self> {
        let credential = Credential::new(Self::API_TOKEN_VAR, AUTHORIZATION, "Bearer ", token)?;
        Ok(Self {
            api: Api::new(http, "printify", base, Some(credential)),
        })
    }

    /// A product (`GET /shops/{shop}/products/{id}.json`), `None` when
    /// Printify no longer has it (404).
    ///
    /// # Errors
    /// [`crate::ClientError`] other than a 404.
    pub async fn product(
        &self,
        shop_id: &str,
        product_id: &str,
    ) -> Result<Option<PrintifyProduct>> {
        const OP: &str = "product";
        let file = format!("{product_id}.json");
        let url = self.api.url(OP, &["shops", shop_id, "products", &file])?;
        match self
            .api
            .send_json(OP, self.api.request(Method::GET, url))
            .await
        {
            Ok(product) => Ok(Some(product)),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A page of the shop's products (`GET /shops/{shop}/products.json`).
    ///
    /// # Errors
    /// [`crate::ClientError`].
    pub async fn products(&self, shop_id: &str, page: u32, limit: u32) -> Result<ProductPage> {
        const OP: &str = "products";
        let mut url = self.api.url(OP, &["shops", shop_id, "products.json"])?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.to_string());
        self.api
            .send_json(OP, self.api.request(Method::GET, url))
            .await
    }

    /// Creates an order (`POST /shops/{shop}/orders.json`); returns
    /// Printify's order id.
    ///
    /// # Errors
    /// [`crate::ClientError`]; a rejected order (4xx: an unknown variant, a
    /// bad address) is not retried.
    pub async fn create_order(&self, shop_id: &str, order: &NewOrder) -> Result<String> {
        const OP: &str = "create_order";
        let url = self.api.url(OP, &["shops", shop_id, "orders.json"])?;
        let req = self.api.request(Method::POST, url).json(order);
        let created: Created = self.api.send_json(OP, req).await?;
        Ok(created.id)
    }
}
