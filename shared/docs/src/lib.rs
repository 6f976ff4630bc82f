//! Documents: the small key-value store Hookflow provides for domain records
//! (payments, packs, seats, sessions), on the same backends as the engine, so a
//! reference function runs unchanged on SQLite and on DynamoDB.
//!
//! A document lives at (`collection`, `key`) and carries a JSON value and a
//! version. Writes are conditional: [`Documents::create_doc`] only when the key
//! is absent (persist a payment exactly once, create a pack idempotently on the
//! order id), [`Documents::replace_doc`] and [`Documents::delete_doc`] only when
//! the stored version is the one the caller read (optimistic concurrency).
//!
//! Implementations must make each of those writes one atomic conditional
//! operation, read with strong consistency, number versions from 1 (create) and
//! by +1 per replace, list a collection in key order (UTF-8 byte order), and
//! reject invalid names and values over [`MAX_DOCUMENT_BYTES`] with a
//! [`DocumentError`] before touching storage ([`encode_document`] and
//! [`check_names`] and [`check_collection`] do both).
//!
//! Handler code is not generic over the backend: it uses [`DocStore`], a
//! cloneable handle over any [`Documents`] implementation with typed helpers.
//! The trait takes `now` explicitly, like the other store traits; a
//! [`DocStore`] holds the [`Clock`] (the system clock unless given another,
//! e.g. the engine's fake clock in tests) and stamps `updated_at` itself.

mod doc_store;
#[cfg(feature = "testing")]
pub mod testkit;

pub use doc_store::{DocStore, load_required};

use std::future::Future;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use hookflow::error::{Error, Result};
use hookflow::failure::NonRetriable;

/// Largest serialized (compact JSON) document value: 256 KiB, below DynamoDB's
/// 400 KB item limit with room for the key and attributes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Longest collection name, in bytes.
pub const MAX_COLLECTION_BYTES: usize = 64;
/// Longest document key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// How many times [`DocStore::update`] reads and writes before giving up.
pub const UPDATE_ATTEMPTS: u32 = 10;

/// A stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The collection (e.g. `payments`).
    pub collection: String,
    /// The key within the collection (e.g. a provider's payment id).
    pub key: String,
    /// The value.
    pub value: Value,
    /// 1 when created, +1 per replace.
    pub version: u64,
    /// When it was last written (ms).
    pub updated_at: i64,
}

/// Why a document operation was refused. Reaches callers as
/// [`Error::Store`]; find it with [`DocumentError::of`].
///
/// Invalid names and oversized values carry [`NonRetriable`] in their source
/// chain, so a step that hits one fails at once instead of retrying a write
/// that cannot succeed; contention is retried like any store error.
#[derive(Debug)]
pub enum DocumentError {
    /// A collection name or key breaks the naming rules.
    InvalidName {
        /// The collection.
        collection: String,
        /// The key.
        key: String,
        /// Which rule.
        reason: String,
    },
    /// The serialized value is over [`MAX_DOCUMENT_BYTES`].
    TooLarge {
        /// The collection.
        collection: String,
        /// The key.
        key: String,
        /// The serialized size in bytes.
        bytes: usize,
    },
    /// [`DocStore::update`] lost the race to concurrent writers on every attempt.
    Contention {
        /// The collection.
        collection: String,
        /// The key.
        key: String,
        /// How many read-modify-write attempts were made.
        attempts: u32,
    },
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidName {
                collection,
                key,
                reason,
            } if key.is_empty() => write!(f, "collection `{collection}`: {reason}"),
            Self::InvalidName {
                collection,
                key,
                reason,
            } => write!(f, "document `{collection}/{key}`: {reason}"),
            Self::TooLarge {
                collection,
                key,
                bytes,
            } => write!(
                f,
                "document `{collection}/{key}` is {bytes} bytes as JSON, over the \
                 {MAX_DOCUMENT_BYTES}-byte limit: store large data elsewhere and keep a reference"
            ),
            Self::Contention {
                collection,
                key,
                attempts,
            } => write!(
                f,
                "document `{collection}/{key}` changed under every one of {attempts} update \
                 attempts (concurrent writers)"
            ),
        }
    }
}

/// The marker that makes invalid writes final in step code.
static NOT_RETRIABLE: LazyLock<NonRetriable> =
    LazyLock::new(|| NonRetriable::new("retrying the same document write cannot succeed"));

impl std::error::Error for DocumentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidName { .. } | Self::TooLarge { .. } => Some(&*NOT_RETRIABLE),
            Self::Contention { .. } => None,
        }
    }
}

impl From<DocumentError> for Error {
    fn from(err: DocumentError) -> Self {
        Self::store(err)
    }
}

impl DocumentError {
    /// The document error inside `err`, if it is one.
    #[must_use]
    pub fn of(err: &Error) -> Option<&Self> {
        match err {
            Error::Store(source) => source.downcast_ref(),
            _ => None,
        }
    }
}

