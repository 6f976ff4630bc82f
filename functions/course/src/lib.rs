//! The course platform's records, as its workflows keep them in the document
//! store: users and their accounts, roles and communication preferences;
//! products, content resources (cohorts, workshops, lessons, live events and
//! event series), purchases, coupons, organizations and entitlements. The
//! plan keeps these in the app's SQL database; here each is a document keyed
//! so that a workflow reads one by id, or lists one user's (or one cohort's)
//! by key prefix ([`list_prefixed`]).
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

use hookflow_docs::DocStore;
use serde::de::DeserializeOwned;

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
