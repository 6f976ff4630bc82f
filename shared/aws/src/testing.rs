//! Test support against a real local AWS endpoint: a moto server (installed
//! into the project's `.venv` by `scripts/aws-tools`), the table, queues and
//! scheduler group the template creates, and [`AwsTestEnv`], which plays
//! Lambda's SQS event source (receive, invoke [`handle_sqs`], delete or leave
//! for redelivery) and fires due Scheduler schedules, since moto stores
//! schedules but never fires them. Time is a [`FakeClock`].

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use hookflow::clock::duration_ms;
use hookflow::run::{Envelope, Target};
use hookflow::store::{RunFilter, RunStore};
use hookflow::{
    Clock, DocStore, Engine, EngineConfig, Event, FakeClock, Function, Ingested, Registry, Run,
    RunView,
};
use serde_json::json;

use crate::config::{AwsClients, AwsConfig};
use crate::dynamo::AwsStore;
use crate::lambda::handle_sqs;
use crate::metrics::CallCounter;
use crate::queue::home_function;

/// A moto server on 127.0.0.1, stopped when the test process exits.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _watchdog: Child,
}

fn moto_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("HOOKFLOW_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.exists())
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Moto {
    fn start() -> Result<Self, String> {
        let binary = moto_binary().ok_or(
            "moto_server not found: run scripts/aws-tools (it installs moto into .venv), \
             or set HOOKFLOW_MOTO_SERVER",
        )?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        // A shell watchdog stops moto when this test process exits, however it exits.
        let script = r#""$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 & m=$!
while kill -0 "$PARENT" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 0.3; done
kill "$m" 2>/dev/null"#;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("MOTO", &binary)
            .env("PORT", port.to_string())
            .env("PARENT", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                use std::io::Write;
                let _ = stream.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto_server on port {port} did not start within 60 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: watchdog,
        })
    }

    /// The process-wide moto server, started on first use.
    ///
    /// # Panics
    /// If moto is not installed or does not start: the message says what to run.
    pub fn shared() -> &'static Self {
        static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
        match MOTO.get_or_init(Self::start) {
            Ok(moto) => moto,
            Err(err) => panic!("{err}"),
        }
    }

    /// SDK configuration for this endpoint (region us-east-1, dummy credentials).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "hookflow-tests",
            ))
            .load()
            .await
    }
}

/// Creates what `template.yaml` creates for these functions: the table with its
/// indexes, the router and function queues each with a DLQ, and the scheduler group.
///
/// # Panics
/// On any AWS error (test setup).
pub async fn create_resources(
    clients: &AwsClients,
    config: &AwsConfig,
    functions: &[String],
    max_receives: u32,
) {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let gsi = |name: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash))
            .key_schema(key(&format!("{name}sk"), KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap()
    };
    clients
        .dynamodb
        .create_table()
        .table_name(&config.table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .attribute_definitions(attr("gsi2pk"))
        .attribute_definitions(attr("gsi2sk"))
        .global_secondary_indexes(gsi("gsi1"))
        .global_secondary_indexes(gsi("gsi2"))
        .send()
        .await
        .expect("create table");
    let mut names = vec![format!("{}-router", config.queue_prefix)];
    names.extend(
        functions
            .iter()
            .map(|f| format!("{}-{f}", config.queue_prefix)),
    );
    for name in names {
        let dlq = clients
            .sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("dlq");
        let dlq_arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(dlq.queue_url().unwrap())
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("dlq arn")
            .attributes()
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let redrive =
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string();
        clients
            .sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::VisibilityTimeout, "1")
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .expect("queue");
    }
    clients
        .scheduler
        .create_schedule_group()
        .name(&config.scheduler_group)
        .send()
        .await
        .expect("schedule group");
}

