//! The providers this crate receives webhooks from, and how a route names them.
//!
//! The endpoint for each is `POST /webhooks/<provider>`, where `<provider>` is
//! [`Provider::as_str`]; event names start with the same word (`stripe/...`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Result, WebhookError};

/// A webhook provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Stripe (`Stripe-Signature`, HMAC-SHA256).
    Stripe,
    /// Clerk via Svix / Standard Webhooks.
    Clerk,
    /// PayPal (RSA-SHA256 over a CRC32 of the body, certificate from PayPal).
    Paypal,
    /// Cal.com (`X-Cal-Signature-256`).
    Cal,
    /// Shopify (`X-Shopify-Hmac-Sha256`).
    Shopify,
    /// Postmark (HTTP Basic credentials).
    Postmark,
    /// Printify (`X-Pfy-Signature`).
    Printify,
    /// Discord interactions (Ed25519).
    Discord,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Self; 8] = [
        Self::Stripe,
        Self::Clerk,
        Self::Paypal,
        Self::Cal,
        Self::Shopify,
        Self::Postmark,
        Self::Printify,
        Self::Discord,
    ];

    /// The route segment and event-name prefix (`stripe`, `cal`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Clerk => "clerk",
            Self::Paypal => "paypal",
            Self::Cal => "cal",
            Self::Shopify => "shopify",
            Self::Postmark => "postmark",
            Self::Printify => "printify",
            Self::Discord => "discord",
        }
    }

    /// The provider a route names: `"stripe"`, `"/webhooks/stripe"` or
    /// `"/webhooks/stripe/"` (case-insensitive; `calcom`/`cal.com` mean `cal`).
    ///
    /// # Errors
    /// [`WebhookError::UnknownProvider`] for anything else.
    pub fn from_path(path: &str) -> Result<Self> {
        let trimmed = path.trim().trim_matches('/');
        let segment = trimmed.strip_prefix("webhooks/").unwrap_or(trimmed);
        let provider = match segment.to_ascii_lowercase().as_str() {
            "stripe" => Self::Stripe,
            "clerk" => Self::Clerk,
            "paypal" => Self::Paypal,
            "cal" | "calcom" | "cal.com" => Self::Cal,
            "shopify" => Self::Shopify,
            "postmark" => Self::Postmark,
            "printify" => Self::Printify,
            "discord" => Self::Discord,
            _ => return Err(WebhookError::UnknownProvider(truncate(segment, 64))),
        };
        Ok(provider)
    }

    /// The endpoint path, `/webhooks/<provider>`.
    #[must_use]
    pub fn path(self) -> String {
        format!("/webhooks/{}", self.as_str())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = WebhookError;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_path(s)
    }
}

/// At most `max` characters of `s` (error messages echo caller input).
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_round_trips_through_its_path() {
        for provider in Provider::ALL {
            assert_eq!(Provider::from_path(provider.as_str()).unwrap(), provider);
            assert_eq!(Provider::from_path(&provider.path()).unwrap(), provider);
        }
    }

    #[test]
    fn paths_are_case_insensitive_and_cal_has_aliases() {
        assert_eq!(
            Provider::from_path("/webhooks/Stripe/").unwrap(),
            Provider::Stripe
        );
        assert_eq!(Provider::from_path("cal.com").unwrap(), Provider::Cal);
        assert_eq!("calcom".parse::<Provider>().unwrap(), Provider::Cal);
    }

    #[test]
    fn unknown_provider_is_a_404() {
        let err = Provider::from_path("/webhooks/github").unwrap_err();
        assert_eq!(err.status(), 404);
        assert!(err.to_string().contains("github"), "{err}");
    }
}
