//! Per-provider configuration, loaded from environment variables.
//!
//! Each provider is configured independently: a Lambda for one provider needs
//! only that provider's variables. Values are validated when loaded (a Clerk
//! secret must be base64, a Discord key 32 hex bytes), so a bad value fails at
//! start-up rather than on the first delivery. Secrets are wrapped in
//! [`Secret`], whose `Debug` never prints them.
//!
//! | provider | variables |
//! |---|---|
//! | Stripe | `STRIPE_WEBHOOK_SECRET` (`whsec_...`, used as-is) |
//! | Clerk | `CLERK_WEBHOOK_SECRET` (`whsec_<base64>`) |
//! | PayPal | `PAYPAL_WEBHOOK_ID` |
//! | Cal.com | `CAL_WEBHOOK_SECRET` |
//! | Shopify | `SHOPIFY_WEBHOOK_SECRET` |
//! | Postmark | `POSTMARK_WEBHOOK_USERNAME`, `POSTMARK_WEBHOOK_PASSWORD` |
//! | Printify | `PRINTIFY_WEBHOOK_SECRET` |
//! | Discord | `DISCORD_PUBLIC_KEY` (hex) |

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;

use crate::error::{Result, WebhookError};
use crate::provider::Provider;

/// Environment variable names.
pub mod env {
    /// Stripe endpoint signing secret (`whsec_...`).
    pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";
    /// Clerk (Svix) signing secret (`whsec_<base64>`).
    pub const CLERK_WEBHOOK_SECRET: &str = "CLERK_WEBHOOK_SECRET";
    /// PayPal webhook id (from the PayPal developer dashboard).
    pub const PAYPAL_WEBHOOK_ID: &str = "PAYPAL_WEBHOOK_ID";
    /// Cal.com webhook secret.
    pub const CAL_WEBHOOK_SECRET: &str = "CAL_WEBHOOK_SECRET";
    /// Shopify app client secret (signs webhooks).
    pub const SHOPIFY_WEBHOOK_SECRET: &str = "SHOPIFY_WEBHOOK_SECRET";
    /// Postmark webhook Basic-auth user name.
    pub const POSTMARK_WEBHOOK_USERNAME: &str = "POSTMARK_WEBHOOK_USERNAME";
    /// Postmark webhook Basic-auth password.
    pub const POSTMARK_WEBHOOK_PASSWORD: &str = "POSTMARK_WEBHOOK_PASSWORD";
    /// Printify webhook secret.
    pub const PRINTIFY_WEBHOOK_SECRET: &str = "PRINTIFY_WEBHOOK_SECRET";
    /// Discord application public key (hex).
    pub const DISCORD_PUBLIC_KEY: &str = "DISCORD_PUBLIC_KEY";
}

/// A secret string; `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes (for MACs and comparisons only; never log them).
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A non-empty secret, or [`WebhookError::InvalidConfig`] naming `var`.
fn non_empty(var: &'static str, value: &str) -> Result<Secret> {
    let value = value.trim();
    if value.is_empty() {
        return Err(WebhookError::InvalidConfig {
            var,
            reason: "is empty".into(),
        });
    }
    Ok(Secret::new(value))
}

/// Stripe: the endpoint's signing secret, used as the HMAC key as-is.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub(crate) secret: Secret,
}

impl StripeConfig {
    /// From the `whsec_...` signing secret.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if it is empty.
    pub fn new(secret: &str) -> Result<Self> {
        Ok(Self {
            secret: non_empty(env::STRIPE_WEBHOOK_SECRET, secret)?,
        })
    }
}

/// Clerk (Svix / Standard Webhooks): the decoded HMAC key.
#[derive(Clone)]
pub struct ClerkConfig {
    pub(crate) key: Vec<u8>,
}

impl ClerkConfig {
    /// From the `whsec_<base64>` secret (the prefix is optional).
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if the part after `whsec_` is not
    /// non-empty base64.
    pub fn new(secret: &str) -> Result<Self> {
        let secret = secret.trim();
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::InvalidConfig {
                var: env::CLERK_WEBHOOK_SECRET,
                reason: "the part after `whsec_` is not base64".into(),
            })?;
        if key.is_empty() {
            return Err(WebhookError::InvalidConfig {
                var: env::CLERK_WEBHOOK_SECRET,
                reason: "is empty".into(),
            });
        }
        Ok(Self { key })
    }
}

impl fmt::Debug for ClerkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClerkConfig { key: *** }")
    }
}

