//! The course platform's records, as its workflows keep them in the document
//! store: users and their accounts, roles and communication preferences;
//! products, content resources (cohorts, workshops, lessons, live events and
//! event series), purchases, coupons, organizations and entitlements. The
//! plan keeps these in the app's SQL database; here each is a document keyed
//! so that a workflow reads one by id, or lists one user's (or one cohort's)
//! by key prefix ([`list_prefixed`]).
//!
//! It also holds what the platform's workflows share: loading a record that
//! must exist in a step ([`load_required`]), listing by prefix, and escaping
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

use hookflow::{Ctx, NonRetriable};
use hookflow_docs::DocStore;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The document at (`collection`, `key`), read in step `step` (so a replay
/// reads the checkpoint, not the store); missing, the run fails at once with
/// `missing` (the plan's "User not found", "Product not found", ...).
///
/// # Errors
/// `missing` ([`NonRetriable`]); store failures (retried); a step error.
pub async fn load_required<T>(
    ctx: &Ctx,
    docs: &DocStore,
    step: &str,
    (collection, key): (&str, &str),
    missing: &str,
) -> anyhow::Result<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let (docs, collection, key) = (docs.clone(), collection.to_owned(), key.to_owned());
    let missing = missing.to_owned();
    Ok(ctx
        .step
        .run(step, move || async move {
            match docs.get::<T>(&collection, &key).await? {
                Some((value, _)) => Ok(value),
                None => Err(NonRetriable::new(missing).into()),
            }
        })
        .await?)
}

/// Every document of `collection` whose key starts with `prefix`, in key
/// order, decoded as `T` (a page of 100 at a time).
///
/// # Errors
/// Store failures; a stored value that is not a `T`.
pub async fn list_prefixed<T: DeserializeOwned>(
    docs: &DocStore,
    collection: &str,
    prefix: &str,
) -> hookflow::Result<Vec<T>> {
    const PAGE: usize = 100;
    let mut found = Vec::new();
    // Keys sort in UTF-8 byte order, so every key with the prefix sorts
    // after the prefix itself (never a full key: keys add a part to it).
    let mut after = prefix.to_owned();
    loop {
        let page = docs.list_docs(collection, Some(&after), PAGE).await?;
        let full = page.len() == PAGE;
        for doc in page {
            if !doc.key.starts_with(prefix) {
                return Ok(found);
            }
            after.clone_from(&doc.key);
            found.push(serde_json::from_value(doc.value)?);
        }
        if !full {
            return Ok(found);
        }
    }
}

/// `text` made safe inside HTML text or a quoted attribute: `&`, `<`, `>`
/// and `"` escaped (the platform's emails put names and titles in HTML).
#[must_use]
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
