//! [`DocStore`]: the cloneable handle workflow code uses over any
//! [`Documents`] implementation, with typed helpers and a retrying
//! read-modify-write.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use hookflow::clock::{Clock, SystemClock};
use hookflow::error::Result;
use hookflow::{Ctx, NonRetriable};

use crate::{Document, DocumentError, Documents, UPDATE_ATTEMPTS};

/// [`Documents`] made object-safe, for [`DocStore`].
trait DynDocuments: Send + Sync {
    fn get<'a>(&'a self, c: &'a str, k: &'a str) -> BoxFuture<'a, Result<Option<Document>>>;
    fn create<'a>(
        &'a self,
        c: &'a str,
        k: &'a str,
        v: &'a Value,
        now: i64,
    ) -> BoxFuture<'a, Result<bool>>;
    fn replace<'a>(
        &'a self,
        c: &'a str,
        k: &'a str,
        v: &'a Value,
        version: u64,
        now: i64,
    ) -> BoxFuture<'a, Result<bool>>;
    fn delete<'a>(&'a self, c: &'a str, k: &'a str, version: u64) -> BoxFuture<'a, Result<bool>>;
    fn list<'a>(
        &'a self,
        c: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>>>;
}

impl<S: Documents> DynDocuments for S {
    fn get<'a>(&'a self, c: &'a str, k: &'a str) -> BoxFuture<'a, Result<Option<Document>>> {
        Box::pin(self.get_doc(c, k))
    }

    fn create<'a>(
        &'a self,
        c: &'a str,
        k: &'a str,
        v: &'a Value,
        now: i64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.create_doc(c, k, v, now))
    }

    fn replace<'a>(
        &'a self,
        c: &'a str,
        k: &'a str,
        v: &'a Value,
        version: u64,
        now: i64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.replace_doc(c, k, v, version, now))
    }

    fn delete<'a>(&'a self, c: &'a str, k: &'a str, version: u64) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.delete_doc(c, k, version))
    }

    fn list<'a>(
        &'a self,
        c: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>>> {
        Box::pin(self.list_docs(c, after, limit))
    }
}

/// A cloneable handle on the document store for handler code, which is not
/// generic over the backend. Stamps `updated_at` from its [`Clock`].
///
/// Use it inside steps (`step.run("record payment", ...)`) so a replay reads
/// the journaled result instead of the store.
#[derive(Clone)]
pub struct DocStore {
    inner: Arc<dyn DynDocuments>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DocStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocStore").finish_non_exhaustive()
    }
}

impl DocStore {
    /// A handle on `store`'s documents, stamping writes with the system clock.
    pub fn new<S: Documents + 'static>(store: S) -> Self {
        Self {
            inner: Arc::new(store),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same handle, stamping writes with `clock` (give it the engine's).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The time writes are stamped with (ms): steps that record "now" in a
    /// document read it here, so tests on a fake clock see fake time.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The document at (`collection`, `key`).
    ///
    /// # Errors
    /// Invalid names; store failures.
    pub fn get_doc<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Document>>> {
        self.inner.get(collection, key)
    }

    /// Creates the document unless the key exists; `true` when created.
    ///
    /// # Errors
    /// Invalid names, a value over [`MAX_DOCUMENT_BYTES`]; store failures.
    pub fn create_doc<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        value: &'a Value,
    ) -> BoxFuture<'a, Result<bool>> {
        self.inner
            .create(collection, key, value, self.clock.now_ms())
    }

