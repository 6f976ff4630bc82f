//! The run item's write in a commit: the fence as its condition, its body
//! (compressed, see `packed`), its step records, outbox, lease, index keys
//! and TTL; and the fence alone, for a commit made in parts.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use hookflow::transition::{Fence, Outgoing, Transition};

use super::run_keys::RunKeys;
use super::runs::{status_index_key, time_key};
use super::{AwsStore, Item, event_pk, expires, expiry_secs, number, packed, string};
use crate::error::{AwsError, Result};

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

impl AwsStore {
    /// The run item's write: a conditional Put for a new run, a conditional
    /// Update otherwise (so a cancellation request written meanwhile is kept),
    /// carrying the `inline` step records (attribute name, encoded record)
    /// and removing the attributes `uninlined` of steps whose record this
    /// transition writes as an item of its own.
    pub(super) async fn run_write(
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
        let keys = RunKeys::of(&run.id);
        if t.fence == Fence::Create {
            let mut item: Item = HashMap::from([
                ("pk".into(), keys.pk()),
                ("sk".into(), string(keys.run_sk())),
                ("function_id".into(), string(&run.function_id)),
                ("status".into(), string(run.status.as_str())),
                ("created_at".into(), number(run.created_at)),
                (body_name, body),
                ("lease_until".into(), number(0)),
                ("version".into(), number(0)),
                ("ttl".into(), self.run_ttl(run)),
            ]);
            // A run the table lists by its key needs no index entry.
            if keys.indexed() {
                item.insert("gsi1pk".into(), string(format!("FN#{}", run.function_id)));
                item.insert("gsi1sk".into(), string(time_key(run)));
            }
            if let Some(key) = status_index_key(run) {
                item.insert("gsi2pk".into(), string(key));
                item.insert("gsi2sk".into(), string(time_key(run)));
            }
            if let Some((name, outbox)) = outbox {
                item.insert(name, outbox);
            }
            if let Some(at) = t.event_recorded_at {
                item.insert("event_pk".into(), string(event_pk(&run.event.id)));
                item.insert("event_sk".into(), string("EVT"));
                item.insert("event_at".into(), number(at));
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
            .key("pk", keys.pk())
            .key("sk", string(keys.run_sk()))
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
                // It refers to the new event's record instead (which wins
                // over any copy of an earlier event in its partition).
                Some(at) => {
                    set.push(
                        "event_pk = :event_pk, event_sk = :event_sk, event_at = :event_at"
                            .to_owned(),
                    );
                    update = update
                        .expression_attribute_values(":event_pk", string(event_pk(&run.event.id)))
                        .expression_attribute_values(":event_sk", string("EVT"))
                        .expression_attribute_values(":event_at", number(at));
                }
                // Its own copy of the new event, written in this commit,
                // replaces the record it referred to.
                None => remove.extend(["event_pk", "event_sk", "event_at"].map(str::to_owned)),
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
    pub(super) fn fence_check(&self, t: &Transition) -> Result<TransactWriteItem> {
        let condition = fence_condition(&t.fence);
        let keys = RunKeys::of(&t.run.id);
        let mut check = ConditionCheck::builder()
            .table_name(self.table())
            .key("pk", keys.pk())
            .key("sk", string(keys.run_sk()))
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

    /// The TTL of an item an unfinished run writes at `at_ms`: it outlives
    /// the longest a run may live, plus the finished runs' retention, so no
    /// run loses a record while it runs and storage stays bounded (its step
    /// and event items are not rewritten when it ends: that would cost a
    /// write per item per run).
    pub(super) fn unfinished_ttl(&self, at_ms: i64) -> AttributeValue {
        number(self.unfinished_expiry(at_ms))
    }

    /// [`Self::unfinished_ttl`] as a number.
    pub(super) fn unfinished_expiry(&self, at_ms: i64) -> i64 {
        let r = &self.config.retention;
        expiry_secs(at_ms, r.longest_run + r.runs)
    }

    /// The run item's TTL: a finished run (completed, failed, cancelled,
    /// or skipped at creation) is kept for the runs' retention from its end;
    /// one still going as long as a run may live from now.
    pub(super) fn run_ttl(&self, run: &hookflow::Run) -> AttributeValue {
        if run.status.is_terminal() {
            let ended = run.ended_at.unwrap_or_else(|| self.clock.now_ms());
            expires(ended, self.config.retention.runs)
        } else {
            self.unfinished_ttl(self.clock.now_ms())
        }
    }
}
