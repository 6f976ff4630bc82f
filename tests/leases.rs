//! Run leases: bounded by the invocation's deadline, extended while a long
//! step runs, and a fence: a worker that lost its lease commits nothing and
//! stops; a cancellation requested while a step runs stops the run at the
//! step's end. A delivery writes its lease with its first commit, or after
//! a second (the first heartbeat if sooner); until then the version it
//! read fences it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hookflow::run::{Envelope, Message, Target};
use hookflow::store::RunStore;
use hookflow::testkit::faults::{Faulty, Tape};
use hookflow::transition::Fence;
use hookflow::{
    Clock, Engine, EngineConfig, Event, FakeClock, Function, Handled, Registry, RunStatus,
    SystemClock, WorkerSettings,
};
use hookflow_embedded::testing::START_MS;
use hookflow_embedded::{Delivery, SqliteStore};
use hookflow_tests::Counter;
use serde_json::json;
use tokio::sync::Notify;

fn engine(
    store: &SqliteStore,
    functions: Vec<Function>,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
) -> Engine<SqliteStore> {
    let config = EngineConfig {
        worker: settings,
        drive_crons: false,
    };
    Engine::new(
        store.clone().with_clock(clock.clone()),
        Registry::new(functions).unwrap(),
        clock,
        config,
    )
}

/// Default settings, except that only a commit writes a deferred lease
/// (the keeper waits an hour), so what a test sees does not depend on time.
fn deferred_to_first_commit() -> WorkerSettings {
    WorkerSettings {
        lease_deferral: Duration::from_secs(3_600),
        ..WorkerSettings::default()
    }
}

/// An engine over `store` (faults injected), with
/// [`deferred_to_first_commit`], that has ingested one `go` event.
async fn faulty_engine(
    store: &Faulty<SqliteStore>,
    functions: Vec<Function>,
) -> Engine<Faulty<SqliteStore>> {
    let engine = Engine::new(
        store.clone(),
        Registry::new(functions).unwrap(),
        Arc::new(FakeClock::new(START_MS)),
        EngineConfig {
            worker: deferred_to_first_commit(),
            drive_crons: false,
        },
    );
    engine
        .ingest(vec![Event::new("go", json!({}))])
        .await
        .unwrap();
    engine
}

/// Handles every due message once, in order; returns how many.
async fn drain(engine: &Engine<SqliteStore>, store: &SqliteStore, now: i64) -> usize {
    let mut n = 0;
    while let Some(delivery) = store.receive(now, 1, 60_000).await.unwrap().pop() {
        assert_eq!(
            engine.handle(&delivery.envelope).await.unwrap(),
            Handled::Done
        );
        store.ack(&delivery).await.unwrap();
        n += 1;
    }
    n
}

fn start(run_id: &str, function: &str) -> Envelope {
    Envelope::new(
        Target::Function(function.into()),
        Message::Start {
            run_id: run_id.into(),
            due: None,
            trigger: None,
        },
    )
}

/// The next message due at `now` (received, not acknowledged).
async fn next_delivery(store: &SqliteStore, now: i64) -> Delivery {
    store.receive(now, 1, 60_000).await.unwrap().pop().unwrap()
}

