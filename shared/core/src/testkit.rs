//! The store contract suite: one set of checks, written once over the store
//! traits, that every backend runs against itself (the embedded backend always;
//! the AWS backend against a local AWS endpoint). Use the
//! [`store_contract_tests!`](crate::store_contract_tests) macro with an
//! expression that builds a fresh, empty store implementing [`QueueProbe`].

mod docs;

use std::future::Future;

use serde_json::json;

pub use self::docs::{
    doc_store_concurrent_updates_lose_nothing, doc_store_updates_retry_on_conflict,
    document_delete_is_conditional, document_replace_is_conditional, document_size_is_limited,
    documents_are_created_once, documents_are_listed_by_key,
};
use crate::error::Result;
use crate::event::Event;
use crate::run::{
    Envelope, Message, Run, RunStatus, StepKind, StepRecord, StepStatus, Target, Waiter, WaiterKind,
};
use crate::store::{RunFilter, Store};

/// Lets the suite observe deliveries: the messages due at `now`, removed from
/// the queue. (Production consumers are the worker loop or Lambda's event source.)
pub trait QueueProbe: Send + Sync {
    /// Receives and deletes every message due at `now`.
    fn take_due(&self, now: i64) -> impl Future<Output = Result<Vec<Envelope>>> + Send;
}

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

fn run(id: &str, function: &str, created_at: i64) -> Run {
    Run::new(
        id.into(),
        function,
        Event::new("test/event", json!({"k": id})).with_id(format!("e-{id}")),
        created_at,
    )
}

/// Event ids are stored once per dedupe window; events are found by name and time.
pub async fn events_are_deduplicated<S: Store>(store: S) {
    let event = Event::new("order/paid", json!({"total": 5}))
        .with_id("evt-1")
        .with_ts(T0);
    assert!(
        store.put_event(&event, T0, DAY).await.unwrap(),
        "first delivery is new"
    );
    assert!(
        !store.put_event(&event, T0 + 1000, DAY).await.unwrap(),
        "redelivery is a duplicate"
    );
    assert!(
        store.put_event(&event, T0 + DAY, DAY).await.unwrap(),
        "after the window it is new again"
    );
    let stored = store.get_event("evt-1").await.unwrap().expect("stored");
    assert_eq!(stored.event, event);
    assert_eq!(stored.received_at, T0 + DAY);
    assert!(store.get_event("nope").await.unwrap().is_none());

    store.record_routed(&stored).await.unwrap();
    let other = Event::new("order/shipped", json!({})).with_id("evt-2");
    store.put_event(&other, T0 + DAY + 5, DAY).await.unwrap();
    let routed = store.get_event("evt-2").await.unwrap().unwrap();
    store.record_routed(&routed).await.unwrap();
    let later = Event::new("order/paid", json!({})).with_id("evt-3");
    store.put_event(&later, T0 + DAY + 10, DAY).await.unwrap();
    let routed = store.get_event("evt-3").await.unwrap().unwrap();
    store.record_routed(&routed).await.unwrap();
    store.record_routed(&routed).await.unwrap(); // recording twice is harmless
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

/// Runs are created once, updated until terminal, and listed newest first.
pub async fn runs_are_created_once_and_frozen_when_terminal<S: Store>(store: S) {
    let mut a = run("run-a", "fn-1", T0);
    assert!(store.create_run(&a).await.unwrap());
    assert!(
        !store.create_run(&a).await.unwrap(),
        "same id twice is refused"
    );
    a.status = RunStatus::Running;
    a.started_at = Some(T0 + 1);
    assert!(store.update_run(&a).await.unwrap());
    assert_eq!(store.get_run("run-a").await.unwrap().unwrap(), a);
    a.status = RunStatus::Cancelled;
    assert!(store.update_run(&a).await.unwrap());
    let mut late = a.clone();
    late.status = RunStatus::Completed;
    assert!(
        !store.update_run(&late).await.unwrap(),
        "a terminal run never changes"
    );
    assert_eq!(
        store.get_run("run-a").await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );

    store
        .create_run(&run("run-b", "fn-1", T0 + 10))
        .await
        .unwrap();
    store
        .create_run(&run("run-c", "fn-2", T0 + 20))
        .await
        .unwrap();
    let all = store.list_runs(&RunFilter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["run-c", "run-b", "run-a"]);
    let filter = RunFilter {
        function_id: Some("fn-1".into()),
        status: Some(RunStatus::Queued),
        limit: 0,
    };
    let ids: Vec<_> = store
        .list_runs(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["run-b"]);
    let filter = RunFilter {
        limit: 1,
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&filter).await.unwrap().len(), 1);
    assert!(store.get_run("missing").await.unwrap().is_none());
}

