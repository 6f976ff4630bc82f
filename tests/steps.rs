//! Step semantics as a user sees them: memoized steps, retries and backoff,
//! final errors, sleeps, waits, sent events, invokes, parallel steps, loops.

use std::time::Duration;

use anyhow::anyhow;
use hookflow::run::StepStatus;
use hookflow::store::Waiters as _;
use hookflow::{Event, Failure, Function, NonRetriable, RetryAfter, RunStatus, StepError, WaitFor};
use hookflow_embedded::testing::TestEnv;
use hookflow_tests::{Counter, days, secs};
use serde_json::{Value, json};

fn event(name: &str, data: Value) -> Event {
    Event::new(name, data)
}

#[tokio::test]
async fn a_step_that_fails_twice_then_succeeds_runs_three_times_and_the_run_completes() {
    // GIVEN a step that fails on its first two attempts
    let calls = Counter::default();
    let c = calls.clone();
    let f = Function::new("flaky")
        .on_event("job/go")
        .handler(move |ctx| {
            let c = c.clone();
            async move {
                let out: String = ctx
                    .step
                    .run("call-api", || async move {
                        if c.bump() < 3 {
                            Err(anyhow!("503 from upstream"))
                        } else {
                            Ok("ok".to_string())
                        }
                    })
                    .await?;
                Ok(out)
            }
        });
    let env = TestEnv::new(vec![f]);
    // WHEN the event arrives and the backoff delays pass
    env.send(vec![event("job/go", json!({}))]).await;
    assert_eq!(calls.get(), 1);
    let view = env.only_run("flaky").await;
    assert_eq!(
        view.run.status,
        RunStatus::Sleeping,
        "waiting for the retry"
    );
    assert_eq!(view.steps[0].status, StepStatus::Retrying);
    assert!(view.steps[0].error.as_deref().unwrap().contains("503"));
    env.advance(secs(5)).await;
    assert_eq!(calls.get(), 1, "no retry before the backoff delay (~10 s)");
    env.advance(Duration::from_secs(60)).await;
    // THEN it ran three times and the run completed with the step's output
    assert_eq!(calls.get(), 3);
    let view = env.only_run("flaky").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!("ok")));
    assert_eq!(view.steps[0].attempts, 3);
}

#[tokio::test]
async fn a_completed_step_never_runs_again_across_sleeps_and_replays() {
    let before = Counter::default();
    let after = Counter::default();
    let (b, a) = (before.clone(), after.clone());
    let f = Function::new("memo")
        .on_event("job/go")
        .handler(move |ctx| {
            let (b, a) = (b.clone(), a.clone());
            async move {
                let n: u32 = ctx
                    .step
                    .run("before", || async move { Ok(b.bump()) })
                    .await?;
                ctx.step.sleep("nap", days(1)).await?;
                let m: u32 = ctx
                    .step
                    .run("after", || async move { Ok(a.bump()) })
                    .await?;
                Ok(json!([n, m]))
            }
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("job/go", json!({}))]).await;
    env.advance(days(1)).await;
    assert_eq!((before.get(), after.get()), (1, 1));
    let view = env.only_run("memo").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!([1, 1])));
}

#[tokio::test]
async fn retries_are_exhausted_into_a_catchable_step_error() {
    // GIVEN a step that always fails, with 2 retries, and a handler that compensates
    let calls = Counter::default();
    let c = calls.clone();
    let f = Function::new("compensate")
        .on_event("job/go")
        .retries(2)
        .handler(move |ctx| {
            let c = c.clone();
            async move {
                let booked: Result<String, StepError> = ctx
                    .step
                    .run("book", || async move {
                        let _ = c.bump();
                        Err::<String, _>(anyhow!("calendar down"))
                    })
                    .await;
                match booked {
                    Ok(id) => Ok(json!({"booked": id})),
                    Err(err) => {
                        ctx.step.run("refund", || async { Ok(()) }).await?;
                        Ok(json!({"refunded": true, "because": err.message}))
                    }
                }
            }
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("job/go", json!({}))]).await;
    env.advance(Duration::from_secs(3600)).await;
    // THEN the step ran 1 + 2 times and the handler caught the failure
    assert_eq!(calls.get(), 3);
    let view = env.only_run("compensate").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output.as_ref().unwrap()["refunded"], json!(true));
    assert_eq!(view.steps[0].status, StepStatus::Failed);
    assert_eq!(view.steps[1].id, "refund");
}

