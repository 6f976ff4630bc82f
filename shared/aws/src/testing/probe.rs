//! The contract suite's queue probe for [`AwsStore`], and a fresh store for it.

use std::collections::HashMap;
use std::sync::PoisonError;

use hookflow::Function;
use hookflow::run::Envelope;

use super::env::AwsTestEnv;
use crate::dynamo::AwsStore;
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
            let input = self
                .decode_message(target.input().unwrap_or_default())
                .await?;
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
                    let envelope = self
                        .decode_message(message.body().unwrap_or_default())
                        .await?;
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

    async fn next_due(&self) -> hookflow::Result<Option<i64>> {
        let clients = self.clients();
        let group = &self.config().scheduler_group;
        let mut next: Option<i64> = None;
        let mut note = |at: i64| next = Some(next.map_or(at, |n| n.min(at)));
        let list = clients
            .scheduler
            .list_schedules()
            .group_name(group)
            .send()
            .await
            .map_err(crate::error::scheduler)?;
        for summary in list.schedules() {
            let schedule = clients
                .scheduler
                .get_schedule()
                .group_name(group)
                .name(summary.name().unwrap_or_default())
                .send()
                .await
                .map_err(crate::error::scheduler)?;
            if let Some(target) = schedule.target() {
                let input = self
                    .decode_message(target.input().unwrap_or_default())
                    .await?;
                note(input.not_before.unwrap_or(0));
            }
        }
        let urls: Vec<String> = self
            .queue_urls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for url in urls {
            let out = clients
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(crate::error::sqs)?;
            for message in out.messages() {
                let envelope = self
                    .decode_message(message.body().unwrap_or_default())
                    .await?;
                note(envelope.not_before.unwrap_or(0));
            }
        }
        Ok(next)
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

/// A fresh store with a queue for each of `functions`, reading time from
/// `clock` (for the fault-injection scenarios).
///
/// # Panics
/// If moto is missing.
pub async fn fault_store(clock: hookflow::FakeClock, functions: Vec<String>) -> AwsStore {
    let stubs = functions
        .into_iter()
        .map(|id| {
            Function::new(id)
                .on_event("never")
                .handler(|_| async { Ok(()) })
        })
        .collect();
    let env = AwsTestEnv::new(stubs).await;
    env.engine
        .store()
        .clone()
        .with_clock(std::sync::Arc::new(clock))
}
