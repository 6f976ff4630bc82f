//! What the Lambdas tell CloudWatch and X-Ray.
//!
//! - **Metrics** in CloudWatch Embedded Metric Format: the engine's run and
//!   step metrics (`hookflow::observe`) plus `QueueAge` (ms from a message's
//!   send to its handling), collected during an invocation and written to
//!   stdout as EMF lines when it ends; CloudWatch Logs turns them into
//!   metrics in the namespace `HOOKFLOW_METRICS_NAMESPACE` (the template
//!   sets `Hookflow/<stack>`; unset or `off`: none).
//! - **Traces**: with active tracing, each handled message is a subsegment
//!   `hookflow.<message kind>` of the invocation's trace, annotated with the
//!   run id and the function (searchable: `annotation.run_id = "..."`).
//! - **Logs**: JSON, one object per line; inside a run its `run.id` and
//!   `function`, inside a step its `step.id` (see [`init_logging`]).

use std::time::{SystemTime, UNIX_EPOCH};

use hookflow::{Envelope, Target};
use metrics_cloudwatch_embedded::Collector;
use xray_lite::{
    Annotation, Context, DaemonClient, Namespace, Subsegment, SubsegmentContext, SubsegmentSession,
};

/// The variable naming the metrics' CloudWatch namespace (`off`: none).
pub const METRICS_NAMESPACE_VAR: &str = "HOOKFLOW_METRICS_NAMESPACE";
/// Milliseconds from a message's send to its handling.
pub const QUEUE_AGE: &str = "QueueAge";

/// The Lambda's telemetry: its metrics collector and X-Ray daemon client,
/// each absent when not configured.
pub struct Telemetry {
    metrics: Option<&'static Collector>,
    xray: Option<DaemonClient>,
    sink: Sink,
}

/// Where EMF lines go.
enum Sink {
    /// The Lambda's log stream.
    Stdout,
    /// Kept for a test to read.
    Memory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

impl Telemetry {
    /// From the Lambda's environment: metrics when
    /// [`METRICS_NAMESPACE_VAR`] names a namespace, X-Ray when Lambda runs
    /// its daemon (`AWS_XRAY_DAEMON_ADDRESS`, set by active tracing).
    #[must_use]
    pub fn from_env() -> Self {
        let namespace = std::env::var(METRICS_NAMESPACE_VAR).ok();
        Self {
            metrics: namespace.as_deref().and_then(install_metrics),
            xray: DaemonClient::from_lambda_env().ok(),
            sink: Sink::Stdout,
        }
    }

    /// Telemetry sending subsegments to `xray` (a daemon's address), and
    /// metrics in `namespace` kept in memory ([`Self::take_written`]): for
    /// tests. Metrics are installed once per process (later calls reuse
    /// the first namespace).
    #[must_use]
    pub fn with(namespace: Option<&str>, xray: Option<std::net::SocketAddr>) -> Self {
        Self {
            metrics: namespace.and_then(install_metrics),
            xray: xray.and_then(|addr| DaemonClient::new(addr).ok()),
            sink: Sink::Memory(std::sync::Arc::default()),
        }
    }

    /// Writes the metrics collected since the last flush as EMF lines.
    /// Called after each message: a distribution keeps at most 100 values
    /// between flushes (EMF's limit; the recorder drops the rest).
    ///
    /// # Errors
    /// Writing to stdout.
    pub fn flush(&self) -> std::io::Result<()> {
        let Some(collector) = self.metrics else {
            return Ok(());
        };
        match &self.sink {
            Sink::Stdout => collector.flush(std::io::stdout().lock()),
            Sink::Memory(kept) => collector.flush(
                &mut *kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
        }
    }

    /// The EMF lines flushed so far, taken (a [`Self::with`] telemetry's).
    #[must_use]
    pub fn take_written(&self) -> Vec<u8> {
        match &self.sink {
            Sink::Stdout => Vec::new(),
            Sink::Memory(kept) => std::mem::take(
                &mut *kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
        }
    }

    /// Telemetry that records nothing.
    #[must_use]
    pub fn none() -> Self {
        Self {
            metrics: None,
            xray: None,
            sink: Sink::Stdout,
        }
    }

    /// Notes a message about to be handled: its age (from `sent_at_ms`,
    /// the queue's send time, or the time it was due if later: a delay on
    /// purpose is not waiting) and, with tracing, a subsegment that ends
    /// when the returned guard is dropped.
    #[must_use]
    pub fn handling(&self, envelope: &Envelope, sent_at_ms: Option<i64>) -> Handling {
        if let Some(sent) = sent_at_ms {
            let sent = sent.max(envelope.not_before.unwrap_or(0));
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            metrics::histogram!(QUEUE_AGE).record((now - sent).max(0) as f64);
        }
        let segment = MessageSegment {
            kind: envelope.message.kind(),
            run_id: envelope.message.run_id().map(str::to_owned),
            function: match &envelope.target {
                Target::Function(id) => Some(id.clone()),
                Target::Router => None,
            },
        };
        Handling(
            self.xray
                .clone()
                .and_then(|client| SubsegmentContext::from_lambda_env(client).ok())
                .map(|context| context.enter_subsegment(segment)),
        )
    }
}

/// A message being handled: its X-Ray subsegment (if traced) ends when
/// this is dropped.
pub struct Handling(Option<SubsegmentSession<DaemonClient, MessageSegment>>);

impl std::fmt::Debug for Handling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Handling(traced)"
        } else {
            "Handling"
        })
    }
}

/// Installs the EMF recorder for `namespace` (none for `off` or empty).
fn install_metrics(namespace: &str) -> Option<&'static Collector> {
    static COLLECTOR: std::sync::OnceLock<Option<&'static Collector>> = std::sync::OnceLock::new();
    let namespace = namespace.trim();
    if namespace.is_empty() || namespace.eq_ignore_ascii_case("off") {
        return None;
    }
    *COLLECTOR.get_or_init(|| {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(namespace.to_owned())
            .init()
            .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
            .ok()?;
        hookflow::observe::describe();
        metrics::describe_histogram!(QUEUE_AGE, metrics::Unit::Milliseconds, "");
        Some(collector)
    })
}

/// A message's X-Ray subsegment, annotated for search.
#[derive(Debug)]
pub struct MessageSegment {
    kind: &'static str,
    run_id: Option<String>,
    function: Option<String>,
}

impl Namespace for MessageSegment {
    fn name(&self, _prefix: &str) -> String {
        format!("hookflow.{}", self.kind)
    }

    fn update_subsegment(&self, subsegment: &mut Subsegment) {
        let annotations = subsegment.annotations.get_or_insert_with(Default::default);
        annotations.insert("message".into(), Annotation::String(self.kind.into()));
        if let Some(run_id) = &self.run_id {
            annotations.insert("run_id".into(), Annotation::String(run_id.clone()));
        }
        if let Some(function) = &self.function {
            annotations.insert("function".into(), Annotation::String(function.clone()));
        }
    }
}
