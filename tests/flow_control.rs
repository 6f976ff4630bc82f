//! Flow control as users notice it, on both backends (SQLite with a fake
//! clock; DynamoDB, SQS and Scheduler on a local moto server): throttle
//! queues and spaces starts per key, a rate limit skips and says so, a
//! debounce starts one run with the last event, a singleton skips or
//! replaces, and options that cannot combine are refused.

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::{Arc, Mutex};

use hookflow::flow::{FlowKind, FlowState, FlowWrite, SlotHolder, record_key};
use hookflow::store::RunStore;
use hookflow::transition::{Fence, Transition};
use hookflow::{
    Batch, Concurrency, Debounce, Event, Function, RateLimit, Registry, Run, RunStatus, Singleton,
    SingletonMode, Throttle,
};
use hookflow_tests::{days, secs};
use serde_json::{Value, json};

/// One step, then done: the run's `started_at` is what the tests read.
fn quick(id: &str) -> Function {
    Function::new(id)
        .on_event("test/go")
        .handler(|ctx| async move {
            let n = ctx.event.data["n"].clone();
            ctx.step.run("work", || async { Ok(()) }).await?;
            Ok(n)
        })
}

/// Sleeps a day between two steps: a run that stays unfinished.
fn slow(id: &str) -> Function {
    Function::new(id)
        .on_event("test/go")
        .handler(|ctx| async move {
            ctx.step.run("before", || async { Ok(()) }).await?;
            ctx.step.sleep("nap", days(1)).await?;
            ctx.step.run("after", || async { Ok(()) }).await?;
            Ok(ctx.event.data["n"].clone())
        })
}

/// One step that reports `data.n` to `order` when its code runs.
fn reporting(id: &str, order: &Arc<Mutex<Vec<i64>>>) -> Function {
    let order = order.clone();
    Function::new(id).on_event("test/go").handler(move |ctx| {
        let order = order.clone();
        async move {
            let n = ctx.event.data["n"].as_i64().unwrap_or(-1);
            ctx.step
                .run("work", move || async move {
                    order.lock().unwrap().push(n);
                    Ok(())
                })
                .await?;
            Ok(n)
        }
    })
}

/// Takes its events in one step that reports each `data.n` to `seen`;
/// returns how many it got.
fn batched(id: &str, seen: &Arc<Mutex<Vec<i64>>>) -> Function {
    let seen = seen.clone();
    Function::new(id).on_event("test/go").handler(move |ctx| {
        let seen = seen.clone();
        async move {
            let ns: Vec<i64> = ctx
                .events
                .iter()
                .map(|e| e.data["n"].as_i64().unwrap())
                .collect();
            let count = ns.len();
            ctx.step
                .run("take", move || async move {
                    seen.lock().unwrap().extend(ns);
                    Ok(())
                })
                .await?;
            Ok(count)
        }
    })
}

/// A function whose step takes `ms` of real time, counting how many run
/// at once.
fn busy(id: &str, now: &Arc<Mutex<(u32, u32)>>, ms: u64) -> Function {
    let now = now.clone();
    Function::new(id).on_event("test/go").handler(move |ctx| {
        let now = now.clone();
        async move {
            ctx.step
                .run("work", move || async move {
                    {
                        let mut n = now.lock().unwrap();
                        n.0 += 1;
                        n.1 = n.1.max(n.0);
                    }
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    now.lock().unwrap().0 -= 1;
                    Ok(())
                })
                .await?;
            Ok(())
        }
    })
}

/// Commits, for `function`'s concurrency limit (no key), a slot held by a
/// run whose worker crashed: its lease token is gone and the slot lapses
/// at `until`.
async fn crashed_holder(store: &impl RunStore, function: &str, now: i64, until: i64) {
    let ghost = Run::new("ghost".into(), function, go(json!({"n": 0})), now);
    let mut t = Transition::new(Fence::Create, ghost);
    let slots = FlowState::Slots {
        holders: vec![SlotHolder {
            run_id: "ghost".into(),
            token: Some("lost".into()),
            until,
        }],
        waiting: Vec::new(),
        timer: None,
    };
    t.flow.push(FlowWrite::after(
        record_key(FlowKind::Concurrency, function, ""),
        None,
        slots,
    ));
    store.commit(&t).await.unwrap().unwrap();
}