/// Ingests `event` and routes it; returns the created run's id (its Start
/// message is left unhandled).
async fn route_one(
    engine: &Engine<SqliteStore>,
    store: &SqliteStore,
    function: &str,
    now: i64,
) -> String {
    engine
        .ingest(vec![Event::new("go", json!({}))])
        .await
        .unwrap();
    let route = next_delivery(store, now).await;
    engine.handle(&route.envelope).await.unwrap();
    store.ack(&route).await.unwrap();
    let start = next_delivery(store, now).await;
    store.ack(&start).await.unwrap();
    match start.envelope.message {
        Message::Start { run_id, .. } => {
            assert_eq!(start.envelope.target, Target::Function(function.into()));
            run_id
        }
        other => panic!("expected a start, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lease_never_outlives_the_invocations_deadline() {
    // GIVEN a second step that records the lease its run holds while it runs
    // (the first step's checkpoint wrote it)
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let seen = Arc::new(AtomicI64::new(0));
    let (s, seen2) = (store.clone(), seen.clone());
    let f = Function::new("f").on_event("go").handler(move |ctx| {
        let (s, seen) = (s.clone(), seen2.clone());
        async move {
            let run = ctx.run_id.clone();
            ctx.step.run("first", || async { Ok(()) }).await?;
            ctx.step
                .run("look", move || async move {
                    let lease = s.get_run(&run).await?.unwrap().lease.unwrap();
                    seen.store(lease.until, Ordering::SeqCst);
                    Ok(())
                })
                .await?;
            Ok(())
        }
    });
    let settings = WorkerSettings {
        lease: Duration::from_secs(60),
        heartbeat: None,
        ..WorkerSettings::default()
    };
    let engine = engine(&store, vec![f], Arc::new(clock.clone()), settings);
    let run_id = route_one(&engine, &store, "f", START_MS).await;
    // WHEN the invocation has 10 s left, and then another has 0.5 s left
    let deadline = START_MS + 10_000;
    let handled = engine
        .handle_until(&start(&run_id, "f"), Some(START_MS + 500))
        .await
        .unwrap();
    assert_eq!(
        handled,
        Handled::Busy,
        "too little time: left for another delivery"
    );
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
    let handled = engine
        .handle_until(&start(&run_id, "f"), Some(deadline))
        .await
        .unwrap();
    // THEN the lease ran to the deadline, not the 60 s lease, and the run finished
    assert_eq!(handled, Handled::Done);
    assert_eq!(seen.load(Ordering::SeqCst), deadline);
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.lease, None, "released when the run finished");
}

/// A function whose first step waits for the test's go-ahead.
fn gated(gate: Arc<Notify>, entered: Arc<Notify>, ran: &Counter) -> Function {
    let ran = ran.clone();
    Function::new("slow").on_event("go").handler(move |ctx| {
        let (gate, entered, ran) = (gate.clone(), entered.clone(), ran.clone());
        async move {
            let first: u32 = ctx
                .step
                .run("slow-step", move || async move {
                    let n = ran.bump();
                    if n == 1 {
                        entered.notify_one();
                        gate.notified().await;
                    }
                    Ok(n)
                })
                .await?;
            ctx.step.run("next", || async { Ok(()) }).await?;
            Ok(first)
        }
    })
}

/// A run of [`gated`] whose first delivery (worker A) is inside its first
/// step, held there until `gate` opens.
struct Gated {
    store: SqliteStore,
    engine: Engine<SqliteStore>,
    gate: Arc<Notify>,
    ran: Counter,
    run_id: String,
    worker_a: tokio::task::JoinHandle<hookflow::Result<Handled>>,
}

impl Gated {
    async fn start(clock: Arc<dyn Clock>, settings: WorkerSettings) -> Self {
        let store = SqliteStore::in_memory().unwrap();
        let (gate, entered, ran) = (
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
            Counter::default(),
        );
        let now = clock.now_ms();
        let engine = engine(
            &store,
            vec![gated(gate.clone(), entered.clone(), &ran)],
            clock,
            settings,
        );
        let run_id = route_one(&engine, &store, "slow", now).await;
        let worker_a = {
            let (engine, envelope) = (engine.clone(), start(&run_id, "slow"));
            tokio::spawn(async move { engine.handle(&envelope).await })
        };
        entered.notified().await;
        Self {
            store,
            engine,
            gate,
            ran,
            run_id,
            worker_a,
        }
    }

    /// Waits (up to 2 s) until A has written the run's lease.
    async fn leased(&self) -> hookflow::Run {
        for _ in 0..100 {
            let run = self.store.get_run(&self.run_id).await.unwrap().unwrap();
            if run.lease.is_some() {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the lease was never written");
    }

    /// A delivery of a timer's resume.
    fn resume(&self) -> Envelope {
        Envelope::new(
            Target::Function("slow".into()),
            Message::Resume {
                run_id: self.run_id.clone(),
            },
        )
    }

    /// Lets A's step finish; what A's delivery came to.
    async fn release(&mut self) -> Handled {
        self.gate.notify_one();
        (&mut self.worker_a).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_commits_nothing_and_stops() {
    // GIVEN worker A stuck in a step past its 30 s lease (written at once,
    // never extended)
    let clock = FakeClock::new(START_MS);
    let settings = WorkerSettings {
        lease: Duration::from_secs(30),
        heartbeat: None,
        lease_deferral: Duration::ZERO,
    };
    let mut a = Gated::start(Arc::new(clock.clone()), settings).await;
    a.leased().await;
    // WHEN the lease lapses and worker B takes the run and finishes it
    clock.advance(Duration::from_secs(31));
    assert_eq!(a.engine.handle(&a.resume()).await.unwrap(), Handled::Done);
    // THEN A's late checkpoint is refused: it stops, leaving B's result
    assert_eq!(a.release().await, Handled::Busy);
    let view = a.engine.run_view(&a.run_id).await.unwrap().unwrap();
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(
        view.run.output,
        Some(json!(2)),
        "B's attempt is the one recorded"
    );
    assert_eq!(view.steps[0].attempts, 1);
    assert_eq!(
        drain(&a.engine, &a.store, START_MS + 31_000).await,
        0,
        "nothing left to do"
    );
}

#[tokio::test]
async fn a_cancellation_requested_during_a_step_stops_the_run_when_the_step_ends() {
    // GIVEN a run inside its first step
    let clock = FakeClock::new(START_MS);
    let mut a = Gated::start(Arc::new(clock), WorkerSettings::default()).await;
    // WHEN it is cancelled, then the step finishes
    let requested = a.engine.cancel(&a.run_id).await.unwrap();
    assert_eq!(
        requested.cancel_requested.as_deref(),
        Some("cancelled by request")
    );
    assert_eq!(a.release().await, Handled::Done);
    // THEN the run is cancelled and its next step never ran
    let view = a.engine.run_view(&a.run_id).await.unwrap().unwrap();
    assert_eq!(view.run.status, RunStatus::Cancelled);
    assert!(
        view.steps.iter().all(|s| s.id != "next"),
        "{:?}",
        view.steps
    );
    // and the queued cancel message finds the run already finished
    assert_eq!(drain(&a.engine, &a.store, START_MS).await, 1);
}

#[tokio::test]
async fn a_long_step_keeps_its_lease_with_heartbeats() {
    // GIVEN a 1.5 s lease extended every 0.5 s, on the wall clock, and a step
    // that takes 3 s
    let settings = WorkerSettings {
        lease: Duration::from_millis(1_500),
        heartbeat: Some(Duration::from_millis(500)),
        ..WorkerSettings::default()
    };
    let mut a = Gated::start(Arc::new(SystemClock), settings).await;
    // WHEN its lease is written (at the first heartbeat, the step still
    // running) and other deliveries of the run arrive throughout
    assert_eq!(a.leased().await.status, RunStatus::Running);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // THEN each finds the run held: the lease outlived its 1.5 s
        assert_eq!(a.engine.handle(&a.resume()).await.unwrap(), Handled::Busy);
    }
    assert_eq!(a.release().await, Handled::Done);
    assert_eq!(a.ran.get(), 1, "the step ran once");
    let run = a.store.get_run(&a.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
}

#[tokio::test]
async fn a_delivery_writes_its_lease_with_its_first_checkpoint() {
    // GIVEN a started run whose first step looks at the stored run
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, seen2) = (store.clone(), seen.clone());
    let f = Function::new("f").on_event("go").handler(move |ctx| {
        let (s, seen) = (s.clone(), seen2.clone());
        async move {
            for id in ["one", "two"] {
                let (s, seen, run) = (s.clone(), seen.clone(), ctx.run_id.clone());
                ctx.step
                    .run(id, move || async move {
                        let stored = s.get_run(&run).await?.unwrap();
                        seen.lock()
                            .unwrap()
                            .push((stored.status, stored.lease.is_some()));
                        Ok(())
                    })
                    .await?;
            }
            Ok(())
        }
    });
    let settings = deferred_to_first_commit();
    let engine = engine(&store, vec![f], Arc::new(clock.clone()), settings);
    let run_id = route_one(&engine, &store, "f", START_MS).await;
    // WHEN it is handled
    let handled = engine.handle(&start(&run_id, "f")).await.unwrap();
    // THEN nothing was written before the first step's code ran: its
    // checkpoint took the lease, and the run ended with the second's
    assert_eq!(handled, Handled::Done);
    assert_eq!(
        *seen.lock().unwrap(),
        [(RunStatus::Queued, false), (RunStatus::Running, true)]
    );
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(run.started_at.is_some());
}

#[tokio::test]
async fn two_deliveries_before_the_lease_is_written_record_one_execution() {
    // GIVEN worker A inside the first step of a run, its lease not written
    // (only its first commit would write it)
    let settings = WorkerSettings {
        lease: Duration::from_secs(60),
        heartbeat: None,
        lease_deferral: Duration::from_secs(3_600),
    };
    let mut a = Gated::start(Arc::new(FakeClock::new(START_MS)), settings).await;
    // WHEN a duplicate of its start runs the run to its end meanwhile
    assert_eq!(
        a.engine.handle(&start(&a.run_id, "slow")).await.unwrap(),
        Handled::Done
    );
    // THEN A's first commit is refused (the run moved past the version it
    // read): it stops, and only B's execution is recorded
    assert_eq!(a.release().await, Handled::Busy);
    let view = a.engine.run_view(&a.run_id).await.unwrap().unwrap();
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!(2)), "B's result");
    assert_eq!(view.steps.len(), 2);
    assert!(
        view.steps.iter().all(|s| s.attempts == 1),
        "{:?}",
        view.steps
    );
    assert_eq!(a.ran.get(), 2, "the step's code ran in both");
    assert_eq!(
        drain(&a.engine, &a.store, START_MS).await,
        0,
        "nothing left"
    );
}

#[tokio::test]
async fn a_start_flow_control_put_off_writes_its_lease_before_its_first_step() {
    // GIVEN a debounced function whose first step looks at the stored run
    // (a fold may change a queued run at the version it read until then)
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let leased = Arc::new(std::sync::Mutex::new(None));
    let (s, seen) = (store.clone(), leased.clone());
    let f = Function::new("f")
        .on_event("go")
        .debounce(hookflow::Debounce::new(Duration::from_secs(10)))
        .handler(move |ctx| {
            let (s, seen, run) = (s.clone(), seen.clone(), ctx.run_id.clone());
            async move {
                ctx.step
                    .run("one", move || async move {
                        let stored = s.get_run(&run).await?.unwrap();
                        *seen.lock().unwrap() = Some(stored.lease.is_some());
                        Ok(())
                    })
                    .await?;
                Ok(())
            }
        });
    let settings = deferred_to_first_commit();
    let engine = engine(&store, vec![f], Arc::new(clock.clone()), settings);
    engine
        .ingest(vec![Event::new("go", json!({}))])
        .await
        .unwrap();
    assert_eq!(drain(&engine, &store, START_MS).await, 1, "the route");
    // WHEN its start comes due
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        drain(&engine, &store, START_MS + 10_000).await,
        1,
        "the start"
    );
    // THEN the lease was written before the step's code ran
    assert_eq!(*leased.lock().unwrap(), Some(true));
}

#[tokio::test]
async fn a_first_commit_whose_answer_was_lost_is_recognised_as_its_own() {
    // GIVEN a two-step run whose first commit (which takes the deferred
    // lease) goes through but is answered as though the run had moved on,
    // as when a client retries a write whose answer it lost
    let sqlite = SqliteStore::in_memory().unwrap();
    let store = Faulty::new(sqlite.clone(), None, Tape::default());
    store.answer_twice(|t| matches!(t.fence, Fence::Begin { .. }));
    let ran = Counter::default();
    let counted = ran.clone();
    let f = Function::new("f").on_event("go").handler(move |ctx| {
        let counted = counted.clone();
        async move {
            ctx.step
                .run("one", move || async move { Ok(counted.bump()) })
                .await?;
            ctx.step.run("two", || async { Ok(()) }).await?;
            Ok(())
        }
    });
    let engine = faulty_engine(&store, vec![f]).await;
    // WHEN its messages are handled
    let mut handled = Vec::new();
    while let Some(delivery) = sqlite.receive(START_MS, 1, 60_000).await.unwrap().pop() {
        handled.push(engine.handle(&delivery.envelope).await.unwrap());
        sqlite.ack(&delivery).await.unwrap();
    }
    // THEN the worker saw its own lease on the run and went on under it:
    // the run finished in that delivery and its first step ran once
    assert!(store.fired());
    assert_eq!(handled, [Handled::Done, Handled::Done], "route, start");
    let run = only_run(&sqlite).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.lease, None);
    assert_eq!(ran.get(), 1);
}

