//! Retention on SQLite with the fake clock: a finished run (with its steps)
//! goes 30 days after it ended, a sleeping run stays, events go 7 days
//! after they were received or due, and nothing goes while a function is
//! paused (resuming routes the events it missed); idle flow-control
//! records and blobs no row refers to go too.

use std::time::Duration;

use hookflow::{Event, Function, RunStatus};
use hookflow_embedded::Pruned;
use hookflow_embedded::testing::TestEnv;
use serde_json::json;

const DAY: Duration = Duration::from_secs(86_400);

fn functions() -> Vec<Function> {
    vec![
        Function::new("quick")
            .on_event("test/quick")
            .handler(|ctx| async move {
                ctx.step.run("a", || async { Ok(1) }).await?;
                Ok(json!({}))
            }),
        Function::new("sleepy")
            .on_event("test/sleepy")
            .handler(|ctx| async move {
                ctx.step.sleep("nap", DAY * 60).await?;
                Ok(json!({}))
            }),
    ]
}

async fn events_stored(env: &TestEnv, ids: &[&str]) -> usize {
    let mut n = 0;
    for id in ids {
        n += usize::from(
            hookflow::store::EventLog::get_event(env.runtime.store(), id)
                .await
                .unwrap()
                .is_some(),
        );
    }
    n
}

#[tokio::test]
async fn finished_runs_and_old_events_are_pruned_and_the_rest_kept() {
    let env = TestEnv::new(functions());
    let t0 = hookflow::Clock::now_ms(&env.clock);
    let later = Event::new("test/later", json!({}))
        .with_id("e-later")
        .with_ts(t0 + 25 * 86_400_000);
    env.send(vec![
        Event::new("test/quick", json!({})).with_id("e-quick"),
        Event::new("test/sleepy", json!({})).with_id("e-sleepy"),
        later,
    ])
    .await;
    // 29 days on: the finished run is kept, the events received then are not
    env.advance(DAY * 29).await;
    let pruned = env.runtime.prune().await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            runs: 0,
            events: 2,
            claims: 0,
            flow: 0,
            blobs: 0,
        }
    );
    assert_eq!(
        events_stored(&env, &["e-quick", "e-sleepy", "e-later"]).await,
        1
    );
    // 31 days on: the finished run and its steps go, the sleeping one stays
    env.advance(DAY * 2).await;
    let pruned = env.runtime.prune().await.unwrap();
    assert_eq!(pruned.runs, 1);
    let runs = env.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Sleeping);
    // the event due on day 25 goes a week after it was due
    env.advance(DAY * 2).await;
    assert_eq!(env.runtime.prune().await.unwrap().events, 1);
    // and a second prune finds nothing
    assert_eq!(env.runtime.prune().await.unwrap(), Pruned::default());
}

#[tokio::test]
async fn nothing_is_pruned_from_the_events_while_a_function_is_paused() {
    let env = TestEnv::new(functions());
    env.runtime.engine().pause("quick").await.unwrap();
    env.send(vec![Event::new("test/quick", json!({})).with_id("held")])
        .await;
    env.advance(DAY * 10).await;
    assert_eq!(env.runtime.prune().await.unwrap().events, 0);
    assert_eq!(events_stored(&env, &["held"]).await, 1);
    // resuming routes what it missed, and then it may go
    env.runtime.engine().resume("quick", false).await.unwrap();
    env.settle().await;
    assert_eq!(env.runs().await.len(), 1);
    assert_eq!(env.runtime.prune().await.unwrap().events, 1);
}

#[tokio::test]
async fn an_event_a_dead_letter_still_names_is_kept_for_its_redrive() {
    use hookflow::run::Envelope;
    use hookflow::store::Outbox;
    use hookflow::transition::Outgoing;
    let env = TestEnv::new(functions());
    // GIVEN an event whose route message failed for good (a dead letter)
    env.runtime
        .engine()
        .ingest(vec![Event::new("test/quick", json!({})).with_id("stuck")])
        .await
        .unwrap();
    let store = env.runtime.store();
    let now = hookflow::Clock::now_ms(&env.clock);
    while let Some(delivery) = store.receive(now, 1, 1000).await.unwrap().pop() {
        store.dead_letter(&delivery, "boom".into()).await.unwrap();
    }
    store
        .deliver(&[Outgoing::Send {
            envelope: Envelope::route("unrelated"),
        }])
        .await
        .unwrap();
    // WHEN it is long past its retention
    env.clock.set(now + 30 * 86_400_000);
    env.runtime.prune().await.unwrap();
    // THEN it is kept, and a redrive still starts its run
    assert_eq!(events_stored(&env, &["stuck"]).await, 1);
    store.redrive(now + 30 * 86_400_000).await.unwrap();
    env.settle().await;
    assert_eq!(env.runs().await.len(), 1);
}

/// An event of `name` whose data is over the inline size (a blob).
fn big(name: &str, id: &str) -> Event {
    Event::new(
        name,
        json!({ "text": "x".repeat(hookflow::limits::INLINE_BYTES) }),
    )
    .with_id(id)
}

