//! The bugs the commit unit fixed, each pinned by the crash that exposed it
//! (every one of these failed on the engine before transitions): end-of-run
//! work lost after the terminal write, a wait answered but its run never
//! resumed, a replay that ignored `cancel_on`, an `invoke` that hung on a
//! taken idempotency key. The generic crash-at-every-write suite is in the
//! backends' contract tests.

use std::sync::Arc;

use hookflow::testkit::faults::{Harness, Tape};
use hookflow::{CancelOn, Event, FakeClock, Function, NonRetriable, RunStatus, WaitFor};
use hookflow_embedded::SqliteStore;
use hookflow_embedded::testing::START_MS;
use hookflow_tests::{days, secs};
use serde_json::json;

fn harness(functions: Vec<Function>) -> Harness<SqliteStore> {
    let clock = FakeClock::new(START_MS);
    let store = SqliteStore::in_memory()
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    Harness::new(store, functions, clock, None, Tape::default())
}

async fn status_of(h: &Harness<SqliteStore>, function: &str) -> Vec<RunStatus> {
    h.runs_of(function).await.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn a_run_that_crashes_right_after_failing_still_runs_its_on_failure_handler() {
    // GIVEN a function whose run fails, with an on_failure handler
    let f = Function::new("pay")
        .on_event("order/placed")
        .on_failure(|_ctx| async { Ok("alerted") })
        .handler(|_ctx| async { Err::<(), _>(NonRetriable::new("card declined").into()) });
    let h = harness(vec![f]);
    // WHEN the worker crashes right after committing the run's failure
    h.store
        .crash_after_commit(|t| t.run.function_id == "pay" && t.run.status == RunStatus::Failed);
    h.send(vec![Event::new("order/placed", json!({}))]).await;
    h.advance(secs(60)).await;
    // THEN the failure event it committed is still delivered: on_failure runs once
    assert!(h.store.fired());
    assert_eq!(status_of(&h, "pay").await, [RunStatus::Failed]);
    assert_eq!(
        status_of(&h, "pay-on-failure").await,
        [RunStatus::Completed]
    );
}

#[tokio::test]
async fn a_child_that_crashes_right_after_finishing_still_answers_its_parent() {
    // GIVEN a parent waiting on an invoked child
    let child = Function::new("price")
        .on_event("never/sent")
        .handler(|ctx| async move { Ok(ctx.event.data["qty"].as_i64().unwrap_or(0) * 7) });
    let parent = Function::new("quote")
        .on_event("quote/requested")
        .handler(
            |ctx| async move { Ok(ctx.step.invoke("price", "price", json!({"qty": 3})).await?) },
        );
    let h = harness(vec![child, parent]);
    // WHEN the child's worker crashes right after committing its completion
    h.store.crash_after_commit(|t| {
        t.run.function_id == "price" && t.run.status == RunStatus::Completed
    });
    h.send(vec![Event::new("quote/requested", json!({}))]).await;
    h.advance(secs(60)).await;
    // THEN the parent still gets the child's result, not a wait until its timeout
    assert!(h.store.fired());
    let quote = &h.runs_of("quote").await[0];
    assert_eq!(quote.status, RunStatus::Completed);
    assert_eq!(quote.output, Some(json!(21)));
}

fn onboarding() -> Function {
    Function::new("onboard")
        .on_event("user/created")
        .waits_for("user/linked")
        .handler(|ctx| async move {
            let linked = ctx
                .step
                .wait_for_event(
                    "linked",
                    WaitFor::event("user/linked")
                        .matching("data.id")
                        .timeout(days(7)),
                )
                .await?;
            Ok(linked.is_some())
        })
}

#[tokio::test]
async fn a_crash_while_a_wait_is_answered_leaves_no_run_waiting() {
    // GIVEN a run waiting for its user's `user/linked`
    let h = harness(vec![onboarding()]);
    h.send(vec![Event::new("user/created", json!({"id": "u1"}))])
        .await;
    h.advance(secs(1)).await;
    // WHEN the worker crashes right after the commit that answers the wait
    // (answer and resume are that one commit; before, they were two writes)
    h.store.crash_after_commit(|t| {
        t.run.function_id == "onboard" && t.steps.iter().any(|s| s.id == "linked")
    });
    h.send(vec![Event::new("user/linked", json!({"id": "u1"}))])
        .await;
    h.advance(secs(60)).await;
    // THEN the run completes within the minute, with the event
    assert!(h.store.fired());
    let run = &h.runs_of("onboard").await[0];
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.output, Some(json!(true)));
}

