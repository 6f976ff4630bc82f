//! Run-level behaviour: event dedupe, idempotency, cancellation, cancel_on,
//! delayed events, crons, timeouts, non-determinism, replay, and restarts.

use std::time::Duration;

use hookflow::{CancelOn, Event, FakeClock, Function, RunStatus};
use hookflow_embedded::SqliteStore;
use hookflow_embedded::testing::{START_MS, TestEnv};
use hookflow_tests::{Counter, days, secs};
use serde_json::json;

fn sleeper(id: &str, trigger: &str, calls: &Counter) -> Function {
    let c = calls.clone();
    Function::new(id).on_event(trigger).handler(move |ctx| {
        let c = c.clone();
        async move {
            ctx.step
                .run("first", || async move { Ok(c.bump()) })
                .await?;
            ctx.step.sleep("long", days(2)).await?;
            ctx.step.run("second", || async { Ok(()) }).await?;
            Ok(())
        }
    })
}

#[tokio::test]
async fn a_duplicate_event_is_accepted_stored_once_and_starts_nothing_new() {
    let calls = Counter::default();
    let env = TestEnv::new(vec![sleeper("once", "order/paid", &calls)]);
    let first = env
        .send(vec![Event::new("order/paid", json!({})).with_id("evt_1")])
        .await;
    let again = env
        .send(vec![Event::new("order/paid", json!({})).with_id("evt_1")])
        .await;
    assert!(!first[0].duplicate);
    assert!(again[0].duplicate);
    assert_eq!(env.runs_of("once").await.len(), 1);
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn a_batch_with_one_invalid_event_stores_nothing() {
    let calls = Counter::default();
    let env = TestEnv::new(vec![sleeper("s", "a/b", &calls)]);
    let err = env
        .runtime
        .engine()
        .ingest(vec![
            Event::new("a/b", json!({})),
            Event::new("", json!({})),
        ])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("event name must not be empty"),
        "{err}"
    );
    env.settle().await;
    assert!(env.runs().await.is_empty());
}

#[tokio::test]
async fn one_run_per_idempotency_key() {
    let calls = Counter::default();
    let f = sleeper("pack", "purchase/done", &calls).idempotency("event.data.orderId");
    let env = TestEnv::new(vec![f]);
    env.send(vec![
        Event::new("purchase/done", json!({"orderId": "o-1"})),
        Event::new("purchase/done", json!({"orderId": "o-1"})),
        Event::new("purchase/done", json!({"orderId": "o-2"})),
    ])
    .await;
    assert_eq!(env.runs_of("pack").await.len(), 2);
    let keys: Vec<_> = env
        .runs_of("pack")
        .await
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect();
    assert!(keys.contains(&"o-1".to_string()) && keys.contains(&"o-2".to_string()));
}

#[tokio::test]
async fn trigger_conditions_select_events() {
    let calls = Counter::default();
    let f = Function::new("vip-only")
        .on_event_if("order/paid", "event.data.total >= 1000")
        .handler(|_ctx| async { Ok(()) });
    let env = TestEnv::new(vec![f, sleeper("all", "order/paid", &calls)]);
    env.send(vec![
        Event::new("order/paid", json!({"total": 10})),
        Event::new("order/paid", json!({"total": 5000})),
    ])
    .await;
    assert_eq!(env.runs_of("vip-only").await.len(), 1);
    assert_eq!(env.runs_of("all").await.len(), 2);
}

#[tokio::test]
async fn cancelling_a_sleeping_run_stops_it_before_its_next_step() {
    let calls = Counter::default();
    let env = TestEnv::new(vec![sleeper("s", "go", &calls)]);
    env.send(vec![Event::new("go", json!({}))]).await;
    let run = env.only_run("s").await.run;
    let cancelled = env.cancel(&run.id).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    env.advance(days(3)).await;
    let view = env.only_run("s").await;
    assert_eq!(view.run.status, RunStatus::Cancelled);
    assert_eq!(view.steps.len(), 2, "the step after the sleep never ran");
    let again = env.cancel(&run.id).await.unwrap_err();
    assert!(again.to_string().contains("already cancelled"), "{again}");
}

#[tokio::test]
async fn cancel_on_a_matching_event_cancels_and_another_does_not() {
    let calls = Counter::default();
    let f = sleeper("reminder", "booking/created", &calls)
        .cancel_on(CancelOn::event("booking/cancelled").matching("data.bookingId"));
    let env = TestEnv::new(vec![f]);
    env.send(vec![Event::new(
        "booking/created",
        json!({"bookingId": "b1"}),
    )])
    .await;
    env.advance(secs(1)).await;
    env.send(vec![Event::new(
        "booking/cancelled",
        json!({"bookingId": "b2"}),
    )])
    .await;
    assert_eq!(
        env.only_run("reminder").await.run.status,
        RunStatus::Sleeping
    );
    env.send(vec![Event::new(
        "booking/cancelled",
        json!({"bookingId": "b1"}),
    )])
    .await;
    let run = env.only_run("reminder").await.run;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(run.error.unwrap().contains("booking/cancelled"));
}

