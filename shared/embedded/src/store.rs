//! [`SqliteStore`]: the store traits on SQLite. A transition is one SQLite
//! transaction: its fence is checked, its records written and its outbox
//! enqueued (the queue is a table) together, so nothing of it is ever
//! half-applied and nothing is left to deliver afterwards.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hookflow::clock::{Clock, SystemClock};
use hookflow::event::Event;
use hookflow::flow::{FlowRecord, FlowWrite};
use hookflow::run::{Envelope, Message, Run, RunStatus, StepRecord, Target, Waiter};
use hookflow::store::{Blobs, FlowStore};
use hookflow::store::{EventLog, LoadedRun, Outbox, RunFilter, RunStore, StoredEvent, Waiters};
use hookflow::transition::{Committed, Conflict, Fence, Outgoing, Transition};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, oneshot};

use crate::commit::{TERMINAL, append_events, apply, check_fence, enqueue, enqueue_outbox};
use crate::db::{CommitStats, Db};
use crate::records::{RUN_COLUMNS, decode, from_json, get_run, run_row};
use crate::schema::{ADDED_COLUMNS, PRAGMAS, SCHEMA, SCHEMA_VERSION, UPGRADES_FROM};
use crate::{EmbeddedError, Result};

/// The embedded store: one SQLite database. Cheap to clone (shared connection).
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
    pub(crate) notify: Arc<Notify>,
    clock: Arc<dyn Clock>,
    finished: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened, the schema cannot be created, or the
    /// file was written by an incompatible version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let writer = Self::prepare(Connection::open(path)?)?;
        Self::start(writer, crate::db::readers(path, PRAGMAS)?)
    }

    /// A private in-memory database (tests, benchmarks of the engine alone).
    ///
    /// # Errors
    /// When the schema cannot be created.
    pub fn in_memory() -> Result<Self> {
        Self::start(Self::prepare(Connection::open_in_memory()?)?, Vec::new())
    }

    /// Sets up the writer connection: pragmas, version check, schema.
    fn prepare(conn: Connection) -> Result<Connection> {
        conn.execute_batch(PRAGMAS)?;
        // Check, create or upgrade in one transaction: a process opening the
        // file at the same time waits, and a failure leaves it as it was.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let version: i64 = conn
            .prepare_cached("PRAGMA user_version")?
            .query_row([], |r| r.get(0))?;
        let has_runs: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND
             name = 'runs')",
            )?
            .query_row([], |r| r.get(0))?;
        if has_runs && version != SCHEMA_VERSION && !UPGRADES_FROM.contains(&version) {
            return Err(EmbeddedError::Schema(format!(
                "the database was written by another version of hookflow (schema {version}, this one uses {SCHEMA_VERSION}); \
                 move it away or pass another --db"
            )));
        }
        if has_runs && version != SCHEMA_VERSION {
            for (table, column, declaration) in ADDED_COLUMNS {
                // (A table this version adds, SCHEMA creates whole.)
                let lacks_it: bool = conn
                    .prepare(
                        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1))
                            AND NOT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                    )?
                    .query_row([table, column], |r| r.get(0))?;
                if lacks_it {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
                    ))?;
                }
            }
        }
        conn.execute_batch(SCHEMA)?;
        if has_runs && version != SCHEMA_VERSION {
            forget_flow_written_before(&conn, SystemClock.now_ms())?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        conn.execute_batch("COMMIT")?;
        Ok(conn)
    }

    fn start(writer: Connection, readers: Vec<Connection>) -> Result<Self> {
        Ok(Self {
            db: Arc::new(Db::start(writer, readers)?),
            notify: Arc::new(Notify::new()),
            clock: Arc::new(SystemClock),
            finished: Arc::default(),
        })
    }

    /// The same store, stamping received events with `clock`'s time.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Returns once run `id` has ended, or after `wait` (whichever comes
    /// first), without polling: a long poll's wait.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn wait_for_end(&self, id: &str, wait: std::time::Duration) -> Result<()> {
        // Registered first, so a finish between the read and the wait is seen.
        let finished = self.watch_finish(id);
        let ended = self
            .read({
                let id = id.to_owned();
                move |c| Ok(get_run(c, &id)?.is_some_and(|run| run.status.is_terminal()))
            })
            .await?;
        if !ended {
            let _ = tokio::time::timeout(wait, finished).await;
        }
        Ok(())
    }

    /// Resolves once run `id` commits a final status. Register before
    /// reading the run's status, so a finish in between is not missed.
    fn watch_finish(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut finished = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let senders = finished.entry(id.to_owned()).or_default();
        senders.retain(|s| !s.is_closed());
        senders.push(tx);
        rx
    }

    fn finished(&self, id: &str) {
        let senders = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Commits `f` durably (group commit: it shares the writer's next
    /// transaction and fsync with whatever else is waiting).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.db.write(true, f).await
    }

    /// Like [`Self::write`], for writes that need not reach the disk before
    /// returning (their batch commits without its own fsync when nothing
    /// durable shares it; the next durable commit flushes them). Only for
    /// writes whose loss in a crash is harmless because
    /// [`SqliteStore::recover`] or redelivery redoes them: queue visibility
    /// and acknowledgements.
    pub(crate) async fn write_relaxed<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.db.write(false, f).await
    }

    /// Runs the read `f` (concurrently with the writer for a file).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.db.read(f).await
    }

    /// How many commits and jobs the writer made: fsyncs per run, in a bench.
    #[must_use]
    pub fn commit_stats(&self) -> CommitStats {
        self.db.stats()
    }
}