#[tokio::test]
async fn a_non_retriable_error_fails_at_once_and_emits_function_failed() {
    let calls = Counter::default();
    let alerts = Counter::default();
    let (c, a) = (calls.clone(), alerts.clone());
    let f = Function::new("charge")
        .on_event("order/placed")
        .handler(move |ctx| {
            let c = c.clone();
            async move {
                ctx.step
                    .run("charge-card", || async move {
                        let _ = c.bump();
                        Err::<(), _>(std::io::Error::other("card declined")).non_retriable()
                    })
                    .await?;
                Ok(())
            }
        })
        .on_failure(move |ctx| {
            let a = a.clone();
            async move {
                assert_eq!(ctx.event.name, "hookflow/function.failed");
                assert_eq!(ctx.event.data["function_id"], "charge");
                assert!(
                    ctx.event.data["error"]
                        .as_str()
                        .unwrap()
                        .contains("card declined")
                );
                let _ = a.bump();
                Ok(())
            }
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("order/placed", json!({"order": 1}))])
        .await;
    assert_eq!(calls.get(), 1, "no retries");
    let view = env.only_run("charge").await;
    assert_eq!(view.run.status, RunStatus::Failed, "{view:#?}");
    assert!(view.run.error.as_deref().unwrap().contains("card declined"));
    assert_eq!(alerts.get(), 1, "on_failure ran once");
    assert_eq!(
        env.only_run("charge-on-failure").await.run.status,
        RunStatus::Completed
    );
}

#[tokio::test]
async fn retry_after_waits_exactly_the_requested_time() {
    let calls = Counter::default();
    let c = calls.clone();
    let f = Function::new("rate-limited")
        .on_event("job/go")
        .handler(move |ctx| {
            let c = c.clone();
            async move {
                ctx.step
                    .run("call", || async move {
                        if c.bump() == 1 {
                            return Err(RetryAfter::new(Duration::from_secs(120), "429").into());
                        }
                        Ok(())
                    })
                    .await?;
                Ok(())
            }
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("job/go", json!({}))]).await;
    env.advance(secs(119)).await;
    assert_eq!(calls.get(), 1);
    env.advance(secs(1)).await;
    assert_eq!(calls.get(), 2);
    assert_eq!(
        env.only_run("rate-limited").await.run.status,
        RunStatus::Completed
    );
}

#[tokio::test]
async fn handler_errors_outside_steps_retry_the_run_then_fail() {
    let calls = Counter::default();
    let c = calls.clone();
    let f = Function::new("bad-handler")
        .on_event("job/go")
        .retries(1)
        .handler(move |_ctx| {
            let c = c.clone();
            async move {
                let _ = c.bump();
                Err::<(), _>(anyhow!("bug"))
            }
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("job/go", json!({}))]).await;
    env.advance(Duration::from_secs(3600)).await;
    assert_eq!(calls.get(), 2);
    let run = env.only_run("bad-handler").await.run;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.attempt, 1);
    let explicit = Function::new("final")
        .on_event("job/final")
        .handler(|_ctx| async { Err::<(), _>(NonRetriable::new("bad input").into()) });
    let env = TestEnv::new(vec![explicit]);
    env.send(vec![event("job/final", json!({}))]).await;
    assert_eq!(env.only_run("final").await.run.status, RunStatus::Failed);
}

