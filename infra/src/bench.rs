//! `hookflow bench`: the peers' workload (`../shared/bench-peers`: three
//! checkpointed steps, the result checked for every run) on the embedded
//! backend, in-process or over HTTP against a running `hookflow dev --bench`.
//! Closed loop (`--concurrency` runs in flight, a new run starts when one
//! ends) or open loop (`--rate` runs per second, latency counted from each
//! run's due time, so queueing counts). Prints one line in the peers'
//! format: runs/s, p50/p90/p99, CPU seconds, peak RSS and fsynced commits
//! per run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hookflow::store::RunStore;
use hookflow::{Event, Function, Registry, RunStatus, SystemClock};
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use serde_json::{Value, json};
use tokio::sync::watch;

/// `hookflow bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Runs measured (after the warm-up).
    #[arg(long, default_value_t = 2000)]
    pub runs: usize,
    /// Runs before the measured ones, not counted.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    /// Closed loop: runs in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop instead: runs started per second, whatever is in flight.
    #[arg(long)]
    pub rate: Option<f64>,
    /// In-process: messages the engine handles at once.
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// In-process: the database file (default: a fresh temporary file).
    #[arg(long, conflicts_with = "url")]
    pub db: Option<PathBuf>,
    /// Drive a running `hookflow dev --bench` at this URL over HTTP instead
    /// (`POST /events`, then `GET /runs/{id}?wait=30s`).
    #[arg(long)]
    pub url: Option<String>,
    /// With `--url`: the server's process id, for its CPU seconds and peak RSS.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
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
    /// Runs completed with the expected result.
    pub runs: usize,
    /// Runs that failed, timed out or returned a wrong result.
    pub errors: usize,
    /// Wall time from the first start to the last completion.
    pub elapsed: Duration,
    /// Start-to-completion latencies (open loop: from the due time), sorted.
    pub latencies: Vec<Duration>,
    /// CPU seconds of the engine's process over the measured runs.
    pub cpu_s: Option<f64>,
    /// Peak resident set of the engine's process, in MiB.
    pub rss_mb: Option<u64>,
    /// Bytes the engine's process wrote to disk over the measured runs.
    pub disk_bytes: Option<u64>,
    /// Commits made durable (one WAL fsync each) over the measured runs.
    pub fsynced_commits: Option<u64>,
}

impl Report {
    /// Completed runs per second.
    #[must_use]
    pub fn runs_per_sec(&self) -> f64 {
        self.runs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The nearest-rank `p`-th percentile latency (0-100), in ms.
    #[must_use]
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    /// The report as one line in the peers' harness format.
    #[must_use]
    pub fn line(&self, engine: &str, rate: Option<f64>) -> String {
        let na = |v: Option<String>| v.unwrap_or_else(|| "na".into());
        let mut line = format!(
            "{engine} runs={} wall_s={:.2} runs_per_s={:.1} p50_ms={:.1} p90_ms={:.1} p99_ms={:.1} errors={} rss_mb={} cpu_s={} fsynced_commits_per_run={} disk_kb_per_run={}",
            self.runs,
            self.elapsed.as_secs_f64(),
            self.runs_per_sec(),
            self.percentile_ms(50.0),
            self.percentile_ms(90.0),
            self.percentile_ms(99.0),
            self.errors,
            na(self.rss_mb.map(|v| v.to_string())),
            na(self.cpu_s.map(|v| format!("{v:.1}"))),
            na(self
                .fsynced_commits
                .map(|v| format!("{:.2}", v as f64 / self.runs.max(1) as f64))),
            na(self
                .disk_bytes
                .map(|v| format!("{:.1}", v as f64 / 1024.0 / self.runs.max(1) as f64))),
        );
        if let Some(rate) = rate {
            line.push_str(&format!(" offered_per_s={rate}"));
        }
        line
    }
}

/// How runs are started and observed.
trait Driver: Send + Sync + 'static {
    /// Starts run `n` (event id `id`); returns its run id.
    fn start(&self, id: String, n: u64) -> impl Future<Output = anyhow::Result<String>> + Send;
    /// Waits for the run to end; returns its output (an error if it failed).
    fn finish(&self, run_id: String) -> impl Future<Output = anyhow::Result<Value>> + Send;
    /// Commits the engine made durable so far, if it says.
    fn fsynced_commits(&self) -> impl Future<Output = Option<u64>> + Send;
}

/// The engine in this process, on a fresh SQLite file.
struct InProcess {
    runtime: Embedded,
}

