//! Retention on SQLite: a periodic prune deletes finished runs (with their
//! steps and waiters) [`Retention::runs`] after they ended, events
//! [`Retention::events`] after they were received or due (whichever is
//! later) that no queued message or unfinished run names, and idempotency
//! claims whose window has passed. Each kind is
//! deleted in batches of [`BATCH`] rows, each batch its own short write, so
//! a large prune never holds the writer for long.

use hookflow::Retention;
use hookflow::retention::ms;
use rusqlite::params;

use crate::Result;
use crate::commit::TERMINAL;
use crate::store::SqliteStore;

/// Rows deleted per write.
pub const BATCH: usize = 500;
/// [`BATCH`] as SQLite takes it.
const BATCH_SQL: i64 = 500;

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Finished runs (with their steps and waiters).
    pub runs: usize,
    /// Events.
    pub events: usize,
    /// Idempotency claims.
    pub claims: usize,
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
                    "DELETE FROM events WHERE rowid IN (SELECT e.rowid FROM events e
                     WHERE MAX(e.received_at, e.ts) < ?1
                       AND NOT EXISTS (SELECT 1 FROM queue q WHERE instr(q.body, e.id) > 0)
                       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.status NOT IN
                           ('completed', 'failed', 'cancelled', 'skipped')
                           AND instr(r.body, e.id) > 0)
                     LIMIT ?2)",
                    event_cutoff,
                )
                .await?;
        }
        pruned.claims = self
            .delete_batches(
                "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency
                 WHERE expires_at < ?1 LIMIT ?2)",
                now,
            )
            .await?;
        Ok(pruned)
    }

    /// Runs `sql` (`?1` the cutoff, `?2` the batch size) until a batch
    /// deletes less than a full one; the rows deleted.
    async fn delete_batches(&self, sql: &'static str, cutoff: i64) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self
                .write(move |c| Ok(c.prepare_cached(sql)?.execute(params![cutoff, BATCH_SQL])?))
                .await?;
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }
}