/// Whether `t` must be on disk before its commit returns. Yes when
/// something outside the store acts on it next: a checkpoint (the handler
/// goes on to run the next step's code) or a run's end (waiters are
/// answered). Creating a run or taking its lease is not acted on outside:
/// the run's next durable commit makes it durable too (the WAL keeps commit
/// order), and a power loss that drops it drops the acknowledgement of the
/// queue message that caused it as well, so the message is handled again.
/// (A process crash loses nothing committed either way.)
fn must_sync(t: &Transition) -> bool {
    !t.steps.is_empty()
        || t.run.status.is_terminal()
        || !matches!(
            t.fence,
            Fence::Create | Fence::Acquire { .. } | Fence::Begin { .. }
        )
}

/// The run `id` with its journal.
fn load(c: &Connection, id: &str) -> Result<Option<LoadedRun>> {
    let Some(run) = get_run(c, id)? else {
        return Ok(None);
    };
    let mut stmt =
        c.prepare_cached("SELECT body FROM steps WHERE run_id = ?1 ORDER BY position")?;
    let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    let journal = rows
        .map(|row| decode(c, row?))
        .collect::<Result<Vec<StepRecord>>>()?;
    Ok(Some(LoadedRun {
        run,
        journal,
        undelivered: Vec::new(),
    }))
}

impl EventLog for SqliteStore {
    async fn append(
        &self,
        events: &[Event],
        received_at: i64,
        dedupe_ms: i64,
    ) -> hookflow::Result<Vec<bool>> {
        let events = events.to_vec();
        let stored = self
            .write(move |c| append_events(c, &events, received_at, dedupe_ms))
            .await?;
        self.notify.notify_waiters();
        Ok(stored)
    }

    async fn get_event(&self, id: &str) -> hookflow::Result<Option<StoredEvent>> {
        let id = id.to_owned();
        Ok(self
            .read(move |c| {
                let row: Option<(String, i64)> = c
                    .prepare_cached("SELECT body, received_at FROM events WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                row.map(|(body, received_at)| {
                    Ok(StoredEvent {
                        event: decode(c, body)?,
                        received_at,
                        kept_for_runs: false,
                    })
                })
                .transpose()
            })
            .await?)
    }

    async fn record_routed(&self, _event: &StoredEvent, _held: bool) -> hookflow::Result<()> {
        // `events_since` reads the events table itself, consistently.
        Ok(())
    }

    async fn keep_for_runs(&self, _event: &StoredEvent) -> hookflow::Result<()> {
        // Runs keep their trigger event with them.
        Ok(())
    }

    async fn events_since(
        &self,
        name: &str,
        since: i64,
        limit: usize,
    ) -> hookflow::Result<Vec<StoredEvent>> {
        let name = name.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT body, received_at FROM events WHERE name = ?1 AND received_at >= ?2
                 ORDER BY received_at, id LIMIT ?3",
                )?;
                stored_events(c, &mut stmt, params![name, since, limit])
            })
            .await?)
    }
}

