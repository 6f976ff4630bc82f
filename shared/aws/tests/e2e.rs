//! End to end on a local AWS endpoint: the real Lambda handlers driven with
//! real SQS event payloads (receive, invoke, delete or leave for redelivery),
//! Scheduler timers fired on a fake clock, and what a run costs in AWS calls.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use hookflow::run::{StepStatus, Target};
use hookflow::{Event, Function, RunStatus, WaitFor};
use hookflow_aws::lambda::handle_http;
use hookflow_aws::testing::{AwsTestEnv, five_steps};
use hookflow_aws::{run_event_key, run_item_key};
use hookflow_webhooks::{Provider, test_secrets};
use serde_json::{Value, json};

fn checkout_flow() -> Function {
    Function::new("checkout-side-effects")
        .on_event("stripe/checkout.session.completed")
        .handler(|ctx| async move {
            let email: String = {
                let email = ctx.event.data["data"]["object"]["customer_details"]["email"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned();
                ctx.step
                    .run("record-payment", move || async move { Ok(email) })
                    .await?
            };
            ctx.step.run("send-receipt", || async { Ok(()) }).await?;
            Ok(json!({ "emailed": email }))
        })
}

const CHECKOUT_SAMPLE: &str =
    include_str!("../../../events/webhook-stripe-checkout-session-completed.json");

/// The status Stripe's webhook Lambda answers `sample` (an API Gateway
/// request, `events/`) with, the clock set to when it was sent.
async fn post_stripe(env: &AwsTestEnv, sample: &str) -> u16 {
    let at = serde_json::from_str::<Value>(sample).unwrap()["requestContext"]["timeEpoch"]
        .as_i64()
        .unwrap();
    env.clock.set(at);
    let receiver = test_secrets::receiver().unwrap();
    let request = lambda_http::request::from_str(sample).unwrap();
    let clock = env.engine.clock();
    handle_http(
        &receiver,
        &env.engine.ingest,
        clock.as_ref(),
        Provider::Stripe,
        request,
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn a_signed_webhook_becomes_an_event_a_run_and_steps() {
    let env = AwsTestEnv::new(vec![checkout_flow()]).await;
    assert_eq!(post_stripe(&env, CHECKOUT_SAMPLE).await, 200);
    // A redelivery is acknowledged and starts nothing new.
    assert_eq!(post_stripe(&env, CHECKOUT_SAMPLE).await, 200);
    // A tampered one is refused.
    let tampered =
        CHECKOUT_SAMPLE.replace("checkout.session.completed", "checkout.session.completeD");
    assert_eq!(post_stripe(&env, &tampered).await, 401);

    env.settle().await;
    let view = env.only_run("checkout-side-effects").await;
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(view.steps.len(), 2);
    assert!(
        view.steps
            .iter()
            .all(|s| s.status == StepStatus::Completed && s.attempts == 1)
    );
}

fn sleeper(duration: Duration) -> Function {
    Function::new("sleeper")
        .on_event("nap/start")
        .handler(move |ctx| async move {
            ctx.step.run("before", || async { Ok(1) }).await?;
            ctx.step.sleep("nap", duration).await?;
            ctx.step.run("after", || async { Ok(2) }).await?;
            Ok(())
        })
}

#[tokio::test]
async fn a_sleep_past_fifteen_minutes_uses_the_scheduler_and_wakes_on_time() {
    let env = AwsTestEnv::new(vec![sleeper(Duration::from_secs(2 * 3600))]).await;
    env.send(vec![Event::new("nap/start", json!({}))]).await;
    let schedules = env.schedules().await;
    assert_eq!(schedules.len(), 1, "one Scheduler timer");
    let wake = env.only_run("sleeper").await.run.wake_at.unwrap();
    assert_eq!(schedules[0].1, wake - 60_000, "set a minute early");
    // The schedule fires a minute early; the remainder waits in SQS.
    env.advance(Duration::from_secs(2 * 3600 - 30)).await;
    assert_eq!(
        env.only_run("sleeper").await.run.status,
        RunStatus::Sleeping
    );
    assert!(env.schedules().await.is_empty(), "fired and deleted");
    env.advance(Duration::from_secs(30)).await;
    let view = env.only_run("sleeper").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.ended_at, Some(wake), "woke exactly on time");
}

#[tokio::test]
async fn a_short_sleep_uses_an_sqs_delay_not_the_scheduler() {
    let env = AwsTestEnv::new(vec![sleeper(Duration::from_secs(600))]).await;
    env.send(vec![Event::new("nap/start", json!({}))]).await;
    assert!(env.schedules().await.is_empty());
    env.advance(Duration::from_secs(600)).await;
    assert_eq!(
        env.only_run("sleeper").await.run.status,
        RunStatus::Completed
    );
}

#[tokio::test]
async fn a_failing_step_is_retried_after_its_backoff() {
    let flaky = Function::new("flaky")
        .on_event("go")
        .handler(|ctx| async move {
            let attempt = ctx
                .step
                .run("call", || async { Err::<(), _>(anyhow::anyhow!("503")) });
            match attempt.await {
                Ok(()) => Ok("ok"),
                Err(_) => Ok("gave up"),
            }
        });
    let env = AwsTestEnv::new(vec![flaky.retries(1)]).await;
    env.send(vec![Event::new("go", json!({}))]).await;
    assert_eq!(
        env.only_run("flaky").await.steps[0].status,
        StepStatus::Retrying
    );
    env.advance(Duration::from_secs(60)).await;
    let view = env.only_run("flaky").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.steps[0].attempts, 2);
    assert_eq!(view.run.output, Some(json!("gave up")));
}

#[tokio::test]
async fn a_wait_resolves_on_a_matching_event_across_lambdas() {
    let onboarding = Function::new("onboarding")
        .on_event("user/created")
        .waits_for("discord/connected")
        .handler(|ctx| async move {
            let linked = ctx
                .step
                .wait_for_event(
                    "discord",
                    WaitFor::event("discord/connected").matching("data.userId"),
                )
                .await?;
            Ok(linked.is_some())
        });
    let env = AwsTestEnv::new(vec![onboarding]).await;
    env.send(vec![Event::new("user/created", json!({"userId": "u1"}))])
        .await;
    env.advance(Duration::from_secs(1)).await;
    env.send(vec![Event::new(
        "discord/connected",
        json!({"userId": "u2"}),
    )])
    .await;
    assert_eq!(
        env.only_run("onboarding").await.run.status,
        RunStatus::Waiting
    );
    env.send(vec![Event::new(
        "discord/connected",
        json!({"userId": "u1"}),
    )])
    .await;
    assert_eq!(
        env.only_run("onboarding").await.run.output,
        Some(json!(true))
    );
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dlq_without_failing_its_neighbours() {
    let env = AwsTestEnv::with_max_receives(vec![checkout_flow()], 2).await;
    let router = env.store().queue_url(&Target::Router).await.unwrap();
    env.harness()
        .sqs
        .send_message()
        .queue_url(&router)
        .message_body("{not an envelope")
        .send()
        .await
        .unwrap();
    let event = Event::new(
        "stripe/checkout.session.completed",
        json!({"data": {"object": {}}}),
    );
    env.send(vec![event]).await;
    assert_eq!(
        env.only_run("checkout-side-effects").await.run.status,
        RunStatus::Completed
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1100)).await; // the queue's visibility timeout
        env.settle().await;
    }
    assert_eq!(env.dlq_depth(&Target::Router).await, 1);
}

