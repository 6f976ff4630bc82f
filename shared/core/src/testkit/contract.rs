//! The store contract checks: one per guarantee of the store traits (see
//! [`crate::store`]), each on a fresh store.

use serde_json::json;

use crate::error::Result;
use crate::event::Event;
use crate::run::{
    Envelope, Lease, Message, Run, RunStatus, StepKind, StepRecord, StepStatus, Target, Waiter,
    WaiterKind,
};
use crate::run_id::{RunIdParts, derived_run_id};
use crate::store::{RunFilter, Store, StoredEvent};
use crate::transition::{Committed, Conflict, Fence, IdempotencyClaim, Outgoing, Transition};

use super::QueueProbe;

const T0: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn step(id: &str, position: u32, status: StepStatus) -> StepRecord {
    StepRecord {
        id: id.to_owned(),
        position,
        kind: StepKind::Run,
        status,
        attempts: 1,
        output: Some(json!({"n": position})),
        error: None,
        started_at: T0,
        ended_at: None,
        wake_at: None,
        detail: None,
    }
}

/// How a check names its runs: the id of run `name` of a function created
/// at a time.
type IdForm = fn(&str, &str, i64) -> String;

/// The run's name as its id (an id of another form than the current one:
/// a store keeps such runs as it did before the format).
fn named(name: &str, _function: &str, _at: i64) -> String {
    name.to_owned()
}

/// An id of the current format ([`crate::run_id`]), as the engine makes.
fn current(name: &str, function: &str, at: i64) -> String {
    derived_run_id(function, at, &[name])
}

fn run(id: &str, function: &str, created_at: i64) -> Run {
    Run::new(
        id.into(),
        function,
        Event::new("test/event", json!({"k": id})).with_id(format!("e-{id}")),
        created_at,
    )
}

fn start(id: &str) -> Envelope {
    Envelope::new(
        Target::Function("fn".into()),
        Message::Start {
            run_id: id.into(),
            due: None,
            trigger: None,
        },
    )
}

fn waiter(run: &str, step: &str, event: &str) -> Waiter {
    Waiter {
        event: event.into(),
        run_id: run.into(),
        function_id: "fn".into(),
        step_id: step.into(),
        kind: WaiterKind::Step,
        condition: Some("event.data.k == async.data.k".into()),
        trigger: json!({"data": {"k": 1}}),
        registered_at: T0,
        expires_at: Some(T0 + DAY),
    }
}

/// Commits `transition`, delivers what the backend left to deliver, and
/// returns the conflict, if any.
async fn commit<S: Store>(store: &S, transition: &Transition) -> Result<(), Conflict> {
    match store.commit(transition).await.expect("commit") {
        Ok(Committed { undelivered }) => {
            store.deliver(&undelivered).await.expect("deliver");
            Ok(())
        }
        Err(conflict) => Err(conflict),
    }
}

/// Creates `run` (fence `Create`) and drains its start message.
async fn create<S: Store + QueueProbe>(store: &S, run: &Run) {
    let mut t = Transition::new(Fence::Create, run.clone());
    t.outbox.push(Outgoing::Send {
        envelope: start(&run.id),
    });
    commit(store, &t).await.expect("created");
    store.take_due(run.created_at).await.unwrap();
}

/// Takes the lease `token` at `now` until `until`.
async fn acquire<S: Store>(
    store: &S,
    run: &Run,
    token: &str,
    now: i64,
    until: i64,
) -> Result<Run, Conflict> {
    // As a worker does: read the run, then take it at the version read.
    let version = store
        .get_run(&run.id)
        .await
        .expect("get run")
        .map_or(0, |r| r.version);
    let mut next = run.clone();
    next.status = RunStatus::Running;
    next.lease = Some(Lease {
        token: token.into(),
        until,
    });
    commit(
        store,
        &Transition::new(Fence::Acquire { now, version }, next.clone()),
    )
    .await?;
    next.version = version + 1;
    Ok(next)
}

/// `due` with each route that carries its event checked to carry it exactly
/// as stored, and then without it (a store may attach the event it has just
/// stored to its route, sparing the router a read, or not).
async fn as_plain_routes<S: Store>(store: &S, due: Vec<Envelope>) -> Vec<Envelope> {
    let mut plain = Vec::with_capacity(due.len());
    for mut envelope in due {
        if let Message::Route { event_id, stored } = &mut envelope.message
            && let Some(carried) = stored.take()
        {
            assert_eq!(
                store.get_event(event_id).await.unwrap().as_ref(),
                Some(carried.as_ref()),
                "a route carries its event as stored"
            );
        }
        plain.push(envelope);
    }
    plain
}

