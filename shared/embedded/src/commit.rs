//! A transition as one SQLite transaction: the fence checked, the records
//! written, and the outbox enqueued (the queue is a table), together.

use hookflow::Retention;
use hookflow::event::Event;
use hookflow::flow::FlowWrite;
use hookflow::run::{Envelope, Run, RunStatus};
use hookflow::transition::{Conflict, Fence, Outgoing, Transition};
use rusqlite::{Connection, OptionalExtension, params};

use crate::Result;
use crate::records::{step_status, store_body, to_json};

/// What a run's fence is checked against.
struct FenceRow {
    status: String,
    token: Option<String>,
    until: i64,
    cancel: Option<String>,
    version: i64,
}

/// A run status that is final, as SQL.
pub(crate) const TERMINAL: &str = "('completed', 'failed', 'cancelled', 'skipped')";

/// Adds a message to the queue, visible at `at` (or at once); a message whose
/// dedupe key is already queued is ignored.
pub(crate) fn enqueue(tx: &Connection, envelope: &Envelope, at: Option<i64>) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO queue (target, body, visible_at, dedupe_key) VALUES
             (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        envelope.target.queue_name(),
        to_json(envelope)?,
        at.unwrap_or(0),
        envelope.dedupe_key
    ])?;
    Ok(())
}

/// Stores `events` (deduplicated) and queues the route of each stored one.
pub(crate) fn append_events(
    tx: &Connection,
    events: &[Event],
    received_at: i64,
    dedupe_ms: i64,
) -> Result<Vec<bool>> {
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        let changed = tx
            .prepare_cached(
                "INSERT INTO events (id, name, body, ts, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, body = excluded.body,
                 ts = excluded.ts, received_at = excluded.received_at
             WHERE excluded.received_at - events.received_at >= ?6",
            )?
            .execute(params![
                event.id,
                event.name,
                store_body(tx, to_json(event)?, received_at)?,
                event.ts,
                received_at,
                dedupe_ms
            ])?;
        if changed == 1 {
            let route = Envelope::route(&event.id);
            enqueue(tx, &route, (event.ts > received_at).then_some(event.ts))?;
        }
        stored.push(changed == 1);
    }
    Ok(stored)
}