#[tokio::test]
async fn an_event_with_a_future_ts_starts_its_functions_at_that_time() {
    let calls = Counter::default();
    let env = TestEnv::new(vec![sleeper("later", "report/due", &calls)]);
    let at = START_MS + 3_600_000;
    env.send(vec![Event::new("report/due", json!({})).with_ts(at)])
        .await;
    assert!(env.runs().await.is_empty());
    env.advance(Duration::from_secs(3599)).await;
    assert!(env.runs().await.is_empty());
    env.advance(secs(1)).await;
    assert_eq!(env.runs_of("later").await.len(), 1);
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn a_cron_fires_once_per_tick_in_its_time_zone() {
    let f = Function::new("daily-digest")
        .on_cron_in("0 9 * * *", "America/New_York")
        .handler(|ctx| async move { Ok(ctx.event.data["scheduled_at"].clone()) });
    let env = TestEnv::new(vec![f]);
    env.runtime.start().await.unwrap();
    env.runtime.start().await.unwrap(); // a restart schedules nothing twice
    // START is 2027-01-01T00:00Z = 2026-12-31 19:00 in New York (EST, UTC-5):
    // the next 09:00 local is 14:00 UTC on Jan 1st.
    env.advance(Duration::from_secs(14 * 3600 - 1)).await;
    assert!(env.runs().await.is_empty());
    env.advance(secs(1)).await;
    let runs = env.runs_of("daily-digest").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].output, Some(json!(START_MS + 14 * 3_600_000)));
    env.advance(days(2)).await;
    assert_eq!(env.runs_of("daily-digest").await.len(), 3);
}

#[tokio::test]
async fn a_run_past_its_finish_timeout_is_cancelled() {
    let calls = Counter::default();
    let f = sleeper("bounded", "go", &calls).finish_timeout(days(1));
    let env = TestEnv::new(vec![f]);
    env.send(vec![Event::new("go", json!({}))]).await;
    env.advance(days(1)).await;
    let run = env.only_run("bounded").await.run;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(run.error.unwrap().contains("finish timeout"));
}

#[tokio::test]
async fn a_run_not_started_within_its_start_timeout_is_cancelled() {
    let calls = Counter::default();
    let f = sleeper("prompt", "go", &calls).start_timeout(secs(30));
    let env = TestEnv::new(vec![f]);
    // The event is stored and routed, but no worker picks the run up for a minute.
    env.runtime
        .engine()
        .ingest(vec![Event::new("go", json!({}))])
        .await
        .unwrap();
    let route = env
        .runtime
        .store()
        .receive(START_MS, 1, 1000)
        .await
        .unwrap();
    env.runtime.process(&route[0]).await.unwrap();
    env.clock.set(START_MS + 60_000);
    env.settle().await;
    let run = env.only_run("prompt").await.run;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(run.error.unwrap().contains("start timeout"));
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn a_journal_that_no_longer_matches_the_code_fails_the_run_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookflow.db");
    let clock = FakeClock::new(START_MS);
    let calls = Counter::default();
    {
        let env = TestEnv::with_store(
            SqliteStore::open(&path).unwrap(),
            vec![sleeper("wf", "go", &calls)],
            clock.clone(),
        );
        env.send(vec![Event::new("go", json!({}))]).await;
    }
    // The code changes while the run sleeps: its first step is now "renamed".
    let changed = Function::new("wf")
        .on_event("go")
        .handler(|ctx| async move {
            ctx.step.run("renamed", || async { Ok(1) }).await?;
            ctx.step.sleep("long", days(2)).await?;
            Ok(())
        });
    let env = TestEnv::with_store(SqliteStore::open(&path).unwrap(), vec![changed], clock);
    env.advance(days(2)).await;
    let run = env.only_run("wf").await.run;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("non-deterministic"));
}

#[tokio::test]
async fn a_reopened_database_resumes_runs_without_repeating_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookflow.db");
    let clock = FakeClock::new(START_MS);
    let calls = Counter::default();
    {
        let env = TestEnv::with_store(
            SqliteStore::open(&path).unwrap(),
            vec![sleeper("wf", "go", &calls)],
            clock.clone(),
        );
        env.send(vec![Event::new("go", json!({}))]).await;
        assert_eq!(env.only_run("wf").await.run.status, RunStatus::Sleeping);
    }
    let env = TestEnv::with_store(
        SqliteStore::open(&path).unwrap(),
        vec![sleeper("wf", "go", &calls)],
        clock,
    );
    env.runtime.start().await.unwrap();
    env.advance(days(2)).await;
    assert_eq!(env.only_run("wf").await.run.status, RunStatus::Completed);
    assert_eq!(calls.get(), 1, "the first step ran once in all");
}