/// The events a `SELECT body, received_at FROM events ...` statement reads.
fn stored_events(
    c: &rusqlite::Connection,
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredEvent>> {
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.map(|row| {
        let (body, received_at) = row?;
        Ok(StoredEvent {
            event: decode(c, body)?,
            received_at,
            kept_for_runs: false,
        })
    })
    .collect()
}

impl FlowStore for SqliteStore {
    async fn flow_get(&self, key: &str) -> hookflow::Result<Option<FlowRecord>> {
        let key = key.to_owned();
        Ok(self
            .read(move |c| {
                let row: Option<(i64, String)> = c
                    .prepare_cached("SELECT version, body FROM flow WHERE key = ?1")?
                    .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                row.map(|(version, body)| {
                    Ok(FlowRecord {
                        version: u64::try_from(version).unwrap_or_default(),
                        state: from_json(&body)?,
                    })
                })
                .transpose()
            })
            .await?)
    }

    async fn flow_put(
        &self,
        write: &FlowWrite,
    ) -> hookflow::Result<std::result::Result<(), Conflict>> {
        Ok(self.put_flow(write).await?)
    }
}

/// Gives the flow-control records of an earlier version, which did not keep
/// when they may be forgotten, the time they would have had if written `now`.
fn forget_flow_written_before(conn: &Connection, now: i64) -> Result<()> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT key, body FROM flow WHERE forget_at IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (key, body) in rows {
        // A record this version cannot read is left to be kept (and to fail
        // where it is used, naming itself), not to stop the file opening.
        let Ok(state) = crate::records::from_json::<hookflow::flow::FlowState>(&body) else {
            tracing::warn!(key, "flow-control record not understood; never pruned");
            continue;
        };
        conn.prepare_cached("UPDATE flow SET forget_at = ?2 WHERE key = ?1")?
            .execute(params![
                key,
                state.forget_after(now, hookflow::Retention::default().longest_run)
            ])?;
    }
    Ok(())
}

impl SqliteStore {
    async fn put_flow(&self, write: &FlowWrite) -> Result<std::result::Result<(), Conflict>> {
        let write = write.clone();
        let now = self.now();
        self.write(move |c| {
            if let Err(conflict) = crate::commit::check_flow(c, std::slice::from_ref(&write))? {
                return Ok(Err(conflict));
            }
            crate::commit::apply_flow(c, std::slice::from_ref(&write), now)?;
            Ok(Ok(()))
        })
        .await
    }
}

impl RunStore for SqliteStore {
    async fn load_run(&self, id: &str) -> hookflow::Result<Option<LoadedRun>> {
        let id = id.to_owned();
        Ok(self.read(move |c| load(c, &id)).await?)
    }

    async fn get_run(&self, id: &str) -> hookflow::Result<Option<Run>> {
        let id = id.to_owned();
        Ok(self.read(move |c| get_run(c, &id)).await?)
    }

    async fn commit(
        &self,
        transition: &Transition,
    ) -> hookflow::Result<Result<Committed, Conflict>> {
        let transition = transition.clone();
        let (run_id, finished) = (
            transition.run.id.clone(),
            transition.run.status.is_terminal(),
        );
        let now = self.now();
        let outcome = self
            .db
            .write(must_sync(&transition), move |c| {
                let stored = match check_fence(c, &transition)? {
                    Ok(stored) => stored,
                    Err(conflict) => return Ok(Err(conflict)),
                };
                apply(c, &transition, stored, now)?;
                Ok(Ok(Committed::default()))
            })
            .await?;
        if outcome.is_ok() {
            self.notify.notify_waiters();
            if finished {
                self.finished(&run_id);
            }
        }
        Ok(outcome)
    }

    async fn extend_lease(
        &self,
        run_id: &str,
        token: &str,
        now: i64,
        until: i64,
    ) -> hookflow::Result<Result<(), Conflict>> {
        let (id, token) = (run_id.to_owned(), token.to_owned());
        Ok(self
            .write(move |c| {
                let row: Option<(Option<String>, i64, Option<String>)> = c
                    .prepare_cached(
                        "SELECT lease_token, lease_until, cancel_requested FROM runs
             WHERE id = ?1",
                    )?
                    .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let Some((held, held_until, cancel)) = row else {
                    return Ok(Err(Conflict::Missing));
                };
                if held.as_deref() != Some(token.as_str()) || held_until <= now {
                    return Ok(Err(Conflict::LeaseLost));
                }
                c.prepare_cached("UPDATE runs SET lease_until = ?2 WHERE id = ?1")?
                    .execute(params![id, until])?;
                Ok(match cancel {
                    Some(reason) => Err(Conflict::CancelRequested(reason)),
                    None => Ok(()),
                })
            })
            .await?)
    }

