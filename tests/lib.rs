//! Helpers shared by the cross-crate tests.

/// The README's Rust examples, compiled as doctests so they never go stale.
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A shared call counter for handlers and steps.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU32>);

impl Counter {
    /// Adds one and returns the new count.
    #[must_use]
    pub fn bump(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The current count.
    #[must_use]
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `n` days.
#[must_use]
pub const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// `n` seconds.
#[must_use]
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What a scenario needs from a backend's test environment, so a scenario is
/// written once and runs on SQLite ([`TestEnv`]) and on moto ([`AwsTestEnv`]).
pub mod backend {
    use std::time::Duration;

    use hookflow::{Engine, FakeClock, Run, Store};
    use hookflow_aws::AwsStore;
    use hookflow_aws::testing::AwsTestEnv;
    use hookflow_embedded::SqliteStore;
    use hookflow_embedded::testing::TestEnv;
    use serde_json::{Value, json};

    /// Delivers a signed sample (an API Gateway request from `events/`)
    /// through the webhook receiver at its signing time (or now, if later),
    /// then handles everything due.
    ///
    /// # Panics
    /// If the sample is malformed or the receiver does not answer 200.
    pub async fn deliver<B: Backend>(env: &B, json: &str) {
        let sample = hookflow_webhooks::ApiGatewayV2Request::from_json(json.as_bytes()).unwrap();
        let at = sample.time_epoch_ms().unwrap();
        let provider = sample.provider().unwrap();
        let request = sample.into_webhook_request().unwrap();
        if at > hookflow::Clock::now_ms(env.clock()) {
            env.clock().set(at);
        }
        let receiver = hookflow_webhooks::test_secrets::receiver().unwrap();
        let now = hookflow::Clock::now_ms(env.clock());
        let response = receiver
            .handle(provider, &request, &env.engine().ingest, now)
            .await;
        assert_eq!(response.status, 200, "{}", response.body_string());
        env.settle().await;
    }

    /// Sends one event as the app would (`POST /events`), then handles what
    /// is due.
    ///
    /// # Panics
    /// If ingestion fails.
    pub async fn send<B: Backend>(env: &B, name: &str, data: Value) {
        env.engine()
            .ingest(vec![hookflow::Event::new(name, data)])
            .await
            .unwrap();
        env.settle().await;
    }

    /// Every run of `function_id`.
    pub async fn runs_of<B: Backend>(env: &B, function_id: &str) -> Vec<Run> {
        let mut runs = env.runs().await;
        runs.retain(|run| run.function_id == function_id);
        runs
    }

    /// The one run of `function_id`.
    ///
    /// # Panics
    /// Unless there is exactly one.
    pub async fn only<B: Backend>(env: &B, function_id: &str) -> Run {
        let runs = runs_of(env, function_id).await;
        assert_eq!(runs.len(), 1, "{function_id}: {runs:#?}");
        runs.into_iter().next().unwrap()
    }

    /// A backend's test environment.
    #[allow(async_fn_in_trait)] // tests run on one thread
    pub trait Backend {
        /// The engine's store.
        type Store: Store;
        /// The engine every Lambda (or `hookflow dev`) runs.
        fn engine(&self) -> &Engine<Self::Store>;
        /// The fake clock.
        fn clock(&self) -> &FakeClock;
        /// Handles everything due now.
        async fn settle(&self);
        /// Moves time forward, firing every timer on the way.
        async fn advance(&self, by: Duration);
        /// Every run.
        async fn runs(&self) -> Vec<Run>;
        /// A cron tick of `function_id` at `at`, as the backend delivers it.
        async fn tick(&self, function_id: &str, at: i64);
    }

    impl Backend for TestEnv {
        type Store = SqliteStore;
        fn engine(&self) -> &Engine<SqliteStore> {
            self.runtime.engine()
        }
        fn clock(&self) -> &FakeClock {
            &self.clock
        }
        async fn settle(&self) {
            TestEnv::settle(self).await;
        }
        async fn advance(&self, by: Duration) {
            TestEnv::advance(self, by).await;
        }
        async fn runs(&self) -> Vec<Run> {
            TestEnv::runs(self).await
        }
        async fn tick(&self, function_id: &str, at: i64) {
            self.engine().fire_cron(function_id, at).await.unwrap();
            TestEnv::settle(self).await;
        }
    }

    impl Backend for AwsTestEnv {
        type Store = AwsStore;
        fn engine(&self) -> &Engine<AwsStore> {
            &self.engine
        }
        fn clock(&self) -> &FakeClock {
            &self.clock
        }
        async fn settle(&self) {
            AwsTestEnv::settle(self).await;
        }
        async fn advance(&self, by: Duration) {
            AwsTestEnv::advance(self, by).await;
        }
        async fn runs(&self) -> Vec<Run> {
            AwsTestEnv::runs(self).await
        }
        /// The message the template's `AWS::Scheduler::Schedule` puts on the
        /// router queue, handled by the router Lambda's handler.
        async fn tick(&self, function_id: &str, at: i64) {
            let sample = include_str!("../events/sqs-router-cron.json");
            let mut event: Value = serde_json::from_str(sample).unwrap();
            let at = chrono::DateTime::from_timestamp_millis(at).unwrap();
            let body = json!({
                "target": {"queue": "router"},
                "message": {"type": "cron", "function_id": function_id, "at": at},
                "dedupe_key": null,
            });
            event["Records"][0]["body"] = json!(body.to_string());
            let event = serde_json::from_value(event).unwrap();
            let response = hookflow_aws::lambda::handle_sqs(
                &self.engine,
                &hookflow_aws::telemetry::Telemetry::none(),
                event,
                None,
            )
            .await;
            assert!(response.batch_item_failures.is_empty(), "{response:?}");
            AwsTestEnv::settle(self).await;
        }
    }
}

/// The world an app's scenarios run in: every registry function (and any
/// test-only ones) on a backend with a fake clock, one recording server for
/// every API, and the app's documents. An app's own world wraps a [`Base`]
/// (`struct World<B>(Base<B>)` with `Deref`) and adds its fixtures.
pub mod world {
    use std::sync::Arc;
    use std::time::Duration;

    use hookflow::{FakeClock, Function, Run, RunView};
    use hookflow_aws::testing::AwsTestEnv;
    use hookflow_clients::testing::TestServer;
    use hookflow_docs::DocStore;
    use hookflow_embedded::SqliteStore;
    use hookflow_embedded::testing::TestEnv;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use crate::backend::{self, Backend};

    /// A backend, the API stand-in and the documents.
    pub struct Base<B> {
        /// The backend's test environment.
        pub env: B,
        /// Stands in for every external API.
        pub server: TestServer,
        /// The apps' records.
        pub docs: DocStore,
        /// How early (ms) the backend may handle a timer: 0 on SQLite, a
        /// second on moto.
        pub precision: i64,
    }

    /// When a signed sample was signed (ms).
    ///
    /// # Panics
    /// If the sample is malformed.
    #[must_use]
    pub fn sample_time(json: &str) -> i64 {
        hookflow_webhooks::ApiGatewayV2Request::from_json(json.as_bytes())
            .unwrap()
            .time_epoch_ms()
            .unwrap()
    }

    impl Base<TestEnv> {
        /// On SQLite (in memory) at `start_ms`, running `functions` built
        /// over the server and the documents.
        ///
        /// # Panics
        /// If the store cannot open.
        pub fn sqlite(
            server: TestServer,
            start_ms: i64,
            functions: impl FnOnce(&TestServer, DocStore) -> Vec<Function>,
        ) -> Self {
            let store = SqliteStore::in_memory().unwrap();
            let clock = FakeClock::new(start_ms);
            let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
            let env = TestEnv::with_store(store, functions(&server, docs.clone()), clock);
            Self {
                env,
                server,
                docs,
                precision: 0,
            }
        }
    }

    impl Base<AwsTestEnv> {
        /// On DynamoDB, SQS and Scheduler (moto) at `start_ms`.
        pub async fn aws(
            server: TestServer,
            start_ms: i64,
            functions: impl FnOnce(&TestServer, DocStore) -> Vec<Function>,
        ) -> Self {
            let env = AwsTestEnv::with_docs(|docs| functions(&server, docs)).await;
            env.clock.set(start_ms);
            let docs = env.docs();
            Self {
                env,
                server,
                docs,
                precision: 1_000,
            }
        }
    }

    impl<B: Backend> Base<B> {
        /// The fake clock's time.
        pub fn now_ms(&self) -> i64 {
            hookflow::Clock::now_ms(self.env.clock())
        }

        /// Creates a document (it must not exist).
        ///
        /// # Panics
        /// If it exists or the store fails.
        pub async fn put<T: Serialize>(&self, collection: &str, key: &str, value: &T) {
            assert!(
                self.docs.create(collection, key, value).await.unwrap(),
                "{collection}/{key} exists"
            );
        }

        /// A document's value.
        ///
        /// # Panics
        /// If the store fails or the value is not a `T`.
        pub async fn get<T: DeserializeOwned>(&self, collection: &str, key: &str) -> Option<T> {
            self.docs
                .get::<T>(collection, key)
                .await
                .unwrap()
                .map(|(v, _)| v)
        }

        /// Moves time forward, firing every timer on the way.
        pub async fn advance(&self, by: Duration) {
            self.env.advance(by).await;
        }

        /// Moves the clock to `at` (ms), firing every timer on the way.
        ///
        /// # Panics
        /// If `at` is in the past.
        pub async fn advance_to(&self, at: i64) {
            let by = at - self.now_ms();
            assert!(by >= 0, "{at} is in the past");
            self.advance(Duration::from_millis(u64::try_from(by).unwrap()))
                .await;
        }

        /// Delivers a signed sample at its signing time, then what is due.
        pub async fn deliver(&self, json: &str) {
            backend::deliver(&self.env, json).await;
        }

        /// Sends an event as the app would, then handles what is due.
        pub async fn send(&self, name: &str, data: Value) {
            backend::send(&self.env, name, data).await;
        }

        /// Every run of `function_id`.
        pub async fn runs_of(&self, function_id: &str) -> Vec<Run> {
            backend::runs_of(&self.env, function_id).await
        }

        /// The one run of `function_id`.
        pub async fn only(&self, function_id: &str) -> Run {
            backend::only(&self.env, function_id).await
        }

        /// A run with its steps.
        ///
        /// # Panics
        /// If it does not exist.
        pub async fn view(&self, run_id: &str) -> RunView {
            self.env.engine().run_view(run_id).await.unwrap().unwrap()
        }
    }
}

/// Runs each scenario (`async fn name<B: Backend>(world: World<B>)`) on
/// SQLite and on moto, building the world with the two given functions:
/// `both!(world::sqlite, world::aws => scenario_a, scenario_b);`.
#[macro_export]
macro_rules! both {
    ($sqlite:path, $aws:path => $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($sqlite().await).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($aws().await).await;
                }
            )*
        }
    };
}
