//! Lambda adapters, which the one `bootstrap` binary (`functions/lambda`)
//! picks from by role: [`run_worker_with`] for the router and the function
//! Lambdas (SQS-triggered), [`run_webhook_with`] for a provider's webhook (API
//! Gateway HTTP API; it builds only the ingest role). The handlers themselves
//! ([`handle_sqs`], [`handle_http`]) are plain functions so tests drive them
//! with real event payloads.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use hookflow::clock::duration_ms;
use hookflow::store::Outbox;
use hookflow::transition::Outgoing;
use hookflow::{Clock, Engine, EngineConfig, Handled, Ingest, Registry, SystemClock};
use hookflow_docs::DocStore;
use hookflow_webhooks::{CertFetcher, Provider, Receiver, WebhookConfig, WebhookRequest};
use lambda_http::{Body, Request, Response};

use crate::config::{AwsClients, AwsConfig};
use crate::dynamo::AwsStore;
use crate::telemetry::Telemetry;

/// How long a message waits before retrying a run another worker holds.
pub const BUSY_DELAY: Duration = Duration::from_secs(5);
/// How often a batch's metrics are written while its messages run.
const METRICS_FLUSH: Duration = Duration::from_millis(250);
/// A message this close to its `not_before` is handled now.
const EARLY_TOLERANCE_MS: i64 = 1_000;

/// Handles one SQS batch: its messages concurrently (their storage calls
/// overlap, so a batch of ten takes about as long as its slowest message,
/// and the invocation's duration is shared), each independently (metrics
/// written as each one is done and every 250 ms meanwhile, see
/// [`Telemetry::flush`]), reporting
/// only the failed ones (`ReportBatchItemFailures`), so one bad message
/// never makes its neighbours run again. A failed message returns after the
/// queue's visibility timeout and, after `maxReceiveCount`, lands in the
/// DLQ. Two messages of one run in a batch are as two Lambdas: one takes
/// the run's lease, the other comes back after [`BUSY_DELAY`].
///
/// `deadline` (ms since the epoch) is when the invocation times out: it
/// bounds every run lease taken while handling the batch.
pub async fn handle_sqs(
    engine: &Engine<AwsStore>,
    telemetry: &Telemetry,
    event: SqsEvent,
    deadline: Option<i64>,
) -> SqsBatchResponse {
    handle_sqs_at_most(engine, telemetry, event, deadline, usize::MAX).await
}

/// [`handle_sqs`] with at most `at_once` messages handled at a time (at
/// least one). The test harness hands moto one message at a time: moto's
/// transactions are not atomic under concurrent requests.
pub async fn handle_sqs_at_most(
    engine: &Engine<AwsStore>,
    telemetry: &Telemetry,
    event: SqsEvent,
    deadline: Option<i64>,
    at_once: usize,
) -> SqsBatchResponse {
    use futures::StreamExt as _;
    let flush = || {
        if let Err(err) = telemetry.flush() {
            tracing::warn!(error = %err, "metrics not written");
        }
    };
    let handled = event.records.iter().map(|record| async move {
        // Boxed: the engine's future is deep.
        let result = Box::pin(handle_record(engine, telemetry, record, deadline)).await;
        flush();
        (record.message_id.clone().unwrap_or_default(), result)
    });
    let all = futures::stream::iter(handled)
        .buffer_unordered(at_once.max(1))
        .collect::<Vec<_>>();
    tokio::pin!(all);
    // Also written on a tick while the messages run: a distribution keeps
    // at most 100 values between writes, and ten long runs at once could
    // record more than that.
    let mut tick = tokio::time::interval(METRICS_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let results = loop {
        tokio::select! {
            results = &mut all => break results,
            _ = tick.tick() => flush(),
        }
    };
    let mut response = SqsBatchResponse::default();
    for (id, result) in results {
        if let Err(err) = result {
            tracing::error!(message.id = %id, error = %err, "message failed; SQS will redeliver it");
            response.add_failure(id);
        }
    }
    response
}

async fn handle_record(
    engine: &Engine<AwsStore>,
    telemetry: &Telemetry,
    record: &SqsMessage,
    deadline: Option<i64>,
) -> hookflow::Result<()> {
    let body = record.body.as_deref().unwrap_or_default();
    let envelope = engine.store().decode_message(body).await?;
    let sent_at = record
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse().ok());
    let _traced = telemetry.handling(&envelope, sent_at);
    let now = engine.clock().now_ms();
    if let Some(not_before) = envelope.not_before
        && not_before > now + EARLY_TOLERANCE_MS
    {
        // An early Scheduler timer: finish the remainder with an SQS delay.
        return engine
            .store()
            .deliver(&[Outgoing::Later {
                at: not_before,
                envelope,
            }])
            .await;
    }
    // Boxed: the engine's future is deep, and a Lambda's `main` should not
    // need a raised recursion limit to compute its layout.
    match Box::pin(engine.handle_until(&envelope, deadline)).await? {
        Handled::Done => Ok(()),
        Handled::Busy => {
            // Another worker holds the run: come back shortly, as a new
            // message so the receive count (and the DLQ) is not involved.
            let mut again = envelope;
            again.not_before = None;
            engine
                .store()
                .deliver(&[Outgoing::Later {
                    envelope: again,
                    at: now + duration_ms(BUSY_DELAY),
                }])
                .await
        }
    }
}

