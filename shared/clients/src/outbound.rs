//! Outbound webhooks: a tenant's own endpoint, told about what happened in
//! its shop (the commerce platform's webhook queue).
//!
//! Each delivery is a JSON `POST` signed like Stripe's: `Hookflow-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the tenant's
//! secret, with `Hookflow-Delivery` (the row id, the same on every attempt,
//! for the receiver's dedupe) and `Hookflow-Topic`. Any 2xx is delivered.

use hmac::{Hmac, Mac};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use sha2::Sha256;

use crate::error::{ClientError, Result};
use crate::http::{Api, HttpClient};

/// Delivers to any endpoint over the shared pool.
#[derive(Clone, Debug)]
pub struct OutboundWebhooks {
    http: HttpClient,
}

/// One delivery.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The endpoint.
    pub url: &'a str,
    /// The signing secret.
    pub secret: &'a str,
    /// Stable across attempts.
    pub id: &'a str,
    /// What happened (`order.synced`, ...).
    pub topic: &'a str,
    /// The JSON body, exactly as signed.
    pub body: &'a str,
    /// Signing time (ms).
    pub now_ms: i64,
}

/// The `Hookflow-Signature` value for a body at `t` (seconds).
#[must_use]
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl OutboundWebhooks {
    /// Over `http`.
    #[must_use]
    pub fn new(http: &HttpClient) -> Self {
        Self { http: http.clone() }
    }

    /// Sends one delivery.
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] for an endpoint that is not an http(s)
    /// URL; otherwise the call's [`ClientError`].
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<()> {
        const OP: &str = "deliver";
        let url = crate::http::base_url("webhookUrl", delivery.url)?;
        let api = Api::new(&self.http, "webhook", url.clone(), None)
            .redacting(vec![delivery.secret.into()]);
        let header = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                ClientError::invalid_argument("webhook", OP, "an id or topic is not a header value")
            })
        };
        let t = delivery.now_ms.div_euclid(1000);
        let req = api
            .request(Method::POST, url)
            .header(CONTENT_TYPE, "application/json")
            .header("hookflow-delivery", header(delivery.id)?)
            .header("hookflow-topic", header(delivery.topic)?)
            .header(
                "hookflow-signature",
                header(&signature(delivery.secret, t, delivery.body))?,
            )
            .body(delivery.body.to_owned());
        api.send(OP, req).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_cover_time_and_body() {
        let a = super::signature("whsec", 1, "{}");
        assert!(a.starts_with("t=1,v1="));
        assert_ne!(a, super::signature("whsec", 2, "{}"));
        assert_ne!(a, super::signature("other", 1, "{}"));
        assert_eq!(a.len(), "t=1,v1=".len() + 64);
    }
}
