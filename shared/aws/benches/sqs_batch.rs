//! How fast the Lambda handlers get through SQS batches of 5-step runs, on a
//! local moto server (started by the harness): 100 events ingested at once,
//! then every queue drained the way Lambda's event source does (batches of
//! up to 10 per `handle_sqs` call); five rounds, each on fresh tables,
//! printing runs/s per round and the median, and the SQS sends and
//! DynamoDB reads the handlers made per run (overlapping sends to one queue
//! share a `SendMessageBatch`, overlapping reads of one record one read). moto spends milliseconds of
//! CPU on each call, so the figures compare handler changes side by side;
//! they do not size a deployment (DynamoDB's calls overlap better).
//!
//! `cargo bench -p hookflow-aws --bench sqs_batch` (add `--profile dev` to
//! skip the release build of the AWS SDK: moto is the bottleneck either way)

use std::time::Instant;

use hookflow::Event;
use hookflow_aws::testing::{AwsTestEnv, five_steps};
use serde_json::json;

const RUNS: usize = 100;
const ROUNDS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut rates = Vec::new();
        for round in 1..=ROUNDS {
            // A fresh table each round: moto slows down as its tables grow.
            // Batches handled concurrently, as the Lambdas do (the 5-step
            // workload writes no transaction, which moto could not take at
            // once).
            let env = AwsTestEnv::new(vec![five_steps()])
                .await
                .concurrent_batches();
            env.send(vec![Event::new("bench/go", json!({}))]).await; // warm
            let events = (0..RUNS)
                .map(|n| Event::new("bench/go", json!({ "n": n })))
                .collect();
            env.engine.ingest(events).await.expect("ingest");
            env.counter.reset();
            let began = Instant::now();
            env.settle().await;
            let took = began.elapsed();
            let calls = env.calls();
            let per_run = |op: &str| calls.get(op).copied().unwrap_or(0) as f64 / RUNS as f64;
            let done = env
                .runs()
                .await
                .iter()
                .filter(|r| r.status == hookflow::RunStatus::Completed)
                .count();
            assert_eq!(done, RUNS + 1, "every run completed");
            let rate = RUNS as f64 / took.as_secs_f64();
            println!(
                "round {round}: {RUNS} runs in {:.2} s, {rate:.1} runs/s; per run {:.2} SendMessage + {:.2} SendMessageBatch, {:.2} GetItem, {:.2} Query",
                took.as_secs_f64(),
                per_run("SQS.SendMessage"),
                per_run("SQS.SendMessageBatch"),
                per_run("DynamoDB.GetItem"),
                per_run("DynamoDB.Query"),
            );
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "sqs_batch: median {:.1} runs/s over {ROUNDS} rounds of {RUNS} (moto)",
            rates[ROUNDS / 2]
        );
    });
}