#[tokio::test]
async fn a_replayed_run_is_cancelled_by_its_cancel_on_event() {
    // GIVEN a finished reminder with cancel_on, replayed by an admin
    let f = Function::new("remind")
        .on_event("booking/created")
        .cancel_on(CancelOn::event("booking/cancelled").matching("data.id"))
        .handler(|ctx| async move {
            ctx.step.sleep("until-the-day", days(1)).await?;
            Ok(())
        });
    let h = harness(vec![f]);
    h.send(vec![Event::new("booking/created", json!({"id": "b1"}))])
        .await;
    h.advance(days(2)).await;
    let original = h.runs_of("remind").await[0].id.clone();
    h.replay(&original).await;
    // WHEN the booking is cancelled while the replay sleeps
    h.advance(secs(60)).await;
    h.send(vec![Event::new("booking/cancelled", json!({"id": "b1"}))])
        .await;
    // THEN the replayed run is cancelled; the original stays completed
    let runs = h.runs_of("remind").await;
    let replayed = runs.iter().find(|r| r.id != original).unwrap();
    assert_eq!(replayed.replay_of.as_deref(), Some(original.as_str()));
    assert_eq!(replayed.status, RunStatus::Cancelled);
    assert!(
        replayed
            .error
            .as_deref()
            .unwrap()
            .contains("booking/cancelled")
    );
    let first = runs.iter().find(|r| r.id == original).unwrap();
    assert_eq!(first.status, RunStatus::Completed);
}

#[tokio::test]
async fn invoking_a_function_whose_key_is_taken_returns_that_runs_result() {
    // GIVEN a child with an idempotency key, invoked twice with the same key
    let child = Function::new("charge")
        .on_event("never/sent")
        .idempotency("event.data.order")
        .handler(|_ctx| async { Ok("ch_1") });
    let parent = Function::new("checkout")
        .on_event("cart/paid")
        .handler(|ctx| async move {
            let first = ctx
                .step
                .invoke("first", "charge", json!({"order": "o1"}))
                .await?;
            let second = ctx
                .step
                .invoke("second", "charge", json!({"order": "o1"}))
                .await?;
            Ok(json!([first, second]))
        });
    let h = harness(vec![child, parent]);
    // WHEN the parent runs
    h.send(vec![Event::new("cart/paid", json!({}))]).await;
    h.advance(secs(60)).await;
    // THEN the second invoke returns the first run's result instead of hanging
    let run = &h.runs_of("checkout").await[0];
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.output, Some(json!(["ch_1", "ch_1"])));
    assert_eq!(h.runs_of("charge").await.len(), 1, "one charge");
}

#[tokio::test]
async fn invoking_a_function_whose_key_is_held_by_a_running_run_fails_clearly() {
    // GIVEN a slow child holding its key, and a second invoke of the same key
    let child = Function::new("ship")
        .on_event("never/sent")
        .idempotency("event.data.order")
        .handler(|ctx| async move {
            ctx.step.sleep("wait-for-courier", days(1)).await?;
            Ok("shipped")
        });
    let parent = Function::new("orders")
        .on_event("order/paid")
        .handler(|ctx| async move {
            let (a, b) = futures::join!(
                ctx.step.invoke("a", "ship", json!({"order": "o1"})),
                ctx.step.invoke("b", "ship", json!({"order": "o1"})),
            );
            Ok(json!({"a": a.is_ok(), "b": b.map_err(|e| e.message).err()}))
        });
    let h = harness(vec![child, parent]);
    h.send(vec![Event::new("order/paid", json!({}))]).await;
    h.advance(days(2)).await;
    let run = &h.runs_of("orders").await[0];
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["a"], true);
    assert!(
        out["b"].as_str().unwrap().contains("already has run"),
        "{out}"
    );
}

#[tokio::test]
async fn a_worker_that_read_a_run_before_another_committed_does_not_run_it() {
    // GIVEN a run asleep between its steps, and a worker B that has read it
    // (journal: `a`, `nap`) but not yet taken it
    let tape = Tape::default();
    let t = tape.clone();
    let f = Function::new("steps").on_event("go").handler(move |ctx| {
        let t = t.clone();
        async move {
            for (step, nap) in [("a", "nap-1"), ("b", "nap-2")] {
                let (t, run) = (t.clone(), ctx.run_id.clone());
                ctx.step
                    .run(step, move || async move {
                        t.ran(&run, step);
                        Ok(())
                    })
                    .await?;
                ctx.step.sleep(nap, secs(60)).await?;
            }
            Ok(())
        }
    });
    let clock = FakeClock::new(START_MS);
    let store = SqliteStore::in_memory()
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let h = Harness::new(store, vec![f], clock, None, tape.clone());
    h.send(vec![Event::new("go", json!({}))]).await;
    let run_id = h.runs_of("steps").await[0].id.clone();
    let (loaded, release) = h.store.pause_after_load(&run_id);
    let worker_b = {
        let (engine, run_id) = (h.engine.clone(), run_id.clone());
        tokio::spawn(async move {
            let resume = hookflow::Envelope::new(
                hookflow::Target::Function("steps".into()),
                hookflow::Message::Resume { run_id },
            );
            engine.handle(&resume).await
        })
    };
    loaded.notified().await;
    // WHEN worker A wakes the run, runs `b` and suspends at `nap-2`
    h.advance(secs(60)).await;
    assert!(tape.reruns_after_checkpoint().is_empty());
    // THEN B, let go, may not take the run with what it read: it hands its
    // message back, and no step runs again
    release.notify_one();
    assert_eq!(worker_b.await.unwrap().unwrap(), hookflow::Handled::Busy);
    h.advance(secs(120)).await;
    assert!(
        tape.reruns_after_checkpoint().is_empty(),
        "{:?}",
        tape.reruns_after_checkpoint()
    );
    assert_eq!(status_of(&h, "steps").await, [RunStatus::Completed]);
}