/// On-demand list prices, us-east-1, per million.
const WRITE_UNIT: f64 = 0.625;
const READ_UNIT: f64 = 0.125;
const SQS_REQUEST: f64 = 0.40;
const LAMBDA_REQUEST: f64 = 0.20;
/// Lambda (arm64) per GB-second.
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// How long an invocation is taken to run, per run it handles.
const LAMBDA_SECONDS: f64 = 0.030;
/// Under load, per run, as `cargo bench -p hookflow-aws --bench sqs_batch`
/// measures them on moto (ten routes of a batch at once; the upper end of
/// what it printed): the SQS send calls for the router's starts (0.29 to
/// 0.35; one `SendMessageBatch` per ten would be 0.1) ...
const BATCHED_START_SENDS: f64 = 0.35;
/// ... and the consistent reads of the function's pause record, which
/// overlapping routes share (0.20; one per run without sharing).
const BATCHED_PAUSE_READS: f64 = 0.20;

/// The Lambdas' memory as template.yaml gives it (Globals), in GB.
fn lambda_memory_gb() -> f64 {
    let template = include_str!("../../../template.yaml");
    let megabytes: f64 = template
        .lines()
        .find_map(|line| line.trim().strip_prefix("MemorySize: "))
        .expect("MemorySize in template.yaml")
        .parse()
        .unwrap();
    megabytes / 1024.0
}

#[tokio::test]
async fn a_five_step_run_costs_what_the_readme_says() {
    // GIVEN a five-step function, its queues' URLs already looked up
    let env = AwsTestEnv::new(vec![five_steps()]).await;
    env.send(vec![Event::new("bench/go", json!({}))]).await;
    env.counter.reset();
    // WHEN one event starts one run
    env.send(vec![Event::new("bench/go", json!({}))]).await;
    let calls = env.calls();
    let done = env.runs().await;
    assert_eq!(
        done.iter()
            .filter(|r| r.status == RunStatus::Completed)
            .count(),
        2
    );
    let get = |op: &str| calls.get(op).copied().unwrap_or(0);
    println!("calls for one 5-step run: {calls:#?}");
    // THEN it makes exactly these calls: the event (stored kept for runs,
    // as its name starts one; nothing waits for it, so it has no routed
    // record and no waiters are looked for); the run's creation (one
    // conditional put: the run refers to the event's record, no copy);
    // four checkpoints (small finished steps live on the run item, so each
    // is its one conditional update; the first also takes the lease, which
    // the worker puts off until then) and its end, which carries the fifth
    // (the handler returns right after it).
    assert_eq!(get("DynamoDB.PutItem"), 2, "event, run");
    assert_eq!(
        get("DynamoDB.UpdateItem"),
        5,
        "4 checkpoints (the first with the lease), end with the 5th"
    );
    assert_eq!(get("DynamoDB.TransactWriteItems"), 0, "no transaction");
    assert_eq!(
        get("DynamoDB.DeleteItem") + get("DynamoDB.BatchWriteItem"),
        0
    );
    assert_eq!(
        get("DynamoDB.GetItem"),
        1,
        "the function's pause record (the route and the start carry the event)"
    );
    assert_eq!(get("DynamoDB.Query"), 1, "the run with its journal");
    assert_eq!(env.counter.service_total("SQS"), 2, "route, start");
    assert_eq!(env.counter.service_total("Scheduler"), 0);
    assert_eq!(env.counter.service_total("S3"), 0);
    // Billed by size: a write costs one unit per started KB of the item (an
    // update: of the larger of the item before and after), a transactional
    // write twice that. The event and the new run item are under 1 KB;
    // the run item then grows by one journal entry per
    // checkpoint, so the updates are priced from the final item: checkpoint
    // i with i entries (i < 5), the end with all five. A consistent read
    // costs one unit per started 4 KB.
    let (base, entries) = run_item_bytes(&env, &done).await;
    assert_eq!(entries.len(), 5, "five checkpoints on the run item");
    assert!(
        base + entries.iter().sum::<usize>() <= 1024,
        "the finished run item fits one write unit: {base} + {entries:?}"
    );
    let update_units = checkpoint_units(base, &entries);
    // Every secondary index an item is in bills each write of it once more
    // (twice when the write changes the item's key there). The run is in
    // its function's partition, which the table lists in time order, so it
    // is in no function index; it enters the status index (every
    // attribute) only when it fails or is cancelled.
    assert_eq!(get("DynamoDB.IndexKeys.gsi1"), 0, "listed by its key");
    assert_eq!(get("DynamoDB.IndexKeys.gsi2"), 0, "a completed run");
    let index_units = get("DynamoDB.IndexKeys.gsi1") + get("DynamoDB.IndexKeys.gsi2");
    let write_units = get("DynamoDB.PutItem")
        + update_units
        + 2 * get("DynamoDB.TransactWriteItems.items")
        + index_units;
    let read_units = get("DynamoDB.GetItem") + get("DynamoDB.Query");
    let dynamodb = (write_units as f64) * WRITE_UNIT + (read_units as f64) * READ_UNIT;
    // Each SQS message is sent, received and deleted; three Lambda
    // invocations (webhook, router, function). At low traffic each receive,
    // delete and invocation takes one message; under load the template's
    // event source mappings (BatchSize 10) take ten at a time, so receives,
    // deletes and the router's and function's invocations are shared by ten
    // runs (the webhook's, behind API Gateway, is not); the router's
    // starts, sent while others are in flight, share `SendMessageBatch`
    // calls (the webhook's route is one request's own send), and its
    // overlapping pause reads share calls too.
    let duration = lambda_memory_gb() * LAMBDA_SECONDS * LAMBDA_GB_SECOND * 1e6;
    let one_at_a_time = dynamodb + 2.0 * 3.0 * SQS_REQUEST + 3.0 * (LAMBDA_REQUEST + duration);
    let shared_reads = (1.0 - BATCHED_PAUSE_READS) * READ_UNIT;
    let batched = dynamodb - shared_reads
        + (1.0 + BATCHED_START_SENDS + 2.0 * 2.0 / 10.0) * SQS_REQUEST
        + (LAMBDA_REQUEST + duration)
        + 2.0 * (LAMBDA_REQUEST / 10.0 + duration);
    println!(
        "per 5-step run: {write_units} write units, {read_units} read units, 2 SQS messages; \
         ${one_at_a_time:.2} per million runs at list prices one message at a time, \
         ${batched:.2} in batches of ten (before API Gateway; DynamoDB ${dynamodb:.2})"
    );
    assert_eq!(write_units, 7, "write units: the event, the run, 5 steps");
    assert_eq!(read_units, 2, "read units");
    assert!(
        batched <= 6.0,
        "${batched:.2} per million runs in batches, over the $6 target"
    );
}

#[tokio::test]
async fn a_duplicate_event_costs_its_refused_put_only() {
    // GIVEN an event that started a run
    let env = AwsTestEnv::new(vec![five_steps()]).await;
    let event = Event::new("bench/go", json!({})).with_id("evt-twice");
    env.send(vec![event.clone()]).await;
    env.counter.reset();
    // WHEN it comes again within the deduplication window
    let again = env.engine.ingest(vec![event]).await.unwrap();
    // THEN it is a duplicate, told by the refused put, which returns the
    // record it met: no read of it (it is routed again, in case the first
    // route was lost)
    assert!(again[0].duplicate);
    let calls = env.calls();
    let get = |op: &str| calls.get(op).copied().unwrap_or(0);
    assert_eq!(get("DynamoDB.PutItem"), 1, "{calls:#?}");
    assert_eq!(get("DynamoDB.GetItem"), 0, "{calls:#?}");
    assert_eq!(get("SQS.SendMessage"), 1, "the route");
    // AND its route starts no second run
    env.settle().await;
    assert_eq!(env.runs().await.len(), 1);
}

