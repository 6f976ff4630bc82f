//! Stripe: refunds, Checkout Sessions and Connect transfers (creator payouts).
//!
//! Requests are form-encoded with the secret key as a Bearer token. Calls that
//! move money take an idempotency key (pass `step.idempotency_key()`), sent as
//! `Idempotency-Key`, so a step re-run before its checkpoint never refunds twice.

use std::collections::BTreeMap;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::error::{ClientError, Result};
use crate::http::{Api, Credential, HttpClient};

/// An idempotency key as a header value; blank or invalid is an argument error.
fn idempotency_header(op: &'static str, key: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(key.trim())
        .ok()
        .filter(|key| !key.is_empty())
        .ok_or_else(|| {
            ClientError::invalid_argument(
                "stripe",
                op,
                "the idempotency key is empty or not a valid header value",
            )
        })
}

/// Stripe's API.
#[derive(Clone, Debug)]
pub struct StripeClient {
    api: Api,
}

/// Why a refund is issued (Stripe's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// `duplicate`
    Duplicate,
    /// `fraudulent`
    Fraudulent,
    /// `requested_by_customer`
    RequestedByCustomer,
}

impl RefundReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Fraudulent => "fraudulent",
            Self::RequestedByCustomer => "requested_by_customer",
        }
    }
}

/// A refund, as Stripe returns it (the fields the workflows use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refund {
    /// `re_...`
    pub id: String,
    /// Amount refunded, in the currency's smallest unit.
    pub amount: i64,
    /// Three-letter ISO currency code, lowercase.
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// The refunded payment intent.
    #[serde(default)]
    pub payment_intent: Option<String>,
    /// The reason given, if any.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A transfer to a connected account (Stripe Connect), as Stripe returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Transfer {
    /// `tr_...`
    pub id: String,
    /// Amount, in the currency's smallest unit.
    pub amount: i64,
    /// Three-letter ISO currency code, lowercase.
    pub currency: String,
    /// The connected account (`acct_...`).
    pub destination: String,
    /// The transfer group given, if any.
    #[serde(default)]
    pub transfer_group: Option<String>,
}

/// A transfer to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer<'a> {
    /// Amount in the currency's smallest unit (above zero).
    pub amount: i64,
    /// Three-letter ISO currency code.
    pub currency: &'a str,
    /// The connected account (`acct_...`).
    pub destination: &'a str,
    /// Groups related transfers (the payout request id).
    pub transfer_group: Option<&'a str>,
    /// A note shown in the dashboard.
    pub description: Option<&'a str>,
}

/// A Checkout Session (the fields the workflows use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    /// `cs_...`
    pub id: String,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// The payment intent (`pi_...`) once there is one.
    #[serde(default)]
    pub payment_intent: Option<String>,
    /// Total in the currency's smallest unit.
    #[serde(default)]
    pub amount_total: Option<i64>,
    /// Three-letter ISO currency code, lowercase.
    #[serde(default)]
    pub currency: Option<String>,
    /// The customer id (`cus_...`), if any.
    #[serde(default)]
    pub customer: Option<String>,
    /// The `client_reference_id` given when the session was created.
    #[serde(default)]
    pub client_reference_id: Option<String>,
    /// The customer's email and name as collected at checkout.
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
    /// The session's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Who paid, as collected at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CustomerDetails {
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Full name.
    #[serde(default)]
    pub name: Option<String>,
}

impl StripeClient {
    /// Default base URL.
    pub const DEFAULT_BASE: &'static str = "https://api.stripe.com";
    /// Secret key (`sk_...` or a restricted `rk_...`). Required.
    pub const API_KEY_VAR: &'static str = "STRIPE_API_KEY";
    /// Base URL override. Optional.
    pub const BASE_VAR: &'static str = "STRIPE_API_BASE";

    crate::http::keyed_client!("stripe", API_KEY_VAR);

