//! Committing a transition on DynamoDB: one `TransactWriteItems` whose run
//! item carries the fence as its condition (or, when the run item is the only
//! write, one conditional write at half the price), the run's outbox kept on
//! the run item. A transition over DynamoDB's limits (100 items, 4 MB) is
//! committed in parts, each fenced with a `ConditionCheck`, the run item last.
//! A refused commit is diagnosed from a fresh read of the run. The run
//! item's own write is in `run_item`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use hookflow::flow::FlowWrite;
use hookflow::run::{RunStatus, StepRecord};
use hookflow::store::FlowStore;
use hookflow::transition::{Committed, Conflict, Fence, Transition};

use super::run_keys::RunKeys;
use super::{AwsStore, Item, get_n, get_s, number, string};
use super::{inline, packed};
use crate::error::{AwsError, Result, ddb};

/// How long idempotency items outlive their expiry before TTL removes them.
const IDEM_TTL_GRACE_SECS: i64 = 86_400;
/// How long a wait's waiter item outlives its timeout.
const WAITER_TTL_SECS: i64 = 90 * 86_400;
/// DynamoDB's limit of items per transaction.
pub(crate) const MAX_TRANSACTION_ITEMS: usize = 100;
/// Bytes we let one transaction carry (DynamoDB's limit is 4 MB).
const TRANSACTION_BYTES: usize = 3_500_000;
/// Attempts when a transaction collides with another on the same items.
const CONFLICT_ATTEMPTS: u32 = 5;

