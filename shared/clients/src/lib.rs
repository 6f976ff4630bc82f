//! Typed clients for the external APIs the reference workflows call: Stripe,
//! Cal.com, Clerk, Discord, PostHog, Slack, Postmark and Resend email, and
//! Google Calendar.
//!
//! Build them once per process (per Lambda container) over one shared
//! [`HttpClient`] and clone them freely: a clone shares the connection pool.
//! Each has a configurable base URL (so tests point it at
//! [`testing::TestServer`]) and reads its credential from configuration
//! (Google Calendar: a service account's key, traded for a cached access token).
//!
//! Errors are [`ClientError`]s whose source chain tells the engine what to do
//! (see [`error`]): return them from a step with `?` and a 5xx or timeout is
//! retried with backoff, a 429 waits for its `Retry-After`, and any other 4xx
//! (a declined card, a slot already taken) fails the step at once.
//!
//! Invariant: no client logs a credential or a request or response body.

pub mod cal;
pub mod clerk;
pub mod discord;
pub mod email;
pub mod error;
pub mod ga4;
pub mod google_calendar;
mod http;
pub mod meta;
pub mod outbound;
pub mod posthog;
pub mod printify;
pub mod resend;
pub mod services;
pub mod shopify;
pub mod slack;
pub mod stripe;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use cal::{Attendee, Booking, CalClient, CreateBooking};
pub use clerk::{ClerkClient, User};
pub use discord::{DiscordClient, DiscordUser, GuildMember, Message};
pub use email::{Email, EmailClient};
pub use error::{ClientError, Result, StatusError};
pub use ga4::Ga4Client;
pub use google_calendar::{
    CalendarEvent, EventDateTime, EventPatch, GoogleCalendarClient, NewEvent,
};
pub use http::{Env, HttpClient, process_env};
pub use meta::MetaConversions;
pub use outbound::OutboundWebhooks;
pub use posthog::PostHogClient;
pub use printify::{LineItem, NewOrder, PrintifyClient, PrintifyProduct, PrintifyVariant};
pub use resend::{ResendClient, ResendEmail};
pub use services::{Services, SettingError, Settings};
pub use shopify::{ShopifyAdmin, ShopifyOrder, ShopifyShop};
pub use slack::SlackClient;
pub use stripe::{
    CheckoutSession, CustomerDetails, NewTransfer, Refund, RefundReason, StripeClient, Transfer,
};
pub use tenants::{Tenant, Tenants};

/// Every client the reference workflows use, sharing one connection pool.
#[derive(Clone, Debug)]
pub struct Clients {
    /// Refunds and Checkout Sessions.
    pub stripe: StripeClient,
    /// Bookings.
    pub cal: CalClient,
    /// Users and their public metadata.
    pub clerk: ClerkClient,
    /// Roles and messages.
    pub discord: DiscordClient,
    /// Analytics (disabled without `POSTHOG_API_KEY`).
    pub posthog: PostHogClient,
    /// Admin alerts (disabled without `SLACK_WEBHOOK_URL`).
    pub slack: SlackClient,
    /// Transactional email.
    pub email: EmailClient,
    /// Broadcast email (the course platform; disabled without
    /// `RESEND_API_KEY`, its sends then fail naming the variable).
    pub resend: ResendClient,
    /// Calendar events (live sessions; disabled without
    /// `GOOG_CREDENTIALS_JSON` and `GOOG_CALENDAR_IMPERSONATE_USER`, its calls
    /// then fail naming the unset one).
    pub google_calendar: GoogleCalendarClient,
    /// The merch shop's catalog and orders (disabled without
    /// `PRINTIFY_API_TOKEN`, its calls then fail naming the variable).
    pub printify: PrintifyClient,
    /// Shopify Admin, per tenant shop (tokens from `COMMERCE_TENANTS`).
    pub shopify: ShopifyAdmin,
    /// Meta Conversions API (pixel and token per tenant).
    pub meta: MetaConversions,
    /// GA4 Measurement Protocol (stream and secret per tenant).
    pub ga4: Ga4Client,
    /// Tenants' own webhook endpoints.
    pub outbound: OutboundWebhooks,
}

impl Clients {
    /// Variables that must be set: one credential per required API.
    pub const REQUIRED_VARS: [&'static str; 5] = [
        StripeClient::API_KEY_VAR,
        CalClient::API_KEY_VAR,
        ClerkClient::SECRET_KEY_VAR,
        DiscordClient::BOT_TOKEN_VAR,
        EmailClient::SERVER_TOKEN_VAR,
    ];