fn go(data: Value) -> Event {
    Event::new("test/go", data)
}

fn with_status(runs: &[Run], status: RunStatus) -> Vec<&Run> {
    runs.iter().filter(|r| r.status == status).collect()
}

#[test]
fn options_that_cannot_combine_are_refused_when_the_registry_is_built() {
    let debounced = || quick("f").debounce(Debounce::new(secs(10)));
    for (function, why) in [
        (debounced().idempotency("event.data.id"), "idempotency"),
        (debounced().throttle(Throttle::new(1, secs(1))), "throttle"),
        (
            debounced().singleton(Singleton::new(SingletonMode::Skip)),
            "singleton",
        ),
        (
            quick("f").throttle(Throttle::new(0, secs(1))),
            "limit and a period",
        ),
        (
            quick("f").rate_limit(RateLimit::new(5, secs(1)).key("event.data.(")),
            "f",
        ),
        (
            quick("f")
                .concurrency(Concurrency::new(1))
                .concurrency(Concurrency::new(2))
                .concurrency(Concurrency::new(3)),
            "at most two",
        ),
        (
            quick("f").priority("event.data.vip ? 60 : 0"),
            "add a concurrency limit",
        ),
    ] {
        let Err(err) = Registry::new([function]) else {
            panic!("{why}: accepted");
        };
        let err = err.to_string();
        assert!(err.contains(why), "{why}: {err}");
    }
}

