//! The course platform's records, as its workflows keep them in the document
//! store: users and their accounts, roles and communication preferences;
//! products, content resources (cohorts, workshops, lessons, live events and
//! event series), purchases, coupons, organizations and entitlements. The
//! plan keeps these in the app's SQL database; here each is a document keyed
//! so that a workflow reads one by id, or lists one user's (or one cohort's)
//! by key prefix (`DocStore::list_prefixed`).
//!
//! It also holds what the platform's workflows share: loading a record that
//! must exist in a step ([`load_required`]) and escaping
//! text for their HTML emails ([`escape_html`]).
//!
//! Invariant: every record a workflow creates has a key derived from what
//! caused it (the purchase, the resource, the user), so a retried or
//! replayed step finds its own record instead of making a second one.

mod commerce;
mod content;
mod people;

pub use commerce::*;
pub use content::*;
pub use people::*;

pub use hookflow_docs::load_required;

/// `text` made safe inside HTML text or a quoted attribute: `&`, `<`, `>`
/// and `"` escaped (the platform's emails put names and titles in HTML).
#[must_use]
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
