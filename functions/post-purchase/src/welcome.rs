//! The welcome emails: the plan's `CohortWelcomeEmail` and
//! `WorkshopWelcomeEmail`, each in an individual variant (to the learner)
//! and a team-purchaser variant (to the buyer of seats, with the link that
//! redeems one).

use course::{COHORT, ContentResource, Coupon, Product, User, escape_html};
use hookflow_clients::ResendEmail;
use hookflow_clients::resend::Tag;
use serde::{Deserialize, Serialize};

/// An email to send, before the sender is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// `cohort-welcome` or `workshop-welcome`, `-team` for a purchaser.
    pub template: String,
}

impl Welcome {
    /// The Resend message from `from`.
    #[must_use]
    pub fn into_resend(self, from: String) -> ResendEmail {
        ResendEmail {
            from,
            to: vec![self.to],
            subject: self.subject,
            html: self.html,
            tags: vec![Tag {
                name: "template".into(),
                value: self.template,
            }],
            ..ResendEmail::default()
        }
    }
}

/// Where a resource lives on the site.
fn resource_url(resource: &ContentResource, public_url: &str) -> String {
    let section = if resource.kind == COHORT {
        "cohorts"
    } else {
        "workshops"
    };
    let slug = resource.fields.slug.as_deref().unwrap_or(&resource.id);
    format!("{public_url}/{section}/{slug}")
}

fn greeting(user: &User) -> String {
    user.name.as_deref().map_or_else(
        || "Hi,".to_owned(),
        |name| format!("Hi {},", escape_html(name)),
    )
}

/// The welcome for a learner who bought (or was given a seat of) `resource`.
#[must_use]
pub fn individual_welcome(
    product: &Product,
    resource: &ContentResource,
    user: &User,
    from_team: bool,
    public_url: &str,
) -> Welcome {
    let title = escape_html(resource.title());
    let (subject, template, what) = if resource.kind == COHORT {
        (
            format!("Welcome to {}!", resource.title()),
            "cohort-welcome",
            "cohort",
        )
    } else {
        (
            format!("Welcome to {}!", resource.title()),
            "workshop-welcome",
            "workshop",
        )
    };
    let seat = if from_team {
        format!(
            " Your team gave you a seat in {}.",
            escape_html(&product.name)
        )
    } else {
        String::new()
    };
    let url = resource_url(resource, public_url);
    Welcome {
        to: user.email.clone(),
        subject,
        html: format!(
            "<p>{}</p><p>You're in the {what} <strong>{title}</strong>.{seat}</p>\
             <p><a href=\"{url}\">Start here</a></p>",
            greeting(user),
        ),
        template: template.to_owned(),
    }
}

/// The note to a team purchaser: the seats they bought and the link that
/// redeems one.
#[must_use]
pub fn team_welcome(
    product: &Product,
    resource: &ContentResource,
    purchaser: &User,
    coupon: &Coupon,
    public_url: &str,
) -> Welcome {
    let template = if resource.kind == COHORT {
        "cohort-welcome-team"
    } else {
        "workshop-welcome-team"
    };
    let redeem = format!("{public_url}/?code={}", coupon.id);
    Welcome {
        to: purchaser.email.clone(),
        subject: format!("Your team's seats for {}", resource.title()),
        html: format!(
            "<p>{}</p><p>You bought {} seats of <strong>{}</strong> ({}). Share this link \
             with your team; each person who opens it claims a seat:</p>\
             <p><a href=\"{redeem}\">{redeem}</a></p>",
            greeting(purchaser),
            coupon.max_uses,
            escape_html(resource.title()),
            escape_html(&product.name),
        ),
        template: template.to_owned(),
    }
}