fn status_name(step: &StepRecord) -> Result<String> {
    Ok(serde_json::to_value(step.status)?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn attributes_size<'a>(
    attributes: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>,
) -> usize {
    attributes
        .into_iter()
        .map(|(name, value)| name.len() + packed::value_size(value))
        .sum()
}

/// About how many bytes a write carries (its items' names and values).
fn write_size(write: &TransactWriteItem) -> usize {
    let mut size = 100;
    if let Some(put) = write.put() {
        size += attributes_size(put.item());
    }
    if let Some(update) = write.update() {
        size += attributes_size(update.expression_attribute_values().into_iter().flatten());
    }
    size
}

fn total_size(writes: &[TransactWriteItem]) -> usize {
    writes.iter().map(write_size).sum()
}

/// The partition of a flow-control record.
pub(super) fn flow_pk(key: &str) -> String {
    format!("FC#{key}")
}

impl AwsStore {
    fn put(&self, item: Item) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .build()
            .map_err(|e| AwsError::Item(format!("put: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Every item of `t` but the run item (and, on creation, what goes with
    /// it): the `steps` kept as items of their own, the waiters.
    async fn record_writes(
        &self,
        t: &Transition,
        steps: &[&StepRecord],
    ) -> Result<Vec<TransactWriteItem>> {
        let keys = RunKeys::of(&t.run.id);
        let mut writes = Vec::new();
        for step in steps {
            writes.push(
                self.put(HashMap::from([
                    ("pk".into(), keys.pk()),
                    ("sk".into(), string(keys.step_sk(&step.id))),
                    ("position".into(), number(i64::from(step.position))),
                    ("status".into(), string(status_name(step)?)),
                    self.body_attribute("body", serde_json::to_string(step)?)
                        .await?,
                    ("ttl".into(), self.unfinished_ttl(self.clock.now_ms())),
                ]))?,
            );
        }
        for waiter in &t.waiters_added {
            // A `cancel_on` waiter has no expiry: it lasts as long as its run
            // may.
            let ttl = match waiter.expires_at {
                Some(expires) => number(expires / 1000 + WAITER_TTL_SECS),
                None => self.unfinished_ttl(waiter.registered_at),
            };
            writes.push(
                self.put(HashMap::from([
                    ("pk".into(), string(format!("WAIT#{}", waiter.event))),
                    (
                        "sk".into(),
                        string(format!("{}#{}", waiter.run_id, waiter.step_id)),
                    ),
                    self.body_attribute("body", serde_json::to_string(waiter)?)
                        .await?,
                    ("ttl".into(), ttl),
                ]))?,
            );
        }
        for key in &t.waiters_removed {
            let delete = Delete::builder()
                .table_name(self.table())
                .key("pk", string(format!("WAIT#{}", key.event)))
                .key("sk", string(format!("{}#{}", key.run_id, key.step_id)))
                .build()
                .map_err(|e| AwsError::Item(format!("delete: {e}")))?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(writes)
    }

    /// The run's own copy of its trigger event, unless it refers to the
    /// event's own record instead ([`Transition::event_recorded_at`]).
    async fn event_copy(&self, t: &Transition) -> Result<Option<TransactWriteItem>> {
        if t.event_recorded_at.is_some() {
            return Ok(None);
        }
        let keys = RunKeys::of(&t.run.id);
        self.put(HashMap::from([
            ("pk".into(), keys.pk()),
            ("sk".into(), string(keys.event_sk())),
            self.body_attribute("body", serde_json::to_string(&t.run.event)?)
                .await?,
            ("ttl".into(), self.unfinished_ttl(self.clock.now_ms())),
        ]))
        .map(Some)
    }

    /// The flow-control records of `t`, each conditional on the version read.
    fn flow_writes(&self, t: &Transition) -> Result<Vec<TransactWriteItem>> {
        t.flow.iter().map(|write| self.flow_item(write)).collect()
    }

    /// A flow-control record's put, conditional on the version read.
    fn flow_item(&self, write: &FlowWrite) -> Result<TransactWriteItem> {
        let version = i64::try_from(write.expect).unwrap_or(i64::MAX);
        let stored = write.stored_version(self.clock.now_ms());
        let mut put = Put::builder()
            .table_name(self.table())
            .item("pk", string(flow_pk(&write.key)))
            .item("sk", string("FC"))
            .item("version", number(i64::try_from(stored).unwrap_or(i64::MAX)))
            .item("body", string(serde_json::to_string(&write.state)?));
        let longest_run = self.config.retention.longest_run;
        if let Some(forget) = write.state.forget_after(self.clock.now_ms(), longest_run) {
            put = put.item("ttl", number(forget / 1000));
        }
        put = if write.expect == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#ver = :version")
                .expression_attribute_names("#ver", "version")
                .expression_attribute_values(":version", number(version))
        };
        let put = put
            .build()
            .map_err(|e| AwsError::Item(format!("put: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes one flow-control record on its own (one conditional `PutItem`).
    pub(super) async fn put_flow(
        &self,
        write: &FlowWrite,
    ) -> hookflow::Result<Result<(), Conflict>> {
        if self.transact(vec![self.flow_item(write)?]).await? {
            Ok(Ok(()))
        } else {
            Ok(Err(Conflict::FlowChanged))
        }
    }

    /// The creation-only writes: the trigger event's item (unless the run
    /// refers to its routed record) and the idempotency claim (conditional:
    /// free, lapsed, or already this run's).
    async fn creation_writes(&self, t: &Transition) -> Result<Vec<TransactWriteItem>> {
        let run = &t.run;
        let mut writes: Vec<_> = self.event_copy(t).await?.into_iter().collect();
        if let Some(claim) = &t.idempotency {
            let put = Put::builder()
                .table_name(self.table())
                .item(
                    "pk",
                    string(format!("IDEM#{}#{}", claim.function_id, claim.key)),
                )
                .item("sk", string("IDEM"))
                .item("run_id", string(&run.id))
                .item("expires_at", number(claim.expires_at))
                .item("ttl", number(claim.expires_at / 1000 + IDEM_TTL_GRACE_SECS))
                .condition_expression(
                    "attribute_not_exists(pk) OR expires_at <= :now OR run_id = :run",
                )
                .expression_attribute_values(":now", number(claim.now))
                .expression_attribute_values(":run", string(&run.id))
                .build()
                .map_err(|e| AwsError::Item(format!("put: {e}")))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(writes)
    }

    /// A transaction of one write as that single conditional write, which
    /// DynamoDB bills at half a transaction's price (same atomicity: one item).
    async fn write_one(&self, write: &TransactWriteItem) -> Option<hookflow::Result<bool>> {
        if let Some(put) = write.put() {
            let result = self
                .ddb()
                .put_item()
                .table_name(put.table_name())
                .set_item(Some(put.item().clone()))
                .set_condition_expression(put.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(put.expression_attribute_names().cloned())
                .set_expression_attribute_values(put.expression_attribute_values().cloned())
                .send()
                .await;
            return Some(super::conditional(result));
        }
        if let Some(update) = write.update() {
            let result = self
                .ddb()
                .update_item()
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .send()
                .await;
            return Some(super::conditional(result));
        }
        None
    }

    /// Runs one transaction; `Ok(false)` when a condition failed.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> hookflow::Result<bool> {
        if let [write] = writes.as_slice()
            && let Some(result) = self.write_one(write).await
        {
            return result;
        }
        let mut attempt = 0;
        loop {
            let result = self
                .ddb()
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            let Err(err) = result else {
                return Ok(true);
            };
            let reasons: Vec<String> = err
                .as_service_error()
                .and_then(|e| match e {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or_default().to_owned())
                            .collect(),
                    ),
                    _ => None,
                })
                .unwrap_or_default();
            if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                return Ok(false);
            }
            let collided = reasons.iter().any(|r| r == "TransactionConflict")
                || err.as_service_error().is_some_and(|e| {
                    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e)
                        == Some("TransactionInProgressException")
                });
            attempt += 1;
            if !collided || attempt >= CONFLICT_ATTEMPTS {
                return Err(ddb(err).into());
            }
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        }
    }

    /// Which condition of `t` failed, from a fresh read.
    async fn diagnose(&self, t: &Transition) -> hookflow::Result<Conflict> {
        for write in &t.flow {
            let version = self
                .flow_get(&write.key)
                .await?
                .map_or(0, |record| record.version);
            if version != write.expect {
                return Ok(Conflict::FlowChanged);
            }
        }
        for other in &t.also_create {
            if self.run_item(&other.id).await?.is_some() {
                return Ok(Conflict::Exists);
            }
        }
        let item = self.run_item(&t.run.id).await?;
        if t.fence == Fence::Create {
            if item.is_some() {
                return Ok(Conflict::Exists);
            }
            if let Some(claim) = &t.idempotency {
                let out = self
                    .ddb()
                    .get_item()
                    .table_name(self.table())
                    .key(
                        "pk",
                        string(format!("IDEM#{}#{}", claim.function_id, claim.key)),
                    )
                    .key("sk", string("IDEM"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(ddb)?;
                if let Some(idem) = out.item() {
                    return Ok(Conflict::KeyTaken {
                        run_id: get_s(idem, "run_id")?.to_owned(),
                    });
                }
            }
            return Err(hookflow::Error::Conflict(
                "a run's creation was refused for no visible reason; retry".into(),
            ));
        }
        let Some(item) = item else {
            return Ok(Conflict::Missing);
        };
        let status = RunStatus::parse(get_s(&item, "status")?).unwrap_or(RunStatus::Queued);
        let token = match item.get("lease_token") {
            Some(AttributeValue::S(token)) => Some(token.as_str()),
            _ => None,
        };
        let until = get_n(&item, "lease_until").unwrap_or(0);
        let version = get_n(&item, "version").unwrap_or(0);
        let cancel = match item.get("cancel_requested") {
            Some(AttributeValue::S(reason)) => Some(reason.clone()),
            _ => None,
        };
        Ok(match &t.fence {
            Fence::Create => Conflict::Exists,
            Fence::Acquire { .. } | Fence::Begin { .. } if status.is_terminal() => {
                Conflict::Finished
            }
            Fence::Acquire { version: read, .. } | Fence::Begin { version: read, .. }
                if i64::try_from(*read).ok() != Some(version) =>
            {
                Conflict::Changed
            }
            Fence::Begin { now, .. } if token.is_none() || until <= *now => match cancel {
                Some(reason) => Conflict::CancelRequested(reason),
                None => Conflict::Leased,
            },
            Fence::Acquire { .. } | Fence::Begin { .. } => Conflict::Leased,
            Fence::Hold { token: mine, now } | Fence::HoldCancelling { token: mine, now } => {
                if token != Some(mine.as_str()) || until <= *now {
                    Conflict::LeaseLost
                } else if let (Fence::Hold { .. }, Some(reason)) = (&t.fence, cancel) {
                    Conflict::CancelRequested(reason)
                } else {
                    Conflict::LeaseLost
                }
            }
        })
    }

    /// Commits `t` as one transaction (in fenced parts when it is too large).
    pub(super) async fn commit_transition(
        &self,
        t: &Transition,
    ) -> hookflow::Result<Result<Committed, Conflict>> {
        // Each step's record goes on the run item or in an item of its own.
        let mut inline = Vec::new();
        let mut own_items = Vec::new();
        for step in &t.steps {
            match inline::encode(step)? {
                Some(text) => inline.push((inline::name(step.position), text)),
                None => own_items.push(step),
            }
        }
        // Only a step that may be kept on the run item can have a record
        // there to remove (and a long REMOVE list could pass the update
        // expression's 4 KB limit).
        let uninlined = own_items
            .iter()
            .filter(|step| inline::may_inline(step.position))
            .map(|step| inline::name(step.position))
            .collect();
        let mut records = self.record_writes(t, &own_items).await?;
        if t.fence == Fence::Create {
            records.extend(self.creation_writes(t).await?);
        } else if t.replaces_event {
            records.extend(self.event_copy(t).await?);
        }
        for other in &t.also_create {
            // The skipped run of the event being routed refers to its record
            // too, when there is one.
            let mut created = Transition::new(Fence::Create, other.clone());
            created.event_recorded_at = t.event_recorded_at;
            records.push(self.run_write(&created, Vec::new(), Vec::new()).await?);
            records.extend(self.event_copy(&created).await?);
        }
        let flow = self.flow_writes(t)?;
        if (!flow.is_empty() || !t.also_create.is_empty())
            && records.len() + flow.len() >= MAX_TRANSACTION_ITEMS
        {
            return Err(hookflow::Error::TooLarge(
                "a transition with flow-control records must fit one transaction".into(),
            ));
        }
        records.extend(flow);
        // Too many items or bytes for one transaction: commit the leading
        // records first, each part fenced like the whole; the run item goes
        // last, so the run changes only once everything else is written.
        let run_write = self.run_write(t, inline, uninlined).await?;
        let last_room = TRANSACTION_BYTES.saturating_sub(write_size(&run_write));
        while records.len() >= MAX_TRANSACTION_ITEMS || total_size(&records) > last_room {
            if t.fence == Fence::Create {
                return Err(hookflow::Error::TooLarge(format!(
                    "a new run may write at most {} records and {TRANSACTION_BYTES} bytes at once",
                    MAX_TRANSACTION_ITEMS - 1
                )));
            }
            let mut cut = 0;
            let mut bytes = 0;
            while cut < records.len()
                && cut < MAX_TRANSACTION_ITEMS - 1
                && bytes + write_size(&records[cut]) <= TRANSACTION_BYTES
            {
                bytes += write_size(&records[cut]);
                cut += 1;
            }
            let rest = records.split_off(cut.max(1));
            let mut part = std::mem::replace(&mut records, rest);
            part.push(self.fence_check(t)?);
            if !self.transact(part).await? {
                return Ok(Err(self.diagnose(t).await?));
            }
        }
        records.push(run_write);
        if !self.transact(records).await? {
            return Ok(Err(self.diagnose(t).await?));
        }
        Ok(Ok(Committed {
            undelivered: t.outbox.clone(),
        }))
    }
}