/// PayPal: the webhook id the signature covers.
#[derive(Debug, Clone)]
pub struct PaypalConfig {
    pub(crate) webhook_id: String,
}

impl PaypalConfig {
    /// From the webhook id shown in the PayPal dashboard.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if it is empty.
    pub fn new(webhook_id: &str) -> Result<Self> {
        let webhook_id = webhook_id.trim();
        if webhook_id.is_empty() {
            return Err(WebhookError::InvalidConfig {
                var: env::PAYPAL_WEBHOOK_ID,
                reason: "is empty".into(),
            });
        }
        Ok(Self {
            webhook_id: webhook_id.to_owned(),
        })
    }
}

/// Cal.com: the webhook secret.
#[derive(Debug, Clone)]
pub struct CalConfig {
    pub(crate) secret: Secret,
}

impl CalConfig {
    /// From the secret set on the Cal.com webhook.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if it is empty or Cal.com's
    /// `no-secret-provided` placeholder.
    pub fn new(secret: &str) -> Result<Self> {
        let secret = non_empty(env::CAL_WEBHOOK_SECRET, secret)?;
        if secret.expose() == crate::providers::cal::NO_SECRET_PROVIDED.as_bytes() {
            return Err(WebhookError::InvalidConfig {
                var: env::CAL_WEBHOOK_SECRET,
                reason: "is Cal.com's `no-secret-provided` placeholder".into(),
            });
        }
        Ok(Self { secret })
    }
}

/// Shopify: the app's client secret.
#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    pub(crate) secret: Secret,
}

impl ShopifyConfig {
    /// From the app's client secret.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if it is empty.
    pub fn new(secret: &str) -> Result<Self> {
        Ok(Self {
            secret: non_empty(env::SHOPIFY_WEBHOOK_SECRET, secret)?,
        })
    }
}

/// Postmark: the Basic-auth credentials put in the webhook URL.
#[derive(Debug, Clone)]
pub struct PostmarkConfig {
    pub(crate) username: Secret,
    pub(crate) password: Secret,
}

impl PostmarkConfig {
    /// From the user name and password.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if either is empty.
    pub fn new(username: &str, password: &str) -> Result<Self> {
        Ok(Self {
            username: non_empty(env::POSTMARK_WEBHOOK_USERNAME, username)?,
            password: non_empty(env::POSTMARK_WEBHOOK_PASSWORD, password)?,
        })
    }
}

/// Printify: the webhook secret.
#[derive(Debug, Clone)]
pub struct PrintifyConfig {
    pub(crate) secret: Secret,
}

impl PrintifyConfig {
    /// From the secret given when the webhook was created.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] if it is empty.
    pub fn new(secret: &str) -> Result<Self> {
        Ok(Self {
            secret: non_empty(env::PRINTIFY_WEBHOOK_SECRET, secret)?,
        })
    }
}

/// Discord: the application's Ed25519 public key.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub(crate) public_key: VerifyingKey,
}

impl DiscordConfig {
    /// From the hex public key shown in the Discord developer portal.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] unless it is 32 hex-encoded bytes
    /// forming a valid Ed25519 point.
    pub fn new(public_key_hex: &str) -> Result<Self> {
        let invalid = |reason: &str| WebhookError::InvalidConfig {
            var: env::DISCORD_PUBLIC_KEY,
            reason: reason.into(),
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(public_key_hex.trim(), &mut bytes)
            .map_err(|_| invalid("must be 64 hex characters"))?;
        let public_key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| invalid("is not an Ed25519 public key"))?;
        Ok(Self { public_key })
    }
}

/// The error for one of a pair of variables set without the other.
fn half_set(missing: &'static str, present: &str) -> WebhookError {
    WebhookError::InvalidConfig {
        var: missing,
        reason: format!("is not set but {present} is"),
    }
}

/// Configuration for every provider; `None` means "not configured".
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    /// Stripe.
    pub stripe: Option<StripeConfig>,
    /// Clerk.
    pub clerk: Option<ClerkConfig>,
    /// PayPal.
    pub paypal: Option<PaypalConfig>,
    /// Cal.com.
    pub cal: Option<CalConfig>,
    /// Shopify.
    pub shopify: Option<ShopifyConfig>,
    /// Postmark.
    pub postmark: Option<PostmarkConfig>,
    /// Printify.
    pub printify: Option<PrintifyConfig>,
    /// Discord.
    pub discord: Option<DiscordConfig>,
}

