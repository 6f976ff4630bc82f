//! Work and timers: SQS for messages (one queue per function plus the
//! router's), SQS `DelaySeconds` for timers up to 15 minutes, and one-time
//! EventBridge Scheduler schedules beyond that.
//!
//! Scheduler fires within a minute of its time, so a schedule is set a minute
//! early and carries `not_before`; a consumer that receives it early re-queues
//! it with an SQS delay for the remainder, so wake-ups are precise.

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target as ScheduleTarget,
};
use std::collections::{HashMap, HashSet};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use aws_smithy_types::error::display::DisplayErrorContext;
use hookflow::clock::duration_ms;
use hookflow::event::DEDUPE_WINDOW;
use hookflow::event::derived_id;
use hookflow::function::FAILURE_SUFFIX;
use hookflow::run::{Envelope, Target};
use hookflow::store::Outbox;
use hookflow::transition::Outgoing;

use crate::config::{MAX_SQS_DELAY, SCHEDULER_EARLY};
use crate::dynamo::AwsStore;
use crate::error::{AwsError, Result, scheduler, sqs};

/// The most entries one `SendMessageBatch` takes.
const MAX_ENTRIES: usize = 10;
/// The most bytes of message bodies one `SendMessageBatch` takes.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A message waiting in its queue's lane to be sent, and where its result
/// goes.
#[derive(Debug)]
pub(crate) struct Pending {
    body: String,
    delay: i32,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

impl Pending {
    /// Hands the sender its message's result.
    fn finish(self, result: Result<(), String>) {
        // A sender that stopped waiting no longer wants it.
        let _ = self.done.send(result);
    }
}

/// Whether `next` fits in one `SendMessageBatch` with `batch`.
fn fits_one_call(batch: &[Pending], next: &Pending) -> bool {
    let bytes: usize = batch.iter().map(|p| p.body.len()).sum();
    batch.len() < MAX_ENTRIES && bytes + next.body.len() <= MAX_BATCH_BYTES
}

/// The function whose queue and Lambda serve `function_id`: itself, or for
/// an `<id>-on-failure` handler, `<id>` (it runs in its function's Lambda).
#[must_use]
pub fn serving_function(function_id: &str) -> &str {
    function_id
        .strip_suffix(FAILURE_SUFFIX)
        .unwrap_or(function_id)
}

/// The largest message body sent as is (SQS takes 256 KiB); larger ones
/// travel as a reference to a blob.
const MAX_SQS_BODY: usize = 200 * 1024;
/// The largest timer input sent as is (Scheduler takes 8 KiB).
const MAX_SCHEDULE_INPUT: usize = 7 * 1024;

/// What a queue message or timer input holds.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Wire {
    /// A reference to an envelope stored as a blob.
    Blob {
        blob: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<i64>,
    },
    /// The envelope itself.
    Inline(Envelope),
}

impl AwsStore {
    /// The SQS queue name for a target: `<prefix>-router` or `<prefix>-<function>`.
    #[must_use]
    pub fn queue_name(&self, target: &Target) -> String {
        let prefix = &self.config.queue_prefix;
        match target {
            Target::Router => format!("{prefix}-router"),
            Target::Function(id) => format!("{prefix}-{}", serving_function(id)),
        }
    }

    /// The queue's URL (looked up once, then cached).
    ///
    /// # Errors
    /// SQS errors, e.g. a queue that does not exist.
    pub async fn queue_url(&self, target: &Target) -> Result<String> {
        let name = self.queue_name(target);
        if let Some(url) = Self::cached(&self.queue_urls, &name) {
            return Ok(url);
        }
        let out = self
            .clients
            .sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(sqs)?;
        let url = out
            .queue_url()
            .ok_or_else(|| AwsError::Config(format!("queue {name} has no URL")))?
            .to_owned();
        Self::remember(&self.queue_urls, &name, &url);
        Ok(url)
    }