#[tokio::test]
async fn a_three_day_sleep_completes_when_the_clock_passes_it() {
    let f = Function::new("drip")
        .on_event("user/signed-up")
        .handler(|ctx| async move {
            ctx.step.sleep("wait-3-days", days(3)).await?;
            let sent: String = ctx
                .step
                .run("send-tips", || async { Ok("sent".to_string()) })
                .await?;
            Ok(sent)
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("user/signed-up", json!({}))]).await;
    let run = env.only_run("drip").await.run;
    assert_eq!(run.status, RunStatus::Sleeping);
    assert_eq!(run.wake_at, Some(run.created_at + 3 * 86_400_000));
    env.advance(days(3) - secs(1)).await;
    assert_eq!(env.only_run("drip").await.run.status, RunStatus::Sleeping);
    env.advance(secs(1)).await;
    let view = env.only_run("drip").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.steps[0].status, StepStatus::Completed);
}

#[tokio::test]
async fn sleep_until_wakes_at_the_given_time() {
    let at = hookflow_embedded::testing::START_MS + 5 * 3_600_000;
    let f = Function::new("remind")
        .on_event("go")
        .handler(move |ctx| async move {
            ctx.step.sleep_until("until-5h", at).await?;
            Ok(())
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    env.advance(Duration::from_secs(5 * 3600 - 1)).await;
    assert_eq!(env.only_run("remind").await.run.status, RunStatus::Sleeping);
    env.advance(secs(1)).await;
    assert_eq!(
        env.only_run("remind").await.run.status,
        RunStatus::Completed
    );
}

fn onboarding() -> Function {
    Function::new("onboarding")
        .on_event("user/created")
        .waits_for("discord/connected")
        .handler(|ctx| async move {
            let linked = ctx
                .step
                .wait_for_event(
                    "discord",
                    WaitFor::event("discord/connected")
                        .matching("data.userId")
                        .timeout(days(7)),
                )
                .await?;
            Ok(linked.map(|e| e.data["discord"].clone()))
        })
}

#[tokio::test]
async fn a_wait_resolves_on_a_matching_event_and_not_on_another() {
    let env = TestEnv::new(vec![onboarding()]);
    env.send(vec![event("user/created", json!({"userId": "u1"}))])
        .await;
    assert_eq!(
        env.only_run("onboarding").await.run.status,
        RunStatus::Waiting
    );
    // WHEN an event for another user arrives, THEN the run keeps waiting
    env.advance(secs(1)).await;
    env.send(vec![event(
        "discord/connected",
        json!({"userId": "u2", "discord": "other"}),
    )])
    .await;
    assert_eq!(
        env.only_run("onboarding").await.run.status,
        RunStatus::Waiting
    );
    // WHEN the matching event arrives, THEN the run resumes with it
    env.send(vec![event(
        "discord/connected",
        json!({"userId": "u1", "discord": "u1#1234"}),
    )])
    .await;
    let view = env.only_run("onboarding").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!("u1#1234")));
}

#[tokio::test]
async fn a_wait_times_out_with_none() {
    let env = TestEnv::new(vec![onboarding()]);
    env.send(vec![event("user/created", json!({"userId": "u1"}))])
        .await;
    env.advance(days(7)).await;
    let view = env.only_run("onboarding").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(
        view.run.output.unwrap_or_default(),
        Value::Null,
        "timed out: None"
    );
    // A late event changes nothing.
    env.send(vec![event(
        "discord/connected",
        json!({"userId": "u1", "discord": "late"}),
    )])
    .await;
    assert_eq!(
        env.only_run("onboarding")
            .await
            .run
            .output
            .unwrap_or_default(),
        Value::Null
    );
}

#[tokio::test]
async fn only_events_after_the_wait_was_registered_count() {
    let env = TestEnv::new(vec![onboarding()]);
    env.send(vec![event(
        "discord/connected",
        json!({"userId": "u1", "discord": "early"}),
    )])
    .await;
    env.advance(secs(1)).await;
    env.send(vec![event("user/created", json!({"userId": "u1"}))])
        .await;
    assert_eq!(
        env.only_run("onboarding").await.run.status,
        RunStatus::Waiting,
        "the earlier event does not count"
    );
}