#[tokio::test]
async fn an_event_held_while_its_function_resumes_starts_its_run() {
    // GIVEN a paused function, and the route of its event stopped just
    // before it records the event as held
    let sqlite = SqliteStore::in_memory().unwrap();
    let store = Faulty::new(sqlite.clone(), None, Tape::default());
    let f = Function::new("f")
        .on_event("go")
        .handler(|_ctx| async { Ok(()) });
    let engine = faulty_engine(&store, vec![f]).await;
    engine.pause("f").await.unwrap();
    let (reached, release) = store.pause_before_write("record routed");
    let route = sqlite.receive(START_MS, 1, 60_000).await.unwrap().pop();
    let route = route.expect("the event's route");
    // WHEN the function is resumed meanwhile, skipping the events held
    // before (its look for them may come before the record exists)
    let (routed, ()) = tokio::join!(engine.handle(&route.envelope), async {
        reached.notified().await;
        assert_eq!(engine.resume("f", true).await.unwrap(), 0);
        release.notify_one();
    });
    assert_eq!(routed.unwrap(), Handled::Done);
    sqlite.ack(&route).await.unwrap();
    // THEN the route saw the pause gone once it had recorded the event, and
    // started the run instead of holding it for a resume that has passed
    while let Some(delivery) = sqlite.receive(START_MS, 1, 60_000).await.unwrap().pop() {
        engine.handle(&delivery.envelope).await.unwrap();
        sqlite.ack(&delivery).await.unwrap();
    }
    assert_eq!(only_run(&sqlite).await.status, RunStatus::Completed);
}

