//! The commerce platform's tenants: Shopify shops, each with its own
//! credentials, read from `COMMERCE_TENANTS` (a JSON array):
//!
//! ```json
//! [{"id": "acme", "name": "Acme", "shopDomain": "acme.myshopify.com",
//!   "shopifyToken": "shpat_...", "emailFrom": "Acme <reviews@acme.example>",
//!   "reviewUrl": "https://acme.example/review",
//!   "metaPixelId": "...", "metaAccessToken": "...",
//!   "ga4MeasurementId": "G-...", "ga4ApiSecret": "...",
//!   "webhookUrl": "https://ops.acme.example/hooks", "webhookSecret": "..."}]
//! ```
//!
//! `id`, `shopDomain` and `shopifyToken` are required; the ads, analytics
//! and webhook pairs are optional (their calls are skipped when unset);
//! `active: false` keeps a tenant's records but stops its crons. Secrets
//! never appear in `Debug`.

use serde::{Deserialize, Serialize};

/// One tenant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// Slug, the key of every record of the tenant.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `acme.myshopify.com`: the webhook's `X-Shopify-Shop-Domain`.
    pub shop_domain: String,
    /// Admin API access token.
    pub shopify_token: String,
    /// Sender of the tenant's emails (default `EMAIL_FROM`).
    #[serde(default)]
    pub email_from: Option<String>,
    /// Where review emails link (`?order=<id>` is appended).
    #[serde(default)]
    pub review_url: Option<String>,
    /// Meta pixel.
    #[serde(default)]
    pub meta_pixel_id: Option<String>,
    /// Meta Conversions API token.
    #[serde(default)]
    pub meta_access_token: Option<String>,
    /// GA4 stream.
    #[serde(default)]
    pub ga4_measurement_id: Option<String>,
    /// GA4 Measurement Protocol secret.
    #[serde(default)]
    pub ga4_api_secret: Option<String>,
    /// The tenant's endpoint for outbound webhooks.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Signs outbound webhooks.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Inactive tenants are skipped by the crons.
    #[serde(default = "yes")]
    pub active: bool,
}

const fn yes() -> bool {
    true
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .field("shop_domain", &self.shop_domain)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// What to call the tenant in emails and notices: its name, else its
    /// shop domain.
    #[must_use]
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.shop_domain
        } else {
            &self.name
        }
    }

    /// The Meta pixel and token, when both are set.
    #[must_use]
    pub fn meta(&self) -> Option<(&str, &str)> {
        Some((
            self.meta_pixel_id.as_deref()?,
            self.meta_access_token.as_deref()?,
        ))
    }

    /// The GA4 stream and secret, when both are set.
    #[must_use]
    pub fn ga4(&self) -> Option<(&str, &str)> {
        Some((
            self.ga4_measurement_id.as_deref()?,
            self.ga4_api_secret.as_deref()?,
        ))
    }

    /// The outbound webhook endpoint and secret, when both are set.
    #[must_use]
    pub fn webhook(&self) -> Option<(&str, &str)> {
        Some((
            self.webhook_url.as_deref()?,
            self.webhook_secret.as_deref()?,
        ))
    }
}

/// Every tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenants(Vec<Tenant>);

impl Tenants {
    /// Parses `COMMERCE_TENANTS`: ids and shop domains unique and non-empty.
    ///
    /// # Errors
    /// Why the value is unusable (never echoing it).
    pub fn parse(json: &str) -> Result<Self, String> {
        let mut tenants: Vec<Tenant> = serde_json::from_str(json).map_err(|e| {
            // serde's message names the field and position, not the value.
            format!("not a JSON array of tenants ({e})")
        })?;
        for t in &mut tenants {
            t.shop_domain = t.shop_domain.trim().to_ascii_lowercase();
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &tenants {
            if t.id.trim().is_empty()
                || t.shop_domain.trim().is_empty()
                || t.shopify_token.trim().is_empty()
            {
                return Err("a tenant has an empty id, shopDomain or shopifyToken".into());
            }
            if !t
                .shop_domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(format!("tenant `{}`: shopDomain is not a host name", t.id));
            }
            if t.id.contains(':') {
                return Err(format!("tenant id `{}` contains `:`", t.id));
            }
            if !seen.insert(t.id.as_str()) || !seen.insert(t.shop_domain.as_str()) {
                return Err(format!("tenant `{}` or its shop is listed twice", t.id));
            }
        }
        Ok(Self(tenants))
    }

    /// From a list (tests).
    #[must_use]
    pub fn new(tenants: Vec<Tenant>) -> Self {
        Self(tenants)
    }

    /// Every tenant, in configuration order.
    #[must_use]
    pub fn all(&self) -> &[Tenant] {
        &self.0
    }

    /// A tenant by id.
    #[must_use]
    pub fn by_id(&self, id: &str) -> Option<&Tenant> {
        self.0.iter().find(|t| t.id == id)
    }

    /// The tenant of a shop domain.
    #[must_use]
    pub fn by_shop(&self, domain: &str) -> Option<&Tenant> {
        self.0
            .iter()
            .find(|t| t.shop_domain.eq_ignore_ascii_case(domain))
    }

    /// Whether none is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_parse_and_keep_secrets_out_of_debug() {
        let tenants = Tenants::parse(
            r#"[{"id": "acme", "shopDomain": "acme.myshopify.com", "shopifyToken": "shpat_secret",
                 "metaPixelId": "1", "metaAccessToken": "EAAB"},
                {"id": "bolt", "shopDomain": "bolt.myshopify.com", "shopifyToken": "shpat_2", "active": false}]"#,
        )
        .unwrap();
        assert_eq!(tenants.by_shop("ACME.myshopify.com").unwrap().id, "acme");
        let upper = Tenants::parse(
            r#"[{"id": "a", "shopDomain": " A.MyShopify.com", "shopifyToken": "t"}]"#,
        )
        .unwrap();
        assert_eq!(upper.all()[0].shop_domain, "a.myshopify.com");
        assert_eq!(tenants.by_id("acme").unwrap().meta(), Some(("1", "EAAB")));
        assert_eq!(tenants.by_id("bolt").unwrap().ga4(), None);
        assert!(!tenants.by_id("bolt").unwrap().active);
        let debug = format!("{tenants:?}");
        assert!(
            !debug.contains("shpat") && !debug.contains("EAAB"),
            "{debug}"
        );
    }

    #[test]
    fn bad_tenants_are_refused_without_echoing_secrets() {
        for bad in [
            r#"{"id": "acme"}"#,
            r#"[{"id": "", "shopDomain": "a.myshopify.com", "shopifyToken": "t"}]"#,
            r#"[{"id": "a:b", "shopDomain": "a.myshopify.com", "shopifyToken": "t"}]"#,
            r#"[{"id": "a", "shopDomain": "a.myshopify.com/x", "shopifyToken": "t"}]"#,
            r#"[{"id": "a", "shopDomain": "A.myshopify.com", "shopifyToken": "t"},
                {"id": "b", "shopDomain": "a.myshopify.com", "shopifyToken": "t"}]"#,
            r#"[{"id": "a", "shopDomain": "a.myshopify.com", "shopifyToken": "t"},
                {"id": "a", "shopDomain": "b.myshopify.com", "shopifyToken": "t"}]"#,
            r#"[{"id": "a", "shopDomain": "a.myshopify.com", "shopifyToken": "shpat_leak", "typo": 1}]"#,
        ] {
            let err = Tenants::parse(bad).unwrap_err();
            assert!(!err.contains("shpat_leak"), "{err}");
        }
    }
}
