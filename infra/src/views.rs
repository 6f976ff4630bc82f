//! The admin answers as JSON, computed over any store: what `hookflow
//! dev`'s API returns (`api.rs`) and what the CLI computes itself against a
//! deployed stack (`stack.rs`), so both read the same.

use std::collections::HashSet;

use hookflow::store::StoredEvent;
use hookflow::{BulkOutcome, Engine, Event, Run, RunFilter, RunStatus, Store};
use serde_json::{Value, json};

/// Most runs read to find the failed ones not yet replayed.
const DEAD_RUNS_SCAN: usize = 10_000;
/// Most runs of each function read to find an event's.
const EVENT_RUNS_SCAN: usize = 1_000;
/// How far apart two machines' clocks may be.
const CLOCK_MARGIN_MS: i64 = 60_000;

/// A run in a list.
#[must_use]
pub fn run_summary(r: &Run) -> Value {
    json!({
        "id": r.id, "function_id": r.function_id, "status": r.status,
        "event_id": r.event.id, "event_name": r.event.name,
        "created_at": r.created_at, "started_at": r.started_at, "ended_at": r.ended_at,
        "wake_at": r.wake_at, "not_before": r.not_before, "error": r.error,
        "note": r.note, "replay_of": r.replay_of,
    })
}

/// A status named in a request, or what the known ones are.
///
/// # Errors
/// An unknown name: the message lists the statuses.
pub fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::parse(text).ok_or_else(|| {
        format!(
            "unknown status `{text}` ({})",
            RunStatus::ALL.map(RunStatus::as_str).join(", ")
        )
    })
}

/// Failed runs that no replay has taken up yet (newest first): the runs a
/// redrive puts back.
///
/// # Errors
/// Storage errors.
pub async fn failed_runs<S: Store>(
    engine: &Engine<S>,
    function: Option<&str>,
) -> hookflow::Result<Vec<Run>> {
    let all = engine
        .list_runs(&RunFilter {
            function_id: function.map(str::to_owned),
            limit: DEAD_RUNS_SCAN,
            ..RunFilter::default()
        })
        .await?;
    let replayed: HashSet<&str> = all.iter().filter_map(|r| r.replay_of.as_deref()).collect();
    Ok(all
        .iter()
        .filter(|r| r.status == RunStatus::Failed && !replayed.contains(r.id.as_str()))
        .cloned()
        .collect())
}

/// The runs `stored` started, and the runs that later took it up (replays,
/// a debounce that folded it into another run) among the newest runs, since
/// its receipt, of the functions it triggers.
///
/// The runs it started are read by id (derived from the event, see
/// [`hookflow::planned_runs`]), so they are found however many runs of their
/// functions came after it.
///
/// # Errors
/// Storage errors.
pub async fn event_runs<S: Store>(
    engine: &Engine<S>,
    stored: &StoredEvent,
) -> hookflow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut seen = HashSet::new();
    for planned in hookflow::planned_runs(engine.registry(), &stored.event, stored.received_at) {
        if let Some(run) = engine.store().get_run(&planned.run_id).await? {
            seen.insert(run.id.clone());
            runs.push(run);
        }
    }
    for function in engine.registry().triggered_by(&stored.event.name) {
        let filter = RunFilter {
            function_id: Some(function.id().to_owned()),
            limit: EVENT_RUNS_SCAN,
            // Created when routed, after the receipt: a minute's margin for
            // clocks that differ between the machines that did each.
            since: Some(stored.received_at - CLOCK_MARGIN_MS),
            ..RunFilter::default()
        };
        for run in engine.list_runs(&filter).await? {
            if run.event.id == stored.event.id && seen.insert(run.id.clone()) {
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// `GET /events/{id}`: the stored event and the runs it started (`None`:
/// no such event).
///
/// # Errors
/// Storage errors.
pub async fn event<S: Store>(engine: &Engine<S>, id: &str) -> hookflow::Result<Option<Value>> {
    let Some(stored) = engine.store().get_event(id).await? else {
        return Ok(None);
    };
    let runs: Vec<Value> = event_runs(engine, &stored)
        .await?
        .iter()
        .map(|run| {
            json!({"id": run.id, "function_id": run.function_id,
                "status": run.status, "replay_of": run.replay_of})
        })
        .collect();
    Ok(Some(json!({
        "event": stored.event, "received_at": stored.received_at, "runs": runs,
    })))
}

/// `POST /events`: stores `events` (all or none) and says, for each, its
/// id, whether it was a duplicate, and the runs it starts (their ids are
/// derived, so they are known at once; `run_ids` lists them all).
///
/// # Errors
/// An invalid event (nothing stored), storage errors.
pub async fn send<S: Store>(engine: &Engine<S>, events: Vec<Event>) -> hookflow::Result<Value> {
    let ingested = engine.ingest(events.clone()).await?;
    let mut out = Vec::with_capacity(ingested.len());
    let mut all = Vec::new();
    for (mut event, ingested) in events.into_iter().zip(&ingested) {
        event.id.clone_from(&ingested.id);
        if event.ts <= 0 {
            event.ts = ingested.received_at;
        }
        let mut received_at = ingested.received_at;
        if ingested.duplicate
            && let Some(stored) = engine.store().get_event(&ingested.id).await?
        {
            // The runs the first delivery started.
            (event, received_at) = (stored.event, stored.received_at);
        }
        let runs = hookflow::planned_runs(engine.registry(), &event, received_at);
        all.extend(runs.iter().map(|r| r.run_id.clone()));
        out.push(json!({"id": ingested.id, "duplicate": ingested.duplicate, "runs": runs}));
    }
    Ok(json!({ "events": out, "run_ids": all }))
}

/// Replays each of `runs` once (a redrive: the replay's id is derived from
/// the run, so asking twice starts one); each `{"id", "replay_of"}`.
///
/// # Errors
/// Storage errors (the runs replayed before stay replayed).
pub async fn replay_each<S: Store>(
    engine: &Engine<S>,
    runs: &[Run],
) -> hookflow::Result<Vec<Value>> {
    let mut replayed = Vec::with_capacity(runs.len());
    for run in runs {
        let id = engine.redrive(&run.id).await?;
        replayed.push(json!({"id": id, "replay_of": run.id}));
    }
    Ok(replayed)
}

/// `POST /runs/bulk`'s answer.
#[must_use]
pub fn bulk(outcome: &BulkOutcome, dry_run: bool) -> Value {
    let acted: Vec<Value> = outcome
        .acted
        .iter()
        .map(|(run, replay)| match replay {
            Some(replay) => json!({"run_id": run, "replay_id": replay}),
            None => json!({"run_id": run}),
        })
        .collect();
    json!({
        "dry_run": dry_run, "matched": outcome.matched, "acted": acted,
        "skipped": outcome.skipped, "already_replayed": outcome.already_replayed,
        "more": outcome.more,
    })
}

/// Requests `id`'s cancellation and waits up to `wait` for a worker to
/// apply it (at the run's next step boundary; at once for a sleeping or
/// waiting run): `(true, run)` once it has ended, `(false, run)` while a
/// running step finishes.
///
/// # Errors
/// Unknown or finished run, storage errors.
pub async fn cancel<S: Store>(
    engine: &Engine<S>,
    id: &str,
    wait: std::time::Duration,
) -> hookflow::Result<(bool, Run)> {
    engine.cancel(id).await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let run = engine
            .store()
            .get_run(id)
            .await?
            .ok_or_else(|| hookflow::Error::RunNotFound(id.to_owned()))?;
        if run.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok((run.status.is_terminal(), run));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
