//! The database: one writer thread with group commit, and readers.
//!
//! Every write is a job sent to the writer thread, which takes every job
//! waiting, runs them in one SQLite transaction (each in its own savepoint,
//! so a failing job undoes only itself) and commits once: concurrent
//! transitions share one fsync. A job is answered only after that commit is
//! durable (`synchronous=FULL`), so nothing is acknowledged before it is on
//! disk. A batch of relaxed jobs only (queue visibility and acknowledgements,
//! which a restart or a redelivery redoes) commits without its own fsync.
//!
//! Reads run on a small pool of reader connections (WAL lets them proceed
//! while the writer commits); an in-memory database, private to one
//! connection, reads through the writer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{EmbeddedError, Result};

/// Most jobs committed together.
const MAX_BATCH: usize = 512;
/// Reader connections of a database file.
const READERS: usize = 3;
/// Prepared statements kept per connection (every statement the store uses).
const STATEMENT_CACHE: usize = 128;

/// Answers a job once its batch committed (with the commit's error, if any).
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;
/// A write: runs inside the batch transaction; says whether it succeeded
/// (a failed job's savepoint is rolled back) and how to answer it.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

struct Work {
    job: Job,
    durable: bool,
}

/// Counts of what the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits that were fsynced (batches with a durable job).
    pub durable_commits: u64,
    /// Commits without their own fsync (batches of relaxed jobs only).
    pub relaxed_commits: u64,
    /// Jobs committed.
    pub jobs: u64,
}

struct Counters {
    durable_commits: AtomicU64,
    relaxed_commits: AtomicU64,
    jobs: AtomicU64,
}

/// The writer thread's queue and the reader pool.
pub(crate) struct Db {
    writer: Mutex<mpsc::Sender<Work>>,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    counters: Arc<Counters>,
}

impl Db {
    /// Starts the writer thread on `writer` (schema already in place) with
    /// `readers` for reads (none: read through the writer).
    pub(crate) fn start(writer: Connection, readers: Vec<Connection>) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Work>();
        let counters = Arc::new(Counters {
            durable_commits: AtomicU64::new(0),
            relaxed_commits: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
        });
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("hookflow-sqlite-writer".into())
            .spawn(move || write_loop(&writer, &rx, &thread_counters))
            .map_err(|e| EmbeddedError::Schema(format!("cannot start the database writer: {e}")))?;
        Ok(Self {
            writer: Mutex::new(tx),
            readers: readers
                .into_iter()
                .map(|c| Arc::new(Mutex::new(c)))
                .collect(),
            next_reader: AtomicUsize::new(0),
            counters,
        })
    }

    /// What the writer did so far.
    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            durable_commits: self.counters.durable_commits.load(Ordering::Relaxed),
            relaxed_commits: self.counters.relaxed_commits.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
        }
    }

    /// Queues `f` for the writer's next batch at once (jobs commit in the
    /// order they were queued); the future answers once it is durable (for a
    /// relaxed write, once it is committed).
    pub(crate) fn write<T, F>(
        &self,
        durable: bool,
        f: F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |c| {
            let out = f(c);
            let ok = out.is_ok();
            let finish: Finish = Box::new(move |commit_error| {
                let _ = answer.send(match commit_error {
                    None => out,
                    Some(error) => Err(EmbeddedError::Commit(error.to_owned())),
                });
            });
            (ok, finish)
        });
        let queued = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Work { job, durable })
            .map_err(|_| EmbeddedError::Commit("the database writer stopped".into()));
        async move {
            queued?;
            answered
                .await
                .map_err(|_| EmbeddedError::Commit("the database writer dropped a write".into()))?
        }
    }

    /// Runs the read `f` on a reader connection, in one read transaction (or
    /// through the writer for an in-memory database).
    ///
    /// The store's reads are point reads and bounded listings, tens of
    /// microseconds from the page cache: with a reader free, `f` runs right
    /// here, which costs less than the two thread hand-offs of the blocking
    /// pool; with every reader busy, it waits for one there.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.write(false, f).await;
        }
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return read_in(&conn, f);
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let reader = Arc::clone(&self.readers[i]);
        tokio::task::spawn_blocking(move || {
            read_in(&reader.lock().unwrap_or_else(PoisonError::into_inner), f)
        })
        .await?
    }
}

/// Runs `f` in one read transaction: every query of `f` sees one commit.
fn read_in<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    run(conn, "BEGIN")?;
    let out = f(conn);
    run(conn, "COMMIT")?;
    out
}

/// Opens the reader connections of the database file at `path`.
pub(crate) fn readers(path: &std::path::Path, pragmas: &str) -> Result<Vec<Connection>> {
    (0..READERS)
        .map(|_| {
            let conn = Connection::open(path)?;
            conn.execute_batch(pragmas)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok(conn)
        })
        .collect()
}