#[test]
fn the_test_tables_indexes_are_the_templates() {
    // The indexes template.yaml declares for HookflowTable, as (name, key
    // prefix, projection), in order; the test environment creates the same
    // from FUNCTION_INDEX and STATUS_INDEX.
    let template = include_str!("../../../template.yaml");
    let table = &template[template.find("  HookflowTable:").unwrap()..];
    let table = &table[..table.find("\n  BlobBucket:").unwrap()];
    let mut indexes = Vec::new();
    for block in table.split("IndexName: ").skip(1) {
        let name = block.split_whitespace().next().unwrap();
        let keys = block
            .split("AttributeName: ")
            .nth(1)
            .unwrap()
            .split("pk")
            .next()
            .unwrap();
        let projection = block
            .split("ProjectionType: ")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap();
        indexes.push((name, keys, projection));
    }
    assert_eq!(
        indexes,
        [
            (hookflow_aws::FUNCTION_INDEX, "gsi1", "KEYS_ONLY"),
            (hookflow_aws::STATUS_INDEX, "gsi2", "ALL"),
            ("gsi1", "gsi1", "ALL"),
        ],
        "the last only while upgrading (RunIndexUpgrade=keep-gsi1)"
    );
}

/// The run item of `run_id` as stored (read with the harness's own client).
async fn stored_run_item(env: &AwsTestEnv, run_id: &str) -> HashMap<String, AttributeValue> {
    let (pk, sk) = run_item_key(run_id);
    env.harness()
        .dynamodb
        .get_item()
        .table_name(&env.store().config().table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("run item")
}

#[tokio::test]
async fn only_failed_and_cancelled_runs_enter_the_status_index() {
    use hookflow::RunFilter;
    use hookflow::store::RunStore;
    // GIVEN a run that completes, one that fails and one that sleeps
    let fails = Function::new("fails")
        .on_event("test/fail")
        .handler(|_ctx| async { Err::<(), _>(hookflow::NonRetriable::new("bad input").into()) });
    let naps = Function::new("naps")
        .on_event("test/nap")
        .handler(|ctx| async move {
            ctx.step.sleep("nap", Duration::from_secs(86_400)).await?;
            Ok(())
        });
    let env = AwsTestEnv::new(vec![five_steps(), fails, naps]).await;
    env.send(vec![
        Event::new("bench/go", json!({})),
        Event::new("test/fail", json!({})),
        Event::new("test/nap", json!({})),
    ])
    .await;
    let id = |function: &str| {
        let env = &env;
        let function = function.to_owned();
        async move { env.only_run(&function).await.run.id }
    };
    let (done, failed, napping) = (id("five-steps").await, id("fails").await, id("naps").await);
    let status_key = |item: &HashMap<String, AttributeValue>| {
        item.get("gsi2pk").map(|v| v.as_s().unwrap().clone())
    };
    // THEN no run is in the function index (the table lists them by their
    // keys); only the failed one in the status index (the completed and
    // the sleeping one never wrote it)
    for run in [&done, &failed, &napping] {
        let item = stored_run_item(&env, run).await;
        assert!(
            !item.contains_key("gsi1pk") && !item.contains_key("gsi1sk"),
            "{run}"
        );
    }
    assert_eq!(status_key(&stored_run_item(&env, &done).await), None);
    assert_eq!(status_key(&stored_run_item(&env, &napping).await), None);
    assert_eq!(
        status_key(&stored_run_item(&env, &failed).await).as_deref(),
        Some("FS#fails#failed")
    );
    // AND WHEN the sleeping one is cancelled, it enters it
    env.engine.cancel(&napping).await.unwrap();
    env.settle().await;
    assert_eq!(
        status_key(&stored_run_item(&env, &napping).await).as_deref(),
        Some("FS#naps#cancelled")
    );
    // AND listing by function and status finds each, whichever index
    // serves the status
    let listed = |function: &str, status: RunStatus| {
        let env = &env;
        let filter = RunFilter {
            function_id: Some(function.into()),
            status: Some(status),
            ..RunFilter::default()
        };
        async move {
            let runs = env.store().list_runs(&filter).await.unwrap();
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("fails", RunStatus::Failed).await, [failed]);
    assert_eq!(listed("naps", RunStatus::Cancelled).await, [napping]);
    assert_eq!(listed("five-steps", RunStatus::Completed).await, [done]);
    assert!(listed("five-steps", RunStatus::Failed).await.is_empty());
    assert!(listed("fails", RunStatus::Completed).await.is_empty());
}

/// How many bytes DynamoDB bills for `item`: its attributes' names and
/// values (a binary by its length).
fn item_bytes<'a>(item: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>) -> usize {
    item.into_iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    _ => 8,
                }
        })
        .sum()
}

/// The write units of a run's checkpoints, each a run item update billed
/// by the started KB of the item: `base` bytes and the step records so far
/// (of `records`' sizes, in order), the last record carried by the run's end.
fn checkpoint_units(base: usize, records: &[usize]) -> u64 {
    (1..=records.len())
        .map(|i| (base + records[..i].iter().sum::<usize>()).div_ceil(1024) as u64)
        .sum()
}

/// The completed run item among `runs`, as DynamoDB bills it (attribute
/// names and values): its size without its journal, and each journal
/// entry's size.
async fn run_item_bytes(env: &AwsTestEnv, runs: &[hookflow::Run]) -> (usize, Vec<usize>) {
    let run = runs.iter().max_by_key(|r| r.created_at).unwrap();
    let item = stored_run_item(env, &run.id).await;
    let (mut base, mut entries) = (0, Vec::new());
    for (name, value) in &item {
        let size = item_bytes([(name, value)]);
        if name.starts_with('j') {
            entries.push(size);
        } else {
            base += size;
        }
    }
    println!("run item: {base} bytes without its journal, entries {entries:?}");
    (base, entries)
}