    /// The queue's ARN (looked up once, then cached).
    ///
    /// # Errors
    /// SQS errors.
    pub async fn queue_arn(&self, target: &Target) -> Result<String> {
        let name = self.queue_name(target);
        if let Some(arn) = Self::cached(&self.queue_arns, &name) {
            return Ok(arn);
        }
        let url = self.queue_url(target).await?;
        let out = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs)?;
        let arn = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or_else(|| AwsError::Config(format!("queue {name} has no ARN")))?
            .clone();
        Self::remember(&self.queue_arns, &name, &arn);
        Ok(arn)
    }

    /// The message body for `envelope`: the envelope itself when it fits in
    /// `limit` bytes, else a reference to it stored as a blob.
    async fn encode_message(&self, envelope: &Envelope, limit: usize) -> Result<String> {
        let body = serde_json::to_string(envelope)?;
        if body.len() <= limit {
            return Ok(body);
        }
        let blob = hookflow::store::Blobs::put_blob(self, body.as_bytes())
            .await
            .map_err(|e| AwsError::Config(format!("storing a large message: {e}")))?;
        Ok(serde_json::to_string(&Wire::Blob {
            blob,
            not_before: envelope.not_before,
        })?)
    }

    /// The envelope a queue message or timer carries (fetching it when the
    /// message holds a reference).
    ///
    /// # Errors
    /// A body that is neither, or a missing blob.
    pub async fn decode_message(&self, body: &str) -> Result<Envelope> {
        match serde_json::from_str::<Wire>(body)? {
            Wire::Inline(envelope) => Ok(envelope),
            Wire::Blob { blob, .. } => {
                let bytes = hookflow::store::Blobs::get_blob(self, &blob)
                    .await
                    .map_err(|e| AwsError::Config(format!("reading a large message: {e}")))?
                    .ok_or_else(|| AwsError::Item(format!("message blob {blob} is missing")))?;
                Ok(serde_json::from_slice(&bytes)?)
            }
        }
    }

    async fn send_delayed(&self, envelope: &Envelope, delay_secs: i32) -> Result<()> {
        let url = self.queue_url(&envelope.target).await?;
        let body = self.encode_message(envelope, MAX_SQS_BODY).await?;
        self.send_body(&url, body, delay_secs).await
    }

    /// Sends `body` to the queue at `url` after `delay` seconds: at once
    /// when no send to that queue is in flight, else in one
    /// `SendMessageBatch` with the others that wait
    /// ([`crate::coalesce`]).
    async fn send_body(&self, url: &str, body: String, delay: i32) -> Result<()> {
        let (done, result) = tokio::sync::oneshot::channel();
        let pending = Pending { body, delay, done };
        let lane = self.sends.lane(url);
        // Boxed: the engine's futures are deep already.
        Box::pin(lane.run(pending, result, fits_one_call, |batch| {
            self.send_batch(url, batch)
        }))
        .await
        .unwrap_or_else(|| Err("the send was abandoned".into()))
        .map_err(AwsError::SqsSend)
    }

    /// Sends `batch` to the queue at `url` (`SendMessage` for one message)
    /// and hands each sender its message's result.
    async fn send_batch(&self, url: &str, batch: Vec<Pending>) {
        let sqs = &self.clients.sqs;
        if batch.len() == 1 {
            for pending in batch {
                let sent = sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(&pending.body)
                    .delay_seconds(pending.delay)
                    .send()
                    .await;
                pending.finish(
                    sent.map(|_| ())
                        .map_err(|e| DisplayErrorContext(&e).to_string()),
                );
            }
            return;
        }
        let mut request = sqs.send_message_batch().queue_url(url);
        for (i, pending) in batch.iter().enumerate() {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&pending.body)
                .delay_seconds(pending.delay)
                .build();
            match entry {
                Ok(entry) => request = request.entries(entry),
                Err(err) => {
                    let why = format!("batch entry: {err}");
                    for pending in batch {
                        pending.finish(Err(why.clone()));
                    }
                    return;
                }
            }
        }
        match request.send().await {
            Ok(out) => {
                let refused: HashMap<&str, String> = out
                    .failed()
                    .iter()
                    .map(|f| {
                        let why = format!("{}: {}", f.code(), f.message().unwrap_or_default());
                        (f.id(), why)
                    })
                    .collect();
                let sent: HashSet<&str> = out.successful().iter().map(|s| s.id()).collect();
                for (i, pending) in batch.into_iter().enumerate() {
                    let id = i.to_string();
                    let result = match refused.get(id.as_str()) {
                        Some(why) => Err(format!("SQS refused the message: {why}")),
                        None if sent.contains(id.as_str()) => Ok(()),
                        None => Err("SQS gave no result for the message".to_owned()),
                    };
                    pending.finish(result);
                }
            }
            Err(err) => {
                let why = DisplayErrorContext(&err).to_string();
                for pending in batch {
                    pending.finish(Err(why.clone()));
                }
            }
        }
    }

    async fn create_schedule(&self, envelope: &Envelope, at: i64) -> Result<()> {
        let fire_at = at - duration_ms(SCHEDULER_EARLY);
        let when = chrono::DateTime::from_timestamp_millis(fire_at)
            .ok_or_else(|| AwsError::Config(format!("timer time {at} is out of range")))?
            .format("%Y-%m-%dT%H:%M:%S");
        let input = self.encode_message(envelope, MAX_SCHEDULE_INPUT).await?;
        let name = format!(
            "hf-{}",
            derived_id(&[
                envelope.dedupe_key.as_deref().unwrap_or(&input),
                &at.to_string()
            ])
        );
        let arn = self.queue_arn(&envelope.target).await?;
        let mut target = ScheduleTarget::builder()
            .arn(arn)
            .role_arn(&self.config.scheduler_role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(185)
                    .maximum_event_age_in_seconds(86_400)
                    .build(),
            );
        if let Some(dlq) = &self.config.scheduler_dlq_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        let target = target
            .build()
            .map_err(|e| AwsError::Config(format!("schedule target: {e}")))?;
        let result = self
            .clients
            .scheduler
            .create_schedule()
            .name(&name)
            .group_name(&self.config.scheduler_group)
            .schedule_expression(format!("at({when})"))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .map_err(|e| AwsError::Config(format!("flexible time window: {e}")))?,
            )
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Same name = same timer already scheduled (dedupe key or identical message).
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(scheduler(err)),
        }
    }
}

