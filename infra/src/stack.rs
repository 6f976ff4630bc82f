//! The operator commands against a deployed stack (`--stack NAME`, with the
//! `aws` feature): the CLI reads the stack's outputs through CloudFormation
//! (the user's normal AWS credentials chain), then works on its table and
//! queues directly with the engine's own operations (`Engine<AwsStore>`),
//! answering with the same JSON as `hookflow dev` (see `views.rs`), so the
//! tables and `--json` read the same on both.
//!
//! Run operations (list, show, cancel, replay, rerun, bulk) are the
//! engine's transitions; a cancellation is applied by the function's Lambda
//! (the CLI waits up to 5 s for it). Dead letters are the failed runs not
//! yet replayed plus the messages in the stack's dead-letter queues
//! (counted; a redrive moves them back to their queues).

use std::sync::Arc;

use anyhow::{Context, anyhow};
use aws_sdk_sqs::types::QueueAttributeName;
use hookflow::{Engine, EngineConfig, Event, Registry, Retention, SystemClock};
use hookflow_aws::queue::serving_function;
use hookflow_aws::{AwsClients, AwsConfig, AwsStore};
use serde_json::{Value, json};

use crate::ops::Api;
use crate::views;

/// A deployed stack, reached through its table and queues.
pub struct Stack {
    engine: Engine<AwsStore>,
    sqs: aws_sdk_sqs::Client,
    prefix: String,
}

/// The stack outputs the CLI needs.
const OUTPUTS: [&str; 4] = [
    "TableName",
    "BucketName",
    "SchedulerGroupName",
    "SchedulerRoleArn",
];

impl Stack {
    /// The stack `name`, found through CloudFormation with `sdk` (from
    /// `aws_config::load_from_env`: the credentials chain, region and
    /// `AWS_ENDPOINT_URL`), with the registry's functions.
    ///
    /// # Errors
    /// No such stack, or it lacks an output the CLI needs (deployed from an
    /// older template: deploy again).
    pub async fn connect(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<Self> {
        let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
        let described = cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(aws_sdk_cloudformation::Error::from)
            .with_context(|| {
                format!("cannot describe stack `{name}` (its name, region and credentials?)")
            })?;
        let stack = described
            .stacks()
            .first()
            .ok_or_else(|| anyhow!("no stack `{name}`"))?;
        let output = |key: &str| {
            stack
                .outputs()
                .iter()
                .find(|o| o.output_key() == Some(key))
                .and_then(|o| o.output_value())
                .map(str::to_owned)
                .ok_or_else(|| {
                    anyhow!(
                        "stack `{name}` has no output {key} (the CLI needs {}): deploy it from this version's template.yaml",
                        OUTPUTS.join(", ")
                    )
                })
        };
        // The name, also when given the stack's ARN.
        let name = stack.stack_name().unwrap_or(name).to_owned();
        let config = AwsConfig {
            table: output("TableName")?,
            bucket: output("BucketName")?,
            queue_prefix: name.clone(),
            scheduler_group: output("SchedulerGroupName")?,
            scheduler_role_arn: output("SchedulerRoleArn")?,
            scheduler_dlq_arn: None,
            sqs_delays: true,
            lease: std::time::Duration::from_secs(60),
            retention: Retention::default(),
        };
        let clients = AwsClients::from_sdk_config(sdk, None);
        let sqs = clients.sqs.clone();
        let clock: Arc<dyn hookflow::Clock> = Arc::new(SystemClock);
        let store = AwsStore::new(clients, config, clock.clone());
        let registry = Registry::new(hookflow_registry::functions())?;
        let engine = Engine::new(store, registry, clock, EngineConfig::default());
        Ok(Self {
            engine,
            sqs,
            prefix: name,
        })
    }

    /// Failed runs not yet replayed: `function`'s, or every function's (one
    /// index query each, not a scan of the table).
    async fn failed_runs(&self, function: Option<&str>) -> anyhow::Result<Vec<hookflow::Run>> {
        if let Some(function) = function {
            return Ok(views::failed_runs(&self.engine, Some(function)).await?);
        }
        let mut failed = Vec::new();
        for f in self.engine.registry().iter() {
            failed.extend(views::failed_runs(&self.engine, Some(f.id())).await?);
        }
        failed.sort_by_key(|r| std::cmp::Reverse(r.ended_at));
        Ok(failed)
    }

    /// The stack's queues: the router's and each Lambda's, by name.
    fn queues(&self) -> Vec<String> {
        let mut homes: Vec<String> = self
            .engine
            .registry()
            .iter()
            .map(|f| format!("{}-{}", self.prefix, serving_function(f.id())))
            .collect();
        homes.push(format!("{}-router", self.prefix));
        homes.sort();
        homes.dedup();
        homes
    }

    async fn queue_url(&self, name: &str) -> Option<String> {
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .ok()?;
        out.queue_url().map(str::to_owned)
    }

    /// The stack's dead-letter queues: each queue's, and the Scheduler's
    /// (timers it could not deliver).
    fn dead_letter_queues(&self) -> Vec<String> {
        let mut dlqs: Vec<String> = self.queues().iter().map(|q| format!("{q}-dlq")).collect();
        dlqs.push(format!("{}-scheduler-dlq", self.prefix));
        dlqs
    }

    /// Messages in each dead-letter queue that has any.
    async fn dead_letter_counts(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let mut counts = Vec::new();
        for dlq in self.dead_letter_queues() {
            let Some(url) = self.queue_url(&dlq).await else {
                continue;
            };
            let attributes = self
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)?;
            let n: u64 = attributes
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if n > 0 {
                counts.push((dlq, n));
            }
        }
        Ok(counts)
    }