/// Event ids are stored once per dedupe window, each stored event's route is
/// queued, and events are found by name and time.
pub async fn events_are_deduplicated_and_routed<S: Store + QueueProbe>(store: S) {
    let event = Event::new("order/paid", json!({"total": 5}))
        .with_id("evt-1")
        .with_ts(T0);
    assert_eq!(
        store
            .append(std::slice::from_ref(&event), T0, DAY)
            .await
            .unwrap(),
        [true]
    );
    let route = |id: &str| Envelope::route(id);
    let due = store.take_due(T0).await.unwrap();
    assert_eq!(as_plain_routes(&store, due).await, [route("evt-1")]);
    assert_eq!(
        store
            .append(std::slice::from_ref(&event), T0 + 1000, DAY)
            .await
            .unwrap(),
        [false],
        "redelivery is a duplicate"
    );
    let again = as_plain_routes(&store, store.take_due(T0 + 1000).await.unwrap()).await;
    assert!(
        again.iter().all(|e| *e == route("evt-1")),
        "a duplicate may be routed again: {again:?}"
    );
    assert_eq!(
        store
            .append(std::slice::from_ref(&event), T0 + DAY, DAY)
            .await
            .unwrap(),
        [true],
        "after the window it is new again"
    );
    store.take_due(T0 + DAY).await.unwrap();
    let stored = store.get_event("evt-1").await.unwrap().expect("stored");
    assert_eq!(stored.event, event);
    assert_eq!(stored.received_at, T0 + DAY);
    assert!(store.get_event("nope").await.unwrap().is_none());

    let later = Event::new("order/due", json!({}))
        .with_id("evt-later")
        .with_ts(T0 + DAY + 60_000);
    assert_eq!(store.append(&[later], T0 + DAY, DAY).await.unwrap(), [true]);
    assert!(
        store.take_due(T0 + DAY + 59_000).await.unwrap().is_empty(),
        "routed at its ts"
    );
    assert_eq!(
        store.take_due(T0 + DAY + 60_000).await.unwrap(),
        [route("evt-later")]
    );

    store.record_routed(&stored, false).await.unwrap();
    let other = Event::new("order/shipped", json!({})).with_id("evt-2");
    store.append(&[other], T0 + DAY + 5, DAY).await.unwrap();
    let routed = store.get_event("evt-2").await.unwrap().unwrap();
    store.record_routed(&routed, false).await.unwrap();
    let later = Event::new("order/paid", json!({})).with_id("evt-3");
    store.append(&[later], T0 + DAY + 10, DAY).await.unwrap();
    let routed = store.get_event("evt-3").await.unwrap().unwrap();
    store.record_routed(&routed, false).await.unwrap();
    store.record_routed(&routed, false).await.unwrap(); // recording twice is harmless
    let since = store
        .events_since("order/paid", T0 + DAY, 10)
        .await
        .unwrap();
    let ids: Vec<_> = since.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids, ["evt-1", "evt-3"]);
    let since = store
        .events_since("order/paid", T0 + DAY + 1, 10)
        .await
        .unwrap();
    assert_eq!(since.len(), 1);
}

/// A run is created once, with its trigger event and start message; listed
/// newest first; frozen once finished.
pub async fn runs_are_created_once_and_frozen_when_finished<S: Store + QueueProbe>(store: S) {
    created_once_and_frozen(store, named).await;
}

/// [`runs_are_created_once_and_frozen_when_finished`], with run ids of the
/// current format (which a store may key runs by).
pub async fn runs_of_current_ids_are_created_once_and_frozen<S: Store + QueueProbe>(store: S) {
    created_once_and_frozen(store, current).await;
}

