//! How records sit in SQLite rows: JSON bodies, inline up to the inline size
//! and otherwise stored once in `blobs` by content hash, and a run split into
//! its body, its trigger event (written once) and its lease columns.

use hookflow::limits::{INLINE_BYTES, blob_key};
use hookflow::run::{Lease, Run, StepRecord};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{EmbeddedError, Result};

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    Ok(serde_json::from_str(text)?)
}

/// Marks a body column that holds a blob key instead of the body.
pub(crate) const BLOB_MARK: &str = "@blob:";

/// `body` as its column keeps it: inline up to [`INLINE_BYTES`], else stored
/// once in `blobs` and referenced by key (stored `now`).
pub(crate) fn store_body(c: &Connection, body: String, now: i64) -> Result<String> {
    if body.len() <= INLINE_BYTES {
        return Ok(body);
    }
    Ok(format!("{BLOB_MARK}{}", put_blob(c, body.as_bytes(), now)?))
}

/// Stores `bytes` once under their content key, marked as used `now` (the
/// prune deletes only blobs no row refers to that were not stored since it
/// looked).
pub(crate) fn put_blob(c: &Connection, bytes: &[u8], now: i64) -> Result<String> {
    let key = blob_key(bytes);
    c.prepare_cached(
        "INSERT INTO blobs (key, body, used_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET used_at = MAX(used_at, excluded.used_at)",
    )?
    .execute(params![key, bytes, now])?;
    Ok(key)
}

/// A body column's body, fetching it from `blobs` when it is a reference.
pub(crate) fn load_body(c: &Connection, column: String) -> Result<String> {
    let Some(key) = column.strip_prefix(BLOB_MARK) else {
        return Ok(column);
    };
    let bytes: Vec<u8> = c
        .prepare_cached("SELECT body FROM blobs WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| EmbeddedError::Schema(format!("blob {key} is missing")))?;
    String::from_utf8(bytes).map_err(|e| EmbeddedError::Schema(format!("blob {key}: {e}")))
}

/// A record from a body column.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(c: &Connection, column: String) -> Result<T> {
    from_json(&load_body(c, column)?)
}

pub(crate) const RUN_COLUMNS: &str =
    "body, event, lease_token, lease_until, cancel_requested, version";

pub(crate) fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        body: row.get(0)?,
        event: row.get(1)?,
        lease_token: row.get(2)?,
        lease_until: row.get(3)?,
        cancel_requested: row.get(4)?,
        version: row.get(5)?,
    })
}

pub(crate) struct RunRow {
    pub(crate) body: String,
    pub(crate) event: String,
    pub(crate) lease_token: Option<String>,
    pub(crate) lease_until: i64,
    pub(crate) cancel_requested: Option<String>,
    pub(crate) version: i64,
}

impl RunRow {
    pub(crate) fn into_run(self, c: &Connection) -> Result<Run> {
        let event = decode(c, self.event)?;
        let mut run = Run::from_stored(&load_body(c, self.body)?, event)?;
        run.lease = self.lease_token.map(|token| Lease {
            token,
            until: self.lease_until,
        });
        run.cancel_requested = self.cancel_requested;
        run.version = u64::try_from(self.version).unwrap_or(0);
        Ok(run)
    }
}

pub(crate) fn get_run(c: &Connection, id: &str) -> Result<Option<Run>> {
    let row = c
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], run_row)
        .optional()?;
    row.map(|row| row.into_run(c)).transpose()
}

pub(crate) fn step_status(step: &StepRecord) -> Result<String> {
    Ok(serde_json::to_value(step.status)?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}