    fn build(http: &HttpClient, api_key: &str, base: Url) -> Result<Self> {
        let credential = Credential::new(Self::API_KEY_VAR, AUTHORIZATION, "Bearer ", api_key)?;
        Ok(Self {
            api: Api::new(http, "stripe", base, Some(credential)),
        })
    }

    /// Refunds a payment intent, all of it (`amount: None`) or part, once per
    /// `idempotency_key` (`POST /v1/refunds`).
    ///
    /// # Errors
    /// [`ClientError`]; a refund Stripe refuses (already refunded, amount too
    /// large) is a 400 and not retried.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        amount: Option<i64>,
        reason: Option<RefundReason>,
        idempotency_key: &str,
    ) -> Result<Refund> {
        const OP: &str = "create_refund";
        let idempotency_key = idempotency_header(OP, idempotency_key)?;
        let mut form = vec![("payment_intent", payment_intent.to_owned())];
        if let Some(amount) = amount {
            form.push(("amount", amount.to_string()));
        }
        if let Some(reason) = reason {
            form.push(("reason", reason.as_str().to_owned()));
        }
        let url = self.api.url(OP, &["v1", "refunds"])?;
        let req = self
            .api
            .request(Method::POST, url)
            .header("Idempotency-Key", idempotency_key)
            .form(&form);
        self.api.send_json(OP, req).await
    }

    /// Moves money to a connected account, once per `idempotency_key`
    /// (`POST /v1/transfers`): a retry after a timeout with the same key gets
    /// the first transfer back instead of paying again (Stripe keeps keys for
    /// 24 hours).
    ///
    /// # Errors
    /// [`ClientError`]; a transfer Stripe refuses (insufficient balance, an
    /// account that cannot receive) is a 400 and not retried.
    pub async fn create_transfer(
        &self,
        transfer: &NewTransfer<'_>,
        idempotency_key: &str,
    ) -> Result<Transfer> {
        const OP: &str = "create_transfer";
        let idempotency_key = idempotency_header(OP, idempotency_key)?;
        if transfer.amount <= 0 {
            return Err(ClientError::invalid_argument(
                "stripe",
                OP,
                "a transfer amount is above zero",
            ));
        }
        let mut form = vec![
            ("amount", transfer.amount.to_string()),
            ("currency", transfer.currency.to_ascii_lowercase()),
            ("destination", transfer.destination.to_owned()),
        ];
        if let Some(group) = transfer.transfer_group {
            form.push(("transfer_group", group.to_owned()));
        }
        if let Some(description) = transfer.description {
            form.push(("description", description.to_owned()));
        }
        let url = self.api.url(OP, &["v1", "transfers"])?;
        let req = self
            .api
            .request(Method::POST, url)
            .header("Idempotency-Key", idempotency_key)
            .form(&form);
        self.api.send_json(OP, req).await
    }

    /// The transfers of a transfer group (`GET /v1/transfers`), newest
    /// first: how a payout finds the transfer an earlier attempt made, even
    /// after Stripe forgot its idempotency key.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn transfers_in_group(&self, transfer_group: &str) -> Result<Vec<Transfer>> {
        const OP: &str = "list_transfers";
        #[derive(Deserialize)]
        struct Page {
            data: Vec<Transfer>,
        }
        let mut url = self.api.url(OP, &["v1", "transfers"])?;
        url.query_pairs_mut()
            .append_pair("transfer_group", transfer_group)
            .append_pair("limit", "10");
        let page: Page = self
            .api
            .send_json(OP, self.api.request(Method::GET, url))
            .await?;
        Ok(page.data)
    }

    /// Fetches a Checkout Session (`GET /v1/checkout/sessions/{id}`).
    ///
    /// # Errors
    /// [`ClientError`]; an unknown id is a 404 and not retried.
    pub async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSession> {
        const OP: &str = "retrieve_checkout_session";
        let url = self.api.url(OP, &["v1", "checkout", "sessions", id])?;
        self.api
            .send_json(OP, self.api.request(Method::GET, url))
            .await
    }
}
