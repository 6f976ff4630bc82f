//! `hookflow bench`: sends N events to a 3-step function on the embedded
//! backend (a real SQLite file, WAL, `synchronous=FULL`: every checkpoint is
//! fsynced) with the real worker loop, and prints runs/s and the p50/p99
//! event-to-completion latency.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hookflow::store::RunStore;
use hookflow::{Event, Function, Registry, RunFilter, RunStatus, SystemClock};
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use serde_json::json;
use tokio::sync::watch;

/// `hookflow bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Number of events (one run each).
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Events sent per second; 0 sends as fast as ingestion allows.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Database file (default: a fresh temporary file).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// The benchmark's function: three memoized steps.
#[must_use]
pub fn three_steps() -> Function {
    Function::new("bench-three-steps")
        .on_event("bench/go")
        .handler(|ctx| async move {
            let n = ctx.event.data["n"].as_u64().unwrap_or(0);
            let a: u64 = ctx
                .step
                .run("one", move || async move { Ok(n + 1) })
                .await?;
            let b: u64 = ctx
                .step
                .run("two", move || async move { Ok(a * 2) })
                .await?;
            let c: u64 = ctx
                .step
                .run("three", move || async move { Ok(b + 3) })
                .await?;
            Ok(c)
        })
}

/// The five-step workload `hookflow dev --bench` serves on `bench/five-steps`:
/// each step adds one to the event's `n`; the output is `n + 5`. With
/// `step_log`, every execution of a step's code appends `run step unix_ms`
/// to that file before it runs, so a crash test can prove that no
/// checkpointed step ran again.
#[must_use]
pub fn five_steps(step_log: Option<PathBuf>) -> Function {
    let log = step_log.map(Arc::new);
    Function::new("bench-five-steps")
        .on_event("bench/five-steps")
        .handler(move |ctx| {
            let log = log.clone();
            async move {
                let mut n = ctx.event.data["n"].as_u64().unwrap_or(0);
                for step in ["one", "two", "three", "four", "five"] {
                    let (log, run) = (log.clone(), ctx.run_id.clone());
                    n = ctx
                        .step
                        .run(step, move || async move {
                            if let Some(path) = log {
                                record_execution(&path, &run, step)?;
                            }
                            Ok(n + 1)
                        })
                        .await?;
                }
                Ok(n)
            }
        })
}

fn record_execution(path: &std::path::Path, run: &str, step: &str) -> std::io::Result<()> {
    use std::io::Write;
    let now = hookflow::Clock::now_ms(&SystemClock);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{run} {step} {now}")
}

/// The peers' workload (`../shared/bench-peers`): on `bench/three-steps`
/// (`data.id`, `data.n`), three checkpointed steps `step1` (`a = n + 1`),
/// `step2` (`b = a * 2`), `step3` (`c = b + 3`); the output is `{c, id}`.
#[must_use]
pub fn peers_three_steps() -> Function {
    Function::new("peers-three-steps")
        .on_event("bench/three-steps")
        .handler(|ctx| async move {
            let n = ctx.event.data["n"].as_i64().unwrap_or(0);
            let id = ctx.event.data["id"].clone();
            let a: i64 = ctx
                .step
                .run("step1", move || async move { Ok(n + 1) })
                .await?;
            let b: i64 = ctx
                .step
                .run("step2", move || async move { Ok(a * 2) })
                .await?;
            let c: i64 = ctx
                .step
                .run("step3", move || async move { Ok(b + 3) })
                .await?;
            Ok(json!({"c": c, "id": id}))
        })
}

/// The functions `hookflow dev --bench` adds to the registry.
#[must_use]
pub fn workloads(step_log: Option<PathBuf>) -> Vec<Function> {
    vec![five_steps(step_log), peers_three_steps()]
}

/// What a benchmark measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Runs completed.
    pub runs: usize,
    /// Wall time from the first event to the last completion.
    pub elapsed: Duration,
    /// Event-to-completion latencies in ms, sorted.
    pub latencies_ms: Vec<i64>,
}

impl Report {
    /// Completed runs per second.
    #[must_use]
    pub fn runs_per_sec(&self) -> f64 {
        self.runs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile latency (0-100) in ms.
    #[must_use]
    pub fn percentile(&self, p: f64) -> i64 {
        if self.latencies_ms.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * (self.latencies_ms.len() - 1) as f64).round() as usize;
        self.latencies_ms[rank.min(self.latencies_ms.len() - 1)]
    }
}

/// Runs the benchmark and prints its report.
///
/// # Errors
/// Database or engine failures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    println!(
        "hookflow bench: {} runs of a 3-step function, {} workers, rate {}, embedded SQLite (WAL, synchronous=FULL)",
        report.runs,
        args.workers,
        if args.rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{}/s", args.rate)
        }
    );
    println!(
        "throughput: {:.1} runs/s ({} runs in {:.2} s)",
        report.runs_per_sec(),
        report.runs,
        report.elapsed.as_secs_f64()
    );
    println!(
        "event-to-completion latency: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        report.percentile(50.0),
        report.percentile(90.0),
        report.percentile(99.0),
        report.percentile(100.0)
    );
    Ok(())
}

/// Runs the benchmark and returns what it measured.
///
/// # Errors
/// Database or engine failures, or runs that did not complete.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let path = args
        .db
        .clone()
        .unwrap_or_else(|| dir.path().join("bench.db"));
    let store = SqliteStore::open(&path).with_context(|| format!("open {}", path.display()))?;
    let registry = Registry::new([three_steps()])?;
    let config = WorkerConfig {
        workers: args.workers,
        idle_poll: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let runtime = Embedded::new(store, registry, Arc::new(SystemClock), config);
    runtime.start().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.run_workers(stop_rx).await })
    };

    let started = Instant::now();
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    for n in 0..args.runs {
        if let Some(interval) = interval {
            let due = started + interval.mul_f64(n as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        runtime
            .engine()
            .ingest(vec![Event::new("bench/go", json!({ "n": n }))])
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = runtime
            .store()
            .count_runs(Some("bench-three-steps"), Some(RunStatus::Completed))
            .await?;
        if done >= args.runs as u64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {} runs completed in 10 minutes",
            args.runs
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    workers.await?;

    let filter = RunFilter {
        function_id: Some("bench-three-steps".into()),
        status: Some(RunStatus::Completed),
        limit: args.runs,
    };
    let runs = runtime.store().list_runs(&filter).await?;
    let mut latencies_ms: Vec<i64> = runs
        .iter()
        .filter_map(|r| r.ended_at.map(|end| end - r.event.ts))
        .collect();
    latencies_ms.sort_unstable();
    Ok(Report {
        runs: runs.len(),
        elapsed,
        latencies_ms,
    })
}
