//! [`AwsTestEnv`]: the engine on moto, with Lambda's SQS event source and the Scheduler played on a fake clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::QueueAttributeName;
use hookflow::clock::duration_ms;
use hookflow::run::{Envelope, Target};
use hookflow::store::{RunFilter, RunStore};
use hookflow::{
    Clock, Engine, EngineConfig, Event, FakeClock, Function, Ingested, Registry, Run, RunView,
};
use hookflow_docs::DocStore;
use serde_json::json;

use super::moto::{Moto, create_resources};
use crate::calls::CallCounter;
use crate::config::{AwsClients, AwsConfig};
use crate::dynamo::AwsStore;
use crate::lambda::handle_sqs_at_most;
use crate::queue::serving_function;
/// The engine on moto with a fake clock, plus an SQS event source and a
/// Scheduler that fire on that clock.
pub struct AwsTestEnv {
    /// The engine, as every Lambda builds it (one instance plays them all).
    pub engine: Engine<AwsStore>,
    /// The clock it reads.
    pub clock: FakeClock,
    /// Counts the engine's own AWS calls (not the harness's).
    pub counter: CallCounter,
    /// What the handled messages report (nothing by default).
    pub telemetry: crate::telemetry::Telemetry,
    harness: AwsClients,
    queues: Vec<(String, String)>,
    held: Mutex<Vec<(String, String, i64)>>,
    /// How many messages of a batch are handled at once (see
    /// [`Self::concurrent_batches`]).
    at_once: usize,
}

/// 2027-01-01T00:00:00Z.
pub const START_MS: i64 = 1_798_761_600_000;

impl AwsTestEnv {
    /// A fresh, isolated set of resources on the shared moto server.
    ///
    /// # Panics
    /// If moto is missing or a definition is invalid.
    pub async fn new(functions: Vec<Function>) -> Self {
        Self::with_max_receives(functions, 5).await
    }

    /// Like [`Self::new`] with the queues' `maxReceiveCount`.
    ///
    /// # Panics
    /// If moto is missing or a definition is invalid.
    pub async fn with_max_receives(functions: Vec<Function>, max_receives: u32) -> Self {
        Self::build(|_| functions, max_receives).await
    }

    /// Like [`Self::new`] with the functions built by `functions` over this
    /// environment's document store (stamped with its fake clock), for
    /// workflows that take their dependencies at construction.
    ///
    /// # Panics
    /// If moto is missing or a definition is invalid.
    pub async fn with_docs(functions: impl FnOnce(DocStore) -> Vec<Function>) -> Self {
        Self::build(functions, 5).await
    }

