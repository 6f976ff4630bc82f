//! Hookflow webhook receivers: provider signature verification and
//! normalization into [`hookflow::Event`]s.
//!
//! A delivery ([`WebhookRequest`]: headers + raw body) for a [`Provider`] is
//! verified on the raw bytes, normalized into events (the provider's JSON
//! payload verbatim as `data`, the provider's id, or a stable derived one, as
//! the dedupe `id`), and handed to an [`EventSink`] by [`Receiver::handle`],
//! which returns the [`WebhookResponse`] to send. Invariants: nothing reaches
//! the sink unless the signature (or credentials) verified; every rejection
//! is a 4xx and every failure on our side a 5xx; secrets and bodies are never
//! logged; time is passed in (`now_ms`), never read from the system clock.
//!
//! Endpoints are `POST /webhooks/<provider>`; see the crate README for env
//! vars, event names and test secrets.

#![warn(missing_docs)]

pub mod config;
pub mod crypto;
pub mod delivery;
pub mod error;
pub mod provider;
pub mod providers;
pub mod receiver;
pub mod request;
pub mod response;
pub mod sink;
#[cfg(feature = "testing")]
pub mod test_secrets;

pub use config::{
    CalConfig, ClerkConfig, DiscordConfig, PaypalConfig, PostmarkConfig, PrintifyConfig, Secret,
    ShopifyConfig, StripeConfig, WebhookConfig,
};
pub use delivery::Delivery;
pub use error::{Result, WebhookError};
pub use provider::Provider;
pub use providers::paypal::certs::{
    AllowedOrigin, CertFetcher, CertKey, FetchError, HttpCertFetcher, PaypalCerts,
    StaticCertFetcher,
};
pub use providers::{cal, clerk, discord, paypal, postmark, printify, shopify, stripe};
pub use receiver::{MAX_BODY_BYTES, Receiver};
pub use request::{ApiGatewayV2Request, WebhookRequest};
pub use response::WebhookResponse;
pub use sink::{EventSink, FailingSink, RecordingSink, SinkError};
