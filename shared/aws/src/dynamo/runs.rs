//! Runs on DynamoDB: every transition is one `TransactWriteItems` whose run
//! item carries the fence as its condition, and whose outbox is kept on the
//! run item until the run's next transition replaces it.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | run | `RUN#{id}` | `RUN`: state (no event), lease, cancellation request, outbox |
//! | trigger event | `RUN#{id}` | `EVENT`: written once, at creation |
//! | step | `RUN#{id}` | `STEP#{step id}` |
//! | idempotency key | `IDEM#{function}#{key}` | `IDEM` |
//!
//! One consistent Query of `RUN#{id}` loads a run with its event and journal.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use hookflow::run::{Envelope, Lease, Message, Run, RunStatus, StepRecord, Target};
use hookflow::store::{LoadedRun, Outbox, RunFilter, RunStore};
use hookflow::transition::{Committed, Conflict, Fence, Outgoing, Transition};

use super::{AwsStore, HfResult, Item, condition_failed, get_n, get_s, n, s};
use crate::error::{AwsError, Result, ddb};

/// How long idempotency items outlive their expiry before TTL removes them.
const IDEM_TTL_GRACE_SECS: i64 = 86_400;
/// How long waiter items outlive their expiry (`cancel_on` waiters have none: 90 days).
const WAITER_TTL_SECS: i64 = 90 * 86_400;
/// DynamoDB's limit of items per transaction.
pub(crate) const MAX_TRANSACTION_ITEMS: usize = 100;
/// Bytes we let one transaction carry (DynamoDB's limit is 4 MB).
const TRANSACTION_BYTES: usize = 3_500_000;
/// Attempts when a transaction collides with another on the same items.
const CONFLICT_ATTEMPTS: u32 = 5;

const TERMINAL: [&str; 3] = ["completed", "failed", "cancelled"];

pub(crate) fn run_pk(id: &str) -> AttributeValue {
    s(format!("RUN#{id}"))
}

fn time_key(run: &Run) -> String {
    format!("{:015}#{}", run.created_at, run.id)
}

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
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
                    _ => 8,
                }
        })
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

/// The condition a fence puts on the run item (with its names and values).
struct Condition {
    expression: String,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

fn fence_condition(fence: &Fence) -> Condition {
    let terminal = || {
        vec![
            (":completed", s(TERMINAL[0])),
            (":failed", s(TERMINAL[1])),
            (":cancelled", s(TERMINAL[2])),
        ]
    };
    match fence {
        Fence::Create => Condition {
            expression: "attribute_not_exists(pk)".into(),
            names: Vec::new(),
            values: Vec::new(),
        },
        Fence::Acquire { now } => {
            let mut values = terminal();
            values.push((":now", n(*now)));
            Condition {
                expression: "attribute_exists(pk) AND NOT (#status IN (:completed, :failed, :cancelled)) \
                             AND (attribute_not_exists(lease_token) OR lease_until <= :now)"
                    .into(),
                names: vec![("#status", "status")],
                values,
            }
        }
        Fence::Hold { token, now } => Condition {
            expression: "lease_token = :token AND lease_until > :now AND attribute_not_exists(cancel_requested)".into(),
            names: Vec::new(),
            values: vec![(":token", s(token)), (":now", n(*now))],
        },
        Fence::HoldCancelling { token, now } => Condition {
            expression: "lease_token = :token AND lease_until > :now".into(),
            names: Vec::new(),
            values: vec![(":token", s(token)), (":now", n(*now))],
        },
    }
}

impl AwsStore {
    /// A run from its item and its trigger event's item.
    async fn run_of(&self, item: &Item, event: &Item) -> Result<Run> {
        let body = self
            .read_body(item, "body")
            .await?
            .ok_or_else(|| AwsError::Item("run item without a body".into()))?;
        let mut run = Run::from_stored(&body, self.decode(event, "body").await?)?;
        run.lease = match item.get("lease_token") {
            Some(AttributeValue::S(token)) => Some(Lease {
                token: token.clone(),
                until: get_n(item, "lease_until")?,
            }),
            _ => None,
        };
        run.cancel_requested = match item.get("cancel_requested") {
            Some(AttributeValue::S(reason)) => Some(reason.clone()),
            _ => None,
        };
        Ok(run)
    }