#[tokio::test]
async fn a_wait_with_a_cel_condition_compares_both_events() {
    let f = Function::new("upsell")
        .on_event("cart/created")
        .waits_for("payment/done")
        .handler(|ctx| async move {
            let paid = ctx
                .step
                .wait_for_event(
                    "big-payment",
                    WaitFor::event("payment/done")
                        .when("async.data.cart == event.data.cart && async.data.amount > 100")
                        .timeout(days(1)),
                )
                .await?;
            Ok(paid.is_some())
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("cart/created", json!({"cart": "c1"}))])
        .await;
    env.advance(secs(1)).await;
    env.send(vec![event(
        "payment/done",
        json!({"cart": "c1", "amount": 50}),
    )])
    .await;
    assert_eq!(env.only_run("upsell").await.run.status, RunStatus::Waiting);
    env.send(vec![event(
        "payment/done",
        json!({"cart": "c1", "amount": 150}),
    )])
    .await;
    assert_eq!(env.only_run("upsell").await.run.output, Some(json!(true)));
}

#[tokio::test]
async fn a_wait_for_an_undeclared_event_fails_its_step_and_says_how_to_declare_it() {
    // GIVEN a function that waits for `payment/done` without declaring it
    let f = Function::new("upsell")
        .on_event("cart/created")
        .retries(0)
        .handler(|ctx| async move {
            let paid = ctx
                .step
                .wait_for_event("payment", WaitFor::event("payment/done"))
                .await?;
            Ok(paid.is_some())
        });
    let env = TestEnv::new(vec![f]);
    // WHEN it runs
    env.send(vec![event("cart/created", json!({"cart": "c1"}))])
        .await;
    // THEN the wait fails at once (nothing would ever answer it), and the
    // error names the fix; no waiter is left behind
    let loaded = env.only_run("upsell").await;
    assert_eq!(loaded.run.status, RunStatus::Failed);
    let step = loaded.steps.iter().find(|r| r.id == "payment").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    let error = step.error.as_deref().unwrap();
    assert!(error.contains(".waits_for(\"payment/done\")"), "{error}");
    let waiters = env.runtime.store().waiters_for("payment/done").await;
    assert!(waiters.unwrap().is_empty());
}

#[tokio::test]
async fn sent_events_start_other_functions_once_even_when_the_run_replays() {
    let sender = Function::new("sender")
        .on_event("order/paid")
        .handler(|ctx| async move {
            ctx.step
                .send_event(
                    "notify",
                    [Event::new(
                        "email/requested",
                        json!({"to": "a@example.com"}),
                    )],
                )
                .await?;
            ctx.step.sleep("then-wait", secs(30)).await?; // forces a replay of the handler
            Ok(())
        });
    let emails = Counter::default();
    let e = emails.clone();
    let mailer = Function::new("mailer")
        .on_event("email/requested")
        .handler(move |_ctx| {
            let e = e.clone();
            async move {
                let _ = e.bump();
                Ok(())
            }
        });
    let env = TestEnv::new(vec![sender, mailer]);
    env.send(vec![event("order/paid", json!({}))]).await;
    env.advance(secs(30)).await;
    assert_eq!(
        env.only_run("sender").await.run.status,
        RunStatus::Completed
    );
    assert_eq!(emails.get(), 1);
    assert_eq!(env.runs_of("mailer").await.len(), 1);
}

#[tokio::test]
async fn invoke_returns_the_child_runs_result() {
    let child = Function::new("price")
        .on_event("never/sent")
        .handler(|ctx| async move {
            let qty = ctx.event.data["qty"].as_i64().unwrap_or(0);
            let price: i64 = ctx
                .step
                .run("compute", move || async move { Ok(qty * 7) })
                .await?;
            Ok(price)
        });
    let parent = Function::new("quote")
        .on_event("quote/requested")
        .handler(|ctx| async move {
            let price = ctx
                .step
                .invoke("get-price", "price", json!({"qty": 3}))
                .await?;
            let missing = ctx.step.invoke("nope", "no-such-function", json!({})).await;
            Ok(json!({"price": price, "missing_failed": missing.is_err()}))
        });
    let env = TestEnv::new(vec![child, parent]);
    env.send(vec![event("quote/requested", json!({}))]).await;
    let view = env.only_run("quote").await;
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(
        view.run.output,
        Some(json!({"price": 21, "missing_failed": true}))
    );
    assert_eq!(env.only_run("price").await.run.status, RunStatus::Completed);
}

