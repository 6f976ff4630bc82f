//! The engine's scenarios, run with a crash at every write: each scenario runs
//! once cleanly (counting its writes W), then once per write n ≤ W with the
//! n-th write failing, and once with a crash right after it. After each
//! fault the process restarts and undelivered messages come back; every run
//! must end as in the clean run, no checkpointed step may run again, and no
//! message may be lost or applied twice (the same runs, with the same steps).
//!
//! Backends run them with [`fault_injection_tests!`](crate::fault_injection_tests).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::QueueProbe;
use super::faults::{Driver, Fault, Harness, Tape};
use crate::clock::FakeClock;
use crate::event::Event;
use crate::failure::{NonRetriable, RetryAfter, StepError};
use crate::flow::{Concurrency, Debounce, Singleton, SingletonMode, Throttle};
use crate::function::{CancelOn, Ctx, Function};
use crate::step::WaitFor;
use crate::store::Store;

/// 2027-01-01T00:00:00Z.
const T0: i64 = 1_798_761_600_000;
/// Long enough for every scenario's timers to fire.
const FINISH: Duration = Duration::from_secs(10 * 86_400);

/// A scenario: its functions (given the tape their steps report to) and
/// what a user does.
pub struct Scenario {
    /// Its name, in failure messages.
    pub name: &'static str,
    /// The functions it runs.
    pub functions: fn(&Tape) -> Vec<Function>,
    /// What happens, from the outside.
    pub script: for<'a> fn(&'a dyn Driver) -> BoxFuture<'a, ()>,
}

/// A `run` step that reports to the tape when its code runs.
async fn guarded<T>(ctx: &Ctx, tape: &Tape, id: &str, value: T) -> Result<T, StepError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let (tape, run, step) = (tape.clone(), ctx.run_id.clone(), id.to_owned());
    ctx.step
        .run(id, move || async move {
            tape.ran(&run, &step);
            Ok(value)
        })
        .await
}

fn go(data: Value) -> Event {
    Event::new("test/go", data)
}

fn three_steps(tape: &Tape) -> Vec<Function> {
    let tape = tape.clone();
    vec![
        Function::new("three")
            .on_event("test/go")
            .handler(move |ctx| {
                let tape = tape.clone();
                async move {
                    let a = guarded(&ctx, &tape, "a", 1).await?;
                    let b = guarded(&ctx, &tape, "b", a + 1).await?;
                    let c = guarded(&ctx, &tape, "c", b + 1).await?;
                    Ok(a + b + c)
                }
            }),
    ]
}

fn sleeper(tape: &Tape) -> Vec<Function> {
    let tape = tape.clone();
    vec![
        Function::new("sleeper")
            .on_event("test/go")
            .cancel_on(CancelOn::event("test/stop").matching("data.k"))
            .handler(move |ctx| {
                let tape = tape.clone();
                async move {
                    guarded(&ctx, &tape, "before", 1).await?;
                    ctx.step.sleep("nap", Duration::from_secs(3_600)).await?;
                    guarded(&ctx, &tape, "after", 2).await?;
                    Ok("woke")
                }
            }),
    ]
}

fn waiter(tape: &Tape) -> Vec<Function> {
    let tape = tape.clone();
    vec![
        Function::new("waiter")
            .on_event("test/go")
            .waits_for("test/linked")
            .handler(move |ctx| {
                let tape = tape.clone();
                async move {
                    guarded(&ctx, &tape, "before", 1).await?;
                    let linked = ctx
                        .step
                        .wait_for_event(
                            "linked",
                            WaitFor::event("test/linked")
                                .matching("data.k")
                                .timeout(Duration::from_secs(86_400)),
                        )
                        .await?;
                    let got = linked.map(|e| e.data["v"].clone());
                    guarded(&ctx, &tape, "after", got.clone()).await?;
                    Ok(got)
                }
            }),
    ]
}