/// Every item whose partition key starts with `prefix` (a scan: tests only).
async fn items_under(env: &AwsTestEnv, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
    env.harness()
        .dynamodb
        .scan()
        .table_name(&env.store().config().table)
        .filter_expression("begins_with(pk, :prefix)")
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

#[tokio::test]
async fn a_webhooks_event_is_stored_compressed_in_one_write_unit_per_record() {
    // GIVEN Stripe's checkout sample (its event is about 1 KB of JSON), and
    // a step whose output is the session object
    let copy_session = Function::new("copy-session")
        .on_event("stripe/checkout.session.completed")
        .handler(|ctx| async move {
            let session = ctx.event.data["data"]["object"].clone();
            let kept: Value = ctx
                .step
                .run("keep", move || async move { Ok(session) })
                .await?;
            Ok(kept)
        });
    let env = AwsTestEnv::new(vec![copy_session]).await;
    assert_eq!(post_stripe(&env, CHECKOUT_SAMPLE).await, 200);
    env.settle().await;
    // WHEN its records are read as stored
    let event = items_under(&env, "EVT#").await;
    let view = env.only_run("copy-session").await;
    let run = stored_run_item(&env, &view.run.id).await;
    // THEN the event's record, which the run refers to, holds the event
    // compressed, and fits one write unit where the text would take two
    // (nothing waits for its name, so it has no routed record); the run
    // item, with the session among its steps, fits one too
    assert!(items_under(&env, "EVN#").await.is_empty());
    assert_eq!(run["event_pk"], event[0]["pk"]);
    let text = serde_json::to_string(&view.run.event).unwrap().len();
    let item = &event[0];
    let AttributeValue::B(body) = &item["body"] else {
        panic!("the event as text");
    };
    let as_text = item_bytes(item) - body.as_ref().len() + text;
    println!(
        "{}: {} bytes, {as_text} with the event as text",
        item["pk"].as_s().unwrap(),
        item_bytes(item)
    );
    assert!(item_bytes(item) <= 1024 && as_text > 1024, "{as_text}");
    println!("run item: {} bytes", item_bytes(&run));
    assert!(item_bytes(&run) <= 1024);
    // AND the run item's body is compressed however short, so that a
    // reader from before compression fails on it rather than skip a step
    // record it cannot read
    assert!(matches!(run["body"], AttributeValue::B(_)));
    assert!(matches!(run["j0"], AttributeValue::B(_)), "the session");
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(
        view.run.output.as_ref().unwrap()["id"],
        view.run.event.data["data"]["object"]["id"]
    );
    let stored = hookflow::store::EventLog::get_event(env.store(), &view.run.event.id).await;
    assert_eq!(stored.unwrap().unwrap().event, view.run.event);
}

#[tokio::test]
async fn a_scheduler_cron_tick_on_the_router_queue_starts_one_run() {
    // GIVEN a cron function and the message its AWS::Scheduler::Schedule sends
    // (events/sqs-router-cron.json: the scheduled time substituted by Scheduler)
    let digest = Function::new("daily-digest")
        .on_cron("0 9 * * *")
        .handler(|ctx| async move { Ok(ctx.event.data["scheduled_at"].clone()) });
    let env = AwsTestEnv::new(vec![digest]).await;
    env.clock.set(1_798_794_000_500);
    let sample = include_str!("../../../events/sqs-router-cron.json");
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(sample).unwrap();
    // WHEN the router Lambda gets it (twice: Scheduler and SQS are at-least-once)
    let response = hookflow_aws::lambda::handle_sqs(
        &env.engine,
        &hookflow_aws::telemetry::Telemetry::none(),
        event.clone(),
        None,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let response = hookflow_aws::lambda::handle_sqs(
        &env.engine,
        &hookflow_aws::telemetry::Telemetry::none(),
        event,
        None,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    env.settle().await;
    // THEN one run for that tick, completed
    let view = env.only_run("daily-digest").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!(1_798_794_000_000_i64)));
}

fn big_payloads() -> Vec<Function> {
    vec![
        Function::new("import")
            .on_event("import/uploaded")
            .handler(|ctx| async move {
                let rows = ctx.event.data["rows"].as_str().unwrap_or_default().len();
                let report: String = ctx
                    .step
                    .run("render", || async { Ok("r".repeat(2 * 1024 * 1024)) })
                    .await?;
                let echoed = ctx
                    .step
                    .invoke(
                        "archive",
                        "archive",
                        json!({"blob": "a".repeat(300 * 1024)}),
                    )
                    .await?;
                Ok(json!({"rows": rows, "report": report.len(), "archived": echoed}))
            }),
        Function::new("archive")
            .on_event("never/sent")
            .handler(
                |ctx| async move { Ok(ctx.event.data["blob"].as_str().unwrap_or_default().len()) },
            ),
    ]
}

#[tokio::test]
async fn a_450_kb_event_a_2_mib_step_output_and_a_300_kb_invoke_all_go_through() {
    // GIVEN a run whose event, step output and invoke data are far over
    // DynamoDB's 400 KB item and SQS's 256 KiB message
    let env = AwsTestEnv::new(big_payloads()).await;
    let event = Event::new("import/uploaded", json!({"rows": "x".repeat(450 * 1024)}));
    // WHEN it is ingested and handled
    let ingested = env.send(vec![event]).await;
    assert!(!ingested[0].duplicate);
    // THEN the run completes with everything intact
    let view = env.only_run("import").await;
    assert_eq!(
        view.run.status,
        RunStatus::Completed,
        "{:?}",
        view.run.error
    );
    assert_eq!(
        view.run.output,
        Some(json!({"rows": 450 * 1024, "report": 2 * 1024 * 1024, "archived": 300 * 1024}))
    );
    assert_eq!(
        env.only_run("archive").await.run.status,
        RunStatus::Completed
    );
    // and no item is anywhere near 400 KB: the large bodies live in S3
    let items = env
        .harness()
        .dynamodb
        .scan()
        .table_name(&env.store().config().table)
        .send()
        .await
        .unwrap();
    for item in items.items() {
        let size: usize = item
            .iter()
            .map(|(k, v)| k.len() + v.as_s().map_or(16, String::len))
            .sum();
        assert!(
            size < 100 * 1024,
            "an item of {size} bytes: {:?}",
            item.get("pk")
        );
    }
}

/// Calls an option adds to a run: operation and how many more.
type Extra = &'static [(&'static str, i64)];

/// A one-step function on `test/go` with `option` applied.
fn gated(option: fn(Function) -> Function) -> Function {
    option(Function::new("gated").on_event("test/go")).handler(|_ctx| async move { Ok(()) })
}

/// The AWS calls one more event costs, after a first one warmed the queues
/// and the flow-control record.
async fn calls_for_second_event(function: Function) -> std::collections::BTreeMap<String, u64> {
    let env = AwsTestEnv::new(vec![function]).await;
    env.send(vec![Event::new("test/go", json!({"k": 1}))]).await;
    env.counter.reset();
    env.send(vec![Event::new("test/go", json!({"k": 1}))]).await;
    env.calls().into_iter().collect()
}