    async fn build(functions: impl FnOnce(DocStore) -> Vec<Function>, max_receives: u32) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let moto = Moto::shared();
        let sdk = moto.sdk_config().await;
        let counter = CallCounter::new();
        let prefix = format!(
            "hf{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let config = AwsConfig {
            table: format!("{prefix}-table"),
            bucket: format!("{prefix}-blobs"),
            queue_prefix: prefix.clone(),
            scheduler_group: prefix.clone(),
            scheduler_role_arn: "arn:aws:iam::123456789012:role/hookflow-scheduler".into(),
            scheduler_dlq_arn: None,
            sqs_delays: false,
            lease: Duration::from_secs(60),
            retention: hookflow::Retention::default(),
        };
        let clock = FakeClock::new(START_MS);
        let store = AwsStore::new(
            AwsClients::from_sdk_config(&sdk, Some(&counter)),
            config.clone(),
            Arc::new(clock.clone()),
        );
        let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
        let registry = Registry::new(functions(docs)).expect("valid functions");
        let store = store.keeping_events_for(&registry);
        let mut homes: Vec<String> = registry
            .iter()
            .map(|f| serving_function(f.id()).to_owned())
            .collect();
        homes.sort();
        homes.dedup();
        let harness = AwsClients::from_sdk_config(&sdk, None);
        create_resources(&harness, &config, &homes, max_receives).await;
        let mut queues = Vec::new();
        let mut targets = vec![Target::Router];
        targets.extend(homes.iter().map(|h| Target::Function(h.clone())));
        for target in targets {
            let url = store.queue_url(&target).await.expect("queue url");
            let arn = store.queue_arn(&target).await.expect("queue arn");
            queues.push((url, arn));
        }
        counter.reset();
        let engine_config = EngineConfig {
            drive_crons: false,
            ..EngineConfig::default()
        };
        let engine = Engine::new(store, registry, Arc::new(clock.clone()), engine_config);
        Self {
            engine,
            clock,
            counter,
            harness,
            queues,
            held: Mutex::new(Vec::new()),
            telemetry: crate::telemetry::Telemetry::none(),
            at_once: 1,
        }
    }

    /// Handles each batch's messages concurrently, as the Lambdas do. By
    /// default the harness hands them over one at a time: moto's
    /// transactions are not atomic under concurrent requests (a failed one
    /// restores the table as it was when it began), so workflows whose runs
    /// write transactions (flow control, waits) would lose writes to moto,
    /// not to the engine. Single-item conditional writes are safe.
    #[must_use]
    pub fn concurrent_batches(mut self) -> Self {
        self.at_once = usize::MAX;
        self
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &AwsStore {
        self.engine.store()
    }

    /// The document store on this environment's table, stamping writes with
    /// its fake clock: what handler code under test is given.
    #[must_use]
    pub fn docs(&self) -> DocStore {
        DocStore::new(self.store().clone()).with_clock(Arc::new(self.clock.clone()))
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Ingests events (as a webhook Lambda would) and handles everything due.
    ///
    /// # Panics
    /// On AWS errors.
    pub async fn send(&self, events: Vec<Event>) -> Vec<Ingested> {
        let out = self.engine.ingest(events).await.expect("ingest");
        self.settle().await;
        out
    }

    /// Delivers every message due now, like Lambda's event source, until the
    /// queues are quiet; fires due schedules on the way.
    ///
    /// # Panics
    /// On AWS errors.
    pub async fn settle(&self) {
        for _ in 0..1000 {
            if self.pump().await == 0 {
                return;
            }
        }
        panic!("queues did not go quiet after 1000 rounds");
    }

    async fn pump(&self) -> usize {
        let mut handled = self.fire_due_schedules().await;
        let now = self.now();
        let due: Vec<(String, String)> = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            let (due, later): (Vec<_>, Vec<_>) = held.drain(..).partition(|(_, _, at)| *at <= now);
            *held = later;
            due.into_iter()
                .map(|(url, receipt, _)| (url, receipt))
                .collect()
        };
        for (url, receipt) in due {
            self.harness
                .sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .expect("release held message");
        }
        for (url, arn) in &self.queues {
            let out = self
                .harness
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
                )
                .send()
                .await
                .expect("receive");
            let mut records = Vec::new();
            for message in out.messages() {
                let body = message.body().unwrap_or_default();
                let not_before = serde_json::from_str::<Envelope>(body)
                    .ok()
                    .and_then(|e| e.not_before);
                let receipt = message.receipt_handle().unwrap_or_default().to_owned();
                if let Some(at) = not_before.filter(|at| *at > now) {
                    // Not due on the fake clock: hold it (invisible) until it
                    // is, exactly: a message handed over early would only be
                    // put back by the engine (a sleep is not over before its
                    // time), and with the clock standing still, forever.
                    self.harness
                        .sqs
                        .change_message_visibility()
                        .queue_url(url)
                        .receipt_handle(&receipt)
                        .visibility_timeout(40_000)
                        .send()
                        .await
                        .expect("hold message");
                    self.held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((url.clone(), receipt, at));
                    continue;
                }
                let count = message
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .cloned()
                    .unwrap_or_else(|| "1".into());
                let sent = message
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)
                    })
                    .cloned()
                    .unwrap_or_default();
                records.push((
                    receipt.clone(),
                    json!({
                        "messageId": message.message_id(),
                        "receiptHandle": receipt,
                        "body": body,
                        "attributes": {"ApproximateReceiveCount": count, "SentTimestamp": sent},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                        "awsRegion": "us-east-1",
                    }),
                ));
            }
            if records.is_empty() {
                continue;
            }
            let event: SqsEvent = serde_json::from_value(json!({
                "Records": records.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()
            }))
            .expect("sqs event");
            let response =
                handle_sqs_at_most(&self.engine, &self.telemetry, event, None, self.at_once).await;
            let failed: Vec<String> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            for (receipt, record) in &records {
                handled += 1;
                if failed.iter().any(|id| record["messageId"] == id.as_str()) {
                    continue; // left for redelivery, as Lambda does
                }
                self.harness
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        handled
    }

    /// Fires (sends to their target queue, then deletes) every one-time
    /// schedule due on the fake clock; returns how many.
    ///
    /// # Panics
    /// On AWS errors.
    pub async fn fire_due_schedules(&self) -> usize {
        let mut fired = 0;
        for (name, at, arn, input) in self.schedules().await {
            if at > self.now() {
                continue;
            }
            let url = self
                .queues
                .iter()
                .find(|(_, a)| *a == arn)
                .map(|(u, _)| u.clone())
                .expect("schedule targets a known queue");
            self.harness
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(input)
                .send()
                .await
                .expect("fire schedule");
            self.harness
                .scheduler
                .delete_schedule()
                .group_name(&self.store().config().scheduler_group)
                .name(name)
                .send()
                .await
                .expect("delete schedule");
            fired += 1;
        }
        fired
    }

    /// The group's one-time schedules: (name, time in ms, target ARN, input).
    ///
    /// # Panics
    /// On AWS errors or a schedule this engine did not write.
    pub async fn schedules(&self) -> Vec<(String, i64, String, String)> {
        let group = &self.store().config().scheduler_group;
        let list = self
            .harness
            .scheduler
            .list_schedules()
            .group_name(group)
            .send()
            .await
            .expect("list schedules");
        let mut out = Vec::new();
        for summary in list.schedules() {
            let name = summary.name().unwrap_or_default().to_owned();
            let schedule = self
                .harness
                .scheduler
                .get_schedule()
                .group_name(group)
                .name(&name)
                .send()
                .await
                .expect("get schedule");
            let expression = schedule.schedule_expression().unwrap_or_default();
            let when = expression.trim_start_matches("at(").trim_end_matches(')');
            let at = chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%dT%H:%M:%S")
                .expect("at() expression")
                .and_utc()
                .timestamp_millis();
            let target = schedule.target().expect("target");
            out.push((
                name,
                at,
                target.arn().to_owned(),
                target.input().unwrap_or_default().to_owned(),
            ));
        }
        out
    }

    /// Moves the fake clock forward by `by`, stopping at every held message and
    /// schedule due on the way, so timers fire in order.
    ///
    /// # Panics
    /// On AWS errors.
    pub async fn advance(&self, by: Duration) {
        let target = self.now() + duration_ms(by);
        loop {
            self.settle().await;
            let held = self
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(_, _, at)| *at)
                .min();
            let scheduled = self
                .schedules()
                .await
                .into_iter()
                .map(|(_, at, _, _)| at)
                .min();
            let next = [held, scheduled].into_iter().flatten().min();
            match next {
                Some(at) if at <= target && at > self.now() => self.clock.set(at),
                _ => break,
            }
        }
        self.clock.set(target);
        self.settle().await;
    }

    /// Messages waiting in the DLQ of `target`'s queue.
    ///
    /// # Panics
    /// On AWS errors.
    pub async fn dlq_depth(&self, target: &Target) -> usize {
        let name = format!("{}-dlq", self.store().queue_name(target));
        let url = self
            .harness
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .expect("dlq url");
        let out = self
            .harness
            .sqs
            .get_queue_attributes()
            .queue_url(url.queue_url().unwrap_or_default())
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("dlq attributes");
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Every run, newest first.
    ///
    /// # Panics
    /// On AWS errors.
    pub async fn runs(&self) -> Vec<Run> {
        let filter = RunFilter {
            limit: 10_000,
            ..RunFilter::default()
        };
        self.store().list_runs(&filter).await.expect("list runs")
    }

    /// The only run of `function_id`, with its steps.
    ///
    /// # Panics
    /// If there is not exactly one.
    pub async fn only_run(&self, function_id: &str) -> RunView {
        let runs: Vec<Run> = self
            .runs()
            .await
            .into_iter()
            .filter(|r| r.function_id == function_id)
            .collect();
        assert_eq!(
            runs.len(),
            1,
            "expected one run of {function_id}, got {runs:#?}"
        );
        self.engine
            .run_view(&runs[0].id)
            .await
            .expect("view")
            .expect("run exists")
    }

    /// The harness's own clients (not counted), e.g. to inject raw messages.
    #[must_use]
    pub fn harness(&self) -> &AwsClients {
        &self.harness
    }

    /// Calls by operation since the last reset.
    #[must_use]
    pub fn calls(&self) -> HashMap<String, u64> {
        self.counter.snapshot().into_iter().collect()
    }
}
