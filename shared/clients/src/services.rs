//! What workflow definitions are given: the document store, the external API
//! clients and the workflow settings, as one cheap-to-clone [`Services`] value.
//!
//! A workflow constructor takes `&Services` (`pub fn function(services:
//! &Services) -> Function`) and moves clones into its handler, so the same
//! definition runs on SQLite (`hookflow dev`, tests) and on DynamoDB (Lambda):
//! only the [`DocStore`] behind it differs.
//!
//! Invariant: building services never fails for a missing secret or setting.
//! A missing API credential yields a disabled client whose calls fail at once
//! naming the variable ([`Clients::from_env_or_disabled`]); a missing setting
//! fails, naming its variable, only when a workflow asks for it
//! ([`SettingError`], not retried). Malformed values fail at start-up.

use std::future::Future;

use hookflow::NonRetriable;
use hookflow_docs::{DocStore, Document, Documents};
use serde_json::Value;

use crate::error::ClientError;
use crate::http::{Env, HttpClient, optional};
use crate::tenants::{Tenant, Tenants};
use crate::{Clients, SlackClient};

/// Workflow configuration read from the environment (see [`Settings::VARS`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    cal_event_type_id: Option<i64>,
    booking_time_zone: Option<String>,
    email_from: Option<String>,
    discord_connect_url: Option<String>,
    discord_guild_id: Option<String>,
    discord_mentee_role_id: Option<String>,
    course_site_title: Option<String>,
    course_support_email: Option<String>,
    course_public_url: Option<String>,
    course_admin_email: Option<String>,
    printify_shop_id: Option<String>,
    merch_time_zone: Option<String>,
    commerce_tenants: Tenants,
}

/// A setting a workflow needs is unset, or a set one is malformed. Carries
/// [`NonRetriable`]: retrying cannot help until the variable is set.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// Unset (or empty).
    #[error("{var} is not set ({what})")]
    Missing {
        /// The variable to set.
        var: &'static str,
        /// What it configures.
        what: &'static str,
        /// Fails the step at once.
        #[source]
        marker: NonRetriable,
    },
    /// Set, but not usable.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable at fault.
        var: &'static str,
        /// Why.
        reason: String,
    },
}

impl SettingError {
    fn missing(var: &'static str, what: &'static str) -> Self {
        Self::Missing {
            var,
            what,
            marker: NonRetriable::new("setting missing"),
        }
    }
}

