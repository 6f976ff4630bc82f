//! `email-send-broadcast`: one newsletter email to one user (course platform).
//!
//! On `email/send-broadcast` (`toUserId`, `subject`, `body`, optional
//! `preview`): load the `Newsletter` preference type and the `Email`
//! channel (missing: fails for good, "Preference type or channel not
//! found"), the user ("User not found", for good), and the user's preference,
//! creating it active when there is none. An inactive preference ends the run
//! with "User has unsubscribed"; otherwise the email goes out through Resend
//! with a `List-Unsubscribe` header pointing at
//! `{COURSE_PUBLIC_URL}/unsubscribed?userId={id}`, tagged `type=broadcast`,
//! sent once however often its step is retried (the step's idempotency key).

use std::collections::BTreeMap;

use course::{
    CommunicationPreference, PREFERENCES, USERS, User, escape_html, load_required,
    newsletter_on_email, preference_key,
};
use hookflow::{Function, NonRetriable};
use hookflow_clients::resend::Tag;
use hookflow_clients::{ResendEmail, Services};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The function id.
pub const ID: &str = "email-send-broadcast";
/// The event that starts it.
pub const TRIGGER: &str = "email/send-broadcast";
/// What the run returns when the user opted out.
pub const UNSUBSCRIBED: &str = "User has unsubscribed";

/// The event's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Broadcast {
    /// The recipient.
    pub to_user_id: String,
    /// Subject line.
    pub subject: String,
    /// The message (HTML).
    pub body: String,
    /// The inbox preview line, if any.
    #[serde(default)]
    pub preview: Option<String>,
}

/// The email for `user`: the plan's `BasicEmail` (preview line, then body).
#[must_use]
pub fn email(broadcast: &Broadcast, user: &User, from: &str, public_url: &str) -> ResendEmail {
    let preview = broadcast.preview.as_deref().map_or_else(String::new, |p| {
        format!("<div style=\"display:none\">{}</div>", escape_html(p))
    });
    let unsubscribe = format!("{public_url}/unsubscribed?userId={}", user.id);
    ResendEmail {
        from: from.to_owned(),
        to: vec![user.email.clone()],
        subject: broadcast.subject.clone(),
        html: format!(
            "{preview}{}<p><a href=\"{unsubscribe}\">Unsubscribe</a></p>",
            broadcast.body
        ),
        text: None,
        headers: BTreeMap::from([("List-Unsubscribe".to_owned(), format!("<{unsubscribe}>"))]),
        tags: vec![Tag {
            name: "type".into(),
            value: "broadcast".into(),
        }],
    }
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Send a broadcast email").reads_env([
            "RESEND_API_KEY",
            "COURSE_SITE_TITLE",
            "COURSE_SUPPORT_EMAIL",
            "COURSE_PUBLIC_URL",
        ]))
        .on_event(TRIGGER)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let broadcast: Broadcast = serde_json::from_value(ctx.event.data.clone())
                    .map_err(|e| NonRetriable::new(format!("invalid broadcast: {e}")))?;
                let docs = services.docs.clone();
                let (kind, channel) = ctx
                    .step
                    .run("load-preference-type-and-channel", move || async move {
                        newsletter_on_email(&docs).await
                    })
                    .await?;
                let user: User = load_required(
                    &ctx,
                    &services.docs,
                    "load-user",
                    (USERS, &broadcast.to_user_id),
                    "User not found",
                )
                .await?;
                let (docs, user_id) = (services.docs.clone(), user.id.clone());
                let preference: CommunicationPreference = ctx
                    .step
                    .run("load-or-create-preference", move || async move {
                        let key = preference_key(&user_id, &kind.id);
                        let fresh =
                            CommunicationPreference::active(&user_id, &kind.id, &channel.id);
                        docs.create(PREFERENCES, &key, &fresh).await?;
                        Ok(docs
                            .get::<CommunicationPreference>(PREFERENCES, &key)
                            .await?
                            .map_or(fresh, |(preference, _)| preference))
                    })
                    .await?;
                if !preference.active {
                    return Ok(json!(UNSUBSCRIBED));
                }
                let (services, idempotency) = (services.clone(), ctx.step.clone());
                let id = ctx
                    .step
                    .run("send-email", move || async move {
                        let settings = &services.settings;
                        let email = email(
                            &broadcast,
                            &user,
                            &settings.course_sender()?,
                            settings.course_public_url()?,
                        );
                        let key = idempotency.idempotency_key();
                        Ok(services.clients.resend.send(&email, &key).await?)
                    })
                    .await?;
                Ok(json!({ "emailId": id }))
            }
        })
}