    async fn request_cancel(
        &self,
        run_id: &str,
        function_id: &str,
        reason: &str,
    ) -> hookflow::Result<bool> {
        let (id, function_id, reason) =
            (run_id.to_owned(), function_id.to_owned(), reason.to_owned());
        let requested = self
            .write(move |c| {
                let changed = c
                    .prepare_cached(&format!(
                        "UPDATE runs SET cancel_requested = COALESCE(cancel_requested, ?2)
                         WHERE id = ?1 AND status NOT IN {TERMINAL}"
                    ))?
                    .execute(params![id, reason])?;
                if changed == 1 {
                    let cancel = Envelope::new(
                        Target::Function(function_id),
                        Message::Cancel { run_id: id, reason },
                    );
                    enqueue(c, &cancel, None)?;
                }
                Ok(changed == 1)
            })
            .await?;
        self.notify.notify_waiters();
        Ok(requested)
    }

    async fn list_runs(&self, filter: &RunFilter) -> hookflow::Result<Vec<Run>> {
        let function_id = filter.function_id.clone();
        let status = filter.status.map(RunStatus::as_str);
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (since, until) = (filter.since, filter.until);
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR function_id = ?1)
                 AND (?2 IS NULL OR status = ?2)
                 AND created_at >= coalesce(?4, -9223372036854775808)
                 AND created_at < coalesce(?5, 9223372036854775807)
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
                ))?;
                let rows =
                    stmt.query_map(params![function_id, status, limit, since, until], run_row)?;
                rows.map(|row| row?.into_run(c)).collect()
            })
            .await?)
    }
}

impl Waiters for SqliteStore {
    async fn waiters_for(&self, event: &str) -> hookflow::Result<Vec<Waiter>> {
        let event = event.to_owned();
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT body FROM waiters WHERE event = ?1")?;
                let rows = stmt.query_map([event], |r| r.get::<_, String>(0))?;
                rows.map(|row| decode(c, row?)).collect()
            })
            .await?)
    }
}

impl Outbox for SqliteStore {
    async fn deliver(&self, messages: &[Outgoing]) -> hookflow::Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let messages = messages.to_vec();
        let now = self.now();
        self.write(move |c| enqueue_outbox(c, &messages, now))
            .await?;
        self.notify.notify_waiters();
        Ok(())
    }
}

impl Blobs for SqliteStore {
    async fn put_blob(&self, bytes: &[u8]) -> hookflow::Result<String> {
        let bytes = bytes.to_vec();
        let now = self.now();
        Ok(self
            .write(move |c| crate::records::put_blob(c, &bytes, now))
            .await?)
    }