impl WebhookConfig {
    /// Loads every provider whose variables are set (empty counts as unset).
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] naming a variable whose value is unusable.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`], reading variables through `lookup`.
    ///
    /// # Errors
    /// [`WebhookError::InvalidConfig`] naming a variable whose value is unusable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let postmark = match (
            var(env::POSTMARK_WEBHOOK_USERNAME),
            var(env::POSTMARK_WEBHOOK_PASSWORD),
        ) {
            (Some(user), Some(password)) => Some(PostmarkConfig::new(&user, &password)?),
            (Some(_), None) => {
                return Err(half_set(
                    env::POSTMARK_WEBHOOK_PASSWORD,
                    env::POSTMARK_WEBHOOK_USERNAME,
                ));
            }
            (None, Some(_)) => {
                return Err(half_set(
                    env::POSTMARK_WEBHOOK_USERNAME,
                    env::POSTMARK_WEBHOOK_PASSWORD,
                ));
            }
            (None, None) => None,
        };
        Ok(Self {
            stripe: var(env::STRIPE_WEBHOOK_SECRET)
                .map(|v| StripeConfig::new(&v))
                .transpose()?,
            clerk: var(env::CLERK_WEBHOOK_SECRET)
                .map(|v| ClerkConfig::new(&v))
                .transpose()?,
            paypal: var(env::PAYPAL_WEBHOOK_ID)
                .map(|v| PaypalConfig::new(&v))
                .transpose()?,
            cal: var(env::CAL_WEBHOOK_SECRET)
                .map(|v| CalConfig::new(&v))
                .transpose()?,
            shopify: var(env::SHOPIFY_WEBHOOK_SECRET)
                .map(|v| ShopifyConfig::new(&v))
                .transpose()?,
            postmark,
            printify: var(env::PRINTIFY_WEBHOOK_SECRET)
                .map(|v| PrintifyConfig::new(&v))
                .transpose()?,
            discord: var(env::DISCORD_PUBLIC_KEY)
                .map(|v| DiscordConfig::new(&v))
                .transpose()?,
        })
    }

    /// The environment variables a provider needs.
    #[must_use]
    pub fn env_vars(provider: Provider) -> &'static [&'static str] {
        match provider {
            Provider::Stripe => &[env::STRIPE_WEBHOOK_SECRET],
            Provider::Clerk => &[env::CLERK_WEBHOOK_SECRET],
            Provider::Paypal => &[env::PAYPAL_WEBHOOK_ID],
            Provider::Cal => &[env::CAL_WEBHOOK_SECRET],
            Provider::Shopify => &[env::SHOPIFY_WEBHOOK_SECRET],
            Provider::Postmark => &[
                env::POSTMARK_WEBHOOK_USERNAME,
                env::POSTMARK_WEBHOOK_PASSWORD,
            ],
            Provider::Printify => &[env::PRINTIFY_WEBHOOK_SECRET],
            Provider::Discord => &[env::DISCORD_PUBLIC_KEY],
        }
    }

    /// Whether `provider` is configured.
    #[must_use]
    pub fn is_configured(&self, provider: Provider) -> bool {
        self.require(provider).is_ok()
    }

    /// Checks that `provider` is configured (call at start-up for the
    /// providers a deployment serves).
    ///
    /// # Errors
    /// [`WebhookError::NotConfigured`] naming the missing variable.
    pub fn require(&self, provider: Provider) -> Result<()> {
        let configured = match provider {
            Provider::Stripe => self.stripe.is_some(),
            Provider::Clerk => self.clerk.is_some(),
            Provider::Paypal => self.paypal.is_some(),
            Provider::Cal => self.cal.is_some(),
            Provider::Shopify => self.shopify.is_some(),
            Provider::Postmark => self.postmark.is_some(),
            Provider::Printify => self.printify.is_some(),
            Provider::Discord => self.discord.is_some(),
        };
        if configured {
            Ok(())
        } else {
            Err(not_configured(provider))
        }
    }
}

/// The error for a provider asked for but not configured, naming its variable(s).
pub(crate) fn not_configured(provider: Provider) -> WebhookError {
    let var = match provider {
        Provider::Postmark => "POSTMARK_WEBHOOK_USERNAME and POSTMARK_WEBHOOK_PASSWORD",
        other => WebhookConfig::env_vars(other)
            .first()
            .copied()
            .unwrap_or("its secret"),
    };
    WebhookError::NotConfigured { provider, var }
}