#[tokio::test]
async fn replay_starts_a_fresh_run_with_the_same_event() {
    let calls = Counter::default();
    let f = Function::new("quick").on_event("go").handler({
        let c = calls.clone();
        move |ctx| {
            let c = c.clone();
            async move {
                Ok(ctx
                    .step
                    .run("count", || async move { Ok(c.bump()) })
                    .await?)
            }
        }
    });
    let env = TestEnv::new(vec![f]);
    env.send(vec![Event::new("go", json!({"x": 1}))]).await;
    let original = env.only_run("quick").await.run;
    let replayed = env.replay(&original.id).await.unwrap();
    assert_ne!(replayed.id, original.id);
    let runs = env.runs_of("quick").await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.status == RunStatus::Completed && r.event == original.event)
    );
    assert_eq!(calls.get(), 2);
}

fn price() -> Function {
    Function::new("price")
        .on_event("never/sent")
        .handler(|ctx| async move {
            let qty = ctx.event.data["qty"].as_i64().unwrap_or(0);
            Ok(qty * 7)
        })
}

fn quote() -> Function {
    Function::new("quote")
        .on_event("quote/requested")
        .handler(|ctx| async move {
            let price = ctx
                .step
                .invoke("get-price", "price", json!({"qty": 3}))
                .await?;
            let missing = ctx.step.invoke("nope", "no-such-function", json!({})).await;
            Ok(json!({"price": price, "missing_failed": missing.is_err()}))
        })
}

#[tokio::test]
async fn a_unit_without_the_invoked_function_asks_the_router_to_start_it() {
    // GIVEN the AWS topology: the router knows every function, each function's
    // Lambda only its own; all share one store.
    use hookflow::{Engine, EngineConfig, Handled, Registry, Target};
    use std::sync::Arc;
    let store = SqliteStore::in_memory().unwrap();
    let clock = Arc::new(FakeClock::new(START_MS));
    let engine = |functions: Vec<Function>| {
        let config = EngineConfig {
            drive_crons: false,
            ..EngineConfig::default()
        };
        Engine::new(
            store.clone(),
            Registry::new(functions).unwrap(),
            clock.clone(),
            config,
        )
    };
    let router = engine(vec![quote(), price()]);
    let quote_unit = engine(vec![quote()]);
    let price_unit = engine(vec![price()]);
    // WHEN a quote is requested and each message goes to the unit that owns it
    router
        .ingest(vec![Event::new("quote/requested", json!({}))])
        .await
        .unwrap();
    for _ in 0..100 {
        let Some(delivery) = store.receive(START_MS, 1, 60_000).await.unwrap().pop() else {
            break;
        };
        let unit = match &delivery.envelope.target {
            Target::Router => &router,
            Target::Function(id) if id == "quote" => &quote_unit,
            Target::Function(_) => &price_unit,
        };
        assert_eq!(
            unit.handle(&delivery.envelope).await.unwrap(),
            Handled::Done
        );
        store.ack(&delivery).await.unwrap();
    }
    // THEN the child ran in its own unit and the parent got its result
    let runs = router
        .list_runs(&hookflow::RunFilter::default())
        .await
        .unwrap();
    let quote_run = runs.iter().find(|r| r.function_id == "quote").unwrap();
    assert_eq!(quote_run.status, RunStatus::Completed, "{runs:#?}");
    assert_eq!(
        quote_run.output,
        Some(json!({"price": 21, "missing_failed": true}))
    );
    assert!(
        runs.iter()
            .any(|r| r.function_id == "price" && r.status == RunStatus::Completed)
    );
}

#[tokio::test]
async fn a_step_inserted_before_a_journaled_one_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookflow.db");
    let clock = FakeClock::new(START_MS);
    let calls = Counter::default();
    {
        let env = TestEnv::with_store(
            SqliteStore::open(&path).unwrap(),
            vec![sleeper("wf", "go", &calls)],
            clock.clone(),
        );
        env.send(vec![Event::new("go", json!({}))]).await;
    }
    // The code changes while the run sleeps: a step now comes between the
    // journaled `first` and `long`.
    let inserted = Counter::default();
    let c = inserted.clone();
    let changed = Function::new("wf").on_event("go").handler(move |ctx| {
        let c = c.clone();
        async move {
            ctx.step.run("first", || async { Ok(0) }).await?;
            ctx.step
                .run("inserted", || async move { Ok(c.bump()) })
                .await?;
            ctx.step.sleep("long", days(2)).await?;
            Ok(())
        }
    });
    let env = TestEnv::with_store(SqliteStore::open(&path).unwrap(), vec![changed], clock);
    env.advance(days(2)).await;
    let run = env.only_run("wf").await.run;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("non-deterministic"), "{error}");
    assert!(
        error.contains("`inserted`") && error.contains("`long`"),
        "{error}"
    );
    assert_eq!(inserted.get(), 0, "the inserted step's code never ran");
}