async fn created_once_and_frozen<S: Store + QueueProbe>(store: S, id: IdForm) {
    let (a_id, b_id, c_id) = (
        id("run-a", "fn-1", T0),
        id("run-b", "fn-1", T0 + 10),
        id("run-c", "fn-2", T0 + 20),
    );
    let (b, c) = (b_id.as_str(), c_id.as_str());
    let a = run(&a_id, "fn-1", T0);
    let mut t = Transition::new(Fence::Create, a.clone());
    t.outbox.push(Outgoing::Send {
        envelope: start(&a_id),
    });
    commit(&store, &t).await.unwrap();
    assert_eq!(
        commit(&store, &t).await,
        Err(Conflict::Exists),
        "same id twice is refused"
    );
    assert_eq!(
        store.take_due(T0).await.unwrap(),
        [start(&a_id)],
        "started once"
    );
    let loaded = store.load_run(&a_id).await.unwrap().expect("loaded");
    assert_eq!(loaded.run, a, "with its trigger event");
    assert!(loaded.journal.is_empty());

    let running = acquire(&store, &a, "tok", T0, T0 + 100).await.unwrap();
    let mut done = running.clone();
    done.status = RunStatus::Cancelled;
    done.lease = None;
    commit(
        &store,
        &Transition::new(
            Fence::Hold {
                token: "tok".into(),
                now: T0 + 1,
            },
            done.clone(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        store.get_run(&a_id).await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );
    assert_eq!(
        acquire(&store, &done, "late", T0 + 200, T0 + 300).await,
        Err(Conflict::Finished),
        "a finished run is never taken again"
    );

    create(&store, &run(b, "fn-1", T0 + 10)).await;
    create(&store, &run(c, "fn-2", T0 + 20)).await;
    let all = store.list_runs(&RunFilter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [c, b, a_id.as_str()]);
    let filter = RunFilter {
        function_id: Some("fn-1".into()),
        status: Some(RunStatus::Queued),
        limit: 0,
        ..RunFilter::default()
    };
    let ids: Vec<_> = store
        .list_runs(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [b]);
    let filter = RunFilter {
        limit: 1,
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&filter).await.unwrap().len(), 1);
    // A time range: created at or after `since`, before `until`.
    let listed = |filter: RunFilter| {
        let store = &store;
        async move {
            let runs = store.list_runs(&filter).await.unwrap();
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let range = |since: Option<i64>, until: Option<i64>| RunFilter {
        since,
        until,
        ..RunFilter::default()
    };
    assert_eq!(listed(range(Some(T0 + 10), None)).await, [c, b]);
    assert_eq!(listed(range(None, Some(T0 + 20))).await, [b, a_id.as_str()]);
    assert_eq!(listed(range(Some(T0 + 5), Some(T0 + 15))).await, [b]);
    let one_function = RunFilter {
        function_id: Some("fn-1".into()),
        ..range(Some(T0 + 5), None)
    };
    assert_eq!(listed(one_function).await, [b]);
    let function_and_status = RunFilter {
        function_id: Some("fn-1".into()),
        status: Some(RunStatus::Cancelled),
        ..range(None, Some(T0 + 5))
    };
    assert_eq!(listed(function_and_status).await, [a_id.as_str()]);
    // Exact bounds on the per-function index, and empty ranges.
    let fn1 = |since, until| RunFilter {
        function_id: Some("fn-1".into()),
        ..range(since, until)
    };
    assert_eq!(listed(fn1(Some(T0 + 10), None)).await, [b]);
    assert_eq!(listed(fn1(None, Some(T0 + 10))).await, [a_id.as_str()]);
    assert_eq!(
        listed(fn1(Some(T0), Some(T0 + 11))).await,
        [b, a_id.as_str()]
    );
    assert!(listed(fn1(Some(T0 + 10), Some(T0 + 10))).await.is_empty());
    assert!(listed(fn1(Some(T0 + 20), Some(T0 + 10))).await.is_empty());
    assert!(listed(range(Some(T0 + 20), Some(T0 + 10))).await.is_empty());
    assert!(store.get_run("missing").await.unwrap().is_none());
    assert!(store.load_run("missing").await.unwrap().is_none());
}

/// Listing a function's runs by status finds them as their status changes,
/// newest first, past any number of newer runs of other statuses.
pub async fn runs_are_listed_by_their_current_status<S: Store + QueueProbe>(store: S) {
    listed_by_current_status(store, named).await;
}

/// [`runs_are_listed_by_their_current_status`], with run ids of the
/// current format.
pub async fn runs_of_current_ids_are_listed_by_their_current_status<S: Store + QueueProbe>(
    store: S,
) {
    listed_by_current_status(store, current).await;
}

async fn listed_by_current_status<S: Store + QueueProbe>(store: S, id: IdForm) {
    let listed = |status: RunStatus, limit: usize| {
        let store = &store;
        let filter = RunFilter {
            function_id: Some("fn".into()),
            status: Some(status),
            limit,
            ..RunFilter::default()
        };
        async move {
            let runs = store.list_runs(&filter).await.unwrap();
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    // GIVEN an old queued run, and 120 newer ones that were skipped
    let queued_id = id("queued", "fn", T0);
    let queued = run(&queued_id, "fn", T0);
    create(&store, &queued).await;
    for i in 1..=120 {
        let mut skipped = run(&id(&format!("skipped-{i:03}"), "fn", T0 + i), "fn", T0 + i);
        skipped.status = RunStatus::Skipped;
        commit(&store, &Transition::new(Fence::Create, skipped))
            .await
            .expect("created");
    }
    let other = id("other-fn", "fn-2", T0 + 200);
    create(&store, &run(&other, "fn-2", T0 + 200)).await;
    // THEN each status lists its runs, the queued one from behind them all
    assert_eq!(listed(RunStatus::Queued, 1).await, [queued_id.as_str()]);
    assert_eq!(
        listed(RunStatus::Skipped, 3).await,
        [120, 119, 118].map(|i| id(&format!("skipped-{i:03}"), "fn", T0 + i))
    );
    assert_eq!(listed(RunStatus::Skipped, 0).await.len(), 100);
    assert!(listed(RunStatus::Running, 0).await.is_empty());
    // WHEN it runs, and then fails
    let running = acquire(&store, &queued, "w", T0 + 300, T0 + 400)
        .await
        .expect("acquired");
    assert_eq!(listed(RunStatus::Running, 0).await, [queued_id.as_str()]);
    assert!(listed(RunStatus::Queued, 0).await.is_empty());
    let mut failed = running.clone();
    failed.status = RunStatus::Failed;
    failed.lease = None;
    let hold = Fence::Hold {
        token: "w".into(),
        now: T0 + 310,
    };
    commit(&store, &Transition::new(hold, failed))
        .await
        .expect("failed");
    // THEN it is listed as failed, and as nothing else
    assert_eq!(listed(RunStatus::Failed, 0).await, [queued_id.as_str()]);
    assert!(listed(RunStatus::Running, 0).await.is_empty());
    assert!(listed(RunStatus::Completed, 0).await.is_empty());
}

/// A function's runs are listed newest first however their ids spread
/// them (a store may keep them apart by a part of their ids: here most in
/// one part, so listing reads it page after page).
pub async fn runs_are_listed_newest_first_however_their_ids_spread<S: Store + QueueProbe>(
    store: S,
) {
    // GIVEN 40 runs whose ids have the same digit after their function's
    // tag, and 20 others, at distinct times, of one function; and a run of
    // another function in between
    let shard = |id: &str| RunIdParts::parse(id).map(|parts| parts.shard);
    let mut ids = Vec::new();
    let (mut alike, mut other) = (0, 0);
    for i in 0..2000 {
        let at = T0 + i;
        let id = current(&format!("spread-{i}"), "fn", at);
        let keep = if shard(&id) == Some('0') {
            alike += 1;
            alike <= 40
        } else {
            other += 1;
            other <= 20
        };
        if keep {
            let mut r = run(&id, "fn", at);
            r.status = RunStatus::Skipped;
            commit(&store, &Transition::new(Fence::Create, r))
                .await
                .expect("created");
            ids.push(id);
        }
        if alike >= 40 && other >= 20 {
            break;
        }
    }
    assert_eq!(ids.len(), 60);
    let elsewhere = current("elsewhere", "fn-2", T0 + 500);
    create(&store, &run(&elsewhere, "fn-2", T0 + 500)).await;
    ids.reverse();
    let listed = |limit: usize, since: Option<i64>| {
        let store = &store;
        let filter = RunFilter {
            function_id: Some("fn".into()),
            limit,
            since,
            ..RunFilter::default()
        };
        async move {
            let runs = store.list_runs(&filter).await.unwrap();
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    // THEN any number of the newest are listed in order
    for limit in [1, 7, 30, 59] {
        assert_eq!(listed(limit, None).await, ids[..limit], "newest {limit}");
    }
    assert_eq!(listed(0, None).await, ids, "all 60 (under the default 100)");
    // AND a time range is exact
    let middle = RunIdParts::parse(&ids[30]).unwrap().at;
    assert_eq!(listed(0, Some(middle)).await, ids[..=30]);
}

/// A lease has one holder until it lapses; only its holder commits, and a
/// holder that lost it writes nothing.
pub async fn leases_fence_every_commit<S: Store + QueueProbe>(store: S) {
    let r = run("run-l", "fn", T0);
    create(&store, &r).await;
    let held = acquire(&store, &r, "a", T0, T0 + 100).await.unwrap();
    assert_eq!(
        acquire(&store, &r, "b", T0 + 50, T0 + 150).await,
        Err(Conflict::Leased),
        "held by a"
    );
    let hold = |token: &str, now| Fence::Hold {
        token: token.into(),
        now,
    };
    let mut checkpoint = Transition::new(hold("a", T0 + 60), held.clone());
    checkpoint.steps.push(step("s1", 0, StepStatus::Completed));
    commit(&store, &checkpoint).await.unwrap();
    assert_eq!(
        store
            .extend_lease("run-l", "a", T0 + 90, T0 + 200)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        acquire(&store, &r, "b", T0 + 150, T0 + 250).await,
        Err(Conflict::Leased),
        "an extended lease is still held"
    );
    let read_before = store.get_run("run-l").await.unwrap().unwrap();
    let taken = acquire(&store, &r, "b", T0 + 200, T0 + 300).await.unwrap();
    let mut late_taker = read_before.clone();
    late_taker.lease = Some(Lease {
        token: "late".into(),
        until: T0 + 900,
    });
    let stale = Fence::Acquire {
        now: T0 + 800,
        version: read_before.version,
    };
    assert_eq!(
        commit(&store, &Transition::new(stale, late_taker)).await,
        Err(Conflict::Changed),
        "a taker that read the run before the last commit may not take it"
    );
    assert_eq!(
        taken.lease.as_ref().unwrap().token,
        "b",
        "a lapsed lease is free"
    );

    // The old holder can no longer commit, nor extend, and writes nothing.
    let mut stale = Transition::new(hold("a", T0 + 60), held.clone());
    stale.steps.push(step("s2", 1, StepStatus::Completed));
    stale
        .waiters_added
        .push(waiter("run-l", "w", "user/linked"));
    stale.outbox.push(Outgoing::Send {
        envelope: start("stale"),
    });
    assert_eq!(commit(&store, &stale).await, Err(Conflict::LeaseLost));
    assert_eq!(
        store
            .extend_lease("run-l", "a", T0 + 210, T0 + 400)
            .await
            .unwrap(),
        Err(Conflict::LeaseLost)
    );
    let loaded = store.load_run("run-l").await.unwrap().unwrap();
    let ids: Vec<_> = loaded.journal.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s1"], "nothing of the stale commit");
    assert!(store.waiters_for("user/linked").await.unwrap().is_empty());
    assert!(store.take_due(T0 + 500).await.unwrap().is_empty());
    assert_eq!(
        loaded.run.lease.as_ref().map(|l| l.token.as_str()),
        Some("b")
    );

    // A lapsed lease cannot commit even when nobody took the run since.
    let mut late = Transition::new(hold("b", T0 + 301), taken.clone());
    late.steps.push(step("s2", 1, StepStatus::Completed));
    assert_eq!(commit(&store, &late).await, Err(Conflict::LeaseLost));

    // Releasing the lease (a transition with no lease) frees the run.
    let again = acquire(&store, &r, "c", T0 + 400, T0 + 500).await.unwrap();
    let mut released = again.clone();
    released.lease = None;
    released.status = RunStatus::Sleeping;
    commit(&store, &Transition::new(hold("c", T0 + 410), released))
        .await
        .unwrap();
    acquire(&store, &r, "d", T0 + 420, T0 + 500).await.unwrap();
}

/// A requested cancellation stops the holder's next commit and extension,
/// lets the cancelling transition through, and queues its message.
pub async fn cancellation_requests_fence_the_holder<S: Store + QueueProbe>(store: S) {
    let r = run("run-x", "fn", T0);
    create(&store, &r).await;
    let held = acquire(&store, &r, "a", T0, T0 + 1000).await.unwrap();
    assert!(
        store
            .request_cancel("run-x", "fn", "stop it")
            .await
            .unwrap()
    );
    let cancel = Envelope::new(
        Target::Function("fn".into()),
        Message::Cancel {
            run_id: "run-x".into(),
            reason: "stop it".into(),
        },
    );
    assert_eq!(store.take_due(T0).await.unwrap(), [cancel]);
    assert_eq!(
        store
            .load_run("run-x")
            .await
            .unwrap()
            .unwrap()
            .run
            .cancel_requested
            .as_deref(),
        Some("stop it")
    );
    let mut checkpoint = Transition::new(
        Fence::Hold {
            token: "a".into(),
            now: T0 + 1,
        },
        held.clone(),
    );
    checkpoint.steps.push(step("s1", 0, StepStatus::Completed));
    assert_eq!(
        commit(&store, &checkpoint).await,
        Err(Conflict::CancelRequested("stop it".into()))
    );
    assert_eq!(
        store
            .extend_lease("run-x", "a", T0 + 2, T0 + 2000)
            .await
            .unwrap(),
        Err(Conflict::CancelRequested("stop it".into()))
    );
    let mut cancelled = held.clone();
    cancelled.status = RunStatus::Cancelled;
    cancelled.lease = None;
    cancelled.cancel_requested = None;
    commit(
        &store,
        &Transition::new(
            Fence::HoldCancelling {
                token: "a".into(),
                now: T0 + 3,
            },
            cancelled,
        ),
    )
    .await
    .unwrap();
    let loaded = store.load_run("run-x").await.unwrap().unwrap();
    assert_eq!(loaded.run.status, RunStatus::Cancelled);
    assert!(loaded.journal.is_empty());
    assert!(
        !store.request_cancel("run-x", "fn", "again").await.unwrap(),
        "already finished"
    );
    assert!(
        !store.request_cancel("nope", "fn", "again").await.unwrap(),
        "unknown"
    );
    assert!(store.take_due(T0 + 10).await.unwrap().is_empty());
}

/// A lease a worker put off to its execution's first commit
/// ([`Fence::Begin`]) is taken by that commit at the version the worker
/// read, unless the run moved on since, is held, finished, or has a
/// requested cancellation (which taking the run with [`Fence::Acquire`]
/// then applies).
pub async fn a_deferred_lease_is_taken_by_the_first_commit<S: Store + QueueProbe>(store: S) {
    let r = run("run-b", "fn", T0);
    create(&store, &r).await;
    let read = store.get_run("run-b").await.unwrap().unwrap();
    let first = |token: &str, now: i64, version: u64| {
        let mut next = read.clone();
        next.status = RunStatus::Running;
        next.lease = Some(Lease {
            token: token.into(),
            until: now + 100,
        });
        let mut t = Transition::new(Fence::Begin { now, version }, next);
        t.steps.push(step("s1", 0, StepStatus::Completed));
        t
    };
    // Two executions read the run at one version: the first commit wins.
    commit(&store, &first("a", T0 + 10, read.version))
        .await
        .unwrap();
    assert_eq!(
        commit(&store, &first("b", T0 + 20, read.version)).await,
        Err(Conflict::Changed),
        "b read the run before a's commit"
    );
    let loaded = store.load_run("run-b").await.unwrap().unwrap();
    assert_eq!(loaded.run.status, RunStatus::Running);
    assert_eq!(
        loaded.run.lease.as_ref().map(|l| l.token.as_str()),
        Some("a")
    );
    assert_eq!(loaded.journal.len(), 1);
    // At the version now stored, a's live lease refuses another; a holds it.
    assert_eq!(
        commit(&store, &first("c", T0 + 30, loaded.run.version)).await,
        Err(Conflict::Leased)
    );
    let mut next = loaded.run.clone();
    next.lease = None;
    next.status = RunStatus::Sleeping;
    let hold = Fence::Hold {
        token: "a".into(),
        now: T0 + 40,
    };
    commit(&store, &Transition::new(hold, next)).await.unwrap();

    // A cancellation requested after the read refuses the first commit and
    // writes nothing of it; taking the run to cancel it goes through.
    let r = run("run-c", "fn", T0);
    create(&store, &r).await;
    let read = store.get_run("run-c").await.unwrap().unwrap();
    assert!(store.request_cancel("run-c", "fn", "stop").await.unwrap());
    store.take_due(T0).await.unwrap();
    let mut begun = read.clone();
    begun.status = RunStatus::Running;
    begun.lease = Some(Lease {
        token: "a".into(),
        until: T0 + 100,
    });
    let mut t = Transition::new(
        Fence::Begin {
            now: T0 + 1,
            version: read.version,
        },
        begun.clone(),
    );
    t.steps.push(step("s1", 0, StepStatus::Completed));
    assert_eq!(
        commit(&store, &t).await,
        Err(Conflict::CancelRequested("stop".into()))
    );
    let loaded = store.load_run("run-c").await.unwrap().unwrap();
    assert!(loaded.journal.is_empty() && loaded.run.lease.is_none());
    let mut cancelled = begun;
    cancelled.status = RunStatus::Cancelled;
    cancelled.lease = None;
    let acquire = Fence::Acquire {
        now: T0 + 2,
        version: read.version,
    };
    commit(&store, &Transition::new(acquire, cancelled))
        .await
        .unwrap();
    let mut late = Transition::new(
        Fence::Begin {
            now: T0 + 3,
            version: read.version + 1,
        },
        read,
    );
    late.steps.push(step("s1", 0, StepStatus::Completed));
    assert_eq!(commit(&store, &late).await, Err(Conflict::Finished));
}

/// An idempotency key is claimed with its run's creation, once until it lapses.
pub async fn idempotency_keys_are_claimed_once<S: Store + QueueProbe>(store: S) {
    let claim = |now| IdempotencyClaim {
        function_id: "fn".into(),
        key: "order-1".into(),
        expires_at: now + DAY,
        now,
    };
    let mut first = Transition::new(Fence::Create, run("run-1", "fn", T0));
    first.idempotency = Some(claim(T0));
    commit(&store, &first).await.unwrap();
    let mut second = Transition::new(Fence::Create, run("run-2", "fn", T0 + 1));
    second.idempotency = Some(claim(T0 + 1));
    second.outbox.push(Outgoing::Send {
        envelope: start("run-2"),
    });
    assert_eq!(
        commit(&store, &second).await,
        Err(Conflict::KeyTaken {
            run_id: "run-1".into()
        })
    );
    assert!(
        store.get_run("run-2").await.unwrap().is_none(),
        "no run without its key"
    );
    assert!(store.take_due(T0 + 1).await.unwrap().is_empty());
    let mut other_fn = Transition::new(Fence::Create, run("run-3", "other-fn", T0));
    other_fn.idempotency = Some(IdempotencyClaim {
        function_id: "other-fn".into(),
        ..claim(T0)
    });
    commit(&store, &other_fn).await.unwrap();
    let mut after = Transition::new(Fence::Create, run("run-4", "fn", T0 + DAY));
    after.idempotency = Some(claim(T0 + DAY));
    commit(&store, &after).await.unwrap();
}

/// A flow-control record is written only at the version its writer read,
/// atomically with the run: a stale writer changes neither; a debounced
/// run's replaced trigger event is stored.
pub async fn flow_records_change_only_at_the_version_read<S: Store + QueueProbe>(store: S) {
    use crate::flow::{FlowState, FlowWrite};
    let key = "throttle#fn#tenant-1".to_owned();
    let gcra = |tat| FlowState::Gcra { tat };
    assert!(store.flow_get(&key).await.unwrap().is_none());
    let mut first = Transition::new(Fence::Create, run("run-1", "fn", T0));
    first
        .flow
        .push(FlowWrite::after(key.clone(), None, gcra(T0 + 100)));
    commit(&store, &first).await.unwrap();
    let read = store.flow_get(&key).await.unwrap().expect("written");
    assert_eq!(&read.state, &gcra(T0 + 100));
    let created = read.version;
    assert!(created > 0, "a record's first version is its creation time");
    // A writer that read nothing (as run-1's did) is too late now.
    let mut stale = Transition::new(Fence::Create, run("run-2", "fn", T0));
    stale
        .flow
        .push(FlowWrite::after(key.clone(), None, gcra(T0 + 100)));
    stale.outbox.push(Outgoing::Send {
        envelope: start("run-2"),
    });
    assert_eq!(commit(&store, &stale).await, Err(Conflict::FlowChanged));
    assert!(store.get_run("run-2").await.unwrap().is_none(), "no run");
    assert!(store.take_due(T0 + 1).await.unwrap().is_empty(), "no start");
    assert_eq!(store.flow_get(&key).await.unwrap(), Some(read.clone()));
    // One that read the first version succeeds, and the record is at the next.
    let mut next = Transition::new(Fence::Create, run("run-2", "fn", T0));
    next.flow
        .push(FlowWrite::after(key.clone(), Some(&read), gcra(T0 + 200)));
    commit(&store, &next).await.unwrap();
    let read = store.flow_get(&key).await.unwrap().expect("written");
    assert_eq!((read.version, &read.state), (created + 1, &gcra(T0 + 200)));
    // A queued run takes a new trigger event with its record (debounce).
    let queued = store.get_run("run-2").await.unwrap().expect("run-2");
    let mut folded = Transition::new(
        Fence::Acquire {
            now: T0 + 1,
            version: queued.version,
        },
        queued,
    );
    folded.run.event = Event::new("test/go", json!({"n": 2})).with_id("e-2");
    folded.replaces_event = true;
    folded
        .flow
        .push(FlowWrite::after(key.clone(), Some(&read), gcra(T0 + 300)));
    commit(&store, &folded).await.unwrap();
    let stored = store.get_run("run-2").await.unwrap().expect("run-2");
    assert_eq!(stored.event.data, json!({"n": 2}));
    assert!(stored.lease.is_none(), "folding takes no lease");
    let read = store.flow_get(&key).await.unwrap().unwrap();
    assert_eq!(read.version, created + 2);
    // Runs created along with it must be new: one that exists refuses all.
    let fold = |also: &str| {
        let mut t = Transition::new(
            Fence::Acquire {
                now: T0 + 2,
                version: stored.version,
            },
            stored.clone(),
        );
        t.flow
            .push(FlowWrite::after(key.clone(), Some(&read), gcra(T0 + 400)));
        t.also_create.push(run(also, "fn", T0 + 2));
        t
    };
    assert_eq!(commit(&store, &fold("run-1")).await, Err(Conflict::Exists));
    assert_eq!(store.flow_get(&key).await.unwrap(), Some(read.clone()));
    commit(&store, &fold("run-9")).await.unwrap();
    assert!(store.get_run("run-9").await.unwrap().is_some());
    assert_eq!(
        store.flow_get(&key).await.unwrap().unwrap().version,
        created + 3
    );
}

/// A run created from a routed event may refer to that event's record, once
/// kept for runs: it loads, reads and lists with its event (two runs may share one record),
/// and a trigger event replaced later (debounce) is the one it reads.
pub async fn runs_read_the_routed_event_they_refer_to<S: Store + QueueProbe>(store: S) {
    let event =
        Event::new("test/event", json!({"k": "run-1", "big": "x".repeat(500)})).with_id("e-run-1");
    store
        .append(std::slice::from_ref(&event), T0, DAY)
        .await
        .unwrap();
    store.take_due(T0).await.unwrap();
    let stored = store.get_event("e-run-1").await.unwrap().expect("stored");
    store.keep_for_runs(&stored).await.unwrap();
    for id in ["run-1", "run-2"] {
        let mut r = run(id, "fn", T0);
        r.event = event.clone();
        let mut t = Transition::new(Fence::Create, r);
        t.event_recorded_at = Some(stored.received_at);
        // its start carries the event, as the router attaches it
        let mut envelope = start(id);
        if let Message::Start { trigger, .. } = &mut envelope.message {
            *trigger = Some(Box::new(stored.clone()));
        }
        t.outbox.push(Outgoing::Send { envelope });
        commit(&store, &t).await.unwrap();
    }
    store.take_due(T0).await.unwrap();
    let got = store.get_run("run-1").await.unwrap().expect("run-1");
    assert_eq!(got.event, event);
    let loaded = store.load_run("run-2").await.unwrap().expect("run-2");
    assert_eq!(loaded.run.event, event);
    assert!(
        loaded.undelivered.iter().all(|m| *m == m.as_kept()),
        "an outbox keeps no carried event: {:?}",
        loaded.undelivered
    );
    // A start that carried the record the run refers to loads the run with
    // it; one that carried another (the same id received at another time)
    // does not override the run's own.
    let started = store.load_started_run("run-2", &stored).await.unwrap();
    assert_eq!(started.expect("run-2").run.event, event);
    let other = StoredEvent {
        event: Event::new("test/event", json!({"other": true})).with_id("e-run-1"),
        received_at: stored.received_at + 1,
        kept_for_runs: true,
    };
    let started = store.load_started_run("run-2", &other).await.unwrap();
    assert_eq!(started.expect("run-2").run.event, event);
    let filter = RunFilter {
        function_id: Some("fn".into()),
        ..RunFilter::default()
    };
    let listed = store.list_runs(&filter).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|r| r.event == event), "{listed:?}");
    // A debounced run's newer event replaces the one it referred to.
    let mut folded = Transition::new(
        Fence::Acquire {
            now: T0 + 1,
            version: got.version,
        },
        got,
    );
    let newer = Event::new("test/event", json!({"n": 2})).with_id("e-newer");
    folded.run.event = newer.clone();
    folded.replaces_event = true;
    commit(&store, &folded).await.unwrap();
    assert_eq!(store.get_run("run-1").await.unwrap().unwrap().event, newer);
    assert_eq!(
        store.load_run("run-1").await.unwrap().unwrap().run.event,
        newer
    );
    let started = store.load_started_run("run-1", &stored).await.unwrap();
    assert_eq!(started.unwrap().run.event, newer, "its own copy wins");
    let listed = store.list_runs(&filter).await.unwrap();
    let events: Vec<_> = listed
        .iter()
        .map(|r| (r.id.as_str(), &r.event.id))
        .collect();
    assert!(events.contains(&("run-1", &newer.id)), "{events:?}");
    assert!(events.contains(&("run-2", &event.id)), "{events:?}");
    // A fold to a routed event refers to its record (over the copy an
    // earlier fold left), and the folded event's skipped run does too.
    let newest = Event::new("test/event", json!({"n": 3})).with_id("e-newest");
    store
        .append(std::slice::from_ref(&newest), T0 + 5, DAY)
        .await
        .unwrap();
    let newest_stored = store.get_event("e-newest").await.unwrap().expect("stored");
    store.keep_for_runs(&newest_stored).await.unwrap();
    let current = store.get_run("run-1").await.unwrap().unwrap();
    let mut refolded = Transition::new(
        Fence::Acquire {
            now: T0 + 6,
            version: current.version,
        },
        current,
    );
    refolded.run.event = newest.clone();
    refolded.replaces_event = true;
    refolded.event_recorded_at = Some(newest_stored.received_at);
    let mut skipped = run("run-3", "fn", T0 + 6);
    skipped.event = newest.clone();
    skipped.status = RunStatus::Skipped;
    refolded.also_create.push(skipped);
    commit(&store, &refolded).await.unwrap();
    for id in ["run-1", "run-3"] {
        assert_eq!(
            store.get_run(id).await.unwrap().unwrap().event,
            newest,
            "{id}"
        );
        let loaded = store.load_run(id).await.unwrap().unwrap();
        assert_eq!(loaded.run.event, newest, "{id}");
    }
    let listed = store.list_runs(&filter).await.unwrap();
    assert_eq!(
        listed.iter().filter(|r| r.event == newest).count(),
        2,
        "{listed:?}"
    );
}

/// An event id received again after the deduplication window is a new
/// event, and the runs of the first one still read theirs: the one they
/// refer to, however it was kept for them (each way is exercised: kept
/// before the id came again, or only after).
pub async fn runs_keep_their_event_when_its_id_comes_again<S: Store + QueueProbe>(store: S) {
    let first = Event::new("test/event", json!({"n": 1})).with_id("e-again");
    let second = Event::new("test/event", json!({"n": 2})).with_id("e-again");
    let third = Event::new("test/event", json!({"n": 3})).with_id("e-again");
    let mut starts = Vec::new();
    for (i, (event, at)) in [(&first, T0), (&second, T0 + DAY), (&third, T0 + 2 * DAY)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            store
                .append(std::slice::from_ref(event), at, DAY)
                .await
                .unwrap(),
            [true],
            "a new event after the window"
        );
        store.take_due(at).await.unwrap();
        let stored = store.get_event("e-again").await.unwrap().expect("stored");
        assert_eq!(stored.event, *event);
        starts.push(stored);
        // The first two are kept for their runs at once, the third only
        // once the id's record is another's.
        if i < 2 {
            create_referring(&store, &format!("again-{i}"), &starts[i]).await;
        }
    }
    store.keep_for_runs(&starts[0]).await.unwrap(); // a redelivered route
    create_referring(&store, "again-2", &starts[0]).await;
    assert_eq!(
        store
            .append(std::slice::from_ref(&first), T0 + 3 * DAY, DAY)
            .await
            .unwrap(),
        [true]
    );
    store.take_due(T0 + 3 * DAY).await.unwrap();
    for (id, event) in [
        ("again-0", &first),
        ("again-1", &second),
        ("again-2", &first),
    ] {
        assert_eq!(
            store.get_run(id).await.unwrap().unwrap().event,
            *event,
            "{id}"
        );
        let loaded = store.load_run(id).await.unwrap().unwrap();
        assert_eq!(loaded.run.event, *event, "{id}");
        // A start that carried the id's other event does not override it.
        let started = store.load_started_run(id, &starts[2]).await.unwrap();
        assert_eq!(started.unwrap().run.event, *event, "{id}");
    }
    let filter = RunFilter {
        function_id: Some("fn-again".into()),
        ..RunFilter::default()
    };
    let mut listed: Vec<_> = store
        .list_runs(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.event.data))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        [
            ("again-0".to_owned(), json!({"n": 1})),
            ("again-1".to_owned(), json!({"n": 2})),
            ("again-2".to_owned(), json!({"n": 1})),
        ]
    );
}

/// Creates run `id` of `fn-again` referring to `stored` for its event.
async fn create_referring<S: Store>(store: &S, id: &str, stored: &StoredEvent) {
    store.keep_for_runs(stored).await.unwrap();
    let mut r = run(id, "fn-again", stored.received_at);
    r.event = stored.event.clone();
    let mut t = Transition::new(Fence::Create, r);
    t.event_recorded_at = Some(stored.received_at);
    commit(store, &t).await.unwrap();
}

/// The journal keeps one record per step, replaced by later checkpoints and
/// loaded in position order.
pub async fn journal_checkpoints_are_ordered_and_replaced<S: Store + QueueProbe>(store: S) {
    // One run of each id form.
    let r = run(&current("r", "fn", T0), "fn", T0);
    create(&store, &r).await;
    let held = acquire(&store, &r, "t", T0, T0 + 1000).await.unwrap();
    let hold = Fence::Hold {
        token: "t".into(),
        now: T0 + 1,
    };
    let mut t = Transition::new(hold.clone(), held.clone());
    t.steps = vec![
        step("b", 1, StepStatus::Retrying),
        step("a", 0, StepStatus::Completed),
    ];
    commit(&store, &t).await.unwrap();
    let mut t = Transition::new(hold, held);
    t.steps = vec![step("b", 1, StepStatus::Completed)];
    commit(&store, &t).await.unwrap();
    let other = run("other", "fn", T0);
    create(&store, &other).await;
    let loaded = store.load_run(&r.id).await.unwrap().unwrap();
    let steps: Vec<_> = loaded
        .journal
        .iter()
        .map(|s| (s.id.as_str(), s.status))
        .collect();
    assert_eq!(
        steps,
        [("a", StepStatus::Completed), ("b", StepStatus::Completed)]
    );
    assert!(
        store
            .load_run("other")
            .await
            .unwrap()
            .unwrap()
            .journal
            .is_empty()
    );
}

/// Waiters come and go with transitions and are found by event name.
pub async fn waiters_are_registered_by_transitions<S: Store + QueueProbe>(store: S) {
    let r = run("r1", "fn", T0);
    let mut t = Transition::new(Fence::Create, r.clone());
    t.waiters_added = vec![
        waiter("r1", "w", "user/linked"),
        waiter("r1", "cancel:0", "other"),
    ];
    commit(&store, &t).await.unwrap();
    let r2 = run("r2", "fn", T0);
    let mut t = Transition::new(Fence::Create, r2);
    t.waiters_added = vec![waiter("r2", "w", "user/linked")];
    commit(&store, &t).await.unwrap();
    let mut found = store.waiters_for("user/linked").await.unwrap();
    found.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(
        found,
        vec![
            waiter("r1", "w", "user/linked"),
            waiter("r2", "w", "user/linked")
        ]
    );
    let held = acquire(&store, &r, "t", T0, T0 + 1000).await.unwrap();
    let mut t = Transition::new(
        Fence::Hold {
            token: "t".into(),
            now: T0,
        },
        held,
    );
    t.waiters_removed = vec![waiter("r1", "w", "user/linked").key()];
    commit(&store, &t).await.unwrap();
    assert_eq!(store.waiters_for("user/linked").await.unwrap().len(), 1);
    assert_eq!(store.waiters_for("other").await.unwrap().len(), 1);
    assert!(store.waiters_for("nothing").await.unwrap().is_empty());
}

/// The outbox: messages now, timers at their time, a dedupe key scheduled
/// once, events stored and routed.
pub async fn the_outbox_delivers_on_time<S: Store + QueueProbe>(store: S) {
    let mut cron = Envelope::new(
        Target::Router,
        Message::Cron {
            function_id: "daily".into(),
            at: T0 + 120_000,
        },
    );
    cron.dedupe_key = Some("cron:daily:1".into());
    let sent = Event::new("mail/requested", json!({"to": "a"}))
        .with_id("sent-1")
        .with_ts(T0);
    let mut t = Transition::new(Fence::Create, run("r", "fn", T0));
    t.outbox = vec![
        Outgoing::Send {
            envelope: start("now"),
        },
        Outgoing::Later {
            envelope: start("later"),
            at: T0 + 60_000,
        },
        Outgoing::Later {
            envelope: cron.clone(),
            at: T0 + 120_000,
        },
        Outgoing::Events {
            events: vec![sent.clone()],
            sent_at: T0,
        },
    ];
    commit(&store, &t).await.unwrap();
    store
        .deliver(&[Outgoing::Later {
            envelope: cron.clone(),
            at: T0 + 120_000,
        }])
        .await
        .unwrap();
    let mut due = as_plain_routes(&store, store.take_due(T0).await.unwrap()).await;
    due.sort_by_key(|e| serde_json::to_string(e).unwrap_or_default());
    let route = Envelope::route("sent-1");
    let mut expected = vec![start("now"), route];
    expected.sort_by_key(|e| serde_json::to_string(e).unwrap_or_default());
    assert_eq!(due, expected);
    assert_eq!(
        store.get_event("sent-1").await.unwrap().unwrap().event,
        sent
    );
    assert!(store.take_due(T0 + 59_000).await.unwrap().is_empty());
    assert_eq!(
        store.take_due(T0 + 60_000).await.unwrap(),
        vec![start("later")]
    );
    assert_eq!(
        store.take_due(T0 + 180_000).await.unwrap(),
        vec![cron],
        "scheduled once"
    );
}

/// Blobs are stored once per content and read back by key.
pub async fn blobs_are_stored_once_by_content<S: Store + QueueProbe>(store: S) {
    let bytes = vec![7_u8; 300 * 1024];
    let key = store.put_blob(&bytes).await.unwrap();
    assert_eq!(key, crate::limits::blob_key(&bytes));
    assert_eq!(
        store.put_blob(&bytes).await.unwrap(),
        key,
        "same content, same key"
    );
    assert_eq!(store.get_blob(&key).await.unwrap(), Some(bytes));
    assert_eq!(store.get_blob("sha256-unknown").await.unwrap(), None);
}

/// Records far over the inline size (a 700 KB event, a 3 MiB step output,
/// waiters and sent events carrying them) are stored by reference and come
/// back whole.
pub async fn large_payloads_round_trip<S: Store + QueueProbe>(store: S) {
    let big = |n: usize| json!({"blob": "x".repeat(n)});
    let event = Event::new("big/event", big(700 * 1024))
        .with_id("big-1")
        .with_ts(T0);
    assert_eq!(
        store
            .append(std::slice::from_ref(&event), T0, DAY)
            .await
            .unwrap(),
        [true]
    );
    store.take_due(T0).await.unwrap();
    let stored = store.get_event("big-1").await.unwrap().unwrap();
    assert_eq!(stored.event, event);
    store.record_routed(&stored, false).await.unwrap();
    assert_eq!(
        store.events_since("big/event", T0, 10).await.unwrap(),
        [stored]
    );

    let r = Run::new(current("run-big", "fn", T0), "fn", event.clone(), T0);
    let mut create = Transition::new(Fence::Create, r.clone());
    let mut w = waiter(&r.id, "w", "user/linked");
    w.trigger = serde_json::to_value(&event).unwrap();
    create.waiters_added.push(w.clone());
    commit(&store, &create).await.unwrap();
    let held = acquire(&store, &r, "t", T0, T0 + 1000).await.unwrap();
    let mut output = step("huge", 0, StepStatus::Completed);
    output.output = Some(big(3 * 1024 * 1024));
    let sent = Event::new("big/sent", big(600 * 1024))
        .with_id("sent-big")
        .with_ts(T0);
    let mut done = held.clone();
    done.status = RunStatus::Completed;
    done.output = Some(big(2 * 1024 * 1024));
    done.lease = None;
    let mut finish = Transition::new(
        Fence::Hold {
            token: "t".into(),
            now: T0 + 1,
        },
        done.clone(),
    );
    finish.steps.push(output.clone());
    finish.outbox.push(Outgoing::Events {
        events: vec![sent.clone()],
        sent_at: T0 + 1,
    });
    commit(&store, &finish).await.unwrap();

    let loaded = store.load_run(&r.id).await.unwrap().unwrap();
    assert_eq!(loaded.run.event, event);
    assert_eq!(loaded.run.output, done.output);
    assert_eq!(loaded.journal, [output]);
    assert_eq!(store.get_run(&r.id).await.unwrap().unwrap().event, event);
    let listed = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(listed[0].output, done.output);
    assert_eq!(store.waiters_for("user/linked").await.unwrap(), [w]);
    assert_eq!(
        store.get_event("sent-big").await.unwrap().unwrap().event,
        sent
    );
    let routes = store.take_due(T0 + 1).await.unwrap();
    assert_eq!(routes, [Envelope::route("sent-big")]);
}
