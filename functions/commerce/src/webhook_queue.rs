//! `process-webhook-queue`: outbound webhooks to the tenants' endpoints,
//! every 5 minutes, **never two ticks at once** (a singleton: a tick that
//! finds the previous one unfinished is skipped; the next picks up its rows).
//!
//! 1. `get-pending`: up to [`BATCH`] rows of `commerce_webhook_queue` that are
//!    pending and due at the tick, oldest first;
//! 2. `webhook-<id>`, one step per row: the signed delivery
//!    ([`hookflow_clients::outbound`]). Delivered, the row is deleted.
//!    Failed, the failure is counted on the row and it is retried by a later
//!    tick, [`BACKOFF_MS`] doubling per attempt up to 6 hours; after
//!    [`MAX_ATTEMPTS`] it is `dead` (kept, with its last error, for an
//!    operator). A failure is the row's outcome, not the step's, so one bad
//!    endpoint never holds up the rest of the batch.
//!
//! Rows are queued by [`crate::orders`] (`order.synced`) when the tenant
//! has `webhookUrl` and `webhookSecret`.

use hookflow::{Function, Singleton, SingletonMode};
use hookflow_clients::Services;
use hookflow_clients::outbound::Delivery;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::records::{QueueStatus, QueuedWebhook, WEBHOOK_QUEUE};

/// The function id.
pub const ID: &str = "process-webhook-queue";
/// Every 5 minutes.
pub const SCHEDULE: &str = "*/5 * * * *";
/// Rows per tick.
pub const BATCH: usize = 100;
/// Attempts before a row is dead.
pub const MAX_ATTEMPTS: u32 = 8;
/// The first retry's delay (5 minutes), doubled per attempt.
pub const BACKOFF_MS: i64 = 5 * 60 * 1000;
/// The longest delay between attempts (6 hours).
pub const MAX_BACKOFF_MS: i64 = 6 * 3600 * 1000;

/// When a row that failed its `attempts`-th time is tried again.
#[must_use]
pub fn next_attempt(tick: i64, attempts: u32) -> i64 {
    let doubled = BACKOFF_MS.saturating_mul(1_i64 << attempts.saturating_sub(1).min(20));
    tick + doubled.min(MAX_BACKOFF_MS)
}

/// What one row's step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RowOutcome {
    /// Delivered and removed.
    Delivered,
    /// Failed; retried later unless `dead`.
    Failed {
        /// Attempts so far.
        attempts: u32,
        /// Gave up.
        dead: bool,
    },
    /// Gone or changed since `get-pending` (another tick had it).
    Gone,
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(
            Function::new(ID)
                .name("Deliver queued webhooks")
                .reads_env(["COMMERCE_TENANTS"]),
        )
        .on_cron(SCHEDULE)
        .singleton(Singleton::new(SingletonMode::Skip))
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let tick = ctx.event.ts;
                let docs = services.docs.clone();
                let pending: Vec<String> = ctx
                    .step
                    .run("get-pending", move || async move {
                        let mut keys = Vec::new();
                        let mut after: Option<String> = None;
                        loop {
                            let page = docs
                                .list_docs(WEBHOOK_QUEUE, after.as_deref(), BATCH)
                                .await?;
                            let full = page.len() == BATCH;
                            for doc in page {
                                after = Some(doc.key.clone());
                                let row: QueuedWebhook = serde_json::from_value(doc.value)?;
                                if row.status == QueueStatus::Pending && row.next_attempt_at <= tick
                                {
                                    keys.push(doc.key);
                                    if keys.len() == BATCH {
                                        return Ok(keys);
                                    }
                                }
                            }
                            if !full {
                                return Ok(keys);
                            }
                        }
                    })
                    .await?;
                let (mut delivered, mut failed) = (0_u32, 0_u32);
                for row_key in pending {
                    let id = row_key
                        .split_once('-')
                        .map_or(row_key.as_str(), |(_, id)| id);
                    let (s, k) = (services.clone(), row_key.clone());
                    let outcome: RowOutcome = ctx
                        .step
                        .run(&format!("webhook-{id}"), move || async move {
                            deliver_row(&s, &k, tick).await
                        })
                        .await?;
                    match outcome {
                        RowOutcome::Delivered => delivered += 1,
                        RowOutcome::Failed { .. } => failed += 1,
                        RowOutcome::Gone => {}
                    }
                }
                Ok(json!({"processed": delivered, "failed": failed}))
            }
        })
}

async fn deliver_row(services: &Services, row_key: &str, tick: i64) -> anyhow::Result<RowOutcome> {
    let docs = &services.docs;
    let Some(doc) = docs.get_doc(WEBHOOK_QUEUE, row_key).await? else {
        return Ok(RowOutcome::Gone);
    };
    let row: QueuedWebhook = serde_json::from_value(doc.value)?;
    if row.status != QueueStatus::Pending || row.next_attempt_at > tick {
        return Ok(RowOutcome::Gone);
    }
    let endpoint = services
        .settings
        .tenants()
        .by_id(&row.tenant_id)
        .and_then(|t| t.webhook().map(|(u, s)| (u.to_owned(), s.to_owned())));
    let result = match &endpoint {
        Some((url, secret)) => {
            let body = row.payload.to_string();
            let delivery = Delivery {
                url,
                secret,
                id: &row.id,
                topic: &row.topic,
                body: &body,
                now_ms: docs.now_ms(),
            };
            services
                .clients
                .outbound
                .deliver(&delivery)
                .await
                .map_err(|e| e.to_string())
        }
        None => Err("the tenant has no webhook endpoint".to_owned()),
    };
    match result {
        Ok(()) => {
            docs.delete_doc(WEBHOOK_QUEUE, row_key, doc.version).await?;
            Ok(RowOutcome::Delivered)
        }
        Err(error) => {
            let attempts = row.attempts + 1;
            let dead = attempts >= MAX_ATTEMPTS || endpoint.is_none();
            docs.update::<QueuedWebhook, _>(WEBHOOK_QUEUE, row_key, |current| {
                let mut current = current?;
                current.attempts = attempts;
                current.last_error = Some(error.clone());
                current.next_attempt_at = next_attempt(tick, attempts);
                if dead {
                    current.status = QueueStatus::Dead;
                }
                Some(current)
            })
            .await?;
            Ok(RowOutcome::Failed { attempts, dead })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_six_hours() {
        assert_eq!(next_attempt(0, 1), BACKOFF_MS);
        assert_eq!(next_attempt(0, 2), 2 * BACKOFF_MS);
        assert_eq!(next_attempt(0, 4), 8 * BACKOFF_MS);
        assert_eq!(next_attempt(0, 9), MAX_BACKOFF_MS);
        assert_eq!(next_attempt(0, 60), MAX_BACKOFF_MS);
    }
}
