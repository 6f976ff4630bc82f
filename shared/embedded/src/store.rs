//! [`SqliteStore`]: the store traits on SQLite. Conditional writes are single
//! statements (or short transactions) on one connection, so each transition
//! the traits promise is atomic.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hookflow::event::Event;
use hookflow::run::{Envelope, Run, StepRecord, Waiter};
use hookflow::store::{
    EventLog, Journal, Queue, RunFilter, RunStore, StoredEvent, Timers, Waiters,
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use crate::schema::{PRAGMAS, SCHEMA};
use crate::{EmbeddedError, Result};

/// The embedded store: one SQLite database. Cheap to clone (shared connection).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    pub(crate) notify: Arc<Notify>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

type HfResult<T> = hookflow::Result<T>;

impl SqliteStore {
    /// Opens (or creates) the database file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_connection(Connection::open(path)?)
    }

    /// A private in-memory database (tests, benchmarks of the engine alone).
    ///
    /// # Errors
    /// When the schema cannot be created.
    pub fn in_memory() -> Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(conn: Connection) -> Result<Self> {
        conn.execute_batch(PRAGMAS)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            notify: Arc::new(Notify::new()),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await?
    }

    /// Like [`Self::call`], for writes that need not reach the disk before
    /// returning: the commit skips its fsync (WAL, `synchronous=NORMAL`) and the
    /// next durable commit flushes it. Only for writes whose loss in a crash is
    /// harmless because [`SqliteStore::recover`] or redelivery redoes them:
    /// queue visibility, acknowledgements and run leases.
    pub(crate) async fn call_relaxed<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.call(move |c| {
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let out = f(c);
            c.pragma_update(None, "synchronous", "FULL")?;
            out
        })
        .await
    }

    pub(crate) async fn hf<T, F>(&self, f: F) -> HfResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.call(f).await.map_err(Into::into)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    Ok(serde_json::from_str(text)?)
}