#[tokio::test]
async fn parallel_steps_each_run_once_and_join() {
    let calls = Counter::default();
    let c = calls.clone();
    let f = Function::new("fan-out").on_event("go").handler(move |ctx| {
        let c = c.clone();
        async move {
            let (c1, c2, c3) = (c.clone(), c.clone(), c.clone());
            let (a, b, d) = futures::try_join!(
                ctx.step.run("a", || async move {
                    let _ = c1.bump();
                    Ok(1)
                }),
                ctx.step.run("b", || async move {
                    let _ = c2.bump();
                    Ok(2)
                }),
                ctx.step.run("d", || async move {
                    let _ = c3.bump();
                    Ok(3)
                }),
            )?;
            ctx.step.sleep("rest", secs(10)).await?;
            Ok(a + b + d)
        }
    });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    env.advance(secs(10)).await;
    let view = env.only_run("fan-out").await;
    assert_eq!(view.run.output, Some(json!(6)));
    assert_eq!(calls.get(), 3);
    let ids: Vec<_> = view.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "d", "rest"]);
}

#[tokio::test]
async fn parallel_branches_with_steps_in_sequence_resume_in_any_order() {
    // GIVEN two branches: one sleeps then notifies, the other charges. On
    // resume the sleep replays at once, so the first branch reaches
    // `notify` before the second reaches `charge`: the order the steps are
    // reached in differs from the first execution's
    let f = Function::new("branches")
        .on_event("go")
        .handler(|ctx| async move {
            let (notified, charged) = futures::try_join!(
                async {
                    ctx.step.sleep("cool", secs(60)).await?;
                    ctx.step.run("notify", || async { Ok(1) }).await
                },
                ctx.step.run("charge", || async { Ok(2) }),
            )?;
            ctx.step.run("receipt", || async { Ok(()) }).await?;
            Ok(notified + charged)
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    // WHEN the sleep ends
    env.advance(secs(60)).await;
    // THEN the run finishes, each step run once
    let view = env.only_run("branches").await;
    assert_eq!(
        view.run.status,
        RunStatus::Completed,
        "{:?}",
        view.run.error
    );
    assert_eq!(view.run.output, Some(json!(3)));
    let mut ids: Vec<_> = view.steps.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["charge", "cool", "notify", "receipt"]);
}

#[tokio::test]
async fn branches_that_sleep_between_steps_each_run_their_steps_once() {
    // GIVEN two branches that each alternate steps and sleeps of different
    // lengths, so every resume replays them in a different order
    let calls = Counter::default();
    let c = calls.clone();
    let f = Function::new("zigzag").on_event("go").handler(move |ctx| {
        let c = c.clone();
        async move {
            let step = &ctx.step;
            let (c1, c2) = (c.clone(), c.clone());
            let left = async move {
                let a = step.run("a", || async move { Ok(c1.bump()) }).await?;
                step.sleep("a-rest", secs(30)).await?;
                let b = step.run("b", || async { Ok(10) }).await?;
                step.sleep("b-rest", secs(50)).await?;
                Ok::<_, StepError>(a + b)
            };
            let right = async move {
                step.sleep("x-rest", secs(10)).await?;
                let x = step.run("x", || async move { Ok(c2.bump()) }).await?;
                step.sleep("y-rest", secs(40)).await?;
                let y = step.run("y", || async { Ok(100) }).await?;
                Ok::<_, StepError>(x + y)
            };
            let (l, r) = futures::try_join!(left, right)?;
            Ok(l + r)
        }
    });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    // WHEN the sleeps end one by one
    for _ in 0..10 {
        env.advance(secs(10)).await;
    }
    // THEN the run finishes with every step run once
    let view = env.only_run("zigzag").await;
    assert_eq!(
        view.run.status,
        RunStatus::Completed,
        "{:?}",
        view.run.error
    );
    assert_eq!(calls.get(), 2);
    assert_eq!(view.run.output, Some(json!(1 + 10 + 2 + 100)));
    let mut positions: Vec<_> = view.steps.iter().map(|s| s.position).collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..8).collect::<Vec<u32>>(), "one position each");
}

