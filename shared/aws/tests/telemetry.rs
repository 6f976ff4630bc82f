//! What a run tells CloudWatch and X-Ray, through the real Lambda handler
//! on moto: the EMF lines written at the end of an invocation, the JSON log
//! lines (with the run and step they were written in), and the X-Ray
//! subsegments sent to a daemon (a UDP socket standing in for Lambda's).
//!
//! One test per process: the metrics recorder and the log subscriber are
//! process-wide.

use std::io::Write;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hookflow::{Event, Function, RunStatus};
use hookflow_aws::lambda::json_logs;
use hookflow_aws::telemetry::Telemetry;
use hookflow_aws::testing::AwsTestEnv;
use serde_json::{Value, json};

/// Log lines written through the subscriber, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn three_steps() -> Function {
    Function::new("three")
        .on_event("test/three")
        .handler(|ctx| async move {
            let mut n: i64 = 0;
            for step in ["reserve", "charge", "email"] {
                n = ctx
                    .step
                    .run(step, move || async move {
                        tracing::info!(n, "working on it");
                        Ok(n + 1)
                    })
                    .await?;
            }
            Ok(json!({ "n": n }))
        })
}

/// The EMF documents (one per flush) whose dimension set is `dimensions`.
fn emf_docs<'a>(docs: &'a [Value], dimensions: &[&str]) -> Vec<&'a Value> {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            let set = &d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
            set.as_array().is_some_and(|s| {
                s.iter()
                    .map(|v| v.as_str().unwrap())
                    .eq(dimensions.iter().copied())
            })
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no EMF document with dimensions {dimensions:?} in {docs:#?}"
    );
    found
}

/// Every value of `metric` across `docs`, in order.
fn values(docs: &[&Value], metric: &str) -> Vec<f64> {
    docs.iter()
        .flat_map(|doc| match &doc[metric] {
            Value::Array(items) => items.iter().map(|v| v.as_f64().unwrap()).collect(),
            Value::Number(n) => vec![n.as_f64().unwrap()],
            Value::Null => Vec::new(),
            other => panic!("{metric} is {other} in {doc}"),
        })
        .collect()
}

/// The invocation's trace header, as the Lambda runtime puts it in the
/// environment.
const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

#[tokio::test]
async fn a_run_reports_metrics_traced_messages_and_logs_that_name_it() {
    if std::env::var("_X_AMZN_TRACE_ID").ok().as_deref() != Some(TRACE) {
        // Like the Lambda runtime, give the process the trace header in its
        // environment: run this test again in a child process that has it.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_run_reports_metrics_traced_messages_and_logs_that_name_it",
                "--nocapture",
            ])
            .env("_X_AMZN_TRACE_ID", TRACE)
            .status()
            .unwrap();
        assert!(status.success(), "the test failed in its child process");
        return;
    }
    let logs = Captured::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(json_logs(move || writer.clone())).unwrap();
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut env = AwsTestEnv::new(vec![three_steps()]).await;
    env.telemetry = Telemetry::with(Some("Hookflow/test"), Some(daemon.local_addr().unwrap()));
    env.send(vec![Event::new("test/three", json!({}))]).await;
    env.settle().await;
    let run = env.only_run("three").await;
    assert_eq!(run.run.status, RunStatus::Completed);

    // Metrics: per function, and for the whole stack, written after each
    // message.
    let emf = env.telemetry.take_written();
    let emf_bytes = emf.len();
    let docs: Vec<Value> = String::from_utf8(emf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for doc in &docs {
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Hookflow/test"
        );
    }
    let per_function = emf_docs(&docs, &["Function"]);
    assert!(per_function.iter().all(|d| d["Function"] == "three"));
    assert_eq!(values(&per_function, "RunsStarted"), [1.0]);
    assert_eq!(values(&per_function, "RunsCompleted"), [1.0]);
    assert!(values(&per_function, "RunsFailed").is_empty());
    let stack = emf_docs(&docs, &[]);
    assert_eq!(values(&stack, "RunsStarted"), [1.0], "each count once");
    assert_eq!(values(&stack, "RunsCompleted"), [1.0]);
    assert_eq!(values(&stack, "StepAttempts"), [1.0, 1.0, 1.0]);
    assert_eq!(values(&stack, "StepDuration").len(), 3);
    assert_eq!(values(&stack, "StartDelay").len(), 1);
    assert_eq!(values(&stack, "RunDuration").len(), 1);
    let ages = values(&stack, "QueueAge");
    // What the metrics add to CloudWatch Logs (ingestion is billed by size).
    eprintln!(
        "EMF: {emf_bytes} bytes in {} documents for {} messages of a 3-step run",
        docs.len(),
        ages.len()
    );
    assert!(
        ages.len() >= 2,
        "the router's message and the run's: {ages:?}"
    );
    let units: Vec<&Value> = stack
        .iter()
        .flat_map(|d| {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
        })
        .filter(|m| m["Name"] == "StepDuration")
        .collect();
    assert_eq!(units[0]["Unit"], "Milliseconds");
    // Nothing is left over for a later flush.
    env.telemetry.flush().unwrap();
    assert!(env.telemetry.take_written().is_empty());

    // Traces: each handled message is a subsegment of the invocation's
    // trace, the run's annotated with its id and function.
    let mut segments = Vec::new();
    let mut buf = [0u8; 65_536];
    while let Ok(n) = daemon.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (header, body) = text.split_once('\n').unwrap();
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        segments.push(serde_json::from_str::<Value>(body).unwrap());
    }
    let start = segments
        .iter()
        .find(|s| s["name"] == "hookflow.start" && s.get("end_time").is_some())
        .unwrap_or_else(|| panic!("no ended start subsegment in {segments:#?}"));
    assert_eq!(start["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(start["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(start["annotations"]["run_id"], run.run.id.as_str());
    assert_eq!(start["annotations"]["function"], "three");
    assert!(
        segments.iter().any(|s| s["name"] == "hookflow.route"),
        "the router's message too"
    );

    // Logs: a line written in a step names the run, the function and the step.
    let lines = logs.lines();
    let in_step: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "working on it")
        .collect();
    assert_eq!(in_step.len(), 3, "{lines:#?}");
    let spans = in_step[1]["spans"].as_array().unwrap();
    assert!(
        spans.iter().any(|s| s["name"] == "run"
            && s["run.id"] == run.run.id.as_str()
            && s["function"] == "three"),
        "{spans:?}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "step" && s["step.id"] == "charge"),
        "{spans:?}"
    );
}