/// A lease has one owner until it expires or is released.
pub async fn leases_have_one_owner<S: Store>(store: S) {
    store.create_run(&run("run-l", "fn", T0)).await.unwrap();
    assert!(
        store
            .acquire_lease("run-l", "a", T0, T0 + 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("run-l", "b", T0 + 50, T0 + 150)
            .await
            .unwrap(),
        "held by a"
    );
    assert!(
        store
            .acquire_lease("run-l", "a", T0 + 50, T0 + 200)
            .await
            .unwrap(),
        "owner renews"
    );
    assert!(
        !store
            .acquire_lease("run-l", "b", T0 + 150, T0 + 250)
            .await
            .unwrap(),
        "renewed lease still held"
    );
    assert!(
        store
            .acquire_lease("run-l", "b", T0 + 200, T0 + 300)
            .await
            .unwrap(),
        "expired lease is free"
    );
    store.release_lease("run-l", "a").await.unwrap();
    assert!(
        !store
            .acquire_lease("run-l", "c", T0 + 210, T0 + 300)
            .await
            .unwrap(),
        "only the owner releases"
    );
    store.release_lease("run-l", "b").await.unwrap();
    assert!(
        store
            .acquire_lease("run-l", "c", T0 + 210, T0 + 300)
            .await
            .unwrap()
    );
}

/// An idempotency key is claimed once until it expires.
pub async fn idempotency_keys_are_claimed_once<S: Store>(store: S) {
    assert_eq!(
        store
            .claim_idempotency("fn", "order-1", "run-1", T0, T0 + DAY)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_idempotency("fn", "order-1", "run-2", T0 + 1, T0 + DAY)
            .await
            .unwrap(),
        Some("run-1".into())
    );
    assert_eq!(
        store
            .claim_idempotency("other-fn", "order-1", "run-3", T0, T0 + DAY)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_idempotency("fn", "order-1", "run-4", T0 + DAY, T0 + 2 * DAY)
            .await
            .unwrap(),
        None
    );
}

/// The journal keeps one record per step; a waiting step is resolved once.
pub async fn journal_checkpoints_and_resolves_once<S: Store>(store: S) {
    store
        .put_step("r", &step("b", 1, StepStatus::Completed))
        .await
        .unwrap();
    store
        .put_step("r", &step("a", 0, StepStatus::Completed))
        .await
        .unwrap();
    store
        .put_step("other", &step("a", 0, StepStatus::Completed))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .load_steps("r")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["a", "b"], "ordered by position");

    let mut wait = step("w", 2, StepStatus::Waiting);
    wait.kind = StepKind::WaitForEvent;
    store.put_step("r", &wait).await.unwrap();
    let mut by_event = wait.clone();
    by_event.status = StepStatus::Completed;
    by_event.output = Some(json!({"via": "event"}));
    let mut by_timeout = wait.clone();
    by_timeout.status = StepStatus::Completed;
    by_timeout.output = None;
    assert!(
        store.resolve_step("r", &by_event).await.unwrap(),
        "first resolver wins"
    );
    assert!(
        !store.resolve_step("r", &by_timeout).await.unwrap(),
        "second resolver loses"
    );
    assert_eq!(store.get_step("r", "w").await.unwrap().unwrap(), by_event);
    assert!(
        !store
            .resolve_step("r", &step("missing", 9, StepStatus::Completed))
            .await
            .unwrap()
    );
    assert!(store.get_step("r", "missing").await.unwrap().is_none());
}