    async fn get_blob(&self, key: &str) -> hookflow::Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        Ok(self
            .read(move |c| {
                Ok(c.prepare_cached("SELECT body FROM blobs WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?)
            })
            .await?)
    }
}

impl From<rusqlite::types::FromSqlError> for EmbeddedError {
    fn from(err: rusqlite::types::FromSqlError) -> Self {
        Self::Sqlite(err.into())
    }
}

impl SqliteStore {
    /// The newest events (only those named `name`, if given), newest first,
    /// at most `limit`: what the dashboard lists.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn recent_events(
        &self,
        name: Option<&str>,
        limit: usize,
    ) -> hookflow::Result<Vec<StoredEvent>> {
        let name = name.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT body, received_at FROM events WHERE (?1 IS NULL OR name = ?1)
                     ORDER BY received_at DESC, id DESC LIMIT ?2",
                )?;
                stored_events(c, &mut stmt, params![name, limit])
            })
            .await?)
    }

    /// How many runs each function has in each status (only counts above
    /// zero), in one read.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn run_counts(&self) -> Result<Vec<(String, RunStatus, u64)>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT function_id, status, COUNT(*) FROM runs GROUP BY function_id, status",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (function, status, n) = row?;
                if let Some(status) = RunStatus::parse(&status) {
                    out.push((function, status, u64::try_from(n).unwrap_or(0)));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Counts runs, optionally of one function and status.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn count_runs(
        &self,
        function_id: Option<&str>,
        status: Option<RunStatus>,
    ) -> Result<u64> {
        let function_id = function_id.map(str::to_owned);
        let status = status.map(RunStatus::as_str);
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM runs WHERE (?1 IS NULL OR function_id = ?1)
             AND (?2 IS NULL OR status = ?2)",
                )?
                .query_row(params![function_id, status], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transition(fence: Fence, status: RunStatus, step: bool) -> Transition {
        let mut run = Run::new("r".into(), "f", Event::new("e", json!({})), 0);
        run.status = status;
        let mut t = Transition::new(fence, run);
        if step {
            t.steps.push(
                serde_json::from_value(json!({
                    "id": "s", "position": 0, "kind": "run", "status": "completed",
                    "attempts": 1, "output": 1, "started_at": 0, "ended_at": 0
                }))
                .unwrap(),
            );
        }
        t
    }

    #[test]
    fn only_what_the_outside_acts_on_waits_for_an_fsync() {
        let acquire = || Fence::Acquire { now: 0, version: 0 };
        let hold = || Fence::Hold {
            token: "t".into(),
            now: 0,
        };
        // A run's creation and its lease: redone if a power loss drops them.
        assert!(!must_sync(&transition(
            Fence::Create,
            RunStatus::Queued,
            false
        )));
        assert!(!must_sync(&transition(
            acquire(),
            RunStatus::Running,
            false
        )));
        // A checkpoint, a resolved step, a run's end: acted on at once.
        assert!(must_sync(&transition(hold(), RunStatus::Running, true)));
        assert!(must_sync(&transition(acquire(), RunStatus::Running, true)));
        assert!(must_sync(&transition(
            acquire(),
            RunStatus::Cancelled,
            false
        )));
        assert!(must_sync(&transition(hold(), RunStatus::Running, false)));
    }

    #[tokio::test]
    async fn recent_events_are_newest_first_and_filtered_by_name() {
        let store = SqliteStore::in_memory().unwrap();
        let event = |id: &str, name: &str| {
            let mut e = Event::new(name, json!({}));
            e.id = id.into();
            e
        };
        store.append(&[event("a", "x")], 1_000, 0).await.unwrap();
        store.append(&[event("b", "y")], 2_000, 0).await.unwrap();
        store.append(&[event("c", "x")], 3_000, 0).await.unwrap();
        let ids = |events: Vec<StoredEvent>| -> Vec<String> {
            events.into_iter().map(|e| e.event.id).collect()
        };
        assert_eq!(
            ids(store.recent_events(None, 10).await.unwrap()),
            ["c", "b", "a"]
        );
        assert_eq!(
            ids(store.recent_events(Some("x"), 10).await.unwrap()),
            ["c", "a"]
        );
        assert_eq!(ids(store.recent_events(None, 1).await.unwrap()), ["c"]);
    }

    #[tokio::test]
    async fn a_schema_4_file_is_upgraded_and_its_idle_records_pruned() {
        use crate::schema::SCHEMA;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        // GIVEN a file as version 4 wrote it: no `forget_at` on flow records,
        // no `used_at` on blobs, a throttle record and an orphaned blob
        let v4 = format!(
            "CREATE TABLE flow (key TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE blobs (key TEXT PRIMARY KEY, body BLOB NOT NULL);
             {}",
            SCHEMA.replace(
                "CREATE INDEX IF NOT EXISTS flow_by_forget_at ON flow (forget_at) WHERE forget_at IS NOT NULL;",
                ""
            )
        );
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(&v4).unwrap();
            c.pragma_update(None, "user_version", 4).unwrap();
            c.execute(
                "INSERT INTO flow (key, version, body) VALUES ('throttle#f#', 3, ?1)",
                [r#"{"kind":"gcra","tat":1000}"#],
            )
            .unwrap();
            c.execute(
                "INSERT INTO flow (key, version, body) VALUES ('pause#f#', 1, ?1)",
                [r#"{"kind":"pause","since":1000,"resuming":false}"#],
            )
            .unwrap();
            c.execute(
                "INSERT INTO blobs (key, body) VALUES ('sha256-0', x'00')",
                [],
            )
            .unwrap();
        }
        // WHEN this version opens it
        let store = SqliteStore::open(&path).unwrap();
        // THEN its records keep working, and the prune forgets the idle ones
        let record = store.flow_get("throttle#f#").await.unwrap().unwrap();
        assert_eq!(record.version, 3);
        let far = SystemClock.now_ms() + 31 * 86_400_000;
        let pruned = store
            .prune(far, &hookflow::Retention::default(), true)
            .await
            .unwrap();
        assert_eq!((pruned.flow, pruned.blobs), (1, 1));
        assert!(store.flow_get("pause#f#").await.unwrap().is_some());
        drop(store);
        // and it opens again as version 5
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.flow_get("throttle#f#").await.unwrap().is_none());
    }
}
