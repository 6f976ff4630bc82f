//! `course-email-status`: Postmark's word on an address, recorded on its
//! owner's newsletter preference.
//!
//! On `postmark/Bounce` or `postmark/SpamComplaint`: a hard bounce or a spam
//! complaint (or any bounce
//! Postmark reports as making the address `Inactive`) turns the preference
//! off with the bounce type as the reason, so broadcasts stop; any other
//! bounce only stamps `bouncedAt`. On `postmark/Delivery`: stamps
//! `deliveredAt`. An address no user owns is skipped. The preference is
//! created when missing (off, if the news is a hard bounce); writes are
//! read-modify-write, so a redelivered webhook changes nothing more.

use chrono::DateTime;
use course::{
    CommunicationPreference, PREFERENCES, USERS_BY_EMAIL, email_key, newsletter_on_email,
    preference_key,
};
use hookflow::{Ctx, Function, NonRetriable};
use hookflow_clients::Services;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "course-email-status";
/// Postmark's bounce webhook.
pub const BOUNCE: &str = "postmark/Bounce";
/// Postmark's delivery webhook.
pub const DELIVERY: &str = "postmark/Delivery";
/// Postmark's spam complaint webhook (a bounce record of type
/// `SpamComplaint`, sent under its own record type).
pub const SPAM_COMPLAINT: &str = "postmark/SpamComplaint";
/// Bounce types that end sending to an address.
pub const STOPS_SENDING: [&str; 3] = ["HardBounce", "SpamComplaint", "BadEmailAddress"];

/// What the webhook says about an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Delivered at (ms).
    Delivered(i64),
    /// Bounced at (ms); `stop` when sending must end, with the bounce type.
    Bounced {
        /// When.
        at: i64,
        /// Postmark's bounce type (`HardBounce`).
        kind: String,
        /// Whether sending must end.
        stop: bool,
    },
}

/// The address and its status from a Postmark webhook body.
///
/// # Errors
/// A body without its address or time.
pub fn status(name: &str, data: &Value) -> Result<(String, Status), NonRetriable> {
    let field = |key: &str| {
        data[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NonRetriable::new(format!("{name} without {key}")))
    };
    let time = |key: &str| {
        let text = field(key)?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| NonRetriable::new(format!("{key} {text:?}: {e}")))
    };
    if name == DELIVERY {
        return Ok((
            field("Recipient")?.to_owned(),
            Status::Delivered(time("DeliveredAt")?),
        ));
    }
    let kind = if name == SPAM_COMPLAINT {
        "SpamComplaint".to_owned()
    } else {
        field("Type")?.to_owned()
    };
    let stop = STOPS_SENDING.contains(&kind.as_str()) || data["Inactive"] == true;
    let status = Status::Bounced {
        at: time("BouncedAt")?,
        kind,
        stop,
    };
    Ok((field("Email")?.to_owned(), status))
}

/// `preference` with `status` recorded; `None` when it changes nothing.
#[must_use]
pub fn record(
    mut preference: CommunicationPreference,
    status: &Status,
) -> Option<CommunicationPreference> {
    let before = preference.clone();
    match status {
        Status::Delivered(at) => {
            preference.delivered_at = Some(preference.delivered_at.map_or(*at, |d| d.max(*at)));
        }
        Status::Bounced { at, kind, stop } => {
            preference.bounced_at = Some(preference.bounced_at.map_or(*at, |b| b.max(*at)));
            if *stop && preference.active {
                preference.active = false;
                preference.opted_out_reason = Some(kind.clone());
            }
        }
    }
    (preference != before).then_some(preference)
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Record an email bounce or delivery"))
        .on_event(BOUNCE)
        .on_event(DELIVERY)
        .on_event(SPAM_COMPLAINT)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { update(&services, ctx).await }
        })
}

async fn update(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let (address, status) = status(&ctx.event.name, &ctx.event.data)?;
    let docs = services.docs.clone();
    let recorded = status.clone();
    let outcome: Value = ctx
        .step
        .run("record-on-preference", move || async move {
            let Some((owner, _)) = docs
                .get::<Value>(USERS_BY_EMAIL, &email_key(&address))
                .await?
            else {
                return Ok(json!({ "skipped": "no user has this address" }));
            };
            let user_id = owner["userId"].as_str().unwrap_or_default().to_owned();
            let (kind, channel) = newsletter_on_email(&docs).await?;
            let key = preference_key(&user_id, &kind.id);
            let written = docs
                .update::<CommunicationPreference, _>(PREFERENCES, &key, |current| {
                    let current = current.unwrap_or_else(|| {
                        CommunicationPreference::active(&user_id, &kind.id, &channel.id)
                    });
                    record(current, &recorded)
                })
                .await?;
            let active = match written {
                Some(preference) => preference.active,
                None => docs
                    .get::<CommunicationPreference>(PREFERENCES, &key)
                    .await?
                    .is_some_and(|(p, _)| p.active),
            };
            Ok(json!({ "userId": user_id, "active": active }))
        })
        .await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_bounce_stops_sending_and_a_soft_one_does_not() {
        let fresh = CommunicationPreference::active("u", "t", "c");
        let hard = Status::Bounced {
            at: 5,
            kind: "HardBounce".into(),
            stop: true,
        };
        let off = record(fresh.clone(), &hard).unwrap();
        assert!(!off.active);
        assert_eq!(off.opted_out_reason.as_deref(), Some("HardBounce"));
        assert_eq!(record(off, &hard), None, "a redelivery changes nothing");
        let soft = Status::Bounced {
            at: 5,
            kind: "SoftBounce".into(),
            stop: false,
        };
        let still = record(fresh, &soft).unwrap();
        assert!(still.active);
        assert_eq!(still.bounced_at, Some(5));
    }

    #[test]
    fn a_spam_complaint_stops_sending() {
        let data = serde_json::json!({"RecordType": "SpamComplaint", "Type": "SpamComplaint",
            "Email": "zoe@example.com", "BouncedAt": "2025-06-02T10:24:30Z", "Inactive": false});
        let (address, got) = status(SPAM_COMPLAINT, &data).unwrap();
        assert_eq!(address, "zoe@example.com");
        assert!(
            matches!(got, Status::Bounced { stop: true, ref kind, .. } if kind == "SpamComplaint")
        );
    }
}