/// Runs one statement through the connection's statement cache (no parsing
/// after the first time).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn write_loop(conn: &Connection, rx: &mpsc::Receiver<Work>, counters: &Counters) {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mut synced = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|w| w.durable);
        let jobs = batch.len() as u64;
        let finishes = run_batch(conn, batch, durable, &mut synced);
        match finishes {
            Ok(finishes) => {
                let counter = if durable {
                    &counters.durable_commits
                } else {
                    &counters.relaxed_commits
                };
                counter.fetch_add(1, Ordering::Relaxed);
                counters.jobs.fetch_add(jobs, Ordering::Relaxed);
                for finish in finishes {
                    finish(None);
                }
            }
            Err((error, finishes)) => {
                tracing::error!(error = %error, "database commit failed; its writes are retried by their callers");
                for finish in finishes {
                    finish(Some(&error));
                }
            }
        }
    }
}

type Batch = std::result::Result<Vec<Finish>, (String, Vec<Finish>)>;

/// Runs `batch` in one transaction, `synchronous=FULL` when `durable`
/// (`synced`: the mode the connection is in, set only when it changes).
fn run_batch(
    conn: &Connection,
    batch: Vec<Work>,
    durable: bool,
    synced: &mut Option<bool>,
) -> Batch {
    let sync = if *synced == Some(durable) {
        Ok(())
    } else {
        *synced = None;
        let mode = if durable { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", mode)
            .map(|()| *synced = Some(durable))
    };
    if let Err(error) = sync.and_then(|()| run(conn, "BEGIN IMMEDIATE")) {
        // Nothing ran: dropping the jobs answers each with an error.
        let _ = run(conn, "ROLLBACK");
        drop(batch);
        return Err((error.to_string(), Vec::new()));
    }
    let mut finishes = Vec::with_capacity(batch.len());
    let mut failed = None;
    for work in batch {
        if let Err(error) = run(conn, "SAVEPOINT job") {
            failed.get_or_insert(error.to_string());
        }
        let (ok, finish) = (work.job)(conn);
        if !ok && let Err(error) = run(conn, "ROLLBACK TO job") {
            failed.get_or_insert(error.to_string());
        }
        if let Err(error) = run(conn, "RELEASE job") {
            failed.get_or_insert(error.to_string());
        }
        finishes.push(finish);
    }
    let committed = match failed {
        Some(error) => Err(error),
        None => run(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    match committed {
        Ok(()) => Ok(finishes),
        Err(error) => {
            let _ = run(conn, "ROLLBACK");
            Err((error, finishes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Db {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        Db::start(conn, Vec::new()).unwrap()
    }

    fn insert(x: i64) -> impl FnOnce(&Connection) -> Result<()> + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            Ok(())
        }
    }

    #[tokio::test]
    async fn writes_queued_while_the_writer_is_busy_share_one_commit() {
        let db = db();
        let (started, is_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // The first write holds the writer until released, so every write
        // queued meanwhile must wait for, and share, the next commit.
        let first = db.write(true, move |c| {
            started.send(()).unwrap();
            released.recv().unwrap();
            insert(0)(c)
        });
        is_started.recv().unwrap();
        let queued: Vec<_> = (1..=10).map(|x| db.write(x % 2 == 0, insert(x))).collect();
        release.send(()).unwrap();
        first.await.unwrap();
        for write in queued {
            write.await.unwrap();
        }
        let stats = db.stats();
        assert_eq!(
            stats,
            CommitStats {
                durable_commits: 2,
                relaxed_commits: 0,
                jobs: 11
            }
        );
        let rows: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, 11);
    }

    #[tokio::test]
    async fn a_failing_write_undoes_only_itself_in_its_batch() {
        let db = db();
        let (started, is_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let first = db.write(true, move |_| {
            started.send(()).unwrap();
            released.recv().unwrap();
            Ok(())
        });
        is_started.recv().unwrap();
        let before = db.write(true, insert(1));
        // Inserts, then fails on a duplicate key: its first insert must go too.
        let failing = db.write(true, |c| {
            insert(2)(c)?;
            insert(1)(c)
        });
        let after = db.write(false, insert(3));
        release.send(()).unwrap();
        first.await.unwrap();
        before.await.unwrap();
        assert!(failing.await.is_err());
        after.await.unwrap();
        let rows: Vec<i64> = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![1, 3]);
        assert_eq!(db.stats().durable_commits, 2);
    }

    #[tokio::test]
    async fn a_batch_of_relaxed_writes_commits_without_a_sync() {
        let db = db();
        db.write(false, insert(1)).await.unwrap();
        db.write(true, insert(2)).await.unwrap();
        let stats = db.stats();
        assert_eq!((stats.relaxed_commits, stats.durable_commits), (1, 1));
    }
}