fn invalid_name(collection: &str, key: &str, reason: String) -> Error {
    DocumentError::InvalidName {
        collection: collection.to_owned(),
        key: key.to_owned(),
        reason,
    }
    .into()
}

/// Checks a collection name: 1 to [`MAX_COLLECTION_BYTES`] bytes of ASCII
/// letters, digits, `-`, `_` and `.`.
///
/// # Errors
/// [`DocumentError::InvalidName`] naming the rule.
pub fn check_collection(collection: &str) -> Result<()> {
    if collection.is_empty() || collection.len() > MAX_COLLECTION_BYTES {
        return Err(invalid_name(
            collection,
            "",
            format!("collection names are 1 to {MAX_COLLECTION_BYTES} bytes"),
        ));
    }
    if !collection
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(invalid_name(
            collection,
            "",
            "collection names use only ASCII letters, digits, `-`, `_` and `.`".into(),
        ));
    }
    Ok(())
}

/// Checks a collection name ([`check_collection`]) and a key: 1 to
/// [`MAX_KEY_BYTES`] bytes of UTF-8 without control characters.
///
/// # Errors
/// [`DocumentError::InvalidName`] naming the rule.
pub fn check_names(collection: &str, key: &str) -> Result<()> {
    check_collection(collection)?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid_name(
            collection,
            key,
            format!("keys are 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid_name(
            collection,
            key,
            "keys contain no control characters".into(),
        ));
    }
    Ok(())
}

/// Checks the names and serializes `value` as compact JSON, the form backends
/// store and the size limit applies to.
///
/// # Errors
/// [`DocumentError::InvalidName`] or [`DocumentError::TooLarge`].
pub fn encode_document(collection: &str, key: &str, value: &Value) -> Result<String> {
    check_names(collection, key)?;
    let body = serde_json::to_string(value)?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            collection: collection.to_owned(),
            key: key.to_owned(),
            bytes: body.len(),
        }
        .into());
    }
    Ok(body)
}

/// Versioned JSON documents by collection and key.
pub trait Documents: Send + Sync {
    /// The document at (`collection`, `key`), read consistently.
    fn get_doc(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Document>>> + Send;

    /// Creates the document at version 1 unless the key exists. Returns `true`
    /// when created, `false` when a document was already there (left unchanged).
    fn create_doc(
        &self,
        collection: &str,
        key: &str,
        value: &Value,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Replaces the value if the stored version is `expected_version`; the new
    /// version is `expected_version + 1`. Returns `false` when the document is
    /// missing or at another version (nothing written).
    fn replace_doc(
        &self,
        collection: &str,
        key: &str,
        value: &Value,
        expected_version: u64,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes the document if the stored version is `expected_version`.
    /// Returns `false` when it is missing or at another version.
    fn delete_doc(
        &self,
        collection: &str,
        key: &str,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Up to `limit` documents of `collection` in key order whose key sorts
    /// after `after` (from the start when `None`), read consistently. A page
    /// shorter than `limit` is the last; pass the last key read as the next
    /// `after`. Meant for crons walking a collection page by page.
    fn list_docs(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Document>>> + Send;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use hookflow::failure::{Verdict, classify};

    #[test]
    fn names_and_sizes_are_checked_before_storage() {
        assert!(check_names("payments", "cs_test_123").is_ok());
        assert!(check_names("seat-reservations.v2", "user_2x/ü").is_ok());
        for (collection, key) in [
            ("", "k"),
            ("bad#name", "k"),
            ("payments", ""),
            ("payments", "a\nb"),
        ] {
            let err = check_names(collection, key).unwrap_err();
            assert!(
                matches!(
                    DocumentError::of(&err),
                    Some(DocumentError::InvalidName { .. })
                ),
                "{collection:?}/{key:?}: {err}"
            );
        }
        let at_limit = Value::String("x".repeat(MAX_DOCUMENT_BYTES - 2));
        assert_eq!(
            encode_document("c", "k", &at_limit).unwrap().len(),
            MAX_DOCUMENT_BYTES
        );
        let over = json!("x".repeat(MAX_DOCUMENT_BYTES - 1));
        let err = encode_document("c", "k", &over).unwrap_err();
        assert!(matches!(
            DocumentError::of(&err),
            Some(DocumentError::TooLarge { bytes, .. }) if *bytes == MAX_DOCUMENT_BYTES + 1
        ));
        assert!(err.to_string().contains("262144-byte limit"), "{err}");
    }

    #[test]
    fn invalid_writes_fail_a_step_at_once_and_contention_retries() {
        let too_large: anyhow::Error =
            encode_document("c", "k", &json!("x".repeat(MAX_DOCUMENT_BYTES)))
                .unwrap_err()
                .into();
        assert_eq!(classify(&too_large), Verdict::Final);
        let contention: anyhow::Error = Error::from(DocumentError::Contention {
            collection: "c".into(),
            key: "k".into(),
            attempts: UPDATE_ATTEMPTS,
        })
        .into();
        assert_eq!(classify(&contention), Verdict::Retry);
    }
}