impl Driver for InProcess {
    async fn start(&self, id: String, n: u64) -> anyhow::Result<String> {
        let event = Event::new("bench/three-steps", json!({"id": id, "n": n})).with_id(id);
        let ingested = self.runtime.engine().ingest(vec![event.clone()]).await?;
        let received_at = ingested.first().context("nothing ingested")?.received_at;
        let runs = hookflow::planned_runs(self.runtime.engine().registry(), &event, received_at);
        Ok(runs
            .first()
            .context("the event started no run")?
            .run_id
            .clone())
    }

    async fn finish(&self, run_id: String) -> anyhow::Result<Value> {
        let store = self.runtime.store();
        store.wait_for_end(&run_id, Duration::from_secs(60)).await?;
        let run = store
            .get_run(&run_id)
            .await?
            .filter(|r| r.status.is_terminal())
            .context("run did not end within 60 s")?;
        match run.status {
            RunStatus::Completed => Ok(run.output.unwrap_or(Value::Null)),
            other => bail!("run {run_id} ended {other:?}"),
        }
    }

    async fn fsynced_commits(&self) -> Option<u64> {
        Some(self.runtime.store().commit_stats().durable_commits)
    }
}

/// A `hookflow dev --bench` over HTTP.
struct Http {
    client: reqwest::Client,
    url: String,
}

impl Driver for Http {
    async fn start(&self, id: String, n: u64) -> anyhow::Result<String> {
        let body = json!({"name": "bench/three-steps", "id": id, "data": {"id": id, "n": n}});
        let answer: Value = self
            .client
            .post(format!("{}/events", self.url))
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answer["run_ids"][0]
            .as_str()
            .map(str::to_owned)
            .context("the event started no run (is hookflow dev running with --bench?)")
    }

    async fn finish(&self, run_id: String) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let mut view: Value = self
                .client
                .get(format!("{}/runs/{run_id}?wait=30s", self.url))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            match view["status"].as_str() {
                Some("completed") => return Ok(view["output"].take()),
                Some("failed" | "cancelled") => bail!("run {run_id} ended {}", view["status"]),
                _ => {}
            }
        }
        bail!("run {run_id} did not end within 60 s")
    }

    async fn fsynced_commits(&self) -> Option<u64> {
        let health: Value = self
            .client
            .get(format!("{}/health", self.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        health["commits"]["fsynced"].as_u64()
    }
}

/// What the engine's process used so far (Linux `/proc`; `None` elsewhere).
struct Usage {
    /// CPU seconds.
    cpu_s: Option<f64>,
    /// Peak resident set, MiB.
    rss_mb: Option<u64>,
    /// Bytes written to disk.
    disk_bytes: Option<u64>,
}

fn process_usage(pid: Option<u32>) -> Usage {
    let dir = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
    let read = |file: &str| std::fs::read_to_string(format!("{dir}/{file}")).ok();
    let cpu_s = read("stat").and_then(|stat| {
        // Fields after the command name (which may hold spaces): utime is
        // the 12th, stime the 13th.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    });
    let field = |text: Option<String>, name: &str| {
        let text = text?;
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    Usage {
        cpu_s,
        rss_mb: field(read("status"), "VmHWM:").map(|kb| kb / 1024),
        disk_bytes: field(read("io"), "write_bytes:"),
    }
}

/// Runs `count` runs numbered from `first`; returns each one's latency, or
/// its error.
async fn drive<D: Driver>(
    driver: &Arc<D>,
    first: usize,
    count: usize,
    concurrency: usize,
    rate: Option<f64>,
) -> Vec<anyhow::Result<Duration>> {
    let driver = Arc::clone(driver);
    let one = move |n: usize, due: Instant| {
        let driver = Arc::clone(&driver);
        async move {
            let id = format!("bench-{}-{n}", std::process::id());
            let run_id = driver.start(id.clone(), n as u64).await?;
            let output = driver.finish(run_id).await?;
            let want = json!({"c": (n as u64 + 1) * 2 + 3, "id": id});
            anyhow::ensure!(output == want, "run {n}: output {output}, expected {want}");
            Ok(due.elapsed())
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    match rate {
        Some(rate) => {
            let started = Instant::now();
            for i in 0..count {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let one = one.clone();
                tasks.spawn(async move { vec![one(first + i, due).await] });
            }
        }
        None => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..concurrency.clamp(1, count.max(1)) {
                let (next, one) = (Arc::clone(&next), one.clone());
                tasks.spawn(async move {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return out;
                        }
                        out.push(one(first + i, Instant::now()).await);
                    }
                });
            }
        }
    }
    let mut results = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(done) => results.extend(done),
            Err(err) => results.push(Err(err.into())),
        }
    }
    results
}

/// Runs the benchmark and prints its line; fails if any run failed.
///
/// # Errors
/// Database, engine or HTTP failures, or runs with a wrong result.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    let engine = if args.url.is_some() {
        "hookflow-http"
    } else {
        "hookflow-inproc"
    };
    println!("{}", report.line(engine, args.rate));
    anyhow::ensure!(
        report.errors == 0,
        "{} runs failed or returned a wrong result",
        report.errors
    );
    Ok(())
}