impl AwsStore {
    /// Sends `envelope` now (SQS).
    ///
    /// # Errors
    /// SQS errors.
    pub async fn send(&self, envelope: &Envelope) -> Result<()> {
        self.send_delayed(envelope, 0).await
    }

    /// Delivers `envelope` at `at`: an SQS delay up to 15 minutes, a one-time
    /// Scheduler schedule beyond (and for keyed timers, which SQS cannot
    /// deduplicate), set a minute early with `not_before` so the consumer
    /// finishes the remainder precisely.
    ///
    /// # Errors
    /// SQS or Scheduler errors.
    pub async fn schedule(&self, envelope: &Envelope, at: i64) -> Result<()> {
        let mut envelope = envelope.clone();
        envelope.not_before = Some(at);
        let delay = at - self.clock.now_ms();
        if envelope.dedupe_key.is_none() && delay <= duration_ms(MAX_SQS_DELAY) {
            let secs = if self.config.sqs_delays && delay > 0 {
                i32::try_from((delay + 999) / 1000).unwrap_or(900).min(900)
            } else {
                0
            };
            self.send_delayed(&envelope, secs).await
        } else {
            self.create_schedule(&envelope, at).await
        }
    }
}

impl Outbox for AwsStore {
    async fn deliver(&self, messages: &[Outgoing]) -> hookflow::Result<()> {
        for message in messages {
            match message {
                Outgoing::Send { envelope } => self.send(envelope).await?,
                Outgoing::Later { envelope, at } => self.schedule(envelope, *at).await?,
                Outgoing::Events { events, sent_at } => {
                    let at = Outgoing::events_received_at(*sent_at, self.clock.now_ms());
                    self.store_and_route(events, at, duration_ms(DEDUPE_WINDOW))
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use futures::future::join_all;
    use hookflow::Function;

    use super::*;
    use crate::testing::AwsTestEnv;

    #[tokio::test]
    async fn overlapping_sends_share_batches_and_each_gets_its_own_result() {
        // GIVEN a queue whose URL is known (a lone send is one SendMessage)
        let never = Function::new("fn")
            .on_event("never")
            .handler(|_| async { Ok(()) });
        let env = AwsTestEnv::new(vec![never]).await;
        let store = env.store();
        let url = store.queue_url(&Target::Router).await.unwrap();
        store.send_body(&url, "warm".into(), 0).await.unwrap();
        env.counter.reset();
        // WHEN 31 sends overlap, one of them with a delay SQS refuses
        let sends = (0..31).map(|i| {
            let delay = if i == 17 { 901 } else { 0 };
            store.send_body(&url, format!("m{i}"), delay)
        });
        let results = join_all(sends).await;
        // THEN the first went alone and the rest in three batches of ten
        let calls = env.calls();
        assert_eq!(calls.get("SQS.SendMessage"), Some(&1), "{calls:?}");
        assert_eq!(calls.get("SQS.SendMessageBatch"), Some(&3), "{calls:?}");
        // AND only the refused one failed; every other arrived once
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result.is_err(), i == 17, "send {i}: {result:?}");
        }
        let mut bodies = Vec::new();
        loop {
            let out = env
                .harness()
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if out.messages().is_empty() {
                break;
            }
            bodies.extend(
                out.messages()
                    .iter()
                    .filter_map(|m| m.body().map(str::to_owned)),
            );
        }
        bodies.sort();
        let mut expected: Vec<_> = (0..31)
            .filter(|i| *i != 17)
            .map(|i| format!("m{i}"))
            .collect();
        expected.push("warm".into());
        expected.sort();
        assert_eq!(bodies, expected);
    }
}
