//! The SQLite schema. One table per record kind; JSON bodies hold the records,
//! indexed columns hold what queries and conditional writes need.

pub(crate) const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA busy_timeout = 5000;
PRAGMA foreign_keys = OFF;
";

/// The schema's version (`PRAGMA user_version`); a file of another version is
/// refused, except those [`UPGRADES_FROM`] (the schema only adds to them).
pub(crate) const SCHEMA_VERSION: i64 = 5;

/// Versions opened and upgraded in place: 3 lacks the `flow` table, 4 the
/// columns of [`ADDED_COLUMNS`].
pub(crate) const UPGRADES_FROM: [i64; 2] = [3, 4];

/// Columns added to tables of an earlier version (table, column, its
/// declaration), added before [`SCHEMA`] runs (whose indexes may use them).
pub(crate) const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("flow", "forget_at", "INTEGER"),
    ("blobs", "used_at", "INTEGER NOT NULL DEFAULT 0"),
];

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, received_at);
CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at);

CREATE TABLE IF NOT EXISTS runs (
    id               TEXT PRIMARY KEY,
    function_id      TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    body             TEXT NOT NULL,    -- the run without its trigger event
    event            TEXT NOT NULL,    -- the trigger event, written once
    lease_token      TEXT,
    lease_until      INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 0,  -- transitions since creation
    cancel_requested TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_function ON runs (function_id, status, created_at);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at);

CREATE TABLE IF NOT EXISTS steps (
    run_id   TEXT NOT NULL,
    step_id  TEXT NOT NULL,
    position INTEGER NOT NULL,
    status   TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id)
);

CREATE TABLE IF NOT EXISTS idempotency (
    function_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (function_id, key)
);

CREATE TABLE IF NOT EXISTS flow (
    key       TEXT PRIMARY KEY,        -- {kind}#{function}#{key}
    version   INTEGER NOT NULL,        -- created at (ms), +1 per write
    body      TEXT NOT NULL,           -- the FlowState
    forget_at INTEGER                  -- when the prune may delete it (NULL: never)
);
CREATE INDEX IF NOT EXISTS flow_by_forget_at ON flow (forget_at) WHERE forget_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS waiters (
    event   TEXT NOT NULL,
    run_id  TEXT NOT NULL,
    step_id TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (event, run_id, step_id)
);

CREATE TABLE IF NOT EXISTS queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    target        TEXT NOT NULL,
    body          TEXT NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    dedupe_key    TEXT UNIQUE,
    dead          INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue (dead, visible_at);

CREATE TABLE IF NOT EXISTS blobs (
    key     TEXT PRIMARY KEY,          -- sha256-<hex> of the body
    body    BLOB NOT NULL,
    used_at INTEGER NOT NULL DEFAULT 0 -- when last stored (a new reference)
);

CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (collection, key)
);
";