/// Runs the benchmark and returns what it measured.
///
/// # Errors
/// Database, engine or HTTP failures.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<Report> {
    if let Some(url) = &args.url {
        let driver = Arc::new(Http {
            client: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
        });
        return measure_with(&driver, args, args.pid).await;
    }
    let dir = tempfile::tempdir()?;
    let path = args
        .db
        .clone()
        .unwrap_or_else(|| dir.path().join("bench.db"));
    let store = SqliteStore::open(&path).with_context(|| format!("open {}", path.display()))?;
    let registry = Registry::new([peers_three_steps()])?;
    let config = WorkerConfig {
        workers: args.workers,
        ..WorkerConfig::default()
    };
    let runtime = Embedded::new(store, registry, Arc::new(SystemClock), config);
    runtime.start().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.run_workers(stop_rx).await })
    };
    let report = measure_with(&Arc::new(InProcess { runtime }), args, None).await;
    let _ = stop_tx.send(true);
    workers.await?;
    report
}

async fn measure_with<D: Driver>(
    driver: &Arc<D>,
    args: &BenchArgs,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let warm = drive(driver, 0, args.warmup, args.concurrency, None).await;
    if let Some(Err(err)) = warm.into_iter().find(Result::is_err) {
        return Err(err.context("warm-up run failed"));
    }
    let before = process_usage(pid);
    let commits_before = driver.fsynced_commits().await;
    let started = Instant::now();
    let results = drive(driver, args.warmup, args.runs, args.concurrency, args.rate).await;
    let elapsed = started.elapsed();
    let after = process_usage(pid);
    let commits_after = driver.fsynced_commits().await;
    let mut latencies = Vec::with_capacity(results.len());
    let mut errors = 0;
    for result in results {
        match result {
            Ok(latency) => latencies.push(latency),
            Err(err) => {
                if errors == 0 {
                    tracing::warn!(error = format!("{err:#}"), "a run failed");
                }
                errors += 1;
            }
        }
    }
    latencies.sort_unstable();
    Ok(Report {
        runs: latencies.len(),
        errors,
        elapsed,
        latencies,
        cpu_s: before.cpu_s.zip(after.cpu_s).map(|(a, b)| b - a),
        rss_mb: after.rss_mb,
        disk_bytes: before
            .disk_bytes
            .zip(after.disk_bytes)
            .map(|(a, b)| b.saturating_sub(a)),
        fsynced_commits: commits_before
            .zip(commits_after)
            .map(|(a, b)| b.saturating_sub(a)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookflow_webhooks::{Receiver, WebhookConfig};

    fn args(runs: usize) -> BenchArgs {
        BenchArgs {
            runs,
            warmup: 3,
            concurrency: 4,
            rate: None,
            workers: 8,
            db: None,
            url: None,
            pid: None,
        }
    }

    #[tokio::test]
    async fn the_in_process_bench_checks_every_result_and_counts_commits() {
        let report = measure(&args(20)).await.unwrap();
        assert_eq!((report.runs, report.errors), (20, 0));
        assert_eq!(report.latencies.len(), 20);
        // Every run commits at least its checkpoints durably, shared or not.
        assert!(report.fsynced_commits.is_some_and(|n| n > 0));
        assert!(report.line("x", None).starts_with("x runs=20 "));
    }

    #[tokio::test]
    async fn the_http_bench_drives_the_dev_api() {
        let store = SqliteStore::in_memory().unwrap();
        let registry = Registry::new(workloads(None)).unwrap();
        let runtime = Embedded::new(
            store,
            registry,
            Arc::new(SystemClock),
            WorkerConfig::default(),
        );
        runtime.start().await.unwrap();
        let (stop_tx, stop_rx) = watch::channel(false);
        let workers = {
            let runtime = runtime.clone();
            tokio::spawn(async move { runtime.run_workers(stop_rx).await })
        };
        let receiver = Arc::new(Receiver::new(WebhookConfig::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = crate::api::router(runtime, receiver);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let report = measure(&BenchArgs {
            url: Some(url),
            rate: Some(200.0),
            ..args(10)
        })
        .await
        .unwrap();
        assert_eq!((report.runs, report.errors), (10, 0));
        assert!(report.fsynced_commits.is_some());
        assert!(
            report
                .line("h", Some(200.0))
                .ends_with(" offered_per_s=200")
        );
        server.abort();
        let _ = stop_tx.send(true);
        workers.await.unwrap();
    }
}