impl Settings {
    /// The Cal.com event type booked after a checkout (an integer id).
    pub const CAL_EVENT_TYPE_ID_VAR: &'static str = "BOOKING_CAL_EVENT_TYPE_ID";
    /// The attendee time zone sent with a booking (IANA name; default `UTC`).
    pub const BOOKING_TIME_ZONE_VAR: &'static str = "BOOKING_TIME_ZONE";
    /// The sender of customer emails (`Bookings <bookings@example.com>`), on a
    /// domain verified in Postmark.
    pub const EMAIL_FROM_VAR: &'static str = "EMAIL_FROM";
    /// The app page where a mentee links their Discord account (emailed by
    /// the mentorship onboarding).
    pub const DISCORD_CONNECT_URL_VAR: &'static str = "DISCORD_CONNECT_URL";
    /// The Discord server (guild) mentees join.
    pub const DISCORD_GUILD_ID_VAR: &'static str = "DISCORD_GUILD_ID";
    /// The Discord role an onboarded mentee gets.
    pub const DISCORD_MENTEE_ROLE_ID_VAR: &'static str = "DISCORD_MENTEE_ROLE_ID";
    /// The course platform's name, the sender name of its emails.
    pub const COURSE_SITE_TITLE_VAR: &'static str = "COURSE_SITE_TITLE";
    /// The course platform's support address, the sender of its emails (on
    /// a domain verified in Resend).
    pub const COURSE_SUPPORT_EMAIL_VAR: &'static str = "COURSE_SUPPORT_EMAIL";
    /// The course platform's public URL (unsubscribe links).
    pub const COURSE_PUBLIC_URL_VAR: &'static str = "COURSE_PUBLIC_URL";
    /// Where the course platform's sign-up notices go; unset: none is sent
    /// (the plan keeps that email disabled).
    pub const COURSE_ADMIN_EMAIL_VAR: &'static str = "COURSE_ADMIN_EMAIL";
    /// The merch shop's Printify shop id.
    pub const PRINTIFY_SHOP_ID_VAR: &'static str = "PRINTIFY_SHOP_ID";
    /// The IANA time zone of the merch shop's crons (default `UTC`).
    pub const MERCH_TIME_ZONE_VAR: &'static str = "MERCH_TIME_ZONE";
    /// The commerce platform's tenants (a JSON array, see [`Tenants`]).
    pub const COMMERCE_TENANTS_VAR: &'static str = "COMMERCE_TENANTS";
    /// Every variable read, for documentation and start-up logs.
    pub const VARS: [&'static str; 13] = [
        Self::CAL_EVENT_TYPE_ID_VAR,
        Self::BOOKING_TIME_ZONE_VAR,
        Self::EMAIL_FROM_VAR,
        Self::DISCORD_CONNECT_URL_VAR,
        Self::DISCORD_GUILD_ID_VAR,
        Self::DISCORD_MENTEE_ROLE_ID_VAR,
        Self::COURSE_SITE_TITLE_VAR,
        Self::COURSE_SUPPORT_EMAIL_VAR,
        Self::COURSE_PUBLIC_URL_VAR,
        Self::COURSE_ADMIN_EMAIL_VAR,
        Self::PRINTIFY_SHOP_ID_VAR,
        Self::MERCH_TIME_ZONE_VAR,
        Self::COMMERCE_TENANTS_VAR,
    ];

    /// Reads the settings; unset ones stay unset.
    ///
    /// # Errors
    /// [`SettingError::Invalid`] for a malformed value.
    pub fn from_env(env: Env<'_>) -> Result<Self, SettingError> {
        let cal_event_type_id = optional(env, Self::CAL_EVENT_TYPE_ID_VAR)
            .map(|v| {
                v.parse::<i64>().map_err(|e| SettingError::Invalid {
                    var: Self::CAL_EVENT_TYPE_ID_VAR,
                    reason: format!("not an integer event type id ({e})"),
                })
            })
            .transpose()?;
        let commerce_tenants = optional(env, Self::COMMERCE_TENANTS_VAR)
            .map(|v| {
                Tenants::parse(&v).map_err(|reason| SettingError::Invalid {
                    var: Self::COMMERCE_TENANTS_VAR,
                    reason,
                })
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            cal_event_type_id,
            booking_time_zone: optional(env, Self::BOOKING_TIME_ZONE_VAR),
            email_from: optional(env, Self::EMAIL_FROM_VAR),
            discord_connect_url: optional(env, Self::DISCORD_CONNECT_URL_VAR),
            discord_guild_id: optional(env, Self::DISCORD_GUILD_ID_VAR),
            discord_mentee_role_id: optional(env, Self::DISCORD_MENTEE_ROLE_ID_VAR),
            course_site_title: optional(env, Self::COURSE_SITE_TITLE_VAR),
            course_support_email: optional(env, Self::COURSE_SUPPORT_EMAIL_VAR),
            course_public_url: optional(env, Self::COURSE_PUBLIC_URL_VAR)
                .map(|url| url.trim_end_matches('/').to_owned()),
            course_admin_email: optional(env, Self::COURSE_ADMIN_EMAIL_VAR),
            printify_shop_id: optional(env, Self::PRINTIFY_SHOP_ID_VAR),
            merch_time_zone: optional(env, Self::MERCH_TIME_ZONE_VAR),
            commerce_tenants,
        })
    }

