//! Content: the resources a product grants (cohorts, workshops, their
//! lessons and sections) and live events, single or in a series.

use serde::{Deserialize, Serialize};

/// Content resources, by id.
pub const RESOURCES: &str = "content_resources";

/// A cohort (a course run on a schedule, with a Discord role).
pub const COHORT: &str = "cohort";
/// A self-paced workshop.
pub const WORKSHOP: &str = "workshop";
/// One live event, with a Google Calendar entry.
pub const EVENT: &str = "event";
/// Live events sold together; each child has its own calendar entry.
pub const EVENT_SERIES: &str = "event-series";

/// A content resource: its type, its fields and the ids of the resources
/// nested in it (a cohort's workshops, a workshop's lessons, a series'
/// events), in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentResource {
    /// Its id.
    pub id: String,
    /// `cohort`, `workshop`, `lesson`, `section`, `event`, `event-series`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The fields the workflows read.
    #[serde(default)]
    pub fields: ResourceFields,
    /// Nested resources, by id.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// The fields of a [`ContentResource`] (all optional: each type uses some).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFields {
    /// Display title.
    #[serde(default)]
    pub title: Option<String>,
    /// URL slug (`/cohorts/{slug}`).
    #[serde(default)]
    pub slug: Option<String>,
    /// Description, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// An event's start (RFC 3339).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// An event's end (RFC 3339).
    #[serde(default)]
    pub ends_at: Option<String>,
    /// An event's IANA time zone (default `America/Los_Angeles`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where an event happens (a URL or an address).
    #[serde(default)]
    pub location: Option<String>,
    /// An event's Google Calendar event id, once created.
    #[serde(default)]
    pub calendar_id: Option<String>,
    /// The Discord role of a cohort's or workshop's learners.
    #[serde(default)]
    pub discord_role_id: Option<String>,
}

impl ContentResource {
    /// Its title, or its id when it has none.
    #[must_use]
    pub fn title(&self) -> &str {
        self.fields.title.as_deref().unwrap_or(&self.id)
    }

    /// Whether it is one live event or a series of them.
    #[must_use]
    pub fn is_event(&self) -> bool {
        self.kind == EVENT || self.kind == EVENT_SERIES
    }
}

/// Most resources [`nested_ids`] walks (a cohort with its workshops and
/// their lessons).
pub const MAX_NESTED: usize = 1_000;

/// The ids of `root` and of every resource nested in it, breadth first,
/// each once (a cycle ends the walk there), at most [`MAX_NESTED`]. A
/// nested id with no document is left out.
///
/// # Errors
/// Store failures; a stored resource that does not decode.
pub async fn nested_ids(
    docs: &hookflow_docs::DocStore,
    root: &ContentResource,
) -> hookflow::Result<Vec<String>> {
    let mut ids = vec![root.id.clone()];
    let mut seen = std::collections::BTreeSet::from([root.id.clone()]);
    let mut queue = std::collections::VecDeque::from([root.resources.clone()]);
    while let Some(children) = queue.pop_front() {
        for child in children {
            if ids.len() >= MAX_NESTED || !seen.insert(child.clone()) {
                continue;
            }
            if let Some((resource, _)) = docs.get::<ContentResource>(RESOURCES, &child).await? {
                ids.push(resource.id);
                queue.push_back(resource.resources);
            }
        }
    }
    Ok(ids)
}