/// The only run in `store`.
async fn only_run(store: &SqliteStore) -> hookflow::Run {
    let runs = store
        .list_runs(&hookflow::store::RunFilter::default())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    store.get_run(&runs[0].id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_large_first_commit_writes_the_lease_alone_first() {
    // GIVEN a run whose first commit, its suspension, carries 40 step
    // records (one a backend might split into parts, which only a lease
    // fences): forty sleeps at once
    let sqlite = SqliteStore::in_memory().unwrap();
    let store = Faulty::new(sqlite.clone(), None, Tape::default());
    let commits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = commits.clone();
    store.crash_after_commit(move |t| {
        let fence = match t.fence {
            Fence::Begin { .. } => "begin",
            Fence::Hold { .. } => "hold",
            _ => "other",
        };
        seen.lock().unwrap().push((fence, t.steps.len()));
        false
    });
    let f = Function::new("f").on_event("go").handler(|ctx| async move {
        let ids: Vec<String> = (0..40).map(|i| format!("nap-{i}")).collect();
        let naps = ids
            .iter()
            .map(|id| ctx.step.sleep(id, Duration::from_secs(60)));
        for nap in futures::future::join_all(naps).await {
            nap?;
        }
        Ok(())
    });
    let engine = faulty_engine(&store, vec![f]).await;
    let route = next_delivery(&sqlite, START_MS).await;
    engine.handle(&route.envelope).await.unwrap();
    sqlite.ack(&route).await.unwrap();
    let start = next_delivery(&sqlite, START_MS).await;
    commits.lock().unwrap().clear();
    // WHEN its start is handled
    assert_eq!(engine.handle(&start.envelope).await.unwrap(), Handled::Done);
    // THEN the lease was written alone, and the suspension under it
    assert_eq!(*commits.lock().unwrap(), [("begin", 0), ("hold", 40)]);
    let run = only_run(&sqlite).await;
    assert_eq!(run.status, RunStatus::Sleeping);
}

/// An engine ([`deferred_to_first_commit`]) over `store` with `f`, which a
/// `go` event has started and which now waits; the run's id.
async fn started_until_it_waits(
    store: &SqliteStore,
    f: Function,
    clock: &FakeClock,
) -> (Engine<SqliteStore>, String) {
    let engine = engine(
        store,
        vec![f],
        Arc::new(clock.clone()),
        deferred_to_first_commit(),
    );
    let run_id = route_one(&engine, store, "f", START_MS).await;
    assert_eq!(
        engine.handle(&start(&run_id, "f")).await.unwrap(),
        Handled::Done
    );
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Waiting
    );
    (engine, run_id)
}

#[tokio::test]
async fn a_waits_timeout_and_its_event_cannot_both_answer_it() {
    // GIVEN a run waiting up to a minute for `linked`, then napping for an
    // hour, whose handler holds its second execution (the timeout's) before
    // it reaches the wait
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let (gate, entered, executions) = (
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
        Counter::default(),
    );
    let (g, e, n) = (gate.clone(), entered.clone(), executions.clone());
    let f = Function::new("f")
        .on_event("go")
        .waits_for("linked")
        .handler(move |ctx| {
            let (gate, entered, executions) = (g.clone(), e.clone(), n.clone());
            async move {
                if executions.bump() == 2 {
                    entered.notify_one();
                    gate.notified().await;
                }
                let linked = ctx
                    .step
                    .wait_for_event(
                        "link",
                        hookflow::WaitFor::event("linked").timeout(Duration::from_secs(60)),
                    )
                    .await?;
                ctx.step.sleep("nap", Duration::from_secs(3_600)).await?;
                Ok(linked.map(|event| event.data))
            }
        });
    let (engine, run_id) = started_until_it_waits(&store, f, &clock).await;
    // WHEN the event arrives just before the deadline, its answer still
    // queued when the timeout comes due ...
    clock.advance(Duration::from_secs(59));
    engine
        .ingest(vec![Event::new("linked", json!({"user": "u1"}))])
        .await
        .unwrap();
    let route = next_delivery(&store, START_MS + 59_000).await;
    engine.handle(&route.envelope).await.unwrap();
    store.ack(&route).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let now = START_MS + 61_000;
    let mut due = store.receive(now, 2, 60_000).await.unwrap();
    due.sort_by_key(|d| matches!(d.envelope.message, Message::Resume { .. }));
    let [answer, timeout] = <[Delivery; 2]>::try_from(due).unwrap();
    assert!(matches!(answer.envelope.message, Message::Resolve { .. }));
    assert!(matches!(timeout.envelope.message, Message::Resume { .. }));
    // ... and the timeout's resume is handled first (its lease put off: it
    // writes nothing before its first commit), the answer meanwhile
    let worker_a = {
        let (engine, envelope) = (engine.clone(), timeout.envelope.clone());
        tokio::spawn(async move { engine.handle(&envelope).await })
    };
    entered.notified().await;
    assert_eq!(
        engine.handle(&answer.envelope).await.unwrap(),
        Handled::Done
    );
    store.ack(&answer).await.unwrap();
    // THEN the timeout's answer is refused (the run, asleep, moved past the
    // version it read): the event's is the one kept
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Sleeping
    );
    gate.notify_one();
    assert_eq!(worker_a.await.unwrap().unwrap(), Handled::Busy);
    store.ack(&timeout).await.unwrap();
    let view = engine.run_view(&run_id).await.unwrap().unwrap();
    assert_eq!(
        view.steps[0].output.as_ref().unwrap()["data"],
        json!({"user": "u1"})
    );
    clock.advance(Duration::from_secs(3_600));
    drain(&engine, &store, now + 3_600_000).await;
    let view = engine.run_view(&run_id).await.unwrap().unwrap();
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!({"user": "u1"})));
}