    /// The queue a dead message goes back to: its DLQ's source queue, or
    /// for the Scheduler's DLQ, the queue the timer's message names.
    async fn source_of(&self, dlq: &str, body: &str) -> Option<String> {
        if dlq != format!("{}-scheduler-dlq", self.prefix) {
            return Some(dlq.strip_suffix("-dlq").unwrap_or(dlq).to_owned());
        }
        let envelope = self.engine.store().decode_message(body).await.ok()?;
        Some(match envelope.target {
            hookflow::Target::Router => format!("{}-router", self.prefix),
            hookflow::Target::Function(id) => format!("{}-{}", self.prefix, serving_function(&id)),
        })
    }

    /// Moves every message of `dlq` back to the queue it came from (one
    /// whose queue cannot be told stays); how many moved.
    async fn move_back(&self, dlq: &str) -> anyhow::Result<usize> {
        let Some(from) = self.queue_url(dlq).await else {
            return Ok(0);
        };
        let mut moved = 0;
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&from)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                // A short long-poll: an empty short poll can miss messages.
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)?;
            if received.messages().is_empty() {
                return Ok(moved);
            }
            for message in received.messages() {
                let body = message.body().unwrap_or_default();
                let Some(source) = self.source_of(dlq, body).await else {
                    tracing::warn!(queue = dlq, "a dead message names no queue; left in place");
                    continue;
                };
                let Some(to) = self.queue_url(&source).await else {
                    tracing::warn!(
                        queue = dlq,
                        source,
                        "the dead message's queue is gone; left in place"
                    );
                    continue;
                };
                // Sent before deleted: a crash in between leaves a copy in
                // the DLQ (handled twice at worst, which every message
                // tolerates), never a lost message.
                self.sqs
                    .send_message()
                    .queue_url(&to)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(aws_sdk_sqs::Error::from)?;
                self.sqs
                    .delete_message()
                    .queue_url(&from)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(aws_sdk_sqs::Error::from)?;
                moved += 1;
            }
        }
    }
}

fn not_found(what: &str, id: &str) -> anyhow::Error {
    anyhow!("404 Not Found: {what} `{id}` not found")
}

impl Api for Stack {
    async fn runs(
        &self,
        function: Option<&str>,
        status: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Value> {
        let status = status
            .map(views::parse_status)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let runs = self
            .engine
            .list_runs(&hookflow::RunFilter {
                function_id: function.map(str::to_owned),
                status,
                limit: limit.min(1000),
                ..hookflow::RunFilter::default()
            })
            .await?;
        Ok(json!({"runs": runs.iter().map(views::run_summary).collect::<Vec<_>>()}))
    }

    async fn run(&self, id: &str) -> anyhow::Result<Value> {
        let view = self
            .engine
            .run_view(id)
            .await?
            .ok_or_else(|| not_found("run", id))?;
        Ok(serde_json::to_value(view)?)
    }

    async fn cancel(&self, id: &str) -> anyhow::Result<Value> {
        let (ended, run) =
            views::cancel(&self.engine, id, std::time::Duration::from_secs(5)).await?;
        Ok(if ended {
            json!({"id": run.id, "status": run.status})
        } else {
            json!({"id": run.id, "status": "cancelling"})
        })
    }

    async fn replay(&self, id: &str) -> anyhow::Result<Value> {
        let new = self.engine.replay(id).await?;
        Ok(json!({"id": new, "replay_of": id}))
    }

    async fn rerun(&self, id: &str, from: &str) -> anyhow::Result<Value> {
        let new = self.engine.rerun_from(id, from).await?;
        Ok(json!({"id": new, "replay_of": id, "from_step": from}))
    }

    async fn send(&self, event: Value) -> anyhow::Result<Value> {
        let event: Event = serde_json::from_value(event)?;
        Ok(views::send(&self.engine, vec![event]).await?)
    }

    async fn event(&self, id: &str) -> anyhow::Result<Value> {
        views::event(&self.engine, id)
            .await?
            .ok_or_else(|| not_found("event", id))
    }

    async fn dead_letters(&self, function: Option<&str>) -> anyhow::Result<Value> {
        let failed = self.failed_runs(function).await?;
        let queues = if function.is_some() {
            Vec::new()
        } else {
            self.dead_letter_counts().await?
        };
        let total: u64 = queues.iter().map(|(_, n)| n).sum();
        Ok(json!({
            "failed_runs": failed.iter().map(views::run_summary).collect::<Vec<_>>(),
            "dead_letters": queues.iter().map(|(q, n)| json!({"queue": q, "count": n})).collect::<Vec<_>>(),
            "dead_letter_count": total,
        }))
    }

    async fn redrive(&self, function: Option<&str>) -> anyhow::Result<Value> {
        let mut moved = 0;
        if function.is_none() {
            for (dlq, _) in self.dead_letter_counts().await? {
                moved += self.move_back(&dlq).await?;
            }
        }
        let failed = self.failed_runs(function).await?;
        let replayed = views::replay_each(&self.engine, &failed).await?;
        Ok(json!({"redriven": moved, "replayed": replayed}))
    }

    async fn bulk(&self, body: Value) -> anyhow::Result<Value> {
        let request: crate::api::BulkRequest = serde_json::from_value(body)?;
        let outcome = self
            .engine
            .bulk(&request.filter, request.action, request.dry_run)
            .await?;
        Ok(views::bulk(&outcome, request.dry_run))
    }
}