/// Waiters are found by event name and removed individually.
pub async fn waiters_are_found_by_event<S: Store>(store: S) {
    let waiter = |run: &str, step: &str, event: &str| Waiter {
        event: event.into(),
        run_id: run.into(),
        function_id: "fn".into(),
        step_id: step.into(),
        kind: WaiterKind::Step,
        condition: Some("event.data.k == async.data.k".into()),
        trigger: json!({"data": {"k": 1}}),
        registered_at: T0,
        expires_at: Some(T0 + DAY),
    };
    store
        .add_waiter(&waiter("r1", "w", "user/linked"))
        .await
        .unwrap();
    store
        .add_waiter(&waiter("r2", "w", "user/linked"))
        .await
        .unwrap();
    store.add_waiter(&waiter("r3", "w", "other")).await.unwrap();
    let mut found = store.waiters_for("user/linked").await.unwrap();
    found.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(
        found,
        vec![
            waiter("r1", "w", "user/linked"),
            waiter("r2", "w", "user/linked")
        ]
    );
    store.remove_waiter("user/linked", "r1", "w").await.unwrap();
    assert_eq!(store.waiters_for("user/linked").await.unwrap().len(), 1);
    assert!(store.waiters_for("nothing").await.unwrap().is_empty());
}

/// Sent messages are due now; timers at their time; a dedupe key schedules once.
pub async fn queue_and_timers_deliver_on_time<S: Store + QueueProbe>(store: S) {
    let start = |id: &str| {
        Envelope::new(
            Target::Function("fn".into()),
            Message::Start { run_id: id.into() },
        )
    };
    store.send(&start("now")).await.unwrap();
    store.schedule(&start("later"), T0 + 60_000).await.unwrap();
    let mut cron = Envelope::new(
        Target::Router,
        Message::Cron {
            function_id: "daily".into(),
            at: T0 + 120_000,
        },
    );
    cron.dedupe_key = Some("cron:daily:1".into());
    store.schedule(&cron, T0 + 120_000).await.unwrap();
    store.schedule(&cron, T0 + 120_000).await.unwrap();

    let due = store.take_due(T0).await.unwrap();
    assert_eq!(due, vec![start("now")]);
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

/// Generates one `#[tokio::test]` per contract check, each on a fresh store
/// built by `$make` (an async expression).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn contract_events_are_deduplicated() {
            $crate::testkit::events_are_deduplicated($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_are_created_once_and_frozen_when_terminal() {
            $crate::testkit::runs_are_created_once_and_frozen_when_terminal($make.await).await;
        }
        #[tokio::test]
        async fn contract_leases_have_one_owner() {
            $crate::testkit::leases_have_one_owner($make.await).await;
        }
        #[tokio::test]
        async fn contract_idempotency_keys_are_claimed_once() {
            $crate::testkit::idempotency_keys_are_claimed_once($make.await).await;
        }
        #[tokio::test]
        async fn contract_journal_checkpoints_and_resolves_once() {
            $crate::testkit::journal_checkpoints_and_resolves_once($make.await).await;
        }
        #[tokio::test]
        async fn contract_waiters_are_found_by_event() {
            $crate::testkit::waiters_are_found_by_event($make.await).await;
        }
        #[tokio::test]
        async fn contract_queue_and_timers_deliver_on_time() {
            $crate::testkit::queue_and_timers_deliver_on_time($make.await).await;
        }
        #[tokio::test]
        async fn contract_documents_are_created_once() {
            $crate::testkit::documents_are_created_once($make.await).await;
        }
        #[tokio::test]
        async fn contract_document_replace_is_conditional() {
            $crate::testkit::document_replace_is_conditional($make.await).await;
        }
        #[tokio::test]
        async fn contract_document_delete_is_conditional() {
            $crate::testkit::document_delete_is_conditional($make.await).await;
        }
        #[tokio::test]
        async fn contract_documents_are_listed_by_key() {
            $crate::testkit::documents_are_listed_by_key($make.await).await;
        }
        #[tokio::test]
        async fn contract_document_size_is_limited() {
            $crate::testkit::document_size_is_limited($make.await).await;
        }
        #[tokio::test]
        async fn contract_doc_store_updates_retry_on_conflict() {
            $crate::testkit::doc_store_updates_retry_on_conflict($make.await).await;
        }
    };
}