#[tokio::test]
async fn flow_control_adds_these_calls_per_run() {
    use hookflow::{Batch, Concurrency, Debounce, RateLimit, Singleton, SingletonMode, Throttle};
    let plain = calls_for_second_event(gated(|f| f)).await;
    let get = |calls: &std::collections::BTreeMap<String, u64>, op: &str| {
        calls.get(op).copied().unwrap_or(0)
    };
    // Without flow control the run is created by one conditional put (it
    // refers to its event's own record).
    assert_eq!(get(&plain, "DynamoDB.TransactWriteItems"), 0, "{plain:#?}");
    assert_eq!(get(&plain, "DynamoDB.PutItem"), 2, "event, run");
    // Each option reads its record (one consistent GetItem) and writes it
    // with the run (the creation becomes a two-item transaction instead of
    // a put); a singleton also reads its holder run (one Query, and one
    // GetItem for the holder's event); a concurrency limit reads its record
    // and writes it with the lease and with the end (two two-item
    // transactions instead of one update: a run without slots takes its
    // lease with its first commit, here its end).
    const GET_ITEM: &str = "DynamoDB.GetItem";
    const QUERY: &str = "DynamoDB.Query";
    const PUT_ITEM: &str = "DynamoDB.PutItem";
    const TRANSACTIONS: &str = "DynamoDB.TransactWriteItems";
    const ITEMS: &str = "DynamoDB.TransactWriteItems.items";
    let cases: [(&str, Function, Extra); 4] = [
        (
            "rate limit",
            gated(|f| f.rate_limit(RateLimit::new(100, Duration::from_secs(1)))),
            &[(GET_ITEM, 1), (PUT_ITEM, -1), (TRANSACTIONS, 1), (ITEMS, 2)],
        ),
        (
            "throttle",
            gated(|f| f.throttle(Throttle::new(100, Duration::from_secs(1)))),
            // The second run waits for its start: no worker reads its run
            // (one Query) or writes it here.
            &[
                (GET_ITEM, 1),
                (QUERY, -1),
                (PUT_ITEM, -1),
                (TRANSACTIONS, 1),
                (ITEMS, 2),
            ],
        ),
        (
            "singleton",
            gated(|f| f.singleton(Singleton::new(SingletonMode::Skip))),
            &[
                (GET_ITEM, 2),
                (QUERY, 1),
                (PUT_ITEM, -1),
                (TRANSACTIONS, 1),
                (ITEMS, 2),
            ],
        ),
        (
            "concurrency",
            gated(|f| f.concurrency(Concurrency::new(5))),
            &[
                (GET_ITEM, 2),
                (TRANSACTIONS, 2),
                ("DynamoDB.UpdateItem", -1),
            ],
        ),
    ];
    for (name, function, extra) in cases {
        let calls = calls_for_second_event(function).await;
        println!("{name}: {calls:#?}");
        for (op, delta) in extra {
            let more =
                i64::try_from(get(&calls, op)).unwrap() - i64::try_from(get(&plain, op)).unwrap();
            assert_eq!(more, *delta, "{name}: {op}");
        }
    }
    // A debounced event folded into the queued run: the record and the run
    // read, one transaction (the run, now referring to the new event's
    // routed record, the flow record, and the event's own run stored as
    // skipped, referring to it too), and a new start timer.
    let calls = calls_for_second_event(gated(|f| {
        f.debounce(Debounce::new(Duration::from_secs(3_600)))
    }))
    .await;
    println!("debounce (folded): {calls:#?}");
    assert_eq!(get(&calls, "DynamoDB.TransactWriteItems"), 1, "{calls:#?}");
    assert_eq!(get(&calls, "DynamoDB.TransactWriteItems.items"), 3);
    // An event joining an open batch: the same reads, and one transaction of
    // the run (its batch grows), the record, and the event's own skipped run
    // (referring to the event's routed record); no new timer.
    let calls =
        calls_for_second_event(gated(|f| f.batch(Batch::new(10, Duration::from_secs(60))))).await;
    println!("batch (joined): {calls:#?}");
    assert_eq!(get(&calls, "DynamoDB.TransactWriteItems"), 1, "{calls:#?}");
    assert_eq!(get(&calls, "DynamoDB.TransactWriteItems.items"), 3);
    assert_eq!(get(&calls, "SQS.SendMessage"), 1, "the route only");
}

/// The `ttl` (epoch seconds) of an item, if it has one.
async fn ttl_of_run(env: &AwsTestEnv, run_id: &str) -> Option<i64> {
    ttl_of_key(env, run_item_key(run_id)).await
}

async fn ttl_of_key(env: &AwsTestEnv, (pk, sk): (String, String)) -> Option<i64> {
    ttl_of(env, &pk, &sk).await
}