    /// With the course platform's name, support address and public URL.
    #[must_use]
    pub fn with_course(
        mut self,
        site_title: impl Into<String>,
        support_email: impl Into<String>,
        public_url: impl Into<String>,
    ) -> Self {
        self.course_site_title = Some(site_title.into());
        self.course_support_email = Some(support_email.into());
        self.course_public_url = Some(public_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The sender of the course platform's emails: `Site <support@...>`.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming the first unset variable.
    pub fn course_sender(&self) -> Result<String, SettingError> {
        let title = self.course_site_title.as_deref().ok_or_else(|| {
            SettingError::missing(Self::COURSE_SITE_TITLE_VAR, "the course platform's name")
        })?;
        let email = self.course_support_email.as_deref().ok_or_else(|| {
            SettingError::missing(
                Self::COURSE_SUPPORT_EMAIL_VAR,
                "the course platform's support address",
            )
        })?;
        Ok(format!("{title} <{email}>"))
    }

    /// The course platform's name (the organizer name on calendar entries).
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::COURSE_SITE_TITLE_VAR`].
    pub fn course_site_title(&self) -> Result<&str, SettingError> {
        self.course_site_title.as_deref().ok_or_else(|| {
            SettingError::missing(Self::COURSE_SITE_TITLE_VAR, "the course platform's name")
        })
    }

    /// The course platform's public URL, without a trailing `/`.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::COURSE_PUBLIC_URL_VAR`].
    pub fn course_public_url(&self) -> Result<&str, SettingError> {
        self.course_public_url.as_deref().ok_or_else(|| {
            SettingError::missing(Self::COURSE_PUBLIC_URL_VAR, "the course platform's URL")
        })
    }

    /// With the merch shop's Printify shop and cron time zone.
    #[must_use]
    pub fn with_merch(mut self, shop_id: impl Into<String>, time_zone: impl Into<String>) -> Self {
        self.printify_shop_id = Some(shop_id.into());
        self.merch_time_zone = Some(time_zone.into());
        self
    }

    /// The merch shop's Printify shop id.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::PRINTIFY_SHOP_ID_VAR`].
    pub fn printify_shop_id(&self) -> Result<&str, SettingError> {
        self.printify_shop_id.as_deref().ok_or_else(|| {
            SettingError::missing(Self::PRINTIFY_SHOP_ID_VAR, "the merch shop's Printify shop")
        })
    }

    /// The time zone of the merch shop's crons (`UTC` when unset).
    #[must_use]
    pub fn merch_time_zone(&self) -> &str {
        self.merch_time_zone.as_deref().unwrap_or("UTC")
    }

    /// With these commerce tenants.
    #[must_use]
    pub fn with_tenants(mut self, tenants: Tenants) -> Self {
        self.commerce_tenants = tenants;
        self
    }

    /// The commerce platform's tenants (none when unset).
    #[must_use]
    pub fn tenants(&self) -> &Tenants {
        &self.commerce_tenants
    }

    /// The tenant with this id.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::COMMERCE_TENANTS_VAR`] when
    /// no tenant has that id.
    pub fn tenant(&self, id: &str) -> Result<&Tenant, SettingError> {
        self.commerce_tenants.by_id(id).ok_or_else(|| {
            SettingError::missing(Self::COMMERCE_TENANTS_VAR, "a tenant with this id")
        })
    }

    /// With sign-up notices sent to `email`.
    #[must_use]
    pub fn with_course_admin_email(mut self, email: impl Into<String>) -> Self {
        self.course_admin_email = Some(email.into());
        self
    }

    /// Where sign-up notices go, `None` when they are off.
    #[must_use]
    pub fn course_admin_email(&self) -> Option<&str> {
        self.course_admin_email.as_deref()
    }

    /// The Discord server (guild) of the platform's members.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::DISCORD_GUILD_ID_VAR`].
    pub fn discord_guild_id(&self) -> Result<&str, SettingError> {
        self.discord_guild_id.as_deref().ok_or_else(|| {
            SettingError::missing(
                Self::DISCORD_GUILD_ID_VAR,
                "the Discord server members join",
            )
        })
    }

    /// With this Discord guild (alone, without the mentorship settings).
    #[must_use]
    pub fn with_discord_guild(mut self, guild_id: impl Into<String>) -> Self {
        self.discord_guild_id = Some(guild_id.into());
        self
    }

    /// With this Cal.com event type id.
    #[must_use]
    pub fn with_cal_event_type_id(mut self, id: i64) -> Self {
        self.cal_event_type_id = Some(id);
        self
    }

    /// With this sender for customer emails.
    #[must_use]
    pub fn with_email_from(mut self, from: impl Into<String>) -> Self {
        self.email_from = Some(from.into());
        self
    }

    /// With the Discord settings of the mentorship onboarding: the connect
    /// page, the guild and the mentee role.
    #[must_use]
    pub fn with_discord(
        mut self,
        connect_url: impl Into<String>,
        guild_id: impl Into<String>,
        mentee_role_id: impl Into<String>,
    ) -> Self {
        self.discord_connect_url = Some(connect_url.into());
        self.discord_guild_id = Some(guild_id.into());
        self.discord_mentee_role_id = Some(mentee_role_id.into());
        self
    }

    /// The Cal.com event type booked after a checkout.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::CAL_EVENT_TYPE_ID_VAR`].
    pub fn cal_event_type_id(&self) -> Result<i64, SettingError> {
        self.cal_event_type_id.ok_or_else(|| {
            SettingError::missing(
                Self::CAL_EVENT_TYPE_ID_VAR,
                "the Cal.com event type to book after a checkout",
            )
        })
    }

    /// The attendee time zone for bookings (`UTC` unless set).
    #[must_use]
    pub fn booking_time_zone(&self) -> &str {
        self.booking_time_zone.as_deref().unwrap_or("UTC")
    }

    /// The sender of customer emails.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::EMAIL_FROM_VAR`].
    pub fn email_from(&self) -> Result<&str, SettingError> {
        self.email_from
            .as_deref()
            .ok_or_else(|| SettingError::missing(Self::EMAIL_FROM_VAR, "the customer email sender"))
    }

    /// The page where a mentee links their Discord account.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming [`Self::DISCORD_CONNECT_URL_VAR`].
    pub fn discord_connect_url(&self) -> Result<&str, SettingError> {
        self.discord_connect_url.as_deref().ok_or_else(|| {
            SettingError::missing(
                Self::DISCORD_CONNECT_URL_VAR,
                "the page where mentees link their Discord account",
            )
        })
    }

    /// The Discord guild and mentee role granted at onboarding.
    ///
    /// # Errors
    /// [`SettingError::Missing`] naming the first unset variable.
    pub fn discord_mentee_role(&self) -> Result<(&str, &str), SettingError> {
        let guild = self.discord_guild_id.as_deref().ok_or_else(|| {
            SettingError::missing(
                Self::DISCORD_GUILD_ID_VAR,
                "the Discord server mentees join",
            )
        })?;
        let role = self.discord_mentee_role_id.as_deref().ok_or_else(|| {
            SettingError::missing(
                Self::DISCORD_MENTEE_ROLE_ID_VAR,
                "the Discord role onboarded mentees get",
            )
        })?;
        Ok((guild, role))
    }

    /// The variables a workflow may need that are unset.
    #[must_use]
    pub fn unset_vars(&self) -> Vec<&'static str> {
        [
            (
                Self::CAL_EVENT_TYPE_ID_VAR,
                self.cal_event_type_id.is_some(),
            ),
            (Self::EMAIL_FROM_VAR, self.email_from.is_some()),
            (
                Self::DISCORD_CONNECT_URL_VAR,
                self.discord_connect_url.is_some(),
            ),
            (Self::DISCORD_GUILD_ID_VAR, self.discord_guild_id.is_some()),
            (
                Self::DISCORD_MENTEE_ROLE_ID_VAR,
                self.discord_mentee_role_id.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, set)| !set)
        .map(|(var, _)| var)
        .collect()
    }
}

