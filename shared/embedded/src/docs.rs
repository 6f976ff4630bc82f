//! [`Documents`] on SQLite: one `docs` row per document. Each conditional
//! write is a single statement (the condition in its `WHERE` or `ON CONFLICT`),
//! committed with `synchronous=FULL` like every other durable write.

use hookflow_docs::{Document, Documents, check_collection, check_names, encode_document};
use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::Result;
use crate::store::SqliteStore;

/// Versions are `u64` in the API and `INTEGER` (i64) in SQLite; versions
/// count writes, so they never come near `i64::MAX`.
fn sql_version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

fn document(row: &Row<'_>) -> rusqlite::Result<(String, String, i64, i64, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode(
    (collection, key, version, updated_at, body): (String, String, i64, i64, String),
) -> Result<Document> {
    Ok(Document {
        collection,
        key,
        value: serde_json::from_str(&body)?,
        version: u64::try_from(version).unwrap_or_default(),
        updated_at,
    })
}

impl Documents for SqliteStore {
    async fn get_doc(&self, collection: &str, key: &str) -> hookflow::Result<Option<Document>> {
        check_names(collection, key)?;
        let (collection, key) = (collection.to_owned(), key.to_owned());
        Ok(self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT collection, key, version, updated_at, body FROM docs
                 WHERE collection = ?1 AND key = ?2",
                )?
                .query_row(params![collection, key], document)
                .optional()?
                .map(decode)
                .transpose()
            })
            .await?)
    }

    async fn create_doc(
        &self,
        collection: &str,
        key: &str,
        value: &Value,
        now: i64,
    ) -> hookflow::Result<bool> {
        let body = encode_document(collection, key, value)?;
        let (collection, key) = (collection.to_owned(), key.to_owned());
        Ok(self
            .write(move |c| {
                let changed = c
                    .prepare_cached(
                        "INSERT INTO docs (collection, key, version, updated_at, body)
                 VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (collection, key) DO NOTHING",
                    )?
                    .execute(params![collection, key, now, body])?;
                Ok(changed == 1)
            })
            .await?)
    }

    async fn replace_doc(
        &self,
        collection: &str,
        key: &str,
        value: &Value,
        expected_version: u64,
        now: i64,
    ) -> hookflow::Result<bool> {
        let body = encode_document(collection, key, value)?;
        let (collection, key) = (collection.to_owned(), key.to_owned());
        let expected = sql_version(expected_version);
        Ok(self
            .write(move |c| {
                let changed = c
                    .prepare_cached(
                        "UPDATE docs SET version = version + 1, updated_at = ?4, body = ?5
                 WHERE collection = ?1 AND key = ?2 AND version = ?3",
                    )?
                    .execute(params![collection, key, expected, now, body])?;
                Ok(changed == 1)
            })
            .await?)
    }

    async fn delete_doc(
        &self,
        collection: &str,
        key: &str,
        expected_version: u64,
    ) -> hookflow::Result<bool> {
        check_names(collection, key)?;
        let (collection, key) = (collection.to_owned(), key.to_owned());
        let expected = sql_version(expected_version);
        Ok(self
            .write(move |c| {
                let changed = c
                    .prepare_cached(
                        "DELETE FROM docs WHERE collection = ?1 AND key = ?2 AND version = ?3",
                    )?
                    .execute(params![collection, key, expected])?;
                Ok(changed == 1)
            })
            .await?)
    }

    async fn list_docs(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> hookflow::Result<Vec<Document>> {
        check_collection(collection)?;
        let collection = collection.to_owned();
        let after = after.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |c| {
                // TEXT compares with the BINARY collation: UTF-8 byte order.
                let mut stmt = c.prepare_cached(
                    "SELECT collection, key, version, updated_at, body FROM docs
                 WHERE collection = ?1 AND (?2 IS NULL OR key > ?2) ORDER BY key LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![collection, after, limit], document)?;
                rows.map(|row| decode(row?)).collect()
            })
            .await?)
    }
}