async fn ttl_of(env: &AwsTestEnv, pk: &str, sk: &str) -> Option<i64> {
    let item = env
        .store()
        .clients()
        .dynamodb
        .get_item()
        .table_name(&env.store().config().table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item?;
    match item.get("ttl") {
        Some(AttributeValue::N(n)) => Some(n.parse().unwrap()),
        _ => None,
    }
}

#[tokio::test]
async fn finished_runs_and_events_expire_on_their_schedule() {
    const DAY: i64 = 86_400;
    let sleepy = Function::new("sleepy")
        .on_event("test/sleepy")
        .handler(|ctx| async move {
            ctx.step
                .sleep("nap", Duration::from_secs(60 * 86_400))
                .await?;
            Ok(json!({}))
        });
    let limited = Function::new("limited")
        .on_event("test/limited")
        .rate_limit(hookflow::RateLimit::new(1, Duration::from_secs(3600)))
        .handler(|_| async move { Ok(json!({})) });
    let env = AwsTestEnv::new(vec![checkout_flow(), sleepy, limited]).await;
    let t0 = hookflow::Clock::now_ms(&env.clock);
    // WHEN a run finishes, another sleeps, and an event is due in 20 days
    let later = Event::new("test/later", json!({})).with_ts(t0 + 20 * DAY * 1000);
    let nothing = Event::new("test/nothing", json!({}));
    env.send(vec![
        Event::new(
            "stripe/checkout.session.completed",
            json!({"data": {"object": {}}}),
        ),
        Event::new("test/sleepy", json!({})),
        later.clone(),
        nothing.clone(),
        Event::new("test/limited", json!({})),
        Event::new("test/limited", json!({})),
    ])
    .await;
    let runs = env.runs().await;
    let done = runs
        .iter()
        .find(|r| r.status == RunStatus::Completed)
        .unwrap();
    let asleep = runs
        .iter()
        .find(|r| r.status == RunStatus::Sleeping)
        .unwrap();
    // THEN the finished run goes 30 days after it ended
    let ended = done.ended_at.unwrap() / 1000;
    let run_ttl = ttl_of_run(&env, &done.id).await;
    assert_eq!(run_ttl, Some(ended + 30 * DAY));
    // AND a run skipped at creation (rate limit) the same way, from its creation
    let skipped = runs
        .iter()
        .find(|r| r.status == RunStatus::Skipped)
        .unwrap();
    let skipped_ttl = ttl_of_run(&env, &skipped.id).await;
    assert_eq!(skipped_ttl, Some(skipped.created_at / 1000 + 30 * DAY));
    // AND the sleeping one only after the longest a run may live from its
    // last change
    let asleep_ttl = ttl_of_run(&env, &asleep.id).await.unwrap();
    assert_eq!(asleep_ttl, t0 / 1000 + (365 + 30) * DAY);
    // AND its trigger event's own record, which it refers to, as long (its
    // name starts runs, so the webhook stored it kept for them)
    assert_eq!(
        ttl_of_key(&env, run_event_key(&asleep.id)).await,
        None,
        "no copy of the event"
    );
    let kept = ttl_of(&env, &format!("EVT#{}", asleep.event.id), "EVT")
        .await
        .unwrap();
    assert!(kept >= t0 / 1000 + (365 + 30) * DAY, "{kept}");
    // AND nothing waits for these names, so none has a routed record
    assert!(items_under(&env, "EVN#").await.is_empty());
    // AND an event that starts nothing goes 7 days after it is received, or
    // after it is due when that is later
    let unrouted = ttl_of(&env, &format!("EVT#{}", nothing.id), "EVT")
        .await
        .unwrap();
    assert_eq!(unrouted, t0 / 1000 + 7 * DAY);
    let due_later = ttl_of(&env, &format!("EVT#{}", later.id), "EVT")
        .await
        .unwrap();
    assert_eq!(due_later, t0 / 1000 + 27 * DAY);
    // AND a flow-control record a day after its time passed (the rule the
    // SQLite prune follows too): the rate limit's next start, an hour on
    let limit = ttl_of(&env, "FC#rate#limited#", "FC").await;
    assert_eq!(limit, Some(t0 / 1000 + 3600 + DAY));
}

#[tokio::test]
async fn a_run_stored_by_the_previous_version_loads_and_finishes() {
    use hookflow::run::{Envelope, Message};
    use hookflow::store::{Outbox, RunStore};
    use hookflow::transition::Outgoing;
    // GIVEN a 5-step run written the way the previous version wrote it: its
    // own copy of the event, a body with every field (nulls too), and two
    // finished steps as JSON objects on the run item
    let env = AwsTestEnv::new(vec![five_steps()]).await;
    let t = hookflow::Clock::now_ms(&env.clock);
    let table = env.store().config().table.clone();
    let event = Event::new("bench/go", json!({"n": 1}))
        .with_id("evt-old")
        .with_ts(t);
    let body = json!({
        "id": "old-run", "function_id": "five-steps", "status": "running",
        "attempt": 0, "created_at": t, "started_at": t, "ended_at": null,
        "wake_at": null, "output": null, "error": null, "parent": null,
        "idempotency_key": null,
    });
    let step = |position: u32, id: &str| {
        json!({"id": id, "position": position, "kind": "run", "status": "completed",
               "attempts": 1, "output": position, "started_at": t - 5, "ended_at": t - 5})
        .to_string()
    };
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    let ddb = &env.store().clients().dynamodb;
    ddb.put_item()
        .table_name(&table)
        .item("pk", s("RUN#old-run"))
        .item("sk", s("EVENT"))
        .item("body", s(&serde_json::to_string(&event).unwrap()))
        .send()
        .await
        .unwrap();
    let key = format!("{t:015}#old-run");
    ddb.put_item()
        .table_name(&table)
        .item("pk", s("RUN#old-run"))
        .item("sk", s("RUN"))
        .item("function_id", s("five-steps"))
        .item("status", s("running"))
        .item("created_at", n(t))
        .item("body", s(&body.to_string()))
        .item("lease_until", n(0))
        .item("version", n(3))
        .item("gsi1pk", s("FN#five-steps"))
        .item("gsi1sk", s(&key))
        .item("gsi2pk", s("FS#five-steps#running"))
        .item("gsi2sk", s(&key))
        .item("j0", s(&step(0, "step")))
        .item("j1", s(&step(1, "step:1")))
        .send()
        .await
        .unwrap();
    let loaded = env.store().load_run("old-run").await.unwrap().unwrap();
    assert_eq!(loaded.run.event, event);
    assert_eq!(loaded.run.status, RunStatus::Running);
    assert_eq!(loaded.journal.len(), 2);
    // WHEN the new version is asked to go on with it
    env.store()
        .deliver(&[Outgoing::Send {
            envelope: Envelope::new(
                Target::Function("five-steps".into()),
                Message::Start {
                    run_id: "old-run".into(),
                    due: None,
                    trigger: None,
                },
            ),
        }])
        .await
        .unwrap();
    env.settle().await;
    // THEN it finishes from its third step, the first two as they were
    let view = env.only_run("five-steps").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.run.output, Some(json!(10)));
    assert_eq!(view.steps.len(), 5);
    assert_eq!(view.steps[0].started_at, t - 5, "kept, not run again");
    assert_eq!(view.steps[1].started_at, t - 5, "kept, not run again");
    // AND it left the status index, which now holds failed and cancelled
    // runs only, at its first update; it stays in the function index
    let item = stored_run_item(&env, "old-run").await;
    assert!(!item.contains_key("gsi2pk") && !item.contains_key("gsi2sk"));
    assert_eq!(item["gsi1pk"], s("FN#five-steps"));
    // AND a new run, in the function's partitions, is listed with it,
    // newest first
    env.clock.set(t + 1);
    env.send(vec![Event::new("bench/go", json!({"n": 2}))])
        .await;
    let listed = env
        .store()
        .list_runs(&hookflow::RunFilter {
            function_id: Some("five-steps".into()),
            ..hookflow::RunFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], "old-run");
    assert!(hookflow::run_id::RunIdParts::parse(ids[0]).is_some());
    assert!(!stored_run_item(&env, ids[0]).await.contains_key("gsi1pk"));
}

#[tokio::test]
async fn a_resume_starts_events_held_past_the_event_logs_retention() {
    // GIVEN a paused function and an event it missed
    let held = Function::new("held")
        .on_event("test/held")
        .handler(|ctx| async move { Ok(ctx.event.data["n"].clone()) });
    let env = AwsTestEnv::new(vec![held]).await;
    env.engine.pause("held").await.unwrap();
    let event = Event::new("test/held", json!({"n": 7}));
    env.send(vec![event.clone()]).await;
    assert!(env.runs().await.is_empty());
    // WHEN the event log no longer has it, ten days on (moto never expires
    // items: the test deletes it as DynamoDB's TTL would after 7 days, had
    // it been stored by a webhook that did not know its name starts runs)
    env.advance(Duration::from_secs(10 * 86_400)).await;
    env.harness()
        .dynamodb
        .delete_item()
        .table_name(&env.store().config().table)
        .key("pk", AttributeValue::S(format!("EVT#{}", event.id)))
        .key("sk", AttributeValue::S("EVT".into()))
        .send()
        .await
        .unwrap();
    assert!(
        hookflow::store::EventLog::get_event(env.store(), &event.id)
            .await
            .unwrap()
            .is_none()
    );
    // THEN resuming still starts its run, from the record held for it (kept
    // as long as a run may live), and the run reads its event
    assert_eq!(env.engine.resume("held", false).await.unwrap(), 1);
    env.settle().await;
    let runs = env.runs().await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].output, Some(json!(7)));
}

fn waits_then_steps(timeout: Duration) -> Function {
    Function::new("remind")
        .on_event("user/created")
        .waits_for("discord/connected")
        .handler(move |ctx| async move {
            let linked = ctx
                .step
                .wait_for_event(
                    "discord",
                    WaitFor::event("discord/connected")
                        .matching("data.userId")
                        .timeout(timeout),
                )
                .await?;
            let n = ctx.step.run("after", || async move { Ok(1) }).await?;
            Ok(json!([linked.is_some(), n]))
        })
}

/// The run item writes of `calls`: conditional puts and updates, and each
/// transaction's items.
fn item_writes(calls: &HashMap<String, u64>) -> (u64, u64, u64) {
    let get = |op: &str| calls.get(op).copied().unwrap_or(0);
    (
        get("DynamoDB.PutItem"),
        get("DynamoDB.UpdateItem"),
        get("DynamoDB.TransactWriteItems.items"),
    )
}

