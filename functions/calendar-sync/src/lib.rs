//! `calendar-sync`: keeps a live event's Google Calendar entry in step with
//! the event resource.
//!
//! On `resource/created` or `resource/updated` when `type` is `event`
//! (`{ "id", "type" }`):
//! 1. load the resource ("Resource not found" or a resource that is not a
//!    valid event, "Invalid event resource format": fail at once);
//! 2. Google Calendar must be configured (`GOOG_CREDENTIALS_JSON`,
//!    `GOOG_CALENDAR_IMPERSONATE_USER`); unset fails at once, naming them;
//! 3. map it to a calendar event: title, the Markdown body as HTML, start and
//!    end in the event's time zone (default `America/Los_Angeles`), the
//!    location, the platform as organizer with the host attending, and
//!    guests who can neither invite others nor see each other; an event
//!    without both times is skipped (`{ "skipped": true, .. }`);
//! 4. when the resource has a `calendarId`, read that entry: there and not
//!    cancelled, update it; gone or cancelled, create a new one;
//! 5. store the new `calendarId` on the resource when it changed.
//!
//! Invariants: the created entry's id comes from the resource and the entry
//! it replaces, so a retried create or a replayed run finds its own entry
//! instead of making a second one; runs for one resource go one at a time.

use chrono::{DateTime, Utc};
use course::{ContentResource, EVENT, RESOURCES, load_required};
use hookflow::{Concurrency, Ctx, Function, NonRetriable};
use hookflow_clients::google_calendar::{Attendee, Organizer};
use hookflow_clients::{EventDateTime, EventPatch, NewEvent, Services};
use serde_json::{Value, json};

/// The function id.
pub const ID: &str = "calendar-sync";
/// An event resource was created.
pub const CREATED: &str = "resource/created";
/// An event resource was updated.
pub const UPDATED: &str = "resource/updated";
/// Only live events have calendar entries.
pub const EVENTS_ONLY: &str = r#"event.data.type == "event""#;
/// The concurrency key: the event resource.
pub const ONE_AT_A_TIME_PER_EVENT: &str = "event.data.id";
/// The time zone of an event that names none.
pub const DEFAULT_TIME_ZONE: &str = "America/Los_Angeles";

/// Markdown to HTML (CommonMark, raw HTML passed through as written by the
/// platform's own editors).
#[must_use]
pub fn markdown_to_html(markdown: &str) -> String {
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(markdown));
    html
}

/// The calendar event for `resource`, hosted by `host` under the platform's
/// name `display_name`; `Ok(None)` when it lacks a start or an end.
///
/// # Errors
/// "Invalid event resource format" for a resource that is not an event, has
/// no title, or has a time that is not RFC 3339 or ends before it starts.
pub fn google_event(
    resource: &ContentResource,
    host: &str,
    display_name: &str,
) -> Result<Option<NewEvent>, NonRetriable> {
    let invalid = |why: &str| NonRetriable::new(format!("Invalid event resource format: {why}"));
    if resource.kind != EVENT {
        return Err(invalid("not an event"));
    }
    let fields = &resource.fields;
    let title = fields
        .title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| invalid("no title"))?;
    let time = |at: &Option<String>| -> Result<Option<DateTime<Utc>>, NonRetriable> {
        at.as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| invalid(&format!("{text:?} is not RFC 3339 ({e})")))
            })
            .transpose()
    };
    let (Some(start), Some(end)) = (time(&fields.starts_at)?, time(&fields.ends_at)?) else {
        return Ok(None);
    };
    if end < start {
        return Err(invalid("it ends before it starts"));
    }
    let zone = fields.timezone.as_deref().unwrap_or(DEFAULT_TIME_ZONE);
    let host_attends = Attendee {
        response_status: Some("accepted".into()),
        organizer: Some(true),
        ..Attendee::new(host)
    };
    Ok(Some(NewEvent {
        id: None,
        summary: title.to_owned(),
        description: fields.body.as_deref().map(markdown_to_html),
        location: fields.location.clone(),
        start: EventDateTime::at(start, zone),
        end: EventDateTime::at(end, zone),
        organizer: Some(Organizer {
            email: host.to_owned(),
            display_name: Some(display_name.to_owned()),
        }),
        attendees: vec![host_attends],
        guests_can_invite_others: false,
        guests_can_see_other_guests: false,
    }))
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Sync a live event to Google Calendar")
                .reads_env([
                    "GOOG_CREDENTIALS_JSON",
                    "GOOG_CALENDAR_IMPERSONATE_USER",
                    "GOOG_CALENDAR_ID",
                    "COURSE_SITE_TITLE",
                ]),
        )
        .on_event_if(CREATED, EVENTS_ONLY)
        .on_event_if(UPDATED, EVENTS_ONLY)
        // One run per event resource at a time: a create and a quick update
        // must not both find no entry and both create one.
        .concurrency(Concurrency::new(1).key(ONE_AT_A_TIME_PER_EVENT))
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { sync(&services, ctx).await }
        })
}