    /// Every client from configuration (each client's `from_env` lists its
    /// variables). Analytics, alerts, broadcast email and Google Calendar are
    /// optional and disabled when unset.
    ///
    /// # Errors
    /// [`ClientError::MissingConfig`] naming every missing required variable,
    /// or [`ClientError::InvalidConfig`] for a malformed value.
    pub fn from_env(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        let vars: Vec<&'static str> = Self::REQUIRED_VARS
            .into_iter()
            .filter(|var| env(var).is_none_or(|v| v.trim().is_empty()))
            .collect();
        if !vars.is_empty() {
            return Err(ClientError::MissingConfig { vars });
        }
        Ok(Self {
            stripe: StripeClient::from_env(http, env)?,
            cal: CalClient::from_env(http, env)?,
            clerk: ClerkClient::from_env(http, env)?,
            discord: DiscordClient::from_env(http, env)?,
            posthog: PostHogClient::from_env(http, env)?,
            slack: SlackClient::from_env(http, env)?,
            email: EmailClient::from_env(http, env)?,
            resend: ResendClient::from_env_or_disabled(http, env)?,
            google_calendar: GoogleCalendarClient::from_env_or_disabled(http, env)?,
            printify: PrintifyClient::from_env_or_disabled(http, env)?,
            shopify: ShopifyAdmin::from_env(http, env)?,
            meta: MetaConversions::from_env(http, env)?,
            ga4: Ga4Client::from_env(http, env)?,
            outbound: OutboundWebhooks::new(http),
        })
    }

    /// Every client from configuration, leniently: a required API whose
    /// credential is unset becomes a disabled client whose calls fail at once
    /// (not retried) naming the variable, so a process starts with no secrets
    /// (`hookflow dev` on a fresh machine). See [`Self::disabled_vars`].
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] for a malformed value (a set but broken
    /// variable is a mistake worth stopping for).
    pub fn from_env_or_disabled(http: &HttpClient, env: Env<'_>) -> Result<Self> {
        Ok(Self {
            stripe: StripeClient::from_env_or_disabled(http, env)?,
            cal: CalClient::from_env_or_disabled(http, env)?,
            clerk: ClerkClient::from_env_or_disabled(http, env)?,
            discord: DiscordClient::from_env_or_disabled(http, env)?,
            posthog: PostHogClient::from_env(http, env)?,
            slack: SlackClient::from_env(http, env)?,
            email: EmailClient::from_env_or_disabled(http, env)?,
            resend: ResendClient::from_env_or_disabled(http, env)?,
            google_calendar: GoogleCalendarClient::from_env_or_disabled(http, env)?,
            printify: PrintifyClient::from_env_or_disabled(http, env)?,
            shopify: ShopifyAdmin::from_env(http, env)?,
            meta: MetaConversions::from_env(http, env)?,
            ga4: Ga4Client::from_env(http, env)?,
            outbound: OutboundWebhooks::new(http),
        })
    }

    /// The integrations that are off, each with the variable that enables it
    /// (`("stripe", "STRIPE_API_KEY")`), for a start-up log line.
    #[must_use]
    pub fn disabled_vars(&self) -> Vec<(&'static str, &'static str)> {
        [
            (
                "stripe",
                StripeClient::API_KEY_VAR,
                self.stripe.is_enabled(),
            ),
            ("cal", CalClient::API_KEY_VAR, self.cal.is_enabled()),
            (
                "clerk",
                ClerkClient::SECRET_KEY_VAR,
                self.clerk.is_enabled(),
            ),
            (
                "discord",
                DiscordClient::BOT_TOKEN_VAR,
                self.discord.is_enabled(),
            ),
            (
                "posthog",
                PostHogClient::API_KEY_VAR,
                self.posthog.is_enabled(),
            ),
            (
                "slack",
                SlackClient::WEBHOOK_URL_VAR,
                self.slack.is_enabled(),
            ),
            (
                "postmark",
                EmailClient::SERVER_TOKEN_VAR,
                self.email.is_enabled(),
            ),
            (
                "resend",
                ResendClient::API_KEY_VAR,
                self.resend.is_enabled(),
            ),
            (
                "google_calendar",
                self.google_calendar
                    .disabled_var()
                    .unwrap_or(GoogleCalendarClient::CREDENTIALS_VAR),
                self.google_calendar.is_enabled(),
            ),
            (
                "printify",
                PrintifyClient::API_TOKEN_VAR,
                self.printify.is_enabled(),
            ),
        ]
        .into_iter()
        .filter(|(_, _, enabled)| !enabled)
        .map(|(api, var, _)| (api, var))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unconfigured_apis_are_disabled_and_fail_naming_their_variable() {
        let http = HttpClient::new().unwrap();
        let clients = Clients::from_env_or_disabled(&http, &|_| None).unwrap();
        let off: Vec<&str> = clients.disabled_vars().iter().map(|(_, v)| *v).collect();
        assert_eq!(off.len(), 10, "{off:?}");
        let err = clients
            .stripe
            .create_refund("pi_1", None, None, "key-1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("STRIPE_API_KEY"), "{err}");
        assert_eq!(err.verdict(), hookflow::failure::Verdict::Final);
        // Optional integrations stay no-ops.
        clients
            .posthog
            .capture("u", "e", serde_json::Value::Null)
            .await
            .unwrap();
    }
}