#[tokio::test]
async fn a_sleep_and_a_retry_are_each_one_conditional_write() {
    // GIVEN a function that runs a step, sleeps ten minutes, runs another
    let env = AwsTestEnv::new(vec![sleeper(Duration::from_secs(600))]).await;
    env.send(vec![Event::new("nap/start", json!({}))]).await;
    env.advance(Duration::from_secs(600)).await;
    env.counter.reset();
    // WHEN a run reaches its sleep
    env.send(vec![Event::new("nap/start", json!({}))]).await;
    // THEN the first step's checkpoint, the lease and the sleep are one
    // update of the run item (the sleeping step's record lives on it too,
    // no transaction with an item of its own)
    assert_eq!(
        item_writes(&env.calls()),
        (2, 1, 0),
        "event, run; one update"
    );
    // WHEN it wakes: the sleep's end (the first commit, which takes the
    // lease, before the next step's code runs), then the end carrying the
    // last step
    env.counter.reset();
    env.advance(Duration::from_secs(600)).await;
    assert_eq!(item_writes(&env.calls()), (0, 2, 0));
    assert_eq!(
        env.runs()
            .await
            .iter()
            .filter(|r| r.status == RunStatus::Completed)
            .count(),
        2
    );

    // GIVEN a step that fails once and then succeeds
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let flaky = Function::new("flaky")
        .on_event("go")
        .handler(move |ctx| {
            let seen = seen.clone();
            async move {
                ctx.step
                    .run("call", move || async move {
                        match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                            0 => Err(anyhow::anyhow!("503")),
                            n => Ok(n),
                        }
                    })
                    .await
                    .map_err(Into::into)
            }
        })
        .retries(1);
    let env = AwsTestEnv::new(vec![flaky]).await;
    env.counter.reset();
    // WHEN its first attempt fails, THEN the retry to come is one update
    env.send(vec![Event::new("go", json!({}))]).await;
    assert_eq!(item_writes(&env.calls()), (2, 1, 0));
    let view = env.only_run("flaky").await;
    assert_eq!(view.steps[0].status, StepStatus::Retrying);
    // AND the retry that succeeds ends the run in one more
    env.counter.reset();
    env.advance(Duration::from_secs(60)).await;
    assert_eq!(item_writes(&env.calls()), (0, 1, 0));
    assert_eq!(env.only_run("flaky").await.run.output, Some(json!(1)));
}

#[tokio::test]
async fn a_wait_writes_its_waiter_with_the_run_item_alone() {
    // GIVEN a function that waits up to a minute for a user's Discord link
    let env = AwsTestEnv::new(vec![waits_then_steps(Duration::from_secs(60))]).await;
    env.counter.reset();
    // WHEN a run reaches its wait
    env.send(vec![Event::new("user/created", json!({"userId": "u1"}))])
        .await;
    // THEN the waiting step's record is on the run item: one transaction
    // of the run item and the waiter
    let calls = env.calls();
    assert_eq!(item_writes(&calls), (2, 0, 2), "{calls:?}");
    assert_eq!(calls.get("DynamoDB.TransactWriteItems"), Some(&1));
    // AND the waiter keeps of the run's event only what its match reads
    let waiters = items_under(&env, "WAIT#").await;
    let waiter: Value = serde_json::from_str(waiters[0]["body"].as_s().unwrap()).unwrap();
    assert_eq!(waiter["trigger"], json!({"data": {"userId": "u1"}}));
    // WHEN the wait times out
    env.counter.reset();
    env.advance(Duration::from_secs(61)).await;
    let calls = env.calls();
    // THEN the timeout takes the lease with its answer and the waiter's
    // removal (one transaction), and the end carries the last step
    assert_eq!(item_writes(&calls), (0, 1, 2), "{calls:?}");
    assert_eq!(
        env.only_run("remind").await.run.output,
        Some(json!([false, 1]))
    );
}

#[tokio::test]
async fn a_large_answer_takes_the_waiting_record_off_the_run_item() {
    // GIVEN a run waiting for a user's Discord link, its record on the run item
    let env = AwsTestEnv::new(vec![waits_then_steps(Duration::from_secs(600))]).await;
    env.send(vec![Event::new("user/created", json!({"userId": "u1"}))])
        .await;
    let run_id = env.only_run("remind").await.run.id;
    let waiting = stored_run_item(&env, &run_id).await;
    let stale = waiting
        .get("j0")
        .cloned()
        .expect("the waiting record inline");
    // WHEN the event arrives, too large to be kept on the run item
    let profile = "x".repeat(4096);
    env.send(vec![Event::new(
        "discord/connected",
        json!({"userId": "u1", "profile": profile}),
    )])
    .await;
    // THEN its record gets an item of its own and leaves the run item
    let view = env.only_run("remind").await;
    assert_eq!(view.run.output, Some(json!([true, 1])));
    assert_eq!(view.steps[0].status, StepStatus::Completed);
    assert!(!stored_run_item(&env, &run_id).await.contains_key("j0"));
    // AND a waiting record left on the run item (as a writer of the
    // previous version would) does not hide the finished one
    env.harness()
        .dynamodb
        .update_item()
        .table_name(&env.store().config().table)
        .key("pk", AttributeValue::S(run_item_key(&run_id).0))
        .key("sk", AttributeValue::S(run_item_key(&run_id).1))
        .update_expression("SET j0 = :stale")
        .expression_attribute_values(":stale", stale)
        .send()
        .await
        .unwrap();
    let view = env.only_run("remind").await;
    assert_eq!(view.steps[0].status, StepStatus::Completed);
    assert_eq!(
        view.steps[0].output.as_ref().unwrap()["data"]["profile"],
        json!(profile)
    );
}

/// A charge as a payment API returns it (about 1 KB of JSON), the `n`th.
fn charge(n: u32) -> Value {
    json!({
        "id": format!("ch_3Q{n:04}hookflowX{}", n * 7919),
        "object": "charge",
        "amount": 2_500 + n * 125,
        "amount_captured": 2_500 + n * 125,
        "amount_refunded": 0,
        "balance_transaction": format!("txn_3Q{n:04}hookflowB{}", n * 104_729),
        "billing_details": {
            "address": {"city": "Lisbon", "country": "PT", "line1": format!("Rua Augusta {n}"),
                        "line2": null, "postal_code": "1100-053", "state": null},
            "email": format!("mentee{n}@example.com"), "name": format!("Mentee Number {n}"), "phone": null
        },
        "calculated_statement_descriptor": "MENTORSHIP",
        "captured": true,
        "created": 1_767_225_600 + n * 3_600,
        "currency": "eur",
        "customer": format!("cus_R{n:04}hookflow"),
        "description": format!("Session {n} of 5 with mentor"),
        "disputed": false,
        "livemode": false,
        "metadata": {"booking_id": format!("bk_{n:06}"), "tenant": "mentorship"},
        "outcome": {"network_status": "approved_by_network", "reason": null, "risk_level": "normal",
                    "risk_score": 20 + n, "seller_message": "Payment complete.", "type": "authorized"},
        "paid": true,
        "payment_intent": format!("pi_3Q{n:04}hookflowP{}", n * 15_485_863),
        "payment_method": format!("pm_1Q{n:04}hookflowM"),
        "payment_method_details": {"card": {"brand": "visa", "country": "PT", "exp_month": 12,
                    "exp_year": 2030, "funding": "credit", "last4": format!("{:04}", 4242 + n),
                    "network": "visa", "three_d_secure": null}, "type": "card"},
        "receipt_url": format!("https://pay.example.com/receipts/acct_1Q/ch_3Q{n:04}/rcpt_{}", n * 31),
        "refunded": false,
        "status": "succeeded"
    })
}

