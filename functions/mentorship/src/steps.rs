//! Steps the mentorship workflows share: changing a pack, releasing a seat,
//! emailing a member. Each external call is its own step, so a retry repeats
//! only the call that failed.

use hookflow::step::Step;
use hookflow::{Event, Failure, NonRetriable, StepError};
use hookflow_clients::{Email, Services};
use hookflow_docs::DocStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{PACKS, Pack, ReleaseReason, SEAT_RELEASED, SEATS, Seat, SeatStatus, utc};

/// The pack is not stored (yet). Retried: the purchase that creates it may
/// still be on its way.
#[derive(Debug, thiserror::Error)]
#[error("pack `{0}` not found (its purchase may still be processing)")]
pub struct PackNotFound(pub String);

/// Applies `transition` to pack `order_id` in one conditional
/// read-modify-write and returns its outcome. The transition returns whether
/// to write the changed pack, and what it decided.
///
/// # Errors
/// [`PackNotFound`] (retried); store errors.
pub async fn update_pack<R, F>(
    docs: &DocStore,
    order_id: &str,
    mut transition: F,
) -> anyhow::Result<R>
where
    R: Send,
    F: FnMut(&mut Pack) -> (bool, R) + Send,
{
    let outcome = docs
        .update_with(PACKS, order_id, |pack: Option<Pack>| match pack {
            Some(mut pack) => {
                let (write, outcome) = transition(&mut pack);
                (write.then_some(pack), Some(outcome))
            }
            None => (None, None),
        })
        .await?;
    outcome.ok_or_else(|| PackNotFound(order_id.to_owned()).into())
}

/// What the workflows need to know about a member, from Clerk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Primary email address.
    pub email: String,
    /// First name, if set.
    pub first_name: Option<String>,
    /// `publicMetadata.discordUserId`, once the member linked Discord.
    pub discord_user_id: Option<String>,
}

/// Looks the member `clerk_id` up in Clerk, in the step `step_id`.
///
/// # Errors
/// The step's error once retries are exhausted; an unknown member or one
/// without an email address fails at once.
pub async fn look_up_member(
    services: &Services,
    step: &Step,
    step_id: &str,
    clerk_id: &str,
) -> Result<Contact, StepError> {
    let clerk = services.clients.clerk.clone();
    let user_id = clerk_id.to_owned();
    step.run(step_id, || async move {
        let user = clerk.get_user(&user_id).await?;
        let email = user
            .primary_email
            .ok_or_else(|| NonRetriable::new(format!("Clerk user `{user_id}` has no email")))?;
        let discord_user_id = user.public_metadata["discordUserId"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        Ok(Contact {
            email,
            first_name: user.first_name,
            discord_user_id,
        })
    })
    .await
}

/// Emails `contact` in the step `step_id` (Postmark, tagged with the step
/// id): `body` gets their first name (`there` when unknown). Returns the
/// message id.
///
/// # Errors
/// The step's error once retries are exhausted; an unset `EMAIL_FROM` or a
/// rejected address fails at once.
pub async fn email_member(
    services: &Services,
    step: &Step,
    step_id: &str,
    contact: &Contact,
    subject: &str,
    body: impl FnOnce(&str) -> String,
) -> Result<String, StepError> {
    let email = services.clients.email.clone();
    let settings = services.settings.clone();
    let (to, subject, tag) = (
        contact.email.clone(),
        subject.to_owned(),
        step_id.to_owned(),
    );
    let text_body = body(contact.first_name.as_deref().unwrap_or("there"));
    step.run(step_id, || async move {
        let message = Email {
            from: settings.email_from().non_retriable()?.to_owned(),
            to,
            subject,
            text_body,
            html_body: None,
            tag: Some(tag),
        };
        Ok(email.send_email(&message).await?)
    })
    .await
}

/// Emails the member `clerk_id`: [`look_up_member`] in `<prefix>-look-up-member`
/// then [`email_member`] in `<prefix>-email`.
///
/// # Errors
/// As those two.
pub async fn notify_member(
    services: &Services,
    step: &Step,
    clerk_id: &str,
    prefix: &str,
    subject: &str,
    body: impl FnOnce(&str) -> String,
) -> Result<String, StepError> {
    let contact = look_up_member(
        services,
        step,
        &format!("{prefix}-look-up-member"),
        clerk_id,
    )
    .await?;
    email_member(
        services,
        step,
        &format!("{prefix}-email"),
        &contact,
        subject,
        body,
    )
    .await
}

/// Releases `clerk_id`'s seat if pack `order_id` still holds it (a renewal
/// keeps it), then revokes their dashboard access, emits [`SEAT_RELEASED`]
/// and emails them. A replay after a failure past the release carries on
/// (the revoke is idempotent, the event keeps its id; the email may repeat). Steps: `release-seat`, and once released
/// `revoke-dashboard-access`, `emit-seat-released`, `seat-released-*`.
/// Returns whether the seat was released.
///
/// # Errors
/// The failing step's error once its retries are exhausted.
pub async fn release_seat(
    services: &Services,
    step: &Step,
    clerk_id: &str,
    order_id: &str,
    reason: ReleaseReason,
) -> Result<bool, StepError> {
    let docs = services.docs.clone();
    let (member, order) = (clerk_id.to_owned(), order_id.to_owned());
    let released: bool = step
        .run("release-seat", || async move {
            let now = utc(docs.now_ms());
            Ok(docs
                .update_with(SEATS, &member, |seat: Option<Seat>| {
                    let Some(mut seat) = seat else {
                        return (None, false);
                    };
                    let was_released = seat.status == SeatStatus::Released;
                    let released = seat.release(&order, reason, now);
                    let write = released && !was_released;
                    (write.then_some(seat), released)
                })
                .await?)
        })
        .await?;
    if !released {
        return Ok(false);
    }
    let clerk = services.clients.clerk.clone();
    let member = clerk_id.to_owned();
    step.run("revoke-dashboard-access", || async move {
        clerk
            .update_public_metadata(&member, json!({ "dashboardAccess": false }))
            .await?;
        Ok(())
    })
    .await?;
    let event = Event::new(
        SEAT_RELEASED,
        json!({ "clerkId": clerk_id, "orderId": order_id, "reason": reason }),
    )
    .with_id(format!("seat-released-{order_id}"));
    step.send_event("emit-seat-released", [event]).await?;
    let subject = "Your mentorship seat has been released";
    let why = match reason {
        ReleaseReason::NotRenewed => "your last session was held and no new pack was bought",
        ReleaseReason::PackExpired => "your session pack has expired",
    };
    notify_member(services, step, clerk_id, "seat-released", subject, |name| {
        format!(
            "Hi {name},\n\nYour seat with our mentors has been released because {why}. \
             Buy a new pack any time to book sessions again.\n"
        )
    })
    .await?;
    Ok(true)
}