pub(crate) fn enqueue_outbox(tx: &Connection, outbox: &[Outgoing], now: i64) -> Result<()> {
    for message in outbox {
        match message {
            Outgoing::Send { envelope } => enqueue(tx, envelope, None)?,
            Outgoing::Later { envelope, at } => enqueue(tx, envelope, Some(*at))?,
            Outgoing::Events { events, sent_at } => {
                let at = Outgoing::events_received_at(*sent_at, now);
                append_events(tx, events, at, duration_ms(hookflow::event::DEDUPE_WINDOW))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    hookflow::clock::duration_ms(d)
}

/// Checks the transition's fence and its flow-control records' versions
/// inside `tx`; passes with the run's status as stored (none for a new run).
pub(crate) fn check_fence(
    tx: &Connection,
    t: &Transition,
) -> Result<Result<Option<RunStatus>, Conflict>> {
    if let Err(conflict) = check_flow(tx, &t.flow)? {
        return Ok(Err(conflict));
    }
    for other in &t.also_create {
        if run_exists(tx, &other.id)? {
            return Ok(Err(Conflict::Exists));
        }
    }
    check_run_fence(tx, t)
}

/// Checks that each flow-control record is still at the version its writer read.
pub(crate) fn check_flow(tx: &Connection, writes: &[FlowWrite]) -> Result<Result<(), Conflict>> {
    for write in writes {
        let version: i64 = tx
            .prepare_cached("SELECT version FROM flow WHERE key = ?1")?
            .query_row([&write.key], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if u64::try_from(version).ok() != Some(write.expect) {
            return Ok(Err(Conflict::FlowChanged));
        }
    }
    Ok(Ok(()))
}

/// Writes flow-control records (their versions checked) at `now`, with when
/// the prune may forget each ([`hookflow::flow::FlowState::forget_after`],
/// with the default longest run: runs on SQLite have no longest life, and
/// the prune keeps a record while a run it names is unfinished anyway).
pub(crate) fn apply_flow(tx: &Connection, writes: &[FlowWrite], now: i64) -> Result<()> {
    for write in writes {
        tx.prepare_cached(
            "INSERT INTO flow (key, version, body, forget_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET version = excluded.version, body = excluded.body,
                 forget_at = excluded.forget_at",
        )?
        .execute(params![
            write.key,
            i64::try_from(write.stored_version(now)).unwrap_or(i64::MAX),
            to_json(&write.state)?,
            write
                .state
                .forget_after(now, Retention::default().longest_run)
        ])?;
    }
    Ok(())
}

fn run_exists(tx: &Connection, id: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?)
}

fn check_run_fence(tx: &Connection, t: &Transition) -> Result<Result<Option<RunStatus>, Conflict>> {
    let run = &t.run;
    if t.fence == Fence::Create {
        if run_exists(tx, &run.id)? {
            return Ok(Err(Conflict::Exists));
        }
        if let Some(claim) = &t.idempotency {
            let holder: Option<(String, i64)> = tx
                .prepare_cached(
                    "SELECT run_id, expires_at FROM idempotency WHERE function_id =
             ?1 AND key = ?2",
                )?
                .query_row(params![claim.function_id, claim.key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((holder, expires)) = holder
                && expires > claim.now
                && holder != run.id
            {
                return Ok(Err(Conflict::KeyTaken { run_id: holder }));
            }
        }
        return Ok(Ok(None));
    }
    let row = tx
        .prepare_cached(
            "SELECT status, lease_token, lease_until, cancel_requested, version FROM
             runs WHERE id = ?1",
        )?
        .query_row([&run.id], |r| {
            Ok(FenceRow {
                status: r.get(0)?,
                token: r.get(1)?,
                until: r.get(2)?,
                cancel: r.get(3)?,
                version: r.get(4)?,
            })
        })
        .optional()?;
    let Some(FenceRow {
        status,
        token,
        until,
        cancel,
        version,
    }) = row
    else {
        return Ok(Err(Conflict::Missing));
    };
    let stored = RunStatus::parse(&status);
    let finished = stored.is_some_and(RunStatus::is_terminal);
    Ok(match &t.fence {
        Fence::Create => Ok(stored),
        Fence::Acquire { now, version: read } | Fence::Begin { now, version: read } => {
            if finished {
                Err(Conflict::Finished)
            } else if u64::try_from(version).ok() != Some(*read) {
                Err(Conflict::Changed)
            } else if token.is_some() && until > *now {
                Err(Conflict::Leased)
            } else if let (Fence::Begin { .. }, Some(reason)) = (&t.fence, cancel) {
                Err(Conflict::CancelRequested(reason))
            } else {
                Ok(stored)
            }
        }
        Fence::Hold { token: mine, now } | Fence::HoldCancelling { token: mine, now } => {
            if token.as_deref() != Some(mine.as_str()) || until <= *now {
                Err(Conflict::LeaseLost)
            } else if let (Fence::Hold { .. }, Some(reason)) = (&t.fence, cancel) {
                Err(Conflict::CancelRequested(reason))
            } else {
                Ok(stored)
            }
        }
    })
}

fn insert_run(
    tx: &Connection,
    run: &Run,
    (token, until): (Option<String>, i64),
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO runs
         (id, function_id, status, created_at, body, event, lease_token, lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        run.id,
        run.function_id,
        run.status.as_str(),
        run.created_at,
        store_body(tx, run.stored_body()?, now)?,
        store_body(tx, to_json(&run.event)?, now)?,
        token,
        until
    ])?;
    Ok(())
}

/// Writes `t` (its fence passed; `stored`: the run's status before it).
pub(crate) fn apply(
    tx: &Connection,
    t: &Transition,
    stored: Option<RunStatus>,
    now: i64,
) -> Result<()> {
    let run = &t.run;
    let (token, until) = run
        .lease
        .as_ref()
        .map_or((None, 0), |l| (Some(l.token.clone()), l.until));
    for other in &t.also_create {
        insert_run(tx, other, (None, 0), now)?;
    }
    if t.fence == Fence::Create {
        insert_run(tx, run, (token, until), now)?;
        if let Some(claim) = &t.idempotency {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (function_id, key, run_id,
             expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                claim.function_id,
                claim.key,
                run.id,
                claim.expires_at
            ])?;
        }
    } else {
        // A finished run's cancellation request is spent; otherwise it stays
        // for whoever applies it. A status left as it was is not set: setting
        // it rewrites the pages of both indexes on status, which a
        // checkpoint would then add to the WAL for nothing.
        let status = if stored == Some(run.status) {
            ""
        } else {
            "status = ?2,"
        };
        tx.prepare_cached(&format!(
            "UPDATE runs SET {status} body = ?3, lease_token = ?4, lease_until = ?5,
                 version = version + 1,
                 cancel_requested = CASE WHEN ?2 IN {TERMINAL} THEN NULL ELSE cancel_requested END
                 WHERE id = ?1"
        ))?
        .execute(params![
            run.id,
            run.status.as_str(),
            store_body(tx, run.stored_body()?, now)?,
            token,
            until
        ])?;
    }
    if t.replaces_event && t.fence != Fence::Create {
        tx.prepare_cached("UPDATE runs SET event = ?2 WHERE id = ?1")?
            .execute(params![run.id, store_body(tx, to_json(&run.event)?, now)?])?;
    }
    apply_flow(tx, &t.flow, now)?;
    for step in &t.steps {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO steps (run_id, step_id, position, status, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            run.id,
            step.id,
            step.position,
            step_status(step)?,
            store_body(tx, to_json(step)?, now)?
        ])?;
    }
    for waiter in &t.waiters_added {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO waiters (event, run_id, step_id, body) VALUES
             (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            waiter.event,
            waiter.run_id,
            waiter.step_id,
            store_body(tx, to_json(waiter)?, now)?
        ])?;
    }
    for key in &t.waiters_removed {
        tx.prepare_cached(
            "DELETE FROM waiters WHERE event = ?1 AND run_id = ?2 AND
             step_id = ?3",
        )?
        .execute(params![key.event, key.run_id, key.step_id])?;
    }
    enqueue_outbox(tx, &t.outbox, now)
}