#[tokio::test]
async fn steps_that_return_kilobyte_objects_are_billed_compressed() {
    // GIVEN five steps that each return a charge object (about 1 KB)
    let charges = Function::new("charges")
        .on_event("bench/charges")
        .handler(|ctx| async move {
            let mut ids = Vec::new();
            for n in 0..5 {
                let id = format!("charge-{n}");
                let charge: Value = ctx
                    .step
                    .run(&id, move || async move { Ok(charge(n)) })
                    .await?;
                ids.push(charge["id"].clone());
            }
            Ok(ids)
        });
    let env = AwsTestEnv::new(vec![charges]).await;
    // WHEN a run completes
    env.send(vec![Event::new("bench/charges", json!({}))]).await;
    let view = env.only_run("charges").await;
    assert_eq!(view.run.status, RunStatus::Completed);
    assert_eq!(view.steps[4].output, Some(charge(4)), "reads back whole");
    // THEN each of its checkpoints is billed for the run item as stored:
    // checkpoint i (of the first four) with i records, the end with five
    let item = stored_run_item(&env, &view.run.id).await;
    let base = item_bytes(item.iter().filter(|(name, _)| !name.starts_with('j')));
    let mut stored = Vec::new();
    let mut as_text = Vec::new();
    for i in 0..5 {
        let name = format!("j{i}");
        let AttributeValue::B(bytes) = &item[&name] else {
            panic!("record {i} as text");
        };
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::ZlibDecoder::new(bytes.as_ref()),
            &mut text,
        )
        .unwrap();
        stored.push(name.len() + bytes.as_ref().len());
        as_text.push(name.len() + text.len());
    }
    let (packed, text) = (
        checkpoint_units(base, &stored),
        checkpoint_units(base, &as_text),
    );
    println!(
        "5 checkpoints of ~1 KB outputs: records of {stored:?} bytes, {as_text:?} as text; \
         {packed} write units, {text} as text"
    );
    assert!(packed * 3 <= text * 2, "{packed} against {text}");
}

#[tokio::test]
async fn a_suspension_on_hundreds_of_parallel_sleeps_commits_and_wakes() {
    // GIVEN a run that sleeps on 700 branches at once: records past the
    // 64th get items of their own, in a commit of several parts
    let fan = Function::new("fan")
        .on_event("fan/go")
        .handler(|ctx| async move {
            let ids: Vec<String> = (0..700).map(|i| format!("nap-{i}")).collect();
            let naps = ids
                .iter()
                .map(|id| ctx.step.sleep(id, Duration::from_secs(60)));
            for nap in futures::future::join_all(naps).await {
                nap?;
            }
            Ok(ids.len())
        });
    let env = AwsTestEnv::new(vec![fan]).await;
    // WHEN it suspends, and wakes a minute later
    env.send(vec![Event::new("fan/go", json!({}))]).await;
    assert_eq!(env.only_run("fan").await.run.status, RunStatus::Sleeping);
    env.advance(Duration::from_secs(61)).await;
    // THEN it completes: no write of it was refused
    let view = env.only_run("fan").await;
    assert_eq!(view.run.output, Some(json!(700)));
    assert_eq!(view.steps.len(), 700);
}

#[tokio::test]
async fn a_stray_message_days_after_a_run_sent_events_starts_nothing_again() {
    use hookflow::run::{Envelope, Message};
    use hookflow::store::Outbox;
    use hookflow::transition::Outgoing;
    // GIVEN a run that failed, whose last transition sent
    // `hookflow/function.failed`, and the run that event started
    let sender = Function::new("sender")
        .on_event("test/go")
        .handler(|_ctx| async { Err::<(), _>(hookflow::NonRetriable::new("bad input").into()) });
    let listener = Function::new("listener")
        .on_event(hookflow::event::FUNCTION_FAILED)
        .handler(|_| async move { Ok(json!(true)) });
    let env = AwsTestEnv::new(vec![sender, listener]).await;
    env.send(vec![Event::new("test/go", json!({}))]).await;
    let sent = env.only_run("sender").await.run;
    assert_eq!(sent.status, RunStatus::Failed);
    assert_eq!(
        env.only_run("listener").await.run.status,
        RunStatus::Completed
    );
    // WHEN, two days on (past the one-day dedupe window), a stray message
    // (a wait's stale timeout, a redriven DLQ message) loads the finished
    // run, which sends its last transition's outbox again
    env.advance(Duration::from_secs(2 * 86_400)).await;
    env.store()
        .deliver(&[Outgoing::Send {
            envelope: Envelope::new(
                Target::Function("sender".into()),
                Message::Resume { run_id: sent.id },
            ),
        }])
        .await
        .unwrap();
    env.settle().await;
    // THEN the event is a duplicate of itself: the listener ran once
    let listened: Vec<_> = env
        .runs()
        .await
        .into_iter()
        .filter(|r| r.function_id == "listener")
        .collect();
    assert_eq!(listened.len(), 1, "{listened:#?}");
}

#[tokio::test]
async fn a_cancel_on_waiter_lasts_as_long_as_its_run_may() {
    // GIVEN a function that sleeps for months and is cancelled by an event
    let renew = Function::new("renew")
        .on_event("subscription/started")
        .cancel_on(hookflow::CancelOn::event("subscription/cancelled"))
        .handler(|ctx| async move {
            ctx.step
                .sleep("until-renewal", Duration::from_secs(120 * 86_400))
                .await?;
            Ok(json!("renewed"))
        });
    let env = AwsTestEnv::new(vec![renew]).await;
    let started = hookflow::Clock::now_ms(&env.clock);
    // WHEN a run starts
    env.send(vec![Event::new("subscription/started", json!({}))])
        .await;
    // THEN its cancel_on waiter expires no sooner than its run could end
    // (the longest a run may live, plus the runs' retention)
    let out = env
        .harness()
        .dynamodb
        .query()
        .table_name(&env.store().config().table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S("WAIT#subscription/cancelled".into()),
        )
        .send()
        .await
        .unwrap();
    let [waiter] = out.items() else {
        panic!("one waiter: {:?}", out.items());
    };
    let ttl: i64 = waiter["ttl"].as_n().unwrap().parse().unwrap();
    let retention = &env.store().config().retention;
    let lives = (retention.longest_run + retention.runs).as_secs();
    assert!(
        ttl >= started / 1000 + i64::try_from(lives).unwrap(),
        "ttl {ttl}, started {started}"
    );
    // and the run, still asleep after four months, is cancelled by it
    env.advance(Duration::from_secs(100 * 86_400)).await;
    env.send(vec![Event::new("subscription/cancelled", json!({}))])
        .await;
    assert_eq!(env.only_run("renew").await.run.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_long_idempotency_key_is_kept_by_its_hash() {
    // GIVEN a function keyed on a field that may be longer than a DynamoDB
    // partition key can hold (2,048 bytes)
    let once = Function::new("once")
        .on_event("order/placed")
        .idempotency("event.data.cart")
        .handler(|_| async move { Ok(json!(true)) });
    let env = AwsTestEnv::new(vec![once]).await;
    let cart = |c: char| json!({"cart": c.to_string().repeat(3_000)});
    // WHEN three events come, two of them with the same 3,000-byte key
    env.send(vec![
        Event::new("order/placed", cart('a')),
        Event::new("order/placed", cart('a')),
        Event::new("order/placed", cart('b')),
    ])
    .await;
    // THEN one run starts per key, each keeping the key's hash
    let runs = env.runs().await;
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for run in &runs {
        assert_eq!(run.status, RunStatus::Completed);
        let key = run.idempotency_key.as_deref().unwrap();
        assert!(key.starts_with("sha256-") && key.len() < 100, "{key}");
    }
    assert_eq!(env.dlq_depth(&Target::Router).await, 0);
}