#[tokio::test]
async fn a_waiting_runs_resume_due_for_a_retry_writes_its_lease_first() {
    // GIVEN a run waiting for `linked` in one branch while a step of the
    // other branch, failed once, waits for its retry; the step's code
    // looks at the stored run
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let leased = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, seen, tries) = (store.clone(), leased.clone(), Counter::default());
    let f = Function::new("f")
        .on_event("go")
        .waits_for("linked")
        .handler(move |ctx| {
            let (s, seen, tries, run) =
                (s.clone(), seen.clone(), tries.clone(), ctx.run_id.clone());
            async move {
                let wait = ctx.step.wait_for_event(
                    "link",
                    hookflow::WaitFor::event("linked").timeout(Duration::from_secs(3_600)),
                );
                let flaky = ctx.step.run("flaky", move || async move {
                    let stored = s.get_run(&run).await?.unwrap();
                    seen.lock().unwrap().push(stored.lease.is_some());
                    if tries.bump() == 1 {
                        return Err(
                            hookflow::RetryAfter::new(Duration::from_secs(30), "429").into()
                        );
                    }
                    Ok(())
                });
                let (linked, flaky) = futures::join!(wait, flaky);
                flaky?;
                Ok(linked?.is_some())
            }
        });
    let (engine, run_id) = started_until_it_waits(&store, f, &clock).await;
    // WHEN the retry comes due
    clock.advance(Duration::from_secs(30));
    assert_eq!(drain(&engine, &store, START_MS + 30_000).await, 1);
    // THEN the lease was written before the retried step's code ran (an
    // event's answer meanwhile would find the run held, not run it too)
    assert_eq!(*leased.lock().unwrap(), [false, true]);
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Waiting
    );
}