/// Verifies a webhook delivery and stores its events through `ingest`;
/// answers as the provider expects (see `hookflow-webhooks`).
pub async fn handle_http<F: CertFetcher>(
    receiver: &Receiver<F>,
    ingest: &Ingest<AwsStore>,
    clock: &dyn Clock,
    provider: Provider,
    request: Request,
) -> Response<Body> {
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let body = match request.body() {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.as_bytes().to_vec(),
        Body::Binary(bytes) => bytes.clone(),
        _ => Vec::new(),
    };
    let webhook = WebhookRequest { headers, body };
    let now = clock.now_ms();
    let response = Box::pin(receiver.handle(provider, &webhook, ingest, now)).await;
    Response::builder()
        .status(response.status)
        .header("content-type", "application/json")
        .body(Body::Text(response.body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Building a worker's engine failed: the AWS configuration, or the registry
/// the caller builds over the document store.
#[derive(Debug, thiserror::Error)]
pub enum BuildError<E> {
    /// A missing or invalid environment variable.
    #[error(transparent)]
    Aws(#[from] crate::AwsError),
    /// The caller's registry builder failed.
    #[error("building the function registry: {0}")]
    Registry(E),
}

/// Builds the engine a worker Lambda uses: clients from the standard AWS
/// configuration, resources from the environment the template sets, and
/// the registry built by `build` over the document store on this engine's
/// table (stamped with the engine's clock), so workflow definitions can be
/// given it (and their API clients) before the engine exists.
///
/// # Errors
/// A missing or invalid environment variable, named; or `build`'s error.
pub async fn engine_from_env_with<F, E>(build: F) -> Result<Engine<AwsStore>, BuildError<E>>
where
    F: FnOnce(DocStore) -> Result<Registry, E>,
{
    let config = AwsConfig::from_env()?;
    let clients = AwsClients::from_env(None).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine_config = EngineConfig {
        drive_crons: false,
        ..EngineConfig::with_lease(config.lease)
    };
    let store = AwsStore::new(clients, config, clock.clone());
    let docs = DocStore::new(store.clone()).with_clock(clock.clone());
    let registry = build(docs).map_err(BuildError::Registry)?;
    let store = store.keeping_events_for(&registry);
    Ok(Engine::new(store, registry, clock, engine_config))
}

/// JSON logs for CloudWatch (`RUST_LOG` filters, default `info`): one
/// object per line, with the spans it was written in (`spans`: the run's
/// `run.id` and `function`, the step's `step.id`).
pub fn init_logging() {
    let _ = tracing::subscriber::set_global_default(json_logs(std::io::stdout));
}

/// The JSON log format of [`init_logging`], writing to `writer`.
pub fn json_logs<W>(writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .without_time()
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Runs an SQS-triggered Lambda whose registry is built by `build` over the
/// engine's document store: `run_worker_with(|docs| { let services =
/// Services::from_env(docs, &process_env)?; Ok(Registry::new([f(&services)])?) })`.
///
/// # Errors
/// Start-up configuration errors (including `build`'s), or the runtime's.
pub async fn run_worker_with<F>(build: F) -> Result<(), lambda_runtime::Error>
where
    F: FnOnce(DocStore) -> Result<Registry, lambda_runtime::Error>,
{
    init_logging();
    let engine = match engine_from_env_with(build).await {
        Ok(engine) => engine,
        Err(BuildError::Aws(err)) => return Err(err.into()),
        Err(BuildError::Registry(err)) => return Err(err),
    };
    let engine = &engine;
    let telemetry = &Telemetry::from_env();
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            let deadline = i64::try_from(event.context.deadline).ok();
            Ok::<_, lambda_runtime::Error>(
                handle_sqs(engine, telemetry, event.payload, deadline).await,
            )
        },
    ))
    .await
}

/// The receiver a webhook Lambda uses, from its configuration.
///
/// # Errors
/// The provider's secret is missing (the error names the variable) or invalid.
pub fn webhook_receiver(
    provider: Provider,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Receiver, hookflow_webhooks::WebhookError> {
    let webhooks = WebhookConfig::from_lookup(lookup)?;
    webhooks.require(provider)?;
    Receiver::new(webhooks)
}

/// Runs the webhook Lambda of `provider`: fails at start-up, naming the
/// variable, when the provider's secret is not configured. `build` builds
/// the functions' registry as the workers do (see [`run_worker_with`]):
/// only to learn which event names start runs, whose records the webhook
/// then stores kept for them ([`AwsStore::keeping_events_for`]).
///
/// # Errors
/// Start-up configuration errors (including `build`'s), or the runtime's.
pub async fn run_webhook_with<F>(provider: Provider, build: F) -> Result<(), lambda_http::Error>
where
    F: FnOnce(DocStore) -> Result<Registry, lambda_runtime::Error>,
{
    init_logging();
    let receiver = webhook_receiver(provider, |name| std::env::var(name).ok())?;
    let config = AwsConfig::from_env()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = AwsStore::new(AwsClients::from_env(None).await, config, clock.clone());
    let registry = build(DocStore::new(store.clone()).with_clock(clock.clone()))?;
    let store = store.keeping_events_for(&registry);
    let ingest = Ingest::new(store, clock.clone());
    let (receiver, ingest, clock) = (&receiver, &ingest, clock.as_ref());
    lambda_http::run(lambda_http::service_fn(
        move |request: Request| async move {
            Ok::<_, lambda_http::Error>(
                handle_http(receiver, ingest, clock, provider, request).await,
            )
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_lambda_without_its_secret_fails_at_start_up_naming_it() {
        let err = webhook_receiver(Provider::Stripe, |_| None).unwrap_err();
        assert!(err.to_string().contains("STRIPE_WEBHOOK_SECRET"), "{err}");
        let ok = webhook_receiver(Provider::Stripe, |name| {
            (name == "STRIPE_WEBHOOK_SECRET").then(|| "whsec_test".to_owned())
        });
        assert!(ok.is_ok());
    }
}