    async fn outbox_of(&self, item: &Item) -> Result<Vec<Outgoing>> {
        match self.read_body(item, "outbox").await? {
            Some(text) => Ok(serde_json::from_str(&text)?),
            None => Ok(Vec::new()),
        }
    }

    fn put(&self, item: Item) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .build()
            .map_err(|e| AwsError::Item(format!("put: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The run item's write: a conditional Put for a new run, a conditional
    /// Update otherwise (so a cancellation request written meanwhile is kept).
    async fn run_write(&self, t: &Transition) -> Result<TransactWriteItem> {
        let run = &t.run;
        let condition = fence_condition(&t.fence);
        let outbox = if t.outbox.is_empty() {
            None
        } else {
            Some(
                self.body_attribute("outbox", serde_json::to_string(&t.outbox)?)
                    .await?,
            )
        };
        let (body_name, body) = self.body_attribute("body", run.stored_body()?).await?;
        if t.fence == Fence::Create {
            let mut item: Item = HashMap::from([
                ("pk".into(), run_pk(&run.id)),
                ("sk".into(), s("RUN")),
                ("function_id".into(), s(&run.function_id)),
                ("status".into(), s(run.status.as_str())),
                ("created_at".into(), n(run.created_at)),
                (body_name, body),
                ("lease_until".into(), n(0)),
                ("gsi1pk".into(), s(format!("FN#{}", run.function_id))),
                ("gsi1sk".into(), s(time_key(run))),
                (
                    "gsi2pk".into(),
                    s(format!("FS#{}#{}", run.function_id, run.status.as_str())),
                ),
                ("gsi2sk".into(), s(time_key(run))),
            ]);
            if let Some((name, outbox)) = outbox {
                item.insert(name, outbox);
            }
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression(condition.expression)
                .build()
                .map_err(|e| AwsError::Item(format!("put: {e}")))?;
            return Ok(TransactWriteItem::builder().put(put).build());
        }
        let mut set = vec![
            "#status = :status".to_owned(),
            format!("{body_name} = :body"),
            "gsi2pk = :gsi2pk".to_owned(),
            "lease_until = :until".to_owned(),
        ];
        let mut remove = vec![
            if body_name == "body" {
                "body_blob"
            } else {
                "body"
            }
            .to_owned(),
        ];
        let mut update = Update::builder()
            .table_name(self.table())
            .key("pk", run_pk(&run.id))
            .key("sk", s("RUN"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(run.status.as_str()))
            .expression_attribute_values(":body", body)
            .expression_attribute_values(
                ":gsi2pk",
                s(format!("FS#{}#{}", run.function_id, run.status.as_str())),
            );
        match &run.lease {
            Some(lease) => {
                set.push("lease_token = :lease".to_owned());
                update = update
                    .expression_attribute_values(":lease", s(&lease.token))
                    .expression_attribute_values(":until", n(lease.until));
            }
            None => {
                remove.push("lease_token".to_owned());
                update = update.expression_attribute_values(":until", n(0));
            }
        }
        match outbox {
            Some((name, outbox)) => {
                remove.push(
                    if name == "outbox" {
                        "outbox_blob"
                    } else {
                        "outbox"
                    }
                    .to_owned(),
                );
                set.push(format!("{name} = :outbox"));
                update = update.expression_attribute_values(":outbox", outbox);
            }
            None => remove.extend(["outbox".to_owned(), "outbox_blob".to_owned()]),
        }
        if run.status.is_terminal() {
            remove.push("cancel_requested".to_owned());
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        update = update
            .update_expression(expression)
            .condition_expression(condition.expression);
        for (name, value) in condition.names {
            update = update.expression_attribute_names(name, value);
        }
        for (name, value) in condition.values {
            update = update.expression_attribute_values(name, value);
        }
        let update = update
            .build()
            .map_err(|e| AwsError::Item(format!("update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A check of the fence alone, for the leading parts of a transition too
    /// large for one transaction.
    fn fence_check(&self, t: &Transition) -> Result<TransactWriteItem> {
        let condition = fence_condition(&t.fence);
        let mut check = ConditionCheck::builder()
            .table_name(self.table())
            .key("pk", run_pk(&t.run.id))
            .key("sk", s("RUN"))
            .condition_expression(condition.expression);
        for (name, value) in condition.names {
            check = check.expression_attribute_names(name, value);
        }
        for (name, value) in condition.values {
            check = check.expression_attribute_values(name, value);
        }
        let check = check
            .build()
            .map_err(|e| AwsError::Item(format!("condition check: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Every item of `t` but the run item (and, on creation, what goes with it).
    async fn record_writes(&self, t: &Transition) -> Result<Vec<TransactWriteItem>> {
        let run_id = &t.run.id;
        let mut writes = Vec::new();
        for step in &t.steps {
            writes.push(
                self.put(HashMap::from([
                    ("pk".into(), run_pk(run_id)),
                    ("sk".into(), s(format!("STEP#{}", step.id))),
                    ("position".into(), n(i64::from(step.position))),
                    ("status".into(), s(status_name(step)?)),
                    self.body_attribute("body", serde_json::to_string(step)?)
                        .await?,
                ]))?,
            );
        }
        for waiter in &t.waiters_added {
            let expires = waiter.expires_at.unwrap_or(waiter.registered_at);
            writes.push(
                self.put(HashMap::from([
                    ("pk".into(), s(format!("WAIT#{}", waiter.event))),
                    (
                        "sk".into(),
                        s(format!("{}#{}", waiter.run_id, waiter.step_id)),
                    ),
                    self.body_attribute("body", serde_json::to_string(waiter)?)
                        .await?,
                    ("ttl".into(), n(expires / 1000 + WAITER_TTL_SECS)),
                ]))?,
            );
        }
        for key in &t.waiters_removed {
            let delete = Delete::builder()
                .table_name(self.table())
                .key("pk", s(format!("WAIT#{}", key.event)))
                .key("sk", s(format!("{}#{}", key.run_id, key.step_id)))
                .build()
                .map_err(|e| AwsError::Item(format!("delete: {e}")))?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(writes)
    }

    /// The creation-only writes: the trigger event's item and the
    /// idempotency claim (conditional: free, lapsed, or already this run's).
    async fn creation_writes(&self, t: &Transition) -> Result<Vec<TransactWriteItem>> {
        let run = &t.run;
        let mut writes = vec![
            self.put(HashMap::from([
                ("pk".into(), run_pk(&run.id)),
                ("sk".into(), s("EVENT")),
                self.body_attribute("body", serde_json::to_string(&run.event)?)
                    .await?,
            ]))?,
        ];
        if let Some(claim) = &t.idempotency {
            let put = Put::builder()
                .table_name(self.table())
                .item("pk", s(format!("IDEM#{}#{}", claim.function_id, claim.key)))
                .item("sk", s("IDEM"))
                .item("run_id", s(&run.id))
                .item("expires_at", n(claim.expires_at))
                .item("ttl", n(claim.expires_at / 1000 + IDEM_TTL_GRACE_SECS))
                .condition_expression(
                    "attribute_not_exists(pk) OR expires_at <= :now OR run_id = :run",
                )
                .expression_attribute_values(":now", n(claim.now))
                .expression_attribute_values(":run", s(&run.id))
                .build()
                .map_err(|e| AwsError::Item(format!("put: {e}")))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(writes)
    }

    /// A transaction of one write as that single conditional write, which
    /// DynamoDB bills at half a transaction's price (same atomicity: one item).
    async fn write_one(&self, write: &TransactWriteItem) -> Option<HfResult<bool>> {
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
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> HfResult<bool> {
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
    async fn diagnose(&self, t: &Transition) -> HfResult<Conflict> {
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
                    .key("pk", s(format!("IDEM#{}#{}", claim.function_id, claim.key)))
                    .key("sk", s("IDEM"))
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
        let cancel = match item.get("cancel_requested") {
            Some(AttributeValue::S(reason)) => Some(reason.clone()),
            _ => None,
        };
        Ok(match &t.fence {
            Fence::Create => Conflict::Exists,
            Fence::Acquire { .. } if status.is_terminal() => Conflict::Finished,
            Fence::Acquire { .. } => Conflict::Leased,
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

    async fn run_item(&self, id: &str) -> Result<Option<Item>> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key("pk", run_pk(id))
            .key("sk", s("RUN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        Ok(out.item().cloned())
    }

    /// The items of a run's partition whose sort key is at most `last`
    /// (`RUN` gives the event and the run; `STEP$` adds every step).
    async fn run_partition(&self, id: &str, last: &str) -> Result<Vec<Item>> {
        self.query_partition(run_pk(id), Some(last)).await
    }

    /// Runs (with their trigger events) for run items found by a listing.
    async fn with_events(&self, items: &[Item]) -> Result<Vec<Run>> {
        let mut events: HashMap<String, Item> = HashMap::new();
        for chunk in items.chunks(100) {
            let mut keys = KeysAndAttributes::builder().consistent_read(false);
            for item in chunk {
                let pk = get_s(item, "pk")?;
                keys = keys.keys(HashMap::from([
                    ("pk".into(), s(pk)),
                    ("sk".into(), s("EVENT")),
                ]));
            }
            let mut request = Some(HashMap::from([(
                self.table().to_owned(),
                keys.build()
                    .map_err(|e| AwsError::Item(format!("batch get: {e}")))?,
            )]));
            while let Some(pending) = request.take().filter(|r| !r.is_empty()) {
                let out = self
                    .ddb()
                    .batch_get_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(ddb)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(self.table()))
                    .into_iter()
                    .flatten()
                {
                    events.insert(get_s(item, "pk")?.to_owned(), item.clone());
                }
                request = out.unprocessed_keys().cloned();
            }
        }
        let mut runs = Vec::with_capacity(items.len());
        for item in items {
            if let Some(event) = events.get(get_s(item, "pk")?) {
                runs.push(self.run_of(item, event).await?);
            }
        }
        Ok(runs)
    }
}

impl RunStore for AwsStore {
    async fn load_run(&self, id: &str) -> HfResult<Option<LoadedRun>> {
        let items = self.run_partition(id, "STEP$").await?;
        let find = |sk: &str| {
            items
                .iter()
                .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(v)) if v == sk))
        };
        let (Some(item), Some(event)) = (find("RUN"), find("EVENT")) else {
            return Ok(None);
        };
        let mut journal: Vec<StepRecord> = Vec::new();
        for step in items
            .iter()
            .filter(|i| matches!(i.get("sk"), Some(AttributeValue::S(v)) if v.starts_with("STEP#")))
        {
            journal.push(self.decode(step, "body").await?);
        }
        journal.sort_by_key(|step| step.position);
        Ok(Some(LoadedRun {
            run: self.run_of(item, event).await?,
            journal,
            undelivered: self.outbox_of(item).await?,
        }))
    }

    async fn get_run(&self, id: &str) -> HfResult<Option<Run>> {
        let items = self.run_partition(id, "RUN").await?;
        let find = |sk: &str| {
            items
                .iter()
                .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(v)) if v == sk))
        };
        match (find("RUN"), find("EVENT")) {
            (Some(item), Some(event)) => Ok(Some(self.run_of(item, event).await?)),
            _ => Ok(None),
        }
    }

    async fn commit(&self, t: &Transition) -> HfResult<Result<Committed, Conflict>> {
        let mut records = self.record_writes(t).await?;
        if t.fence == Fence::Create {
            records.extend(self.creation_writes(t).await?);
        }
        // Too many items or bytes for one transaction: commit the leading
        // records first, each part fenced like the whole; the run item goes
        // last, so the run changes only once everything else is written.
        let run_write = self.run_write(t).await?;
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

    async fn extend_lease(
        &self,
        run_id: &str,
        token: &str,
        now: i64,
        until: i64,
    ) -> HfResult<Result<(), Conflict>> {
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", run_pk(run_id))
            .key("sk", s("RUN"))
            .update_expression("SET lease_until = :until")
            .condition_expression("lease_token = :token AND lease_until > :now")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(
                match out.attributes().and_then(|a| a.get("cancel_requested")) {
                    Some(AttributeValue::S(reason)) => {
                        Err(Conflict::CancelRequested(reason.clone()))
                    }
                    _ => Ok(()),
                },
            ),
            Err(err) if condition_failed(&err) => Ok(Err(Conflict::LeaseLost)),
            Err(err) => Err(ddb(err).into()),
        }
    }

    async fn request_cancel(
        &self,
        run_id: &str,
        function_id: &str,
        reason: &str,
    ) -> HfResult<bool> {
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", run_pk(run_id))
            .key("sk", s("RUN"))
            .update_expression("SET cancel_requested = if_not_exists(cancel_requested, :reason)")
            .condition_expression(
                "attribute_exists(pk) AND NOT (#status IN (:completed, :failed, :cancelled))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":completed", s(TERMINAL[0]))
            .expression_attribute_values(":failed", s(TERMINAL[1]))
            .expression_attribute_values(":cancelled", s(TERMINAL[2]))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(err) if condition_failed(&err) => return Ok(false),
            Err(err) => return Err(ddb(err).into()),
        }
        let cancel = Envelope::new(
            Target::Function(function_id.to_owned()),
            Message::Cancel {
                run_id: run_id.to_owned(),
                reason: reason.to_owned(),
            },
        );
        self.deliver(&[Outgoing::Send { envelope: cancel }]).await?;
        Ok(true)
    }

    async fn list_runs(&self, filter: &RunFilter) -> HfResult<Vec<Run>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let index = match (&filter.function_id, filter.status) {
            (Some(f), Some(status)) => {
                Some(("gsi2", "gsi2pk", format!("FS#{f}#{}", status.as_str())))
            }
            (Some(f), None) => Some(("gsi1", "gsi1pk", format!("FN#{f}"))),
            (None, _) => None,
        };
        let mut items: Vec<Item> = Vec::new();
        if let Some((index, key, value)) = index {
            let mut start = None;
            loop {
                let out = self
                    .ddb()
                    .query()
                    .table_name(self.table())
                    .index_name(index)
                    .key_condition_expression(format!("{key} = :v"))
                    .expression_attribute_values(":v", s(value.clone()))
                    .scan_index_forward(false)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(ddb)?;
                items.extend(out.items().iter().cloned());
                start = out.last_evaluated_key().cloned();
                if start.is_none() || items.len() >= limit {
                    break;
                }
            }
        } else {
            // No function given: an administrative scan of run items (by pk
            // prefix too, so a document keyed `RUN` is not taken for a run).
            let mut start = None;
            loop {
                let mut scan = self
                    .ddb()
                    .scan()
                    .table_name(self.table())
                    .filter_expression("sk = :run AND begins_with(pk, :prefix)")
                    .expression_attribute_values(":run", s("RUN"))
                    .expression_attribute_values(":prefix", s("RUN#"))
                    .set_exclusive_start_key(start);
                if let Some(status) = filter.status {
                    scan = scan
                        .filter_expression(
                            "sk = :run AND begins_with(pk, :prefix) AND #status = :status",
                        )
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":status", s(status.as_str()));
                }
                let out = scan.send().await.map_err(ddb)?;
                items.extend(out.items().iter().cloned());
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
            let key = |item: &Item| {
                (
                    get_n(item, "created_at").unwrap_or(0),
                    get_s(item, "pk").map(str::to_owned).unwrap_or_default(),
                )
            };
            items.sort_by_key(|item| std::cmp::Reverse(key(item)));
        }
        items.truncate(limit);
        Ok(self.with_events(&items).await?)
    }
}