/// The engine on moto with a fake clock, plus an SQS event source and a
/// Scheduler that fire on that clock.
pub struct AwsTestEnv {
    /// The engine, as every Lambda builds it (one instance plays them all).
    pub engine: Engine<AwsStore>,
    /// The clock it reads.
    pub clock: FakeClock,
    /// Counts the engine's own AWS calls (not the harness's).
    pub counter: CallCounter,
    harness: AwsClients,
    queues: Vec<(String, String)>,
    held: Mutex<Vec<(String, String, i64)>>,
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
            queue_prefix: prefix.clone(),
            scheduler_group: prefix.clone(),
            scheduler_role_arn: "arn:aws:iam::123456789012:role/hookflow-scheduler".into(),
            scheduler_dlq_arn: None,
            sqs_delays: false,
            lease: Duration::from_secs(900),
        };
        let clock = FakeClock::new(START_MS);
        let store = AwsStore::new(
            AwsClients::from_sdk_config(&sdk, Some(&counter)),
            config.clone(),
            Arc::new(clock.clone()),
        );
        let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
        let registry = Registry::new(functions(docs)).expect("valid functions");
        let mut homes: Vec<String> = registry
            .iter()
            .map(|f| home_function(f.id()).to_owned())
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
        }
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
            let (due, later): (Vec<_>, Vec<_>) =
                held.drain(..).partition(|(_, _, at)| *at <= now + 1000);
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
                if let Some(at) = not_before.filter(|at| *at > now + 1000) {
                    // Not due on the fake clock: hold it (invisible) until it is.
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
                records.push((
                    receipt.clone(),
                    json!({
                        "messageId": message.message_id(),
                        "receiptHandle": receipt,
                        "body": body,
                        "attributes": {"ApproximateReceiveCount": count},
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
            let response = handle_sqs(&self.engine, event).await;
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

/// The contract suite's probe: fires due schedules of the store's group, then
/// takes every due message from the queues the store has used.
impl hookflow::testkit::QueueProbe for AwsStore {
    async fn take_due(&self, now: i64) -> hookflow::Result<Vec<Envelope>> {
        let clients = self.clients();
        let group = &self.config().scheduler_group;
        let arns: HashMap<String, String> = self
            .queue_arns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, arn)| (arn.clone(), name.clone()))
            .collect();
        let list = clients
            .scheduler
            .list_schedules()
            .group_name(group)
            .send()
            .await
            .map_err(crate::error::scheduler)?;
        for summary in list.schedules() {
            let name = summary.name().unwrap_or_default();
            let schedule = clients
                .scheduler
                .get_schedule()
                .group_name(group)
                .name(name)
                .send()
                .await
                .map_err(crate::error::scheduler)?;
            let Some(target) = schedule.target() else {
                continue;
            };
            let input: Envelope = serde_json::from_str(target.input().unwrap_or_default())?;
            if input.not_before.is_some_and(|at| at > now) {
                continue;
            }
            if let Some(queue) = arns.get(target.arn()) {
                let url = self
                    .queue_urls
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(queue)
                    .cloned();
                if let Some(url) = url {
                    clients
                        .sqs
                        .send_message()
                        .queue_url(url)
                        .message_body(target.input().unwrap_or_default())
                        .send()
                        .await
                        .map_err(crate::error::sqs)?;
                }
            }
            clients
                .scheduler
                .delete_schedule()
                .group_name(group)
                .name(name)
                .send()
                .await
                .map_err(crate::error::scheduler)?;
        }
        let urls: Vec<String> = self
            .queue_urls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut due = Vec::new();
        for url in urls {
            loop {
                let out = clients
                    .sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .map_err(crate::error::sqs)?;
                if out.messages().is_empty() {
                    break;
                }
                let mut taken = 0;
                for message in out.messages() {
                    let envelope: Envelope =
                        serde_json::from_str(message.body().unwrap_or_default())?;
                    if envelope.not_before.is_some_and(|at| at > now) {
                        continue;
                    }
                    clients
                        .sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(message.receipt_handle().unwrap_or_default())
                        .send()
                        .await
                        .map_err(crate::error::sqs)?;
                    let mut envelope = envelope;
                    envelope.not_before = None;
                    due.push(envelope);
                    taken += 1;
                }
                if taken == 0 {
                    break;
                }
            }
        }
        Ok(due)
    }
}

/// A fresh, empty store on the shared moto server (for the contract suite),
/// its clock fixed at `now`.
///
/// # Panics
/// If moto is missing.
pub async fn fresh_store(now: i64) -> AwsStore {
    let env = AwsTestEnv::new(vec![
        Function::new("fn")
            .on_event("never")
            .handler(|_| async { Ok(()) }),
    ])
    .await;
    env.clock.set(now);
    env.engine.store().clone()
}
