//! Committing a transition on DynamoDB: one `TransactWriteItems` whose run
//! item carries the fence as its condition (or, when the run item is the only
//! write, one conditional write at half the price), the run's outbox kept on
//! the run item. A transition over DynamoDB's limits (100 items, 4 MB) is
//! committed in parts, each fenced with a `ConditionCheck`, the run item last.
//! A refused commit is diagnosed from a fresh read of the run.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use hookflow::flow::FlowWrite;
use hookflow::run::{RunStatus, StepRecord};
use hookflow::store::FlowStore;
use hookflow::transition::{Committed, Conflict, Fence, Outgoing, Transition};

use super::runs::{run_pk, status_index_key, time_key};
use super::{AwsStore, Item, expires, get_n, get_s, number, routed_key, string};
use super::{inline, packed};
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
/// What the run item holds as attributes of their own, left out of its body.
pub(super) const RUN_ATTRIBUTES: [&str; 4] = ["id", "function_id", "status", "created_at"];

/// The run's body as its item keeps it: without what the item holds as
/// attributes of their own (the item is billed by the KB on every update).
fn item_body(run: &hookflow::Run) -> Result<String> {
    let mut fields = run.stored_fields()?;
    for name in RUN_ATTRIBUTES {
        fields.remove(name);
    }
    Ok(serde_json::Value::Object(fields).to_string())
}

pub(super) const TERMINAL: [&str; 4] = ["completed", "failed", "cancelled", "skipped"];

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