/// The same behaviour tests for a backend: `$env` builds a test environment
/// from functions; `$precision` is how early (ms) its timers may be handled.
macro_rules! flow_control_tests {
    ($env:expr, $precision:expr) => {
        use super::*;

        #[tokio::test]
        async fn an_invoke_of_a_debounced_function_gets_its_own_run_at_once() {
            // GIVEN a debounced function that another one invokes
            let env = $env(vec![
                Function::new("parent").on_event("test/go").handler(|ctx| async move {
                    Ok(ctx.step.invoke("ask", "child", json!({"n": 7})).await?)
                }),
                Function::new("child")
                    .on_event("child/go")
                    .debounce(Debounce::new(secs(60)))
                    .handler(|ctx| async move { Ok(ctx.event.data["n"].clone()) }),
            ])
            .await;
            // WHEN the parent runs
            env.send(vec![go(json!({}))]).await;
            // THEN its call is answered at once (a caller waits for this run)
            let runs = env.runs().await;
            let parent = runs.iter().find(|r| r.function_id == "parent").unwrap();
            assert_eq!(parent.status, RunStatus::Completed, "{runs:#?}");
            assert_eq!(parent.output, Some(json!(7)));
        }

        #[tokio::test]
        async fn a_paused_function_keeps_its_events_and_resuming_starts_them_once() {
            // GIVEN two functions on the same event, one of them paused
            let env = $env(vec![quick("paused"), quick("running")]).await;
            let since = engine(&env).pause("paused").await.unwrap();
            assert_eq!(engine(&env).paused_since("paused").await.unwrap(), Some(since));
            // WHEN two events arrive
            env.send(vec![go(json!({"n": 1})), go(json!({"n": 2}))]).await;
            // THEN only the other function ran
            let runs = env.runs().await;
            assert!(runs.iter().all(|r| r.function_id == "running"), "{runs:#?}");
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 2);
            // AND resuming starts each held event once, and new events at once
            assert_eq!(engine(&env).resume("paused", false).await.unwrap(), 2);
            assert_eq!(engine(&env).resume("paused", false).await.unwrap(), 0, "a repeat starts nothing");
            env.send(vec![go(json!({"n": 3}))]).await;
            let runs = env.runs().await;
            let paused: Vec<&Run> = runs.iter().filter(|r| r.function_id == "paused").collect();
            assert_eq!(paused.len(), 3, "{runs:#?}");
            assert!(paused.iter().all(|r| r.status == RunStatus::Completed));
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 6);
            // AND a resume that skips leaves what arrived meanwhile unstarted
            engine(&env).pause("paused").await.unwrap();
            env.send(vec![go(json!({"n": 4}))]).await;
            assert_eq!(engine(&env).resume("paused", true).await.unwrap(), 0);
            env.settle().await;
            let runs = env.runs().await;
            assert_eq!(runs.iter().filter(|r| r.function_id == "paused").count(), 3);
            assert_eq!(engine(&env).paused_since("paused").await.unwrap(), None);
            assert!(engine(&env).pause("nope").await.is_err(), "unknown function");
        }

        #[tokio::test]
        async fn a_batch_of_250_events_makes_three_runs_holding_each_event_once() {
            // GIVEN batches of up to 100 events, waiting at most 10 s
            let seen = Arc::new(Mutex::new(Vec::new()));
            let env = $env(vec![batched("bulk", &seen).batch(Batch::new(100, secs(10)))]).await;
            let t0 = hookflow::Clock::now_ms(&env.clock);
            // WHEN 250 events arrive, 50 at a time
            for chunk in 0..5 {
                env.send((0..50).map(|i| go(json!({"n": chunk * 50 + i}))).collect())
                    .await;
            }
            // THEN the two full batches ran at once, the rest waits
            let runs = env.runs().await;
            let done: Vec<Value> = with_status(&runs, RunStatus::Completed)
                .iter()
                .map(|r| r.output.clone().unwrap())
                .collect();
            assert_eq!(done, vec![json!(100), json!(100)], "{done:?}");
            let open = with_status(&runs, RunStatus::Queued);
            assert_eq!(open.len(), 1);
            assert!(open[0].note.as_deref().unwrap().contains("50 of 100"), "{:?}", open[0].note);
            assert_eq!(with_status(&runs, RunStatus::Skipped).len(), 247, "batched into runs");
            // AND the last batch starts at its timeout
            env.advance(secs(11)).await;
            let runs = env.runs().await;
            let last = runs.iter().find(|r| r.id == open[0].id).unwrap();
            assert_eq!(last.status, RunStatus::Completed);
            assert_eq!(last.output, Some(json!(50)));
            assert!(last.started_at.unwrap() >= t0 + 10_000 - $precision);
            // AND every event was handled exactly once, in order
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen, (0..250).collect::<Vec<i64>>());
        }

        #[tokio::test]
        async fn runs_wait_in_line_for_a_slot_a_crashed_worker_held_and_go_by_priority() {
            // GIVEN one run at a time, VIPs a minute ahead, and a slot held by
            // a worker that crashed (its lease lapses in 60 s)
            let order = Arc::new(Mutex::new(Vec::new()));
            let env = $env(vec![
                reporting("limited", &order)
                    .concurrency(Concurrency::new(1))
                    .priority("event.data.vip ? 60 : 0"),
            ])
            .await;
            let t0 = hookflow::Clock::now_ms(&env.clock);
            crashed_holder(&store(&env), "limited", t0, t0 + 60_000).await;
            // WHEN three runs arrive, the last a VIP
            for n in 1..=3 {
                env.send(vec![go(json!({"n": n, "vip": n == 3}))]).await;
                env.advance(secs(1)).await;
            }
            // THEN none has started, each saying why
            let runs = env.runs().await;
            let waiting = with_status(&runs, RunStatus::Queued);
            assert_eq!(waiting.len(), 4, "{runs:#?}");
            for run in waiting.iter().filter(|r| r.id != "ghost") {
                let note = run.note.as_deref().unwrap_or_default();
                assert!(note.contains("waiting for a concurrency slot"), "{run:#?}");
            }
            assert!(order.lock().unwrap().is_empty());
            // AND once the crashed worker's lease lapses they run one at a
            // time, the VIP first, then in arrival order
            env.advance(secs(60)).await;
            let runs = env.runs().await;
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 3, "{runs:#?}");
            assert_eq!(*order.lock().unwrap(), vec![3, 1, 2]);
            for run in with_status(&runs, RunStatus::Completed) {
                assert!(run.started_at.unwrap() >= t0 + 60_000 - $precision, "{run:#?}");
            }
        }

        #[tokio::test]
        async fn a_throttle_queues_runs_and_spaces_each_keys_starts() {
            // GIVEN at most 10 starts per second per tenant
            let env = $env(vec![
                quick("review").throttle(Throttle::new(10, secs(1)).key("event.data.tenant")),
            ])
            .await;
            let t0 = hookflow::Clock::now_ms(&env.clock);
            // WHEN 100 events for two tenants arrive at once
            let events = (0..100)
                .map(|n| go(json!({"n": n, "tenant": if n % 2 == 0 { "a" } else { "b" }})))
                .collect();
            env.send(events).await;
            // THEN the first of each tenant starts at once, the rest wait
            let runs = env.runs().await;
            assert_eq!(runs.len(), 100);
            let at_once = with_status(&runs, RunStatus::Completed).len();
            // (a backend handling timers up to a second early starts those too)
            assert!((2..=2 + 2 * ($precision / 100)).contains(&at_once), "{runs:#?}");
            let queued = with_status(&runs, RunStatus::Queued);
            assert!(
                queued
                    .iter()
                    .all(|r| r.note.as_deref().is_some_and(|n| n.contains("throttled"))),
                "{queued:#?}"
            );
            // AND every run completes, each tenant's k-th start no earlier
            // than k tenths of a second after the first
            env.advance(secs(10)).await;
            let runs = env.runs().await;
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 100);
            let mut starts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for run in &runs {
                let tenant = run.event.data["tenant"].as_str().unwrap().to_owned();
                starts.entry(tenant).or_default().push(run.started_at.unwrap());
            }
            for (tenant, mut at) in starts {
                at.sort_unstable();
                assert_eq!(at.len(), 50);
                for (k, start) in at.iter().enumerate() {
                    let slot = t0 + 100 * k as i64;
                    assert!(
                        *start >= slot - $precision,
                        "tenant {tenant}: start {k} at +{} ms, before its slot +{} ms",
                        start - t0,
                        slot - t0
                    );
                }
                assert!(at[49] - t0 >= 4_900 - $precision, "{tenant}: {at:?}");
            }
        }

        #[tokio::test]
        async fn a_rate_limit_skips_events_over_it_and_says_why() {
            // GIVEN one run per user per hour
            let env = $env(vec![
                quick("welcome").rate_limit(RateLimit::new(1, Duration::from_secs(3600)).key("event.data.user")),
            ])
            .await;
            // WHEN user a sends three events and user b one
            env.send(vec![go(json!({"n": 1, "user": "a"})), go(json!({"n": 2, "user": "a"}))])
                .await;
            env.send(vec![go(json!({"n": 3, "user": "a"})), go(json!({"n": 4, "user": "b"}))])
                .await;
            // THEN a's first and b's run, a's other two are skipped with the reason
            let runs = env.runs().await;
            let done: Vec<i64> = with_status(&runs, RunStatus::Completed)
                .iter()
                .map(|r| r.event.data["n"].as_i64().unwrap())
                .collect();
            assert_eq!(done.len(), 2, "{runs:#?}");
            assert!(done.contains(&1) && done.contains(&4), "{done:?}");
            let skipped = with_status(&runs, RunStatus::Skipped);
            assert_eq!(skipped.len(), 2);
            for run in skipped {
                assert!(run.note.as_deref().unwrap().contains("rate limited"), "{run:#?}");
                assert!(run.started_at.is_none());
            }
            // AND an hour later a is allowed again
            env.advance(Duration::from_secs(3600)).await;
            env.send(vec![go(json!({"n": 5, "user": "a"}))]).await;
            let runs = env.runs().await;
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 3);
        }

        #[tokio::test]
        async fn a_debounce_starts_one_run_with_the_last_of_thirty_events() {
            // GIVEN a 10 s debounce per product
            let env = $env(vec![
                quick("sync").debounce(Debounce::new(secs(10)).key("event.data.product")),
            ])
            .await;
            let t0 = hookflow::Clock::now_ms(&env.clock);
            // WHEN 30 saves of one product arrive a second apart, and one of another
            env.send(vec![go(json!({"n": 100, "product": "q"}))]).await;
            for n in 0..30 {
                env.send(vec![go(json!({"n": n, "product": "p"}))]).await;
                env.advance(secs(1)).await;
            }
            // THEN nothing for p has started while they kept coming
            let runs = env.runs().await;
            let p: Vec<&Run> = runs.iter().filter(|r| r.event.data["product"] == "p").collect();
            let queued = with_status(&runs, RunStatus::Queued);
            assert_eq!(queued.len(), 1, "one run collects the events: {p:#?}");
            assert!(queued[0].note.as_deref().unwrap().contains("30 event"), "{:?}", queued[0].note);
            // AND every other event's run says where its event went
            let folded = with_status(&runs, RunStatus::Skipped);
            assert_eq!(folded.len(), 29);
            let into = format!("debounced into run {}", queued[0].id);
            assert!(folded.iter().all(|r| r.note.as_deref() == Some(into.as_str())), "{folded:#?}");
            assert_eq!(p.len(), 30);
            // AND 10 s after the last one, one run starts, with the last event
            env.advance(secs(10)).await;
            let runs = env.runs().await;
            let done = with_status(&runs, RunStatus::Completed);
            assert_eq!(done.len(), 2, "{runs:#?}");
            let p = done.iter().find(|r| r.event.data["product"] == "p").unwrap();
            assert_eq!(p.output, Some(json!(29)));
            assert!(p.started_at.unwrap() >= t0 + 39_000 - $precision);
            let q = done.iter().find(|r| r.event.data["product"] == "q").unwrap();
            assert_eq!(q.output, Some(json!(100)));
        }

        #[tokio::test]
        async fn a_debounce_timeout_caps_how_long_events_push_the_start_back() {
            // GIVEN a 10 s debounce that waits at most 20 s
            let env = $env(vec![
                quick("sync").debounce(Debounce::new(secs(10)).timeout(secs(20))),
            ])
            .await;
            let t0 = hookflow::Clock::now_ms(&env.clock);
            // WHEN an event arrives every 4 s, five times
            for n in 0..5 {
                env.send(vec![go(json!({"n": n}))]).await;
                env.advance(secs(4)).await;
            }
            env.advance(secs(1)).await;
            // THEN the run started 20 s after the first, with the fifth
            let runs = env.runs().await;
            let done = with_status(&runs, RunStatus::Completed);
            assert_eq!(done.len(), 1, "{runs:#?}");
            assert_eq!(with_status(&runs, RunStatus::Skipped).len(), 4, "{runs:#?}");
            assert_eq!(done[0].output, Some(json!(4)));
            let started = done[0].started_at.unwrap() - t0;
            assert!((20_000 - $precision..=20_000 + 1_000).contains(&started), "{started}");
            // AND the next event begins a new burst
            env.send(vec![go(json!({"n": 5}))]).await;
            env.advance(secs(11)).await;
            let runs = env.runs().await;
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 2, "{runs:#?}");
        }

        #[tokio::test]
        async fn a_singleton_skips_a_new_run_while_one_is_unfinished() {
            // GIVEN one unfinished run per account, skipping newcomers
            let env = $env(vec![
                slow("drain").singleton(Singleton::new(SingletonMode::Skip).key("event.data.account")),
            ])
            .await;
            // WHEN a second event for the account arrives while the first sleeps
            env.send(vec![go(json!({"n": 1, "account": "x"}))]).await;
            env.send(vec![go(json!({"n": 2, "account": "x"})), go(json!({"n": 3, "account": "y"}))])
                .await;
            // THEN it is skipped, naming the run it gave way to; y is not affected
            let runs = env.runs().await;
            let skipped = with_status(&runs, RunStatus::Skipped);
            assert_eq!(skipped.len(), 1, "{runs:#?}");
            assert_eq!(skipped[0].event.data["n"], 2);
            let first = runs.iter().find(|r| r.event.data["n"] == 1).unwrap();
            assert!(skipped[0].note.as_deref().unwrap().contains(&first.id));
            assert_eq!(with_status(&runs, RunStatus::Sleeping).len(), 2);
            // AND once the first finishes, the account runs again
            env.advance(days(1) + secs(1)).await;
            env.send(vec![go(json!({"n": 4, "account": "x"}))]).await;
            let runs = env.runs().await;
            let fourth = runs.iter().find(|r| r.event.data["n"] == 4).unwrap();
            assert_eq!(fourth.status, RunStatus::Sleeping, "{fourth:#?}");
        }

        #[tokio::test]
        async fn a_singleton_in_cancel_mode_replaces_the_unfinished_run() {
            // GIVEN one unfinished run, the newest winning
            let env = $env(vec![slow("drain").singleton(Singleton::new(SingletonMode::Cancel))]).await;
            // WHEN a second event arrives while the first sleeps
            env.send(vec![go(json!({"n": 1}))]).await;
            env.send(vec![go(json!({"n": 2}))]).await;
            // THEN the first is cancelled and the second runs
            let runs = env.runs().await;
            assert_eq!(runs.len(), 2, "{runs:#?}");
            let first = runs.iter().find(|r| r.event.data["n"] == 1).unwrap();
            let second = runs.iter().find(|r| r.event.data["n"] == 2).unwrap();
            assert_eq!(first.status, RunStatus::Cancelled, "{first:#?}");
            assert!(first.error.as_deref().unwrap().contains(&second.id));
            assert_eq!(second.status, RunStatus::Sleeping, "{second:#?}");
            env.advance(days(1) + secs(1)).await;
            let runs = env.runs().await;
            assert_eq!(with_status(&runs, RunStatus::Completed).len(), 1);
        }
    };
}