#[tokio::test]
async fn a_race_whose_losing_branch_slept_resumes_and_finishes() {
    // GIVEN a race between two steps in sequence and a day's sleep, then a
    // pause and a last step: the steps win, the sleep's branch is dropped
    let f = Function::new("race")
        .on_event("go")
        .handler(|ctx| async move {
            let step = &ctx.step;
            let steps = std::pin::pin!(async {
                let a = step.run("a1", || async { Ok(1) }).await?;
                let b = step.run("a2", || async { Ok(2) }).await?;
                Ok::<_, StepError>(a + b)
            });
            let sleep = std::pin::pin!(step.sleep("b1", days(1)));
            let won = match futures::future::select(steps, sleep).await {
                futures::future::Either::Left((sum, _)) => sum?,
                futures::future::Either::Right((slept, _)) => {
                    slept?;
                    0
                }
            };
            step.sleep("after", secs(60)).await?;
            let done = step.run("done", || async { Ok(10) }).await?;
            Ok(won + done)
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    // WHEN the pause ends (a replay reaches the steps at once, and the race
    // is over before the sleep's branch is polled again)
    env.advance(secs(60)).await;
    // THEN the run finishes
    let view = env.only_run("race").await;
    assert_eq!(
        view.run.status,
        RunStatus::Completed,
        "{:?}",
        view.run.error
    );
    assert_eq!(view.run.output, Some(json!(13)));
}

#[tokio::test]
async fn a_race_lost_by_a_branch_whose_new_step_waited_still_suspends() {
    // GIVEN a race between two branches that each sleep first, then a long
    // sleep: the second branch wins at 5 s; at 10 s the first branch's
    // sleep replays as done, its next (new) step waits for the journaled
    // steps the replay has not reached yet, and the race drops it
    let f = Function::new("lost")
        .on_event("go")
        .handler(|ctx| async move {
            let step = &ctx.step;
            let first = std::pin::pin!(async {
                step.sleep("xs", secs(10)).await?;
                step.run("y", || async { Ok(1) }).await
            });
            let second = std::pin::pin!(async {
                step.sleep("bs", secs(5)).await?;
                step.run("bp", || async { Ok(2) }).await
            });
            let won = match futures::future::select(first, second).await {
                futures::future::Either::Left((n, _)) | futures::future::Either::Right((n, _)) => {
                    n?
                }
            };
            step.sleep("after", secs(3_600)).await?;
            Ok(won)
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    // WHEN the clock passes both sleeps of the race, then the long one
    // (bounded: the executor used to wait forever for the dropped step)
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        env.advance(secs(5)).await;
        env.advance(secs(5)).await;
        env.advance(secs(3_600)).await;
    })
    .await;
    // THEN the run suspended each time and finished
    assert!(
        ended.is_ok(),
        "the executor hung on a dropped branch's step"
    );
    let view = env.only_run("lost").await;
    assert_eq!(
        view.run.status,
        RunStatus::Completed,
        "{:?}",
        view.run.error
    );
    assert_eq!(view.run.output, Some(json!(2)));
}

#[tokio::test]
async fn a_race_that_leaves_a_replaying_branch_behind_still_suspends() {
    // GIVEN a step racing a 5 s grace period, then an hour's sleep: the
    // step wins; on the replay at 5 s both racers replay, and the race is
    // over while the grace period's branch is still replaying (it is never
    // polled again, nor dropped: `pin!` keeps it on the handler's stack)
    let f = Function::new("grace")
        .on_event("go")
        .handler(|ctx| async move {
            let step = &ctx.step;
            let fetch = std::pin::pin!(step.run("a1", || async {
                tokio::task::yield_now().await;
                Ok(1)
            }));
            let grace = std::pin::pin!(step.sleep("b1", secs(5)));
            let won = match futures::future::select(fetch, grace).await {
                futures::future::Either::Left((n, _)) => n?,
                futures::future::Either::Right((slept, _)) => {
                    slept?;
                    0
                }
            };
            step.sleep("after", secs(3_600)).await?;
            Ok(won)
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    // WHEN the clock passes the grace period, then the hour (bounded: the
    // executor used to wait forever for the left branch)
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        env.advance(secs(5)).await;
        env.advance(secs(3_600)).await;
    })
    .await;
    // THEN the run suspended each time and finished
    assert!(ended.is_ok(), "the executor hung on a left branch's replay");
    let view = env.only_run("grace").await;
    assert_eq!(
        view.run.status,
        RunStatus::Completed,
        "{:?}",
        view.run.error
    );
    assert_eq!(view.run.output, Some(json!(1)));
}

#[tokio::test]
async fn repeated_step_ids_in_a_loop_get_numbered() {
    let f = Function::new("loop")
        .on_event("go")
        .handler(|ctx| async move {
            let mut total = 0;
            for i in 0..3 {
                total += ctx
                    .step
                    .run("item", move || async move { Ok(i * 10) })
                    .await?;
            }
            Ok(total)
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    let view = env.only_run("loop").await;
    let ids: Vec<_> = view.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["item", "item:1", "item:2"]);
    assert_eq!(view.run.output, Some(json!(30)));
}

#[tokio::test]
async fn idempotency_keys_are_stable_per_step_and_distinct_across_steps() {
    let f = Function::new("keys")
        .on_event("go")
        .handler(|ctx| async move {
            let s = ctx.step.clone();
            let k1: String = ctx
                .step
                .run("charge", || async move { Ok(s.idempotency_key()) })
                .await?;
            let s = ctx.step.clone();
            let k2: String = ctx
                .step
                .run("refund", || async move { Ok(s.idempotency_key()) })
                .await?;
            Ok(json!([k1, k2]))
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    let out = env.only_run("keys").await.run.output.unwrap();
    assert_ne!(out[0], out[1]);
    assert!(out[0].as_str().unwrap().starts_with("hf-"));
}

#[tokio::test]
async fn an_oversized_step_output_fails_the_step_with_a_clear_error() {
    let f = Function::new("big")
        .on_event("go")
        .handler(|ctx| async move {
            let blob: String = ctx
                .step
                .run("load", || async { Ok("x".repeat(4 * 1024 * 1024)) })
                .await?;
            Ok(blob.len())
        });
    let env = TestEnv::new(vec![f]);
    env.send(vec![event("go", json!({}))]).await;
    let view = env.only_run("big").await;
    assert_eq!(view.run.status, RunStatus::Failed);
    let error = view.run.error.unwrap();
    assert!(
        error.contains("over the 4194304-byte step output limit"),
        "{error}"
    );
    assert_eq!(view.steps[0].attempts, 1, "not retried");
}

#[tokio::test]
async fn a_wait_in_parallel_with_a_sleep_is_registered_and_resolves() {
    // GIVEN a handler that sleeps and waits at the same time
    let f = Function::new("race")
        .on_event("go")
        .waits_for("user/linked")
        .handler(|ctx| async move {
            let (slept, linked) = futures::join!(
                ctx.step.sleep("short-nap", secs(5)),
                ctx.step.wait_for_event(
                    "linked",
                    WaitFor::event("user/linked")
                        .matching("data.id")
                        .timeout(days(1))
                ),
            );
            slept?;
            Ok(linked?.map(|e| e.data["id"].clone()))
        });
    for _ in 0..20 {
        let env = TestEnv::new(vec![f.clone()]);
        env.send(vec![event("go", json!({"id": "u1"}))]).await;
        // WHEN the sleep ends and then the awaited event arrives
        env.advance(secs(5)).await;
        env.send(vec![event("user/linked", json!({"id": "u1"}))])
            .await;
        // THEN the wait had been registered: the event resolves it
        let view = env.only_run("race").await;
        assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
        assert_eq!(view.run.output, Some(json!("u1")));
    }
}
