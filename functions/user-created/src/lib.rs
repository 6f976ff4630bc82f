//! `user-created`: sets up a new user of the course platform.
//!
//! On `user/created` (`{ "user": { "id", "email", "name" } }`, one run per
//! email address): records the user (and their address, so email webhooks
//! find them), grants the default `user` role, creates their `Newsletter`
//! preference on the `Email` channel active, and renders the admin sign-up
//! notice from its templates (`{{ user.email }} signed up.`). The notice is
//! sent through Resend only when `COURSE_ADMIN_EMAIL` is set: the plan keeps
//! it disabled, here it is a setting. Missing setup (the `user` role, the
//! preference type or channel) fails the run at once; nothing is retried
//! that cannot succeed.

use course::{
    CommunicationPreference, PREFERENCES, ROLES, Role, USER_ROLE, USER_ROLES, USERS,
    USERS_BY_EMAIL, User, UserRole, email_key, escape_html, newsletter_on_email, preference_key,
    user_role_key,
};
use hookflow::{Failure, Function, NonRetriable};
use hookflow_clients::{ResendEmail, Services};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The function id.
pub const ID: &str = "user-created";
/// The event that starts it.
pub const TRIGGER: &str = "user/created";
/// One run per address (the plan's idempotency key).
pub const ONE_RUN_PER_EMAIL: &str = "event.data.user.email";
/// The notice's subject template.
pub const SUBJECT_TEMPLATE: &str = "New sign-up: {{ user.name or user.email }}";
/// The notice's body template.
pub const BODY_TEMPLATE: &str = "{{ user.email }} signed up.";

/// The event's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    /// The new user.
    pub user: User,
}

/// The admin notice, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Renders the notice for `user` from [`SUBJECT_TEMPLATE`] and
/// [`BODY_TEMPLATE`] (Jinja syntax, which covers the plan's Liquid ones).
///
/// # Errors
/// A template that does not parse or render (a bug here: they are constants).
pub fn notice(user: &User) -> Result<Notice, minijinja::Error> {
    let env = minijinja::Environment::new();
    let render = |template: &str| env.render_str(template, minijinja::context! { user => user });
    Ok(Notice {
        subject: render(SUBJECT_TEMPLATE)?,
        body: render(BODY_TEMPLATE)?,
    })
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Set up a new user").reads_env([
            "RESEND_API_KEY",
            "COURSE_SITE_TITLE",
            "COURSE_SUPPORT_EMAIL",
            "COURSE_ADMIN_EMAIL",
        ]))
        .on_event(TRIGGER)
        .idempotency(ONE_RUN_PER_EMAIL)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let UserCreated { user } = serde_json::from_value(ctx.event.data.clone())
                    .map_err(|e| NonRetriable::new(format!("invalid user/created event: {e}")))?;
                let docs = services.docs.clone();
                let (kind, channel) = ctx
                    .step
                    .run("load-preference-type-and-channel", move || async move {
                        newsletter_on_email(&docs).await
                    })
                    .await?;
                let (docs, record) = (services.docs.clone(), user.clone());
                ctx.step
                    .run("record-user", move || async move {
                        docs.create(USERS, &record.id, &record).await?;
                        let by_email = json!({ "userId": record.id });
                        docs.create(USERS_BY_EMAIL, &email_key(&record.email), &by_email)
                            .await?;
                        Ok(())
                    })
                    .await?;
                let (docs, user_id) = (services.docs.clone(), user.id.clone());
                ctx.step
                    .run("create-user-role", move || async move {
                        let (role, _) = docs
                            .get::<Role>(ROLES, USER_ROLE)
                            .await?
                            .ok_or_else(|| NonRetriable::new("Role 'user' not found"))?;
                        let grant = UserRole {
                            user_id: user_id.clone(),
                            role_id: role.id.clone(),
                        };
                        docs.create(USER_ROLES, &user_role_key(&user_id, &role.id), &grant)
                            .await?;
                        Ok(())
                    })
                    .await?;
                let (docs, user_id) = (services.docs.clone(), user.id.clone());
                ctx.step
                    .run("create-communication-preference", move || async move {
                        let preference =
                            CommunicationPreference::active(&user_id, &kind.id, &channel.id);
                        docs.create(
                            PREFERENCES,
                            &preference_key(&user_id, &kind.id),
                            &preference,
                        )
                        .await?;
                        Ok(())
                    })
                    .await?;
                let shown = user.clone();
                let notice = ctx
                    .step
                    .run("render-admin-notice", move || async move {
                        notice(&shown).non_retriable()
                    })
                    .await?;
                let Some(admin) = services.settings.course_admin_email().map(str::to_owned) else {
                    return Ok(json!({ "sendResponse": null, "email": notice, "user": user }));
                };
                // Keyed by the user, not the run: a replay sends no second notice.
                let key = format!(
                    "hf-{}",
                    hookflow::event::derived_id(&["signup-notice", &user.id])
                );
                let (services, email) = (services.clone(), notice.clone());
                let sent = ctx
                    .step
                    .run("send-admin-notice", move || async move {
                        let message = ResendEmail {
                            from: services.settings.course_sender()?,
                            to: vec![admin],
                            subject: email.subject,
                            html: format!("<p>{}</p>", escape_html(&email.body)),
                            text: Some(email.body),
                            ..ResendEmail::default()
                        };
                        Ok(services.clients.resend.send(&message, &key).await?)
                    })
                    .await?;
                Ok(json!({ "sendResponse": { "id": sent }, "email": notice, "user": user }))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_the_new_user() {
        let user = User {
            id: "u1".into(),
            email: "ada@example.com".into(),
            name: None,
        };
        let rendered = notice(&user).unwrap();
        assert_eq!(rendered.body, "ada@example.com signed up.");
        assert_eq!(rendered.subject, "New sign-up: ada@example.com");
        let named = User {
            name: Some("Ada <L>".into()),
            ..user
        };
        assert_eq!(notice(&named).unwrap().subject, "New sign-up: Ada <L>");
    }
}