mod sqlite {
    use hookflow_embedded::testing::TestEnv;
    use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};

    async fn env(functions: Vec<Function>) -> TestEnv {
        TestEnv::new(functions)
    }

    fn store(env: &TestEnv) -> SqliteStore {
        env.runtime.store().clone()
    }

    fn engine(env: &TestEnv) -> &hookflow::Engine<SqliteStore> {
        env.runtime.engine()
    }

    /// The most runs of `function` seen executing a step at once while 10
    /// run on 16 real workers.
    async fn most_at_once(function: impl Fn(&Arc<Mutex<(u32, u32)>>) -> Function) -> u32 {
        let counts = Arc::new(Mutex::new((0, 0)));
        let runtime = Embedded::new(
            SqliteStore::in_memory().unwrap(),
            Registry::new([function(&counts)]).unwrap(),
            Arc::new(hookflow::SystemClock),
            WorkerConfig {
                workers: 16,
                ..WorkerConfig::default()
            },
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn({
            let runtime = runtime.clone();
            async move { runtime.run_workers(stopped).await }
        });
        let events = (0..10).map(|n| go(json!({"n": n}))).collect();
        runtime.engine().ingest(events).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let done = runtime
                .store()
                .list_runs(&hookflow::RunFilter {
                    status: Some(RunStatus::Completed),
                    ..hookflow::RunFilter::default()
                })
                .await
                .unwrap()
                .len();
            if done == 10 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{done} of 10 completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        workers.await.unwrap();
        counts.lock().unwrap().1
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_concurrency_limit_keeps_runs_executing_at_once_within_it() {
        // GIVEN 16 workers, WHEN 10 runs of a limited function run
        let limited =
            most_at_once(|n| busy("limited", n, 30).concurrency(Concurrency::new(2))).await;
        // THEN at most 2 ever executed a step at once, and all completed
        assert!((1..=2).contains(&limited), "{limited} at once");
        // (without the limit the same workload runs more at once)
        let free = most_at_once(|n| busy("free", n, 30)).await;
        assert!(free > 2, "{free} at once without a limit");
    }

    flow_control_tests!(env, 0);
}

mod aws {
    use hookflow_aws::AwsStore;
    use hookflow_aws::testing::AwsTestEnv;

    fn store(env: &AwsTestEnv) -> AwsStore {
        env.store().clone()
    }

    fn engine(env: &AwsTestEnv) -> &hookflow::Engine<AwsStore> {
        &env.engine
    }

    // Runs executing at once under real concurrency are counted on SQLite
    // only: moto's transactions are not atomic under concurrent requests (a
    // transaction checks its conditions without a lock, and one that fails
    // restores a copy of the table taken when it began), so ten writers at
    // once can both pass a condition there, which DynamoDB never allows.

    async fn env(functions: Vec<Function>) -> AwsTestEnv {
        AwsTestEnv::new(functions).await
    }

    // Timers due within a second are handled at once (SQS delays are whole
    // seconds; a start is at most that early).
    flow_control_tests!(env, 1_000);
}
