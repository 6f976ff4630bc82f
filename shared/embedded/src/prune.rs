//! Retention on SQLite: a periodic prune deletes finished runs (with their
//! steps and waiters) [`Retention::runs`] after they ended, events
//! [`Retention::events`] after they were received or due (whichever is
//! later) that no queued message or unfinished run names, idempotency
//! claims whose window has passed, flow-control records past their
//! [`FlowState::forget_after`](hookflow::flow::FlowState::forget_after) (as
//! DynamoDB's TTL removes them), and blobs no row refers to any more. Each
//! kind is deleted in batches of [`BATCH`] rows, each batch its own short
//! write, so a large prune never holds the writer for long.

use std::collections::HashSet;

use hookflow::Retention;
use hookflow::retention::ms;
use rusqlite::params;

use crate::Result;
use crate::commit::TERMINAL;
use crate::records::BLOB_MARK;
use crate::store::SqliteStore;

/// Rows deleted per write.
pub const BATCH: usize = 500;
/// [`BATCH`] as SQLite takes it.
const BATCH_SQL: i64 = 500;

/// The body columns that may hold a blob reference (`@blob:{key}`).
const BLOB_COLUMNS: [(&str, &str); 5] = [
    ("events", "body"),
    ("runs", "body"),
    ("runs", "event"),
    ("steps", "body"),
    ("waiters", "body"),
];

/// A blob stored (or stored again) this recently is kept even when no row
/// refers to it yet: room for a write whose time was taken a while before it
/// landed, or a clock that steps back (ms).
const BLOB_GRACE: i64 = 3_600_000;

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Finished runs (with their steps and waiters).
    pub runs: usize,
    /// Events.
    pub events: usize,
    /// Idempotency claims.
    pub claims: usize,
    /// Flow-control records (idle throttle, debounce, batch, concurrency
    /// and singleton keys).
    pub flow: usize,
    /// Blobs (payloads over the inline size) no row refers to.
    pub blobs: usize,
}

impl SqliteStore {
    /// Deletes what `retention` no longer keeps at `now`; events only when
    /// `events` is true (the runtime passes false while a function is
    /// paused: resuming routes the events it missed).
    ///
    /// # Errors
    /// SQLite errors (what was deleted before stays deleted; the next prune
    /// goes on).
    pub async fn prune(&self, now: i64, retention: &Retention, events: bool) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        let run_cutoff = now.saturating_sub(ms(retention.runs));
        loop {
            let n = self
                .write(move |c| {
                    let ids: Vec<String> = c
                        .prepare_cached(&format!(
                            "SELECT id FROM runs WHERE status IN {TERMINAL} AND created_at < ?1
                             AND COALESCE(json_extract(body, '$.ended_at'), created_at) < ?1
                             LIMIT ?2"
                        ))?
                        .query_map(params![run_cutoff, BATCH_SQL], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    for id in &ids {
                        c.prepare_cached("DELETE FROM steps WHERE run_id = ?1")?
                            .execute([id])?;
                        c.prepare_cached("DELETE FROM waiters WHERE run_id = ?1")?
                            .execute([id])?;
                        c.prepare_cached("DELETE FROM runs WHERE id = ?1")?
                            .execute([id])?;
                    }
                    Ok(ids.len())
                })
                .await?;
            pruned.runs += n;
            if n < BATCH {
                break;
            }
        }
        if events {
            let event_cutoff = now.saturating_sub(ms(retention.events));
            pruned.events = self
                .delete_batches(
                    // Not one a queued message (a route, a dead letter kept
                    // for redrive) or an unfinished run (a batch) still names.
                    format!(
                        "DELETE FROM events WHERE rowid IN (SELECT e.rowid FROM events e
                         WHERE MAX(e.received_at, e.ts) < ?1
                           AND NOT EXISTS (SELECT 1 FROM queue q WHERE instr(q.body, e.id) > 0)
                           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.status NOT IN {TERMINAL}
                               AND instr(r.body, e.id) > 0)
                         LIMIT ?2)"
                    ),
                    event_cutoff,
                )
                .await?;
        }
        pruned.claims = self
            .delete_batches(
                "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency
                 WHERE expires_at < ?1 LIMIT ?2)"
                    .to_owned(),
                now,
            )
            .await?;
        pruned.flow = self
            .delete_batches(
                // Never one that names an unfinished run (a singleton's
                // holder, a debounced or batched run, a concurrency slot's
                // holder or waiter): runs here may live any length of time.
                format!(
                    "DELETE FROM flow WHERE rowid IN (SELECT f.rowid FROM flow f
                     WHERE f.forget_at < ?1
                       AND NOT EXISTS (SELECT 1 FROM runs r
                           WHERE r.status NOT IN {TERMINAL} AND r.id IN (
                               SELECT json_extract(f.body, '$.run_id')
                               UNION ALL SELECT json_extract(h.value, '$.run_id')
                                   FROM json_each(f.body, '$.holders') h
                               UNION ALL SELECT json_extract(w.value, '$.run_id')
                                   FROM json_each(f.body, '$.waiting') w))
                     LIMIT ?2)"
                ),
                now,
            )
            .await?;
        pruned.blobs = self.prune_blobs(now.saturating_sub(BLOB_GRACE)).await?;
        Ok(pruned)
    }

    /// Deletes the blobs that no row refers to and that were last stored
    /// before `cutoff`. The rows are read in one snapshot after `cutoff`; a
    /// row written since that refers to a blob stored it again (every
    /// reference is written with its body, which marks the blob used), so
    /// the delete's own `used_at < cutoff` keeps it.
    async fn prune_blobs(&self, cutoff: i64) -> Result<usize> {
        let unreferenced: Vec<String> = self
            .read(move |c| {
                let mut referenced = HashSet::new();
                for (table, column) in BLOB_COLUMNS {
                    let mut select = c.prepare_cached(&format!(
                        "SELECT substr({column}, {start}) FROM {table} WHERE {column} LIKE '{BLOB_MARK}%'",
                        start = BLOB_MARK.len() + 1
                    ))?;
                    for key in select.query_map([], |r| r.get::<_, String>(0))? {
                        referenced.insert(key?);
                    }
                }
                let mut unreferenced = Vec::new();
                let mut select = c.prepare_cached("SELECT key FROM blobs WHERE used_at < ?1")?;
                for key in select.query_map([cutoff], |r| r.get::<_, String>(0))? {
                    let key = key?;
                    if !referenced.contains(&key) {
                        unreferenced.push(key);
                    }
                }
                Ok(unreferenced)
            })
            .await?;
        let mut deleted = 0;
        for chunk in unreferenced.chunks(BATCH) {
            let chunk = chunk.to_vec();
            deleted += self
                .write(move |c| {
                    let mut n = 0;
                    for key in &chunk {
                        n += c
                            .prepare_cached("DELETE FROM blobs WHERE key = ?1 AND used_at < ?2")?
                            .execute(params![key, cutoff])?;
                    }
                    Ok(n)
                })
                .await?;
        }
        Ok(deleted)
    }

    /// Runs `sql` (`?1` the cutoff, `?2` the batch size) until a batch
    /// deletes less than a full one; the rows deleted.
    async fn delete_batches(&self, sql: String, cutoff: i64) -> Result<usize> {
        let sql: std::sync::Arc<str> = sql.into();
        let mut total = 0;
        loop {
            let sql = sql.clone();
            let n = self
                .write(move |c| {
                    Ok(c.prepare_cached(&sql)?
                        .execute(params![cutoff, BATCH_SQL])?)
                })
                .await?;
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }
}