fn invoker(tape: &Tape) -> Vec<Function> {
    let (t1, t2) = (tape.clone(), tape.clone());
    vec![
        Function::new("parent")
            .on_event("test/go")
            .handler(move |ctx| {
                let tape = t1.clone();
                async move {
                    guarded(&ctx, &tape, "before", 1).await?;
                    let price = ctx.step.invoke("price", "child", json!({"qty": 3})).await?;
                    guarded(&ctx, &tape, "after", price.clone()).await?;
                    Ok(price)
                }
            }),
        Function::new("child")
            .on_event("never/sent")
            .handler(move |ctx| {
                let tape = t2.clone();
                async move {
                    let qty = ctx.event.data["qty"].as_i64().unwrap_or(0);
                    Ok(guarded(&ctx, &tape, "compute", qty * 7).await?)
                }
            }),
    ]
}

fn failing(tape: &Tape) -> Vec<Function> {
    let (t1, t2) = (tape.clone(), tape.clone());
    vec![
        Function::new("pay")
            .on_event("test/go")
            .on_failure(move |ctx| {
                let tape = t2.clone();
                async move {
                    Ok(
                        guarded(&ctx, &tape, "alert", ctx.event.data["function_id"].clone())
                            .await?,
                    )
                }
            })
            .handler(move |ctx| {
                let tape = t1.clone();
                async move {
                    guarded(&ctx, &tape, "before", 1).await?;
                    ctx.step
                        .run("charge", || async {
                            Err::<(), _>(NonRetriable::new("card declined").into())
                        })
                        .await?;
                    Ok(())
                }
            }),
    ]
}

fn fan_out(tape: &Tape) -> Vec<Function> {
    let (t1, t2) = (tape.clone(), tape.clone());
    vec![
        Function::new("sender")
            .on_event("test/go")
            .handler(move |ctx| {
                let tape = t1.clone();
                async move {
                    let events = (0..3).map(|i| Event::new("test/mail", json!({"i": i})));
                    let ids = ctx.step.send_event("notify", events).await?;
                    guarded(&ctx, &tape, "after", ids.len()).await?;
                    Ok(ids.len())
                }
            }),
        Function::new("mailer")
            .on_event("test/mail")
            .handler(move |ctx| {
                let tape = t2.clone();
                async move { Ok(guarded(&ctx, &tape, "mail", ctx.event.data["i"].clone()).await?) }
            }),
    ]
}

fn retrier(tape: &Tape) -> Vec<Function> {
    let tape = tape.clone();
    let failed = Arc::new(AtomicBool::new(false));
    vec![
        Function::new("retrier")
            .on_event("test/go")
            .handler(move |ctx| {
                let (tape, failed) = (tape.clone(), failed.clone());
                async move {
                    let (run, t) = (ctx.run_id.clone(), tape.clone());
                    ctx.step
                        .run("flaky", move || async move {
                            t.ran(&run, "flaky");
                            if failed.swap(true, Ordering::SeqCst) {
                                Ok(1)
                            } else {
                                Err(
                                    RetryAfter::new(Duration::from_secs(30), "503 from upstream")
                                        .into(),
                                )
                            }
                        })
                        .await?;
                    Ok(guarded(&ctx, &tape, "after", 2).await?)
                }
            }),
    ]
}