    /// Replaces the value if the stored version is `expected_version`.
    ///
    /// # Errors
    /// Invalid names, a value over [`MAX_DOCUMENT_BYTES`]; store failures.
    pub fn replace_doc<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        value: &'a Value,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        self.inner.replace(
            collection,
            key,
            value,
            expected_version,
            self.clock.now_ms(),
        )
    }

    /// Deletes the document if the stored version is `expected_version`.
    ///
    /// # Errors
    /// Invalid names; store failures.
    pub fn delete_doc<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        self.inner.delete(collection, key, expected_version)
    }

    /// Up to `limit` documents of `collection` in key order, after the key
    /// `after` (see [`Documents::list_docs`]).
    ///
    /// # Errors
    /// An invalid collection name; store failures.
    pub fn list_docs<'a>(
        &'a self,
        collection: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>>> {
        self.inner.list(collection, after, limit)
    }

    /// Every document of `collection` whose key starts with `prefix`, in key
    /// order, decoded as `T` (read a page of 100 at a time).
    ///
    /// # Errors
    /// Store failures; a stored value that is not a `T`.
    pub async fn list_prefixed<T: DeserializeOwned>(
        &self,
        collection: &str,
        prefix: &str,
    ) -> Result<Vec<T>> {
        const PAGE: usize = 100;
        let mut found = Vec::new();
        // Keys sort in UTF-8 byte order, so every key with the prefix sorts
        // after the prefix itself (never a full key: keys add a part to it).
        let mut after = prefix.to_owned();
        loop {
            let page = self.list_docs(collection, Some(&after), PAGE).await?;
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

    /// The document decoded as `T`, with its version.
    ///
    /// # Errors
    /// A value that is not a `T`; invalid names; store failures.
    pub async fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<(T, u64)>> {
        match self.get_doc(collection, key).await? {
            Some(doc) => Ok(Some((serde_json::from_value(doc.value)?, doc.version))),
            None => Ok(None),
        }
    }

    /// Creates the document from `value` unless the key exists; `true` when
    /// created. The way to write something exactly once.
    ///
    /// # Errors
    /// Invalid names, a value over [`MAX_DOCUMENT_BYTES`]; store failures.
    pub async fn create<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<bool> {
        let value = serde_json::to_value(value)?;
        self.create_doc(collection, key, &value).await
    }

    /// Read-modify-write: calls `change` with the current value (`None` when
    /// absent) and writes what it returns, creating or replacing conditionally;
    /// when another writer got there first, reads again and retries, up to
    /// [`UPDATE_ATTEMPTS`] times. `change` may therefore run more than once and
    /// should only compute. Returning `None` writes nothing.
    ///
    /// Returns the value written, or `None` when `change` chose not to write.
    ///
    /// # Errors
    /// [`DocumentError::Contention`] when every attempt lost; a stored value
    /// that is not a `T`; invalid names or sizes; store failures.
    pub async fn update<T, F>(
        &self,
        collection: &str,
        key: &str,
        mut change: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnMut(Option<T>) -> Option<T> + Send,
    {
        let ((), written) = self
            .read_modify_write(collection, key, |current| (change(current), ()))
            .await?;
        Ok(written)
    }

    /// [`Self::update`] for a `change` that also says what it decided: it
    /// returns the value to write (`None`: write nothing) and an outcome, and
    /// `update_with` returns the outcome of the attempt that won (a state
    /// machine's transition: `Moved`, `AlreadyThere`, `Refused(..)`).
    ///
    /// # Errors
    /// As [`Self::update`].
    pub async fn update_with<T, R, F>(&self, collection: &str, key: &str, change: F) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Send,
        R: Send,
        F: FnMut(Option<T>) -> (Option<T>, R) + Send,
    {
        Ok(self.read_modify_write(collection, key, change).await?.0)
    }

    /// The loop behind [`Self::update`] and [`Self::update_with`]: the winning
    /// attempt's outcome and the value it wrote.
    async fn read_modify_write<T, R, F>(
        &self,
        collection: &str,
        key: &str,
        mut change: F,
    ) -> Result<(R, Option<T>)>
    where
        T: Serialize + DeserializeOwned + Send,
        R: Send,
        F: FnMut(Option<T>) -> (Option<T>, R) + Send,
    {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.get_doc(collection, key).await?;
            let version = current.as_ref().map(|doc| doc.version);
            let current = match current {
                Some(doc) => Some(serde_json::from_value(doc.value)?),
                None => None,
            };
            let (next, outcome) = change(current);
            let Some(next) = next else {
                return Ok((outcome, None));
            };
            let value = serde_json::to_value(&next)?;
            let written = match version {
                Some(version) => self.replace_doc(collection, key, &value, version).await?,
                None => self.create_doc(collection, key, &value).await?,
            };
            if written {
                return Ok((outcome, Some(next)));
            }
            tokio::task::yield_now().await;
        }
        Err(DocumentError::Contention {
            collection: collection.to_owned(),
            key: key.to_owned(),
            attempts: UPDATE_ATTEMPTS,
        }
        .into())
    }
}

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