async fn sync(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let id = ctx.event.data["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| NonRetriable::new("event without data.id"))?
        .to_owned();
    let resource: ContentResource = load_required(
        &ctx,
        &services.docs,
        "get-event-resource",
        (RESOURCES, &id),
        "Resource not found",
    )
    .await?;
    let calendar = services.clients.google_calendar.clone();
    let host = calendar
        .impersonated_user()
        .map(str::to_owned)
        .ok_or_else(|| {
            NonRetriable::new(format!(
                "Google Calendar not configured: set {}",
                calendar.disabled_var().unwrap_or("GOOG_CREDENTIALS_JSON")
            ))
        })?;
    let display_name = services.settings.course_site_title()?.to_owned();
    let Some(mut wanted) = google_event(&resource, &host, &display_name)? else {
        return Ok(json!({ "skipped": true, "reason": "Missing required fields" }));
    };

    let mut outcome = None;
    if let Some(calendar_id) = resource.fields.calendar_id.clone() {
        let (reader, entry) = (calendar.clone(), calendar_id.clone());
        let existing = ctx
            .step
            .run("get-google-event", move || async move {
                Ok(reader.get_event(&entry).await?)
            })
            .await?;
        if existing.is_some_and(|event| !event.is_cancelled()) {
            let patch = EventPatch {
                summary: Some(wanted.summary.clone()),
                description: wanted.description.clone(),
                location: wanted.location.clone(),
                start: Some(wanted.start.clone()),
                end: Some(wanted.end.clone()),
                ..EventPatch::default()
            };
            let (writer, entry) = (calendar.clone(), calendar_id.clone());
            ctx.step
                .run("update-google-event", move || async move {
                    Ok(writer.patch_event(&entry, &patch).await?)
                })
                .await?;
            outcome = Some(("updated", calendar_id));
        }
    }
    let (outcome, calendar_id) = match outcome {
        Some(done) => done,
        None => {
            // The entry's id comes from the resource and the entry it
            // replaces (`hf` + hex: Google's base32hex alphabet), not from the
            // run: a retried create, or a replay whose `store-calendar-id`
            // never landed, finds its own entry (Google answers 409).
            let replaced = resource.fields.calendar_id.clone().unwrap_or_default();
            wanted.id = Some(format!(
                "hf{}",
                hookflow::event::derived_id(&[&resource.id, &replaced])
            ));
            let writer = calendar.clone();
            let created = ctx
                .step
                .run("create-google-event", move || async move {
                    Ok(writer.insert_event(&wanted).await?)
                })
                .await?;
            ("created", created.id)
        }
    };
    if resource.fields.calendar_id.as_deref() != Some(calendar_id.as_str()) {
        let (docs, key, stored) = (services.docs.clone(), id.clone(), calendar_id.clone());
        ctx.step
            .run("store-calendar-id", move || async move {
                docs.update::<ContentResource, _>(RESOURCES, &key, |current| {
                    let mut resource = current?;
                    (resource.fields.calendar_id.as_deref() != Some(stored.as_str())).then(|| {
                        resource.fields.calendar_id = Some(stored.clone());
                        resource
                    })
                })
                .await?;
                Ok(())
            })
            .await?;
    }
    Ok(json!({ "outcome": outcome, "calendarId": calendar_id }))
}

#[cfg(test)]
mod tests {
    use course::ResourceFields;

    use super::*;

    fn live(starts: Option<&str>, ends: Option<&str>) -> ContentResource {
        ContentResource {
            id: "ev_1".into(),
            kind: EVENT.into(),
            fields: ResourceFields {
                title: Some("Office hours".into()),
                body: Some("Bring **questions**.".into()),
                starts_at: starts.map(str::to_owned),
                ends_at: ends.map(str::to_owned),
                ..ResourceFields::default()
            },
            resources: Vec::new(),
        }
    }

    #[test]
    fn an_event_maps_to_a_private_calendar_entry_in_its_time_zone() {
        let event = google_event(
            &live(Some("2026-12-10T17:00:00Z"), Some("2026-12-10T18:00:00Z")),
            "host@x.example",
            "Site",
        )
        .unwrap()
        .unwrap();
        assert_eq!(event.summary, "Office hours");
        assert_eq!(
            event.description.as_deref(),
            Some("<p>Bring <strong>questions</strong>.</p>\n")
        );
        assert_eq!(event.start.time_zone.as_deref(), Some(DEFAULT_TIME_ZONE));
        assert!(!event.guests_can_invite_others && !event.guests_can_see_other_guests);
        assert_eq!(
            event.attendees[0].response_status.as_deref(),
            Some("accepted")
        );
    }

    #[test]
    fn missing_times_skip_and_bad_ones_are_invalid() {
        assert_eq!(
            google_event(&live(Some("2026-12-10T17:00:00Z"), None), "h", "S").unwrap(),
            None
        );
        for (starts, ends) in [
            ("tomorrow", "2026-12-10T18:00:00Z"),
            ("2026-12-10T19:00:00Z", "2026-12-10T18:00:00Z"),
        ] {
            let err = google_event(&live(Some(starts), Some(ends)), "h", "S").unwrap_err();
            assert!(
                err.to_string().contains("Invalid event resource format"),
                "{err}"
            );
        }
    }
}