/// Every scenario the suite runs.
#[must_use]
/// One function per flow control, all on the same event: a debounce (one
/// run, with the second event), a throttle (the second run an hour after the
/// first), a singleton (the second event skipped while the first run sleeps)
/// and a concurrency limit of one (a crash while holding the slot makes the
/// other run wait until the slot lapses).
fn flow_controlled(tape: &Tape) -> Vec<Function> {
    let hour = Duration::from_secs(3_600);
    let (t1, t2, t3, t4) = (tape.clone(), tape.clone(), tape.clone(), tape.clone());
    vec![
        Function::new("limited")
            .on_event("test/go")
            .concurrency(Concurrency::new(1))
            .handler(move |ctx| {
                let tape = t4.clone();
                async move {
                    guarded(&ctx, &tape, "first", 1).await?;
                    Ok(guarded(&ctx, &tape, "second", ctx.event.data["n"].clone()).await?)
                }
            }),
        Function::new("debounced")
            .on_event("test/go")
            .debounce(Debounce::new(hour))
            .handler(move |ctx| {
                let tape = t1.clone();
                async move { Ok(guarded(&ctx, &tape, "use", ctx.event.data["n"].clone()).await?) }
            }),
        Function::new("throttled")
            .on_event("test/go")
            .throttle(Throttle::new(1, hour))
            .handler(move |ctx| {
                let tape = t2.clone();
                async move { Ok(guarded(&ctx, &tape, "use", ctx.event.data["n"].clone()).await?) }
            }),
        Function::new("single")
            .on_event("test/go")
            .singleton(Singleton::new(SingletonMode::Skip))
            .handler(move |ctx| {
                let tape = t3.clone();
                async move {
                    guarded(&ctx, &tape, "before", 1).await?;
                    ctx.step.sleep("nap", 2 * hour).await?;
                    Ok(guarded(&ctx, &tape, "after", ctx.event.data["n"].clone()).await?)
                }
            }),
    ]
}

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "a multi-step run",
            functions: three_steps,
            script: |d| Box::pin(d.send(vec![go(json!({}))])),
        },
        Scenario {
            name: "a sleep",
            functions: sleeper,
            script: |d| Box::pin(d.send(vec![go(json!({"k": 1}))])),
        },
        Scenario {
            name: "a retried step",
            functions: retrier,
            script: |d| Box::pin(d.send(vec![go(json!({}))])),
        },
        Scenario {
            name: "a wait answered by an event",
            functions: waiter,
            script: |d| {
                Box::pin(async move {
                    d.send(vec![go(json!({"k": 1}))]).await;
                    d.advance(Duration::from_secs(60)).await;
                    d.send(vec![Event::new(
                        "test/linked",
                        json!({"k": 2, "v": "other"}),
                    )])
                    .await;
                    d.send(vec![Event::new(
                        "test/linked",
                        json!({"k": 1, "v": "mine"}),
                    )])
                    .await;
                })
            },
        },
        Scenario {
            name: "a wait that times out",
            functions: waiter,
            script: |d| Box::pin(d.send(vec![go(json!({"k": 1}))])),
        },
        Scenario {
            name: "an invoke",
            functions: invoker,
            script: |d| Box::pin(d.send(vec![go(json!({}))])),
        },
        Scenario {
            name: "a failure with on_failure",
            functions: failing,
            script: |d| Box::pin(d.send(vec![go(json!({}))])),
        },
        Scenario {
            name: "cancel_on",
            functions: sleeper,
            script: |d| {
                Box::pin(async move {
                    d.send(vec![go(json!({"k": 1}))]).await;
                    d.advance(Duration::from_secs(60)).await;
                    d.send(vec![Event::new("test/stop", json!({"k": 1}))]).await;
                })
            },
        },
        Scenario {
            name: "a cancelled sleeping run",
            functions: sleeper,
            script: |d| {
                Box::pin(async move {
                    d.send(vec![go(json!({"k": 1}))]).await;
                    d.advance(Duration::from_secs(60)).await; // the user sees it sleep
                    for id in d.run_ids("sleeper").await {
                        d.cancel(&id).await;
                    }
                })
            },
        },
        Scenario {
            name: "a replay that honours cancel_on",
            functions: sleeper,
            script: |d| {
                Box::pin(async move {
                    d.send(vec![go(json!({"k": 1}))]).await;
                    d.advance(Duration::from_secs(2 * 3_600)).await;
                    for id in d.run_ids("sleeper").await {
                        d.replay(&id).await;
                    }
                    d.advance(Duration::from_secs(60)).await;
                    d.send(vec![Event::new("test/stop", json!({"k": 1}))]).await;
                })
            },
        },
        Scenario {
            name: "send_event fan-out",
            functions: fan_out,
            script: |d| Box::pin(d.send(vec![go(json!({}))])),
        },
        Scenario {
            name: "flow control",
            functions: flow_controlled,
            script: |d| {
                Box::pin(async move {
                    d.send(vec![go(json!({"n": 1}))]).await;
                    d.advance(Duration::from_secs(60)).await;
                    d.send(vec![go(json!({"n": 2}))]).await;
                })
            },
        },
    ]
}

/// What one run of a scenario ended with.
struct Ran {
    outcomes: Vec<super::faults::Outcome>,
    writes: u64,
    reruns: Vec<String>,
}