#[tokio::test]
async fn a_blob_goes_with_the_last_row_that_refers_to_it() {
    let env = TestEnv::new(functions());
    // GIVEN a finished run and a sleeping one, each started by an event over
    // the inline size (stored once as a blob the event row and the run's
    // trigger event both refer to)
    env.send(vec![
        big("test/quick", "big-quick"),
        big("test/sleepy", "big-sleepy"),
    ])
    .await;
    assert_eq!(env.runtime.prune().await.unwrap(), Pruned::default());
    // WHEN the finished run and both events are past retention
    env.advance(DAY * 31).await;
    let pruned = env.runtime.prune().await.unwrap();
    assert_eq!((pruned.runs, pruned.events), (1, 2));
    // THEN the finished run's blob goes; the sleeping run's stays, and the
    // run wakes with its event whole
    assert_eq!(pruned.blobs, 1);
    env.advance(DAY * 30).await;
    let runs = env.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(
        runs[0].event.data["text"].as_str().map(str::len),
        Some(hookflow::limits::INLINE_BYTES)
    );
    // and once it is past retention too, its blob goes with it
    env.advance(DAY * 31).await;
    let pruned = env.runtime.prune().await.unwrap();
    assert_eq!((pruned.runs, pruned.blobs), (1, 1));
    assert_eq!(env.runtime.prune().await.unwrap(), Pruned::default());
}

#[tokio::test]
async fn idle_flow_control_records_are_forgotten_and_a_pause_is_not() {
    use hookflow::flow::{FlowKind, FlowState, pause_key, record_key};
    use hookflow::store::FlowStore;
    let throttled = Function::new("throttled")
        .on_event("test/throttled")
        .throttle(hookflow::Throttle::new(1, Duration::from_secs(60)).key("event.data.tenant"))
        .handler(|_ctx| async move { Ok(json!({})) });
    let mut all = functions();
    all.push(throttled);
    let env = TestEnv::new(all);
    // GIVEN a throttle record for each of three tenants, and a paused function
    env.send(
        ["a", "b", "c"]
            .map(|t| Event::new("test/throttled", json!({ "tenant": t })))
            .to_vec(),
    )
    .await;
    env.runtime.engine().pause("quick").await.unwrap();
    let store = env.runtime.store();
    // WHEN a day has not passed since their times, nothing goes
    env.advance(DAY / 2).await;
    assert_eq!(env.runtime.prune().await.unwrap().flow, 0);
    let before = store
        .flow_get(&record_key(FlowKind::Throttle, "throttled", "a"))
        .await
        .unwrap()
        .expect("tenant a's record");
    // THEN a day after, the throttle records go (while the pause holds the
    // events) and the pause stays
    env.advance(DAY).await;
    assert_eq!(env.runtime.prune().await.unwrap().flow, 3);
    let throttle_a = record_key(FlowKind::Throttle, "throttled", "a");
    assert!(store.flow_get(&throttle_a).await.unwrap().is_none());
    // (one read before it went: a writer still holding it is stale even
    // once the record exists again, created anew below)
    assert!(matches!(
        store
            .flow_get(&pause_key("quick"))
            .await
            .unwrap()
            .map(|r| r.state),
        Some(FlowState::Pause { since: Some(_), .. })
    ));
    // and a tenant's next event starts at once, as with a fresh record
    env.send(vec![Event::new("test/throttled", json!({ "tenant": "a" }))])
        .await;
    let done = env
        .runs()
        .await
        .into_iter()
        .filter(|r| r.function_id == "throttled" && r.status == RunStatus::Completed)
        .count();
    assert_eq!(done, 4);
    // AND a writer that read the record's earlier life cannot commit over
    // the new one (a record created again starts at its creation time, not
    // at a version the old one had)
    let again = store
        .flow_get(&throttle_a)
        .await
        .unwrap()
        .expect("new record");
    assert_ne!(again.version, before.version);
    let stale = hookflow::flow::FlowWrite::after(throttle_a, Some(&before), before.state.clone());
    assert_eq!(
        store.flow_put(&stale).await.unwrap(),
        Err(hookflow::transition::Conflict::FlowChanged)
    );
}

#[tokio::test]
async fn a_singleton_record_stays_while_its_run_has_not_finished() {
    use hookflow::{Singleton, SingletonMode};
    // GIVEN a singleton whose run sleeps longer than a record's horizon
    // (the longest run, 365 days by default)
    let long = Function::new("long")
        .on_event("test/long")
        .singleton(Singleton::new(SingletonMode::Skip))
        .handler(|ctx| async move {
            ctx.step.sleep("nap", DAY * 400).await?;
            Ok(json!({}))
        });
    let env = TestEnv::new(vec![long]);
    env.send(vec![Event::new("test/long", json!({}))]).await;
    // WHEN the record is past its horizon but its run still sleeps
    env.advance(DAY * 370).await;
    // THEN the prune keeps it, and the singleton still skips a second run
    assert_eq!(env.runtime.prune().await.unwrap().flow, 0);
    env.send(vec![Event::new("test/long", json!({}))]).await;
    let runs = env.runs_of("long").await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().any(|r| r.status == RunStatus::Skipped),
        "{runs:#?}"
    );
    // AND once the run has finished, it goes
    env.advance(DAY * 31).await;
    assert!(
        env.runs_of("long")
            .await
            .iter()
            .all(|r| r.status.is_terminal())
    );
    assert_eq!(env.runtime.prune().await.unwrap().flow, 1);
}