#[tokio::test]
async fn a_wait_beside_a_long_step_catches_the_event_routed_meanwhile() {
    // GIVEN a run that waits for `approved` while, in a parallel branch, a
    // step imports for twenty minutes (longer than a Lambda could: `hookflow
    // dev` has no such limit); its waiter is stored only when the execution
    // ends
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let (gate, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (g, e) = (gate.clone(), entered.clone());
    let f = Function::new("f")
        .on_event("go")
        .waits_for("approved")
        .handler(move |ctx| {
            let (gate, entered) = (g.clone(), e.clone());
            async move {
                let (approved, ()) = futures::try_join!(
                    ctx.step.wait_for_event(
                        "approval",
                        hookflow::WaitFor::event("approved")
                            .when("async.data.by == 'ada'")
                            .timeout(Duration::from_secs(86_400)),
                    ),
                    ctx.step.run("import", move || async move {
                        entered.notify_one();
                        gate.notified().await;
                        Ok(())
                    }),
                )?;
                Ok(approved.map(|event| event.data))
            }
        });
    let settings = WorkerSettings {
        lease: Duration::from_secs(3_600),
        ..deferred_to_first_commit()
    };
    let engine = engine(&store, vec![f], Arc::new(clock.clone()), settings);
    let run_id = route_one(&engine, &store, "f", START_MS).await;
    let worker = {
        let engine = engine.clone();
        let envelope = start(&run_id, "f");
        tokio::spawn(async move { engine.handle(&envelope).await })
    };
    entered.notified().await;
    // WHEN twenty minutes into the import, before the waiter exists, the
    // event is routed after more than a page of others of its name
    clock.advance(Duration::from_secs(20 * 60));
    let now = START_MS + 20 * 60_000;
    let mut events: Vec<Event> = (0..250)
        .map(|_| Event::new("approved", json!({"by": "bo"})))
        .collect();
    events.push(Event::new("approved", json!({"by": "ada"})));
    engine.ingest(events).await.unwrap();
    assert_eq!(drain(&engine, &store, now).await, 251);
    gate.notify_one();
    assert_eq!(worker.await.unwrap().unwrap(), Handled::Done);
    // THEN the run, on suspending, finds the event itself and finishes with it
    drain(&engine, &store, now).await;
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!({"by": "ada"})));
}

