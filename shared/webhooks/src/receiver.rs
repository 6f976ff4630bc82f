//! The entry point: [`Receiver::handle`] verifies and normalizes a delivery,
//! hands the events to an [`EventSink`], and says what to answer.
//!
//! Order of checks (so a provider sees the right status): configuration (500),
//! body size (413), signature on the raw bytes (401), body parsing (400),
//! event limits (400/413), then the sink (503 on failure, 200 once accepted).
//! Nothing reaches the sink unless every earlier check passed. Time comes in
//! as `now_ms`; the system clock is never read here.

use hookflow::Event;
use hookflow::event::MAX_EVENT_BYTES;
use serde_json::json;

use crate::config::{WebhookConfig, not_configured};
use crate::delivery::Delivery;
use crate::error::{Result, WebhookError};
use crate::provider::Provider;
use crate::providers::paypal::certs::{CertFetcher, HttpCertFetcher, PaypalCerts};
use crate::providers::{cal, clerk, discord, paypal, postmark, printify, shopify, stripe};
use crate::request::WebhookRequest;
use crate::response::WebhookResponse;
use crate::sink::EventSink;

/// Largest body accepted (1 MiB, [`hookflow::event::MAX_EVENT_BYTES`]);
/// larger deliveries get a 413.
pub const MAX_BODY_BYTES: usize = MAX_EVENT_BYTES;

/// Verifies and normalizes deliveries for every configured provider.
#[derive(Debug)]
pub struct Receiver<F = HttpCertFetcher> {
    config: WebhookConfig,
    paypal_certs: PaypalCerts<F>,
}

impl Receiver<HttpCertFetcher> {
    /// A receiver fetching PayPal certificates over HTTPS from PayPal only.
    ///
    /// # Errors
    /// [`WebhookError::CertFetch`] if the HTTP client cannot be built.
    pub fn new(config: WebhookConfig) -> Result<Self> {
        Ok(Self::with_paypal_certs(
            config,
            PaypalCerts::new(HttpCertFetcher::new()?),
        ))
    }
}

impl<F: CertFetcher> Receiver<F> {
    /// A receiver using the given PayPal certificate store.
    pub fn with_paypal_certs(config: WebhookConfig, paypal_certs: PaypalCerts<F>) -> Self {
        Self {
            config,
            paypal_certs,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// The PayPal certificate store.
    pub fn paypal_certs(&self) -> &PaypalCerts<F> {
        &self.paypal_certs
    }

    /// Verifies and normalizes a delivery without handing it anywhere.
    ///
    /// # Errors
    /// Any [`WebhookError`]; its [`WebhookError::status`] is the answer.
    pub async fn receive(
        &self,
        provider: Provider,
        request: &WebhookRequest,
        now_ms: i64,
    ) -> Result<Delivery> {
        self.config.require(provider)?;
        if request.body.len() > MAX_BODY_BYTES {
            return Err(WebhookError::BodyTooLarge {
                size: request.body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let config = &self.config;
        let missing = || not_configured(provider);
        let delivery = match provider {
            Provider::Stripe => {
                stripe::receive(config.stripe.as_ref().ok_or_else(missing)?, request, now_ms)?
            }
            Provider::Clerk => {
                clerk::receive(config.clerk.as_ref().ok_or_else(missing)?, request, now_ms)?
            }
            Provider::Paypal => {
                let paypal_config = config.paypal.as_ref().ok_or_else(missing)?;
                paypal::receive(paypal_config, &self.paypal_certs, request, now_ms).await?
            }
            Provider::Cal => {
                cal::receive(config.cal.as_ref().ok_or_else(missing)?, request, now_ms)?
            }
            Provider::Shopify => shopify::receive(
                config.shopify.as_ref().ok_or_else(missing)?,
                request,
                now_ms,
            )?,
            Provider::Postmark => postmark::receive(
                config.postmark.as_ref().ok_or_else(missing)?,
                request,
                now_ms,
            )?,
            Provider::Printify => printify::receive(
                config.printify.as_ref().ok_or_else(missing)?,
                request,
                now_ms,
            )?,
            Provider::Discord => discord::receive(
                config.discord.as_ref().ok_or_else(missing)?,
                request,
                now_ms,
            )?,
        };
        for event in &delivery.events {
            check_event(event)?;
        }
        Ok(delivery)
    }

    /// Verifies, normalizes, hands the events to `sink`, and returns the
    /// response: 200 once the sink accepted (duplicates included), 401/400/413
    /// with nothing handed over, 503 when the sink (or a certificate fetch)
    /// fails so the provider retries, 500 when the provider is not configured.
    pub async fn handle<S: EventSink + ?Sized>(
        &self,
        provider: Provider,
        request: &WebhookRequest,
        sink: &S,
        now_ms: i64,
    ) -> WebhookResponse {
        let delivery = match self.receive(provider, request, now_ms).await {
            Ok(delivery) => delivery,
            Err(err) => return reject(provider, &err),
        };
        let ids: Vec<String> = delivery
            .events
            .iter()
            .map(|event| event.id.clone())
            .collect();
        if !delivery.events.is_empty()
            && let Err(source) = sink.ingest(delivery.events).await
        {
            return reject(provider, &WebhookError::Sink(source));
        }
        tracing::info!(%provider, events = ids.len(), "webhook accepted");
        WebhookResponse::ok(
            delivery
                .reply
                .unwrap_or_else(|| json!({ "ok": true, "events": ids })),
        )
    }

    /// [`Self::handle`] for an API Gateway HTTP API (payload 2.0) request
    /// event, as a Lambda receives it; an unusable envelope is a 400.
    pub async fn handle_api_gateway_v2<S: EventSink + ?Sized>(
        &self,
        provider: Provider,
        event: &[u8],
        sink: &S,
        now_ms: i64,
    ) -> WebhookResponse {
        match WebhookRequest::from_api_gateway_v2(event) {
            Ok(request) => self.handle(provider, &request, sink, now_ms).await,
            Err(err) => reject(provider, &err),
        }
    }
}

/// Logs one line for a rejected delivery and builds its response.
fn reject(provider: Provider, err: &WebhookError) -> WebhookResponse {
    let status = err.status();
    if status >= 500 {
        tracing::error!(%provider, status, reason = %err, "webhook not accepted");
    } else {
        tracing::warn!(%provider, status, reason = %err, "webhook rejected");
    }
    WebhookResponse::from_error(err)
}

/// Checks the engine's event rules up front, so a delivery that can never be
/// stored gets a 4xx (not retried) instead of a 5xx from the sink.
fn check_event(event: &Event) -> Result<()> {
    let size = serde_json::to_vec(event)?.len();
    if size > MAX_EVENT_BYTES {
        return Err(WebhookError::EventTooLarge {
            size,
            limit: MAX_EVENT_BYTES,
        });
    }
    event.validate().map_err(WebhookError::InvalidEvent)
}