/// The condition a fence puts on the run item (with its names and values).
struct Condition {
    expression: String,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

fn fence_condition(fence: &Fence) -> Condition {
    let terminal = || {
        vec![
            (":completed", string(TERMINAL[0])),
            (":failed", string(TERMINAL[1])),
            (":cancelled", string(TERMINAL[2])),
            (":skipped", string(TERMINAL[3])),
        ]
    };
    match fence {
        Fence::Create => Condition {
            expression: "attribute_not_exists(pk)".into(),
            names: Vec::new(),
            values: Vec::new(),
        },
        Fence::Acquire { now, version } | Fence::Begin { now, version } => {
            let mut values = terminal();
            values.push((":now", number(*now)));
            values.push((":version", number(i64::try_from(*version).unwrap_or(i64::MAX))));
            let mut expression = "attribute_exists(pk) AND NOT (#status IN (:completed, :failed, :cancelled, :skipped)) \
                                  AND #ver = :version \
                                  AND (attribute_not_exists(lease_token) OR lease_until <= :now)"
                .to_owned();
            if matches!(fence, Fence::Begin { .. }) {
                expression.push_str(" AND attribute_not_exists(cancel_requested)");
            }
            Condition {
                expression,
                names: vec![("#status", "status"), ("#ver", "version")],
                values,
            }
        }
        Fence::Hold { token, now } => Condition {
            expression: "lease_token = :token AND lease_until > :now AND attribute_not_exists(cancel_requested)".into(),
            names: Vec::new(),
            values: vec![(":token", string(token)), (":now", number(*now))],
        },
        Fence::HoldCancelling { token, now } => Condition {
            expression: "lease_token = :token AND lease_until > :now".into(),
            names: Vec::new(),
            values: vec![(":token", string(token)), (":now", number(*now))],
        },
    }
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

    /// The run item's write: a conditional Put for a new run, a conditional
    /// Update otherwise (so a cancellation request written meanwhile is kept),
    /// carrying the `inline` step records (attribute name, encoded record)
    /// and removing the attributes `uninlined` of steps whose record this
    /// transition writes as an item of its own.
    async fn run_write(
        &self,
        t: &Transition,
        inline: Vec<(String, String)>,
        uninlined: Vec<String>,
    ) -> Result<TransactWriteItem> {
        let run = &t.run;
        let condition = fence_condition(&t.fence);
        // The body is compressed however short (or its S3 key is bytes), so
        // that a reader from before compression fails on the item instead
        // of skipping the compressed records beside it (see `packed`).
        let (body_name, body) = self
            .body_attribute_as("body", item_body(run)?, |text| packed::packed_always(&text))
            .await?;
        let inline: Vec<(String, AttributeValue)> = inline
            .into_iter()
            .map(|(name, text)| (name, packed::pack(text)))
            .collect();
        let stored: Vec<Outgoing> = t
            .outbox
            .iter()
            .chain(&t.keep_pending)
            .map(Outgoing::as_kept)
            .collect();
        let outbox = if stored.is_empty() {
            None
        } else {
            Some(
                self.body_attribute("outbox", serde_json::to_string(&stored)?)
                    .await?,
            )
        };
        if t.fence == Fence::Create {
            let mut item: Item = HashMap::from([
                ("pk".into(), run_pk(&run.id)),
                ("sk".into(), string("RUN")),
                ("function_id".into(), string(&run.function_id)),
                ("status".into(), string(run.status.as_str())),
                ("created_at".into(), number(run.created_at)),
                (body_name, body),
                ("lease_until".into(), number(0)),
                ("version".into(), number(0)),
                ("gsi1pk".into(), string(format!("FN#{}", run.function_id))),
                ("gsi1sk".into(), string(time_key(run))),
                ("ttl".into(), self.run_ttl(run)),
            ]);
            if let Some(key) = status_index_key(run) {
                item.insert("gsi2pk".into(), string(key));
                item.insert("gsi2sk".into(), string(time_key(run)));
            }
            if let Some((name, outbox)) = outbox {
                item.insert(name, outbox);
            }
            if let Some(at) = t.event_recorded_at {
                let (pk, sk) = routed_key(&run.event.name, at, &run.event.id);
                item.insert("event_pk".into(), string(pk));
                item.insert("event_sk".into(), string(sk));
            }
            item.extend(inline);
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
            "lease_until = :until".to_owned(),
            "#ver = #ver + :one".to_owned(),
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
            .key("sk", string("RUN"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ver", "version")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":status", string(run.status.as_str()))
            .expression_attribute_values(":body", body);
        // The status index holds only failed and cancelled runs; no other
        // update touches an index key (a run item written before that, in
        // the index under any status, leaves it at its next update).
        match status_index_key(run) {
            Some(key) => {
                set.push("gsi2pk = :gsi2pk, gsi2sk = :gsi2sk".to_owned());
                update = update
                    .expression_attribute_values(":gsi2pk", string(key))
                    .expression_attribute_values(":gsi2sk", string(time_key(run)));
            }
            None => remove.extend(["gsi2pk".to_owned(), "gsi2sk".to_owned()]),
        }
        match &run.lease {
            Some(lease) => {
                set.push("lease_token = :lease".to_owned());
                update = update
                    .expression_attribute_values(":lease", string(&lease.token))
                    .expression_attribute_values(":until", number(lease.until));
            }
            None => {
                remove.push("lease_token".to_owned());
                update = update.expression_attribute_values(":until", number(0));
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
        remove.extend(
            uninlined
                .into_iter()
                .filter(|name| inline.iter().all(|(set, _)| set != name)),
        );
        if t.replaces_event {
            match t.event_recorded_at {
                // It refers to the new event's routed record instead (which
                // wins over any copy of an earlier event in its partition).
                Some(at) => {
                    let (pk, sk) = routed_key(&run.event.name, at, &run.event.id);
                    set.push("event_pk = :event_pk, event_sk = :event_sk".to_owned());
                    update = update
                        .expression_attribute_values(":event_pk", string(pk))
                        .expression_attribute_values(":event_sk", string(sk));
                }
                // Its own copy of the new event, written in this commit,
                // replaces the routed record it referred to.
                None => remove.extend(["event_pk".to_owned(), "event_sk".to_owned()]),
            }
        }
        // Every update renews it: a finished run's retention, or (for one
        // still going) the longest a run may live from now.
        set.push("#ttl = :ttl".to_owned());
        update = update
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", self.run_ttl(run));
        for (i, (name, record)) in inline.into_iter().enumerate() {
            set.push(format!("{name} = :j{i}"));
            update = update.expression_attribute_values(format!(":j{i}"), record);
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
            .key("sk", string("RUN"))
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

    /// Every item of `t` but the run item (and, on creation, what goes with
    /// it): the `steps` kept as items of their own, the waiters.
    async fn record_writes(
        &self,
        t: &Transition,
        steps: &[&StepRecord],
    ) -> Result<Vec<TransactWriteItem>> {
        let run_id = &t.run.id;
        let mut writes = Vec::new();
        for step in steps {
            writes.push(
                self.put(HashMap::from([
                    ("pk".into(), run_pk(run_id)),
                    ("sk".into(), string(format!("STEP#{}", step.id))),
                    ("position".into(), number(i64::from(step.position))),
                    ("status".into(), string(status_name(step)?)),
                    self.body_attribute("body", serde_json::to_string(step)?)
                        .await?,
                    ("ttl".into(), self.unfinished_ttl(self.clock.now_ms())),
                ]))?,
            );
        }
        for waiter in &t.waiters_added {
            let expires = waiter.expires_at.unwrap_or(waiter.registered_at);
            writes.push(
                self.put(HashMap::from([
                    ("pk".into(), string(format!("WAIT#{}", waiter.event))),
                    (
                        "sk".into(),
                        string(format!("{}#{}", waiter.run_id, waiter.step_id)),
                    ),
                    self.body_attribute("body", serde_json::to_string(waiter)?)
                        .await?,
                    ("ttl".into(), number(expires / 1000 + WAITER_TTL_SECS)),
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

    /// The TTL of an item an unfinished run writes at `at_ms`: it outlives
    /// the longest a run may live, plus the finished runs' retention, so no
    /// run loses a record while it runs and storage stays bounded (its step
    /// and event items are not rewritten when it ends: that would cost a
    /// write per item per run).
    pub(super) fn unfinished_ttl(&self, at_ms: i64) -> AttributeValue {
        let r = &self.config.retention;
        expires(at_ms, r.longest_run + r.runs)
    }

    /// The run item's TTL: a finished run (completed, failed, cancelled,
    /// or skipped at creation) is kept for the runs' retention from its end;
    /// one still going as long as a run may live from now.
    fn run_ttl(&self, run: &hookflow::Run) -> AttributeValue {
        if run.status.is_terminal() {
            let ended = run.ended_at.unwrap_or_else(|| self.clock.now_ms());
            expires(ended, self.config.retention.runs)
        } else {
            self.unfinished_ttl(self.clock.now_ms())
        }
    }

    /// The run's own copy of its trigger event, unless it refers to the
    /// event's routed record instead ([`Transition::event_recorded_at`]).
    async fn event_copy(&self, t: &Transition) -> Result<Option<TransactWriteItem>> {
        if t.event_recorded_at.is_some() {
            return Ok(None);
        }
        self.put(HashMap::from([
            ("pk".into(), run_pk(&t.run.id)),
            ("sk".into(), string("EVENT")),
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