#[tokio::test]
async fn a_cancel_on_event_routed_while_its_run_was_created_cancels_it() {
    // GIVEN a function that sleeps a day unless `stop` comes
    let store = SqliteStore::in_memory().unwrap();
    let clock = FakeClock::new(START_MS);
    let f = Function::new("f")
        .on_event("go")
        .cancel_on(hookflow::CancelOn::event("stop"))
        .handler(|ctx| async move {
            ctx.step.sleep("nap", Duration::from_secs(86_400)).await?;
            Ok(())
        });
    let engine = engine(
        &store,
        vec![f],
        Arc::new(clock.clone()),
        WorkerSettings::default(),
    );
    // WHEN `stop` arrives as the run is created, and its route reads the
    // waiters before the run's creation stored its cancel_on waiter
    engine
        .ingest(vec![
            Event::new("go", json!({})).with_id("go-1"),
            Event::new("stop", json!({})).with_id("stop-1"),
        ])
        .await
        .unwrap();
    let mut routes = store.receive(START_MS, 2, 60_000).await.unwrap();
    routes.sort_by_key(|d| match &d.envelope.message {
        Message::Route { event_id, .. } => event_id != "stop-1",
        _ => true,
    });
    for route in routes {
        engine.handle(&route.envelope).await.unwrap();
        store.ack(&route).await.unwrap();
    }
    drain(&engine, &store, START_MS).await;
    // THEN the run is cancelled by it
    let run = only_run(&store).await;
    assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
    assert!(run.error.unwrap().contains("stop"));
}