/// Building [`Services`] from the environment failed: a malformed value.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// A client's configuration (or the HTTP pool).
    #[error(transparent)]
    Clients(#[from] ClientError),
    /// A workflow setting.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// Everything a workflow definition depends on. Cheap to clone (handles only).
#[derive(Clone, Debug)]
pub struct Services {
    /// Domain records (payments, ...), on the engine's backend.
    pub docs: DocStore,
    /// The external APIs.
    pub clients: Clients,
    /// Workflow configuration.
    pub settings: Settings,
}

impl Services {
    /// Services from their parts (tests: `TestServer::clients()` and `env.docs()`).
    #[must_use]
    pub fn new(docs: DocStore, clients: Clients, settings: Settings) -> Self {
        Self {
            docs,
            clients,
            settings,
        }
    }

    /// Services for a process: `docs` over the engine's store, clients and
    /// settings from `env`, leniently (unset credentials disable their API).
    /// Logs, once, which integrations and settings are unset and what to set.
    ///
    /// # Errors
    /// [`ServicesError`] for a malformed value or an HTTP pool that cannot start.
    pub fn from_env(docs: DocStore, env: Env<'_>) -> Result<Self, ServicesError> {
        let http = HttpClient::new()?;
        let clients = Clients::from_env_or_disabled(&http, env)?;
        let settings = Settings::from_env(env)?;
        for (api, var) in clients.disabled_vars() {
            tracing::info!(
                api,
                set = var,
                "integration disabled until its variable is set"
            );
        }
        for var in settings.unset_vars() {
            tracing::info!(
                set = var,
                "workflow setting unset: workflows needing it fail naming it"
            );
        }
        Ok(Self::new(docs, clients, settings))
    }

    /// Services that reach nothing: every client disabled, no settings, and a
    /// document store whose every operation fails (not retried). For listing
    /// definitions (`hookflow functions`, template checks), never for running.
    ///
    /// # Errors
    /// Never in practice (the HTTP pool cannot start).
    pub fn unconfigured() -> Result<Self, ServicesError> {
        let http = HttpClient::new()?;
        Ok(Self::new(
            DocStore::new(NoDocuments),
            Clients::from_env_or_disabled(&http, &|_| None)?,
            Settings::default(),
        ))
    }

    /// Posts the admin alert for a failed run (`on_failure`'s event is
    /// `hookflow/function.failed`): function, run id and error.
    ///
    /// # Errors
    /// The Slack call's [`ClientError`].
    pub async fn alert_run_failed(&self, failed: &Value) -> Result<(), ClientError> {
        alert_run_failed(&self.clients.slack, failed).await
    }

    /// `function` with an `on_failure` handler that alerts an admin on Slack
    /// with the function, run id and error (one `alert-admin` step).
    #[must_use]
    pub fn alert_on_failure(&self, function: hookflow::Function) -> hookflow::Function {
        let alerts = self.clone();
        function
            .reads_env(["SLACK_WEBHOOK_URL"])
            .on_failure(move |ctx| {
                let alerts = alerts.clone();
                async move {
                    let failed = ctx.event.data.clone();
                    ctx.step
                        .run("alert-admin", || async move {
                            Ok(alerts.alert_run_failed(&failed).await?)
                        })
                        .await?;
                    Ok(())
                }
            })
    }
}

/// The Slack text for a `hookflow/function.failed` event's `data`.
#[must_use]
pub fn run_failed_text(failed: &Value) -> String {
    let field = |name: &str| failed[name].as_str().unwrap_or("?").to_owned();
    format!(
        ":rotating_light: Hookflow function `{}` failed (run `{}`): {}",
        field("function_id"),
        field("run_id"),
        field("error"),
    )
}

/// Posts [`run_failed_text`] through `slack`.
///
/// # Errors
/// The Slack call's [`ClientError`].
pub async fn alert_run_failed(slack: &SlackClient, failed: &Value) -> Result<(), ClientError> {
    slack.post_message(&run_failed_text(failed)).await
}

/// A document store that is not there: every operation fails, not retried.
struct NoDocuments;

fn no_documents<T>() -> hookflow::Result<T> {
    Err(hookflow::Error::store(NotConfigured(NonRetriable::new(
        "not retried",
    ))))
}

#[derive(Debug, thiserror::Error)]
#[error("no document store: these services are for listing definitions, not running them")]
struct NotConfigured(#[source] NonRetriable);

impl Documents for NoDocuments {
    fn get_doc(
        &self,
        _: &str,
        _: &str,
    ) -> impl Future<Output = hookflow::Result<Option<Document>>> + Send {
        std::future::ready(no_documents())
    }

    fn create_doc(
        &self,
        _: &str,
        _: &str,
        _: &Value,
        _: i64,
    ) -> impl Future<Output = hookflow::Result<bool>> + Send {
        std::future::ready(no_documents())
    }

    fn replace_doc(
        &self,
        _: &str,
        _: &str,
        _: &Value,
        _: u64,
        _: i64,
    ) -> impl Future<Output = hookflow::Result<bool>> + Send {
        std::future::ready(no_documents())
    }

    fn delete_doc(
        &self,
        _: &str,
        _: &str,
        _: u64,
    ) -> impl Future<Output = hookflow::Result<bool>> + Send {
        std::future::ready(no_documents())
    }

    fn list_docs(
        &self,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> impl Future<Output = hookflow::Result<Vec<Document>>> + Send {
        std::future::ready(no_documents())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookflow::failure::{Verdict, classify};

    #[test]
    fn missing_settings_name_their_variable_and_are_final() {
        let settings = Settings::from_env(&|_| None).unwrap();
        let err = settings.cal_event_type_id().unwrap_err();
        assert!(
            err.to_string().contains("BOOKING_CAL_EVENT_TYPE_ID"),
            "{err}"
        );
        assert_eq!(classify(&anyhow::Error::from(err)), Verdict::Final);
        assert_eq!(settings.booking_time_zone(), "UTC");
        let bad = Settings::from_env(&|name| {
            (name == Settings::CAL_EVENT_TYPE_ID_VAR).then(|| "abc".to_owned())
        });
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("BOOKING_CAL_EVENT_TYPE_ID")
        );
        let set = Settings::from_env(&|name| match name {
            "BOOKING_CAL_EVENT_TYPE_ID" => Some(" 1234 ".into()),
            "EMAIL_FROM" => Some("a@b.c".into()),
            "DISCORD_CONNECT_URL" => Some("https://app.example.com/discord".into()),
            "DISCORD_GUILD_ID" => Some("g1".into()),
            "DISCORD_MENTEE_ROLE_ID" => Some("r1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(set.cal_event_type_id().unwrap(), 1234);
        assert_eq!(set.email_from().unwrap(), "a@b.c");
        assert_eq!(set.discord_mentee_role().unwrap(), ("g1", "r1"));
        assert!(
            Settings::default()
                .discord_mentee_role()
                .unwrap_err()
                .to_string()
                .contains("DISCORD_GUILD_ID")
        );
        assert!(set.unset_vars().is_empty());
    }

    #[tokio::test]
    async fn unconfigured_services_fail_every_call_without_retrying() {
        let services = Services::unconfigured().unwrap();
        let err = services.docs.get_doc("payments", "k").await.unwrap_err();
        assert_eq!(classify(&anyhow::Error::from(err)), Verdict::Final);
        assert_eq!(services.clients.disabled_vars().len(), 10);
    }

    #[test]
    fn the_failure_alert_names_function_run_and_error() {
        let text = run_failed_text(&serde_json::json!({
            "function_id": "checkout-side-effects", "run_id": "r1", "error": "boom"
        }));
        assert!(
            text.contains("checkout-side-effects") && text.contains("r1") && text.contains("boom")
        );
    }
}