impl EventLog for SqliteStore {
    async fn put_event(&self, event: &Event, received_at: i64, dedupe_ms: i64) -> HfResult<bool> {
        let body = to_json(event)?;
        let (id, name, ts) = (event.id.clone(), event.name.clone(), event.ts);
        self.hf(move |c| {
            let changed = c.execute(
                "INSERT INTO events (id, name, body, ts, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, body = excluded.body,
                     ts = excluded.ts, received_at = excluded.received_at
                 WHERE excluded.received_at - events.received_at >= ?6",
                params![id, name, body, ts, received_at, dedupe_ms],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn get_event(&self, id: &str) -> HfResult<Option<StoredEvent>> {
        let id = id.to_owned();
        self.hf(move |c| {
            let row: Option<(String, i64)> = c
                .query_row(
                    "SELECT body, received_at FROM events WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(body, received_at)| {
                Ok(StoredEvent {
                    event: from_json(&body)?,
                    received_at,
                })
            })
            .transpose()
        })
        .await
    }

    async fn record_routed(&self, _event: &StoredEvent) -> HfResult<()> {
        // `events_since` reads the events table itself, consistently.
        Ok(())
    }

    async fn events_since(
        &self,
        name: &str,
        since: i64,
        limit: usize,
    ) -> HfResult<Vec<StoredEvent>> {
        let name = name.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.hf(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT body, received_at FROM events WHERE name = ?1 AND received_at >= ?2
                 ORDER BY received_at, id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![name, since, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            rows.map(|row| {
                let (body, received_at) = row?;
                Ok(StoredEvent {
                    event: from_json(&body)?,
                    received_at,
                })
            })
            .collect()
        })
        .await
    }
}

impl RunStore for SqliteStore {
    async fn create_run(&self, run: &Run) -> HfResult<bool> {
        let body = to_json(run)?;
        let (id, function_id, status, created_at) = (
            run.id.clone(),
            run.function_id.clone(),
            run.status.as_str(),
            run.created_at,
        );
        self.hf(move |c| {
            let changed = c.execute(
                "INSERT OR IGNORE INTO runs (id, function_id, status, created_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, function_id, status, created_at, body],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn get_run(&self, id: &str) -> HfResult<Option<Run>> {
        let id = id.to_owned();
        self.hf(move |c| {
            let body: Option<String> = c
                .query_row("SELECT body FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            body.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn update_run(&self, run: &Run) -> HfResult<bool> {
        let body = to_json(run)?;
        let (id, status) = (run.id.clone(), run.status.as_str());
        self.hf(move |c| {
            let changed = c.execute(
                "UPDATE runs SET status = ?2, body = ?3
                 WHERE id = ?1 AND status NOT IN ('completed', 'failed', 'cancelled')",
                params![id, status, body],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> HfResult<Vec<Run>> {
        let function_id = filter.function_id.clone();
        let status = filter.status.map(|s| s.as_str());
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.hf(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT body FROM runs WHERE (?1 IS NULL OR function_id = ?1)
                 AND (?2 IS NULL OR status = ?2) ORDER BY created_at DESC, id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![function_id, status, limit], |r| {
                r.get::<_, String>(0)
            })?;
            rows.map(|row| from_json(&row?)).collect()
        })
        .await
    }

    async fn acquire_lease(
        &self,
        run_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> HfResult<bool> {
        let (id, owner) = (run_id.to_owned(), owner.to_owned());
        self.call_relaxed(move |c| {
            let changed = c.execute(
                "UPDATE runs SET lease_owner = ?2, lease_until = ?4
                 WHERE id = ?1 AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until <= ?3)",
                params![id, owner, now, until],
            )?;
            Ok(changed == 1)
        })
        .await
        .map_err(Into::into)
    }

    async fn release_lease(&self, run_id: &str, owner: &str) -> HfResult<()> {
        let (id, owner) = (run_id.to_owned(), owner.to_owned());
        self.call_relaxed(move |c| {
            c.execute(
                "UPDATE runs SET lease_owner = NULL, lease_until = 0 WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner],
            )?;
            Ok(())
        })
        .await
        .map_err(Into::into)
    }

    async fn claim_idempotency(
        &self,
        function_id: &str,
        key: &str,
        run_id: &str,
        now: i64,
        expires_at: i64,
    ) -> HfResult<Option<String>> {
        let (function_id, key, run_id) =
            (function_id.to_owned(), key.to_owned(), run_id.to_owned());
        self.hf(move |c| {
            let tx = c.transaction()?;
            let holder: Option<(String, i64)> = tx
                .query_row(
                    "SELECT run_id, expires_at FROM idempotency WHERE function_id = ?1 AND key = ?2",
                    params![function_id, key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((holder, expires)) = holder
                && expires > now {
                    return Ok(Some(holder));
                }
            tx.execute(
                "INSERT OR REPLACE INTO idempotency (function_id, key, run_id, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![function_id, key, run_id, expires_at],
            )?;
            tx.commit()?;
            Ok(None)
        })
        .await
    }
}

fn step_status(step: &StepRecord) -> Result<String> {
    Ok(serde_json::to_value(step.status)?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

impl Journal for SqliteStore {
    async fn load_steps(&self, run_id: &str) -> HfResult<Vec<StepRecord>> {
        let run_id = run_id.to_owned();
        self.hf(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT body FROM steps WHERE run_id = ?1 ORDER BY position")?;
            let rows = stmt.query_map([run_id], |r| r.get::<_, String>(0))?;
            rows.map(|row| from_json(&row?)).collect()
        })
        .await
    }

    async fn get_step(&self, run_id: &str, step_id: &str) -> HfResult<Option<StepRecord>> {
        let (run_id, step_id) = (run_id.to_owned(), step_id.to_owned());
        self.hf(move |c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM steps WHERE run_id = ?1 AND step_id = ?2",
                    params![run_id, step_id],
                    |r| r.get(0),
                )
                .optional()?;
            body.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn put_step(&self, run_id: &str, step: &StepRecord) -> HfResult<()> {
        let body = to_json(step)?;
        let status = step_status(step)?;
        let (run_id, step_id, position) = (run_id.to_owned(), step.id.clone(), step.position);
        self.hf(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO steps (run_id, step_id, position, status, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run_id, step_id, position, status, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn resolve_step(&self, run_id: &str, step: &StepRecord) -> HfResult<bool> {
        let body = to_json(step)?;
        let status = step_status(step)?;
        let (run_id, step_id) = (run_id.to_owned(), step.id.clone());
        self.hf(move |c| {
            let changed = c.execute(
                "UPDATE steps SET status = ?3, body = ?4
                 WHERE run_id = ?1 AND step_id = ?2 AND status = 'waiting'",
                params![run_id, step_id, status, body],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}

impl Waiters for SqliteStore {
    async fn add_waiter(&self, waiter: &Waiter) -> HfResult<()> {
        let body = to_json(waiter)?;
        let (event, run_id, step_id) = (
            waiter.event.clone(),
            waiter.run_id.clone(),
            waiter.step_id.clone(),
        );
        self.hf(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO waiters (event, run_id, step_id, body) VALUES (?1, ?2, ?3, ?4)",
                params![event, run_id, step_id, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn waiters_for(&self, event: &str) -> HfResult<Vec<Waiter>> {
        let event = event.to_owned();
        self.hf(move |c| {
            let mut stmt = c.prepare_cached("SELECT body FROM waiters WHERE event = ?1")?;
            let rows = stmt.query_map([event], |r| r.get::<_, String>(0))?;
            rows.map(|row| from_json(&row?)).collect()
        })
        .await
    }

    async fn remove_waiter(&self, event: &str, run_id: &str, step_id: &str) -> HfResult<()> {
        let (event, run_id, step_id) = (event.to_owned(), run_id.to_owned(), step_id.to_owned());
        self.hf(move |c| {
            c.execute(
                "DELETE FROM waiters WHERE event = ?1 AND run_id = ?2 AND step_id = ?3",
                params![event, run_id, step_id],
            )?;
            Ok(())
        })
        .await
    }
}

impl Queue for SqliteStore {
    async fn send(&self, envelope: &Envelope) -> HfResult<()> {
        self.enqueue(envelope, None).await.map_err(Into::into)
    }
}

impl Timers for SqliteStore {
    async fn schedule(&self, envelope: &Envelope, at: i64) -> HfResult<()> {
        self.enqueue(envelope, Some(at)).await.map_err(Into::into)
    }
}

impl From<rusqlite::types::FromSqlError> for EmbeddedError {
    fn from(err: rusqlite::types::FromSqlError) -> Self {
        Self::Sqlite(err.into())
    }
}

impl SqliteStore {
    /// Counts runs, optionally of one function and status.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn count_runs(
        &self,
        function_id: Option<&str>,
        status: Option<hookflow::RunStatus>,
    ) -> Result<u64> {
        let function_id = function_id.map(str::to_owned);
        let status = status.map(hookflow::RunStatus::as_str);
        self.call(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM runs WHERE (?1 IS NULL OR function_id = ?1) AND (?2 IS NULL OR status = ?2)",
                params![function_id, status],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}