#[tokio::test]
async fn a_route_redelivered_after_its_run_was_created_still_catches_up_on_cancel_on() {
    // GIVEN a function that sleeps a day unless `stop` comes, and a store
    // that crashes right after the run's creation commits
    let sqlite = SqliteStore::in_memory().unwrap();
    let store = Faulty::new(sqlite.clone(), None, Tape::default());
    store.crash_after_commit(|t| t.fence == Fence::Create);
    let f = Function::new("f")
        .on_event("go")
        .cancel_on(hookflow::CancelOn::event("stop"))
        .handler(|ctx| async move {
            ctx.step.sleep("nap", Duration::from_secs(86_400)).await?;
            Ok(())
        });
    let engine = faulty_engine(&store, vec![f]).await;
    engine
        .ingest(vec![Event::new("stop", json!({})).with_id("stop-1")])
        .await
        .unwrap();
    let mut routes = sqlite.receive(START_MS, 2, 60_000).await.unwrap();
    routes.sort_by_key(|d| match &d.envelope.message {
        Message::Route { event_id, .. } => event_id != "stop-1",
        _ => true,
    });
    let [stop, go] = <[Delivery; 2]>::try_from(routes).unwrap();
    // WHEN `stop` is routed before the run exists, and the route that
    // creates the run dies right after its creation, before catching up
    engine.handle(&stop.envelope).await.unwrap();
    sqlite.ack(&stop).await.unwrap();
    assert!(engine.handle(&go.envelope).await.is_err());
    assert!(store.fired());
    store.restart();
    // ... so the route is delivered again
    assert_eq!(engine.handle(&go.envelope).await.unwrap(), Handled::Done);
    sqlite.ack(&go).await.unwrap();
    drain_faulty(&engine, &sqlite).await;
    // THEN the redelivery catches up: the run is cancelled
    let run = only_run(&sqlite).await;
    assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
}

/// Handles every due message of `engine` (over a faulty `sqlite`) once.
async fn drain_faulty(engine: &Engine<Faulty<SqliteStore>>, sqlite: &SqliteStore) {
    while let Some(delivery) = sqlite.receive(START_MS, 1, 60_000).await.unwrap().pop() {
        engine.handle(&delivery.envelope).await.unwrap();
        sqlite.ack(&delivery).await.unwrap();
    }
}
