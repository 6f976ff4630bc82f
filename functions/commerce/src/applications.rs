//! `process-creator-application`: a creator applied to a tenant's program.
//!
//! On `creator/applied` (`creatorId`, `tenantId`):
//! 1. `get-application` (missing: the run fails at once);
//! 2. `send-confirmation`: "application received" (Resend, keyed by tenant
//!    and creator);
//! 3. `notify-admin`: a Slack notice naming the applicant and the tenant
//!    (the incoming webhook's channel: the plan's `#creator-applications`;
//!    what applicants typed is escaped, so a name cannot ping `@channel`);
//! 4. `track-meta`: a `Lead` conversion to the tenant's Meta pixel (hashed
//!    email, event id per application so a retry is not counted twice);
//!    skipped when the tenant has no pixel configured.

use hookflow::Function;
use hookflow_clients::meta::ServerEvent;
use hookflow_clients::slack::escape;
use hookflow_clients::{ResendEmail, Services};
use hookflow_docs::load_required;
use serde_json::json;

use crate::emails::render;
use crate::records::{APPLICATIONS, Application, key};
use crate::{required, sender, tenant_named, track_meta};

/// The function id.
pub const ID: &str = "process-creator-application";
/// A creator applied.
pub const APPLIED: &str = "creator/applied";

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Welcome a creator application")
                .reads_env(["COMMERCE_TENANTS", "RESEND_API_KEY", "EMAIL_FROM"]),
        )
        .on_event(APPLIED)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let tenant = tenant_named(&services, &ctx.event)?.clone();
                let creator_id = required(&ctx.event, "creatorId")?;
                let application: Application = load_required(
                    &ctx,
                    &services.docs,
                    "get-application",
                    (APPLICATIONS, &key(&tenant.id, &creator_id)),
                    &format!("application of {creator_id} to {} not found", tenant.id),
                )
                .await?;
                let shop = tenant.display_name().to_owned();
                let email = ResendEmail {
                    from: sender(&services, &tenant)?,
                    to: vec![application.email.clone()],
                    subject: format!("We received your application to {shop}"),
                    html: render(
                        "application.html",
                        json!({"name": application.name, "shop": shop}),
                    )?,
                    ..ResendEmail::default()
                };
                let (resend, ik) = (
                    services.clients.resend.clone(),
                    format!("application-{}-{creator_id}", tenant.id),
                );
                ctx.step
                    .run("send-confirmation", move || async move {
                        Ok(resend.send(&email, &ik).await?)
                    })
                    .await?;
                let (slack, text) = (
                    services.clients.slack.clone(),
                    format!(
                        "New creator application from {} ({}) for {}",
                        escape(&application.name),
                        escape(&application.email),
                        escape(&shop)
                    ),
                );
                ctx.step
                    .run("notify-admin", move || async move {
                        Ok(slack.post_message(&text).await?)
                    })
                    .await?;
                let lead = ServerEvent::website(
                    "Lead",
                    &format!("lead-{}-{creator_id}", tenant.id),
                    ctx.event.ts,
                    Some(&application.email),
                )
                .with_custom_data(json!({"tenant": tenant.id}));
                let tracked = track_meta(&ctx, &services, &tenant, "track-meta", lead).await?;
                Ok(json!({"creatorId": creator_id, "tenantId": tenant.id, "meta": tracked}))
            }
        })
}