/// Runs `scenario` once on a fresh store, with `fault` if any, until every
/// timer has fired.
async fn run_once<S, M, Fut>(scenario: &Scenario, make: &M, fault: Option<Fault>) -> Ran
where
    S: Store + QueueProbe,
    M: Fn(FakeClock, Vec<String>) -> Fut,
    Fut: Future<Output = S>,
{
    let tape = Tape::default();
    let clock = FakeClock::new(T0);
    let functions = (scenario.functions)(&tape);
    let ids = functions.iter().map(|f| f.id().to_owned()).collect();
    let store = make(clock.clone(), ids).await;
    let harness = Harness::new(store, functions, clock, fault, tape.clone());
    (scenario.script)(&harness).await;
    harness.advance(FINISH).await;
    Ran {
        outcomes: harness.outcomes().await,
        writes: harness.store.writes(),
        reruns: tape.reruns_after_checkpoint(),
    }
}

/// Runs `scenario` cleanly, then with a crash at every write (both before
/// and right after it), on fresh stores made by `make` over the clock given,
/// for the function ids given.
///
/// # Panics
/// When a faulty run ends differently from the clean one, or a checkpointed
/// step ran again.
pub async fn crash_at_every_write<S, M, Fut>(scenario: &Scenario, make: M)
where
    S: Store + QueueProbe,
    M: Fn(FakeClock, Vec<String>) -> Fut,
    Fut: Future<Output = S>,
{
    let clean = run_once(scenario, &make, None).await;
    let name = scenario.name;
    assert!(
        clean.reruns.is_empty(),
        "{name}: clean run re-ran {:?}",
        clean.reruns
    );
    assert!(clean.writes > 0, "{name}: the clean run wrote nothing");
    let faults: Vec<Fault> = (1..=clean.writes)
        .flat_map(|n| [Fault::FailBefore(n), Fault::CrashAfter(n)])
        .collect();
    // Independent runs, a few at a time: a local AWS endpoint answers
    // several requests at once.
    for batch in faults.chunks(PARALLEL_RUNS) {
        futures::future::join_all(batch.iter().map(|&fault| {
            let (make, clean) = (&make, &clean);
            async move {
                let ran = Box::pin(run_once(scenario, make, Some(fault))).await;
                assert_eq!(
                    ran.outcomes, clean.outcomes,
                    "{name}: with {fault:?} of {} writes, the runs ended differently",
                    clean.writes
                );
                assert!(
                    ran.reruns.is_empty(),
                    "{name}: with {fault:?}, checkpointed steps ran again: {:?}",
                    ran.reruns
                );
            }
        }))
        .await;
    }
}

/// Faulty runs of one scenario executed at once.
const PARALLEL_RUNS: usize = 6;

/// The stack of the thread a fault-injection test runs on.
pub const HARNESS_STACK: usize = 8 << 20;

/// Generates one `#[tokio::test]` per scenario, running it with a crash at
/// every write on fresh stores built by `$make`, a function from a
/// [`crate::FakeClock`] and the scenario's function ids to a future of the store.
#[macro_export]
macro_rules! fault_injection_tests {
    ($make:expr) => {
        $crate::fault_injection_tests!(@one $make,
            crash_at_every_write_in_a_multi_step_run = 0,
            crash_at_every_write_in_a_sleep = 1,
            crash_at_every_write_in_a_retried_step = 2,
            crash_at_every_write_in_a_wait_answered_by_an_event = 3,
            crash_at_every_write_in_a_wait_that_times_out = 4,
            crash_at_every_write_in_an_invoke = 5,
            crash_at_every_write_in_a_failure_with_on_failure = 6,
            crash_at_every_write_in_cancel_on = 7,
            crash_at_every_write_in_a_cancelled_sleeping_run = 8,
            crash_at_every_write_in_a_replay_that_honours_cancel_on = 9,
            crash_at_every_write_in_send_event_fan_out = 10,
            crash_at_every_write_in_flow_control = 11
        );
    };
    (@one $make:expr, $($name:ident = $index:expr),+) => {
        $(
            #[test]
            fn $name() {
                // On a thread of its own with a larger stack than a test
                // thread's 2 MiB: a debug build's deep store calls, each
                // wrapped by the fault-injecting store, several runs at once.
                std::thread::Builder::new()
                    .stack_size($crate::testkit::scenarios::HARNESS_STACK)
                    .spawn(|| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("a runtime")
                            .block_on(async {
                                let scenario = &$crate::testkit::scenarios::all()[$index];
                                $crate::testkit::scenarios::crash_at_every_write(scenario, $make)
                                    .await;
                            });
                    })
                    .expect("a thread")
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            }
        )+
    };
}
