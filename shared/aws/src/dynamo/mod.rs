//! [`AwsStore`]: the store traits on one DynamoDB table.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | event (dedupe) | `EVT#{id}` | `EVT` |
//! | routed event, by name | `EVN#{name}` | `{received_at:015}#{id}`: also the trigger event of the runs it starts |
//! | run | `RUN#{id}` | `RUN` ([`FUNCTION_INDEX`]: `FN#{function}`, every run, keys only; [`STATUS_INDEX`]: `FS#{function}#{status}`, failed and cancelled runs) |
//! | trigger event | `RUN#{id}` | `EVENT` |
//! | step | `RUN#{id}` | `STEP#{step id}` |
//! | idempotency key | `IDEM#{function}#{key}` | `IDEM` |
//! | waiter | `WAIT#{event}` | `{run}#{step}` |
//! | document | `DOC#{collection}` | `{key}` |
//!
//! Run state changes only by transitions ([`runs`]). Reads that decide
//! anything are strongly consistent; only run listing uses the (eventually
//! consistent) indexes.

mod blobs;
mod commit;
mod docs;
mod inline;
mod packed;
mod run_item;
mod runs;
mod waiters;

pub use runs::{FUNCTION_INDEX, STATUS_INDEX};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use hookflow::Clock;
use hookflow::event::Event;
use hookflow::limits::CARRIED_EVENT_BYTES;
use hookflow::run::Envelope;
use hookflow::store::{EventLog, StoredEvent};

use crate::coalesce::{Answer, Lanes};
use crate::config::{AwsClients, AwsConfig};
use crate::error::{AwsError, Result, ddb};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long a routed event's record lives when it starts no run (waiters
/// only look back seconds); one that starts runs lives as long as they may.
const ROUTED_TTL_SECS: i64 = 2 * 86_400;

/// The key of a routed event's record: the trigger event of the runs it
/// started (a run item refers to it by `event_pk` and `event_sk`).
pub(crate) fn routed_key(name: &str, received_at: i64, id: &str) -> (String, String) {
    (format!("EVN#{name}"), format!("{received_at:015}#{id}"))
}

/// The AWS store: DynamoDB for state, SQS for work, Scheduler for timers.
/// Cheap to clone.
#[derive(Clone)]
pub struct AwsStore {
    pub(crate) clients: Arc<AwsClients>,
    pub(crate) config: Arc<AwsConfig>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) queue_urls: Arc<Mutex<HashMap<String, String>>>,
    pub(crate) queue_arns: Arc<Mutex<HashMap<String, String>>>,
    /// Overlapping sends to one queue, sent together.
    pub(crate) sends: Lanes<crate::queue::Pending>,
    /// Overlapping reads of one event name's waiters, made once.
    pub(crate) waiter_reads: Lanes<Answer<Vec<hookflow::run::Waiter>>>,
    /// Overlapping reads of one flow-control record, made once.
    pub(crate) flow_reads: Lanes<Answer<Option<hookflow::flow::FlowRecord>>>,
}

impl std::fmt::Debug for AwsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AwsStore {
    /// A store over these clients and resources, reading time from `clock`.
    pub fn new(clients: AwsClients, config: AwsConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            clients: Arc::new(clients),
            config: Arc::new(config),
            clock,
            queue_urls: Arc::new(Mutex::new(HashMap::new())),
            queue_arns: Arc::new(Mutex::new(HashMap::new())),
            sends: Lanes::default(),
            waiter_reads: Lanes::default(),
            flow_reads: Lanes::default(),
        }
    }

    /// The same store, reading time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// The SDK clients.
    #[must_use]
    pub fn clients(&self) -> &AwsClients {
        &self.clients
    }

    pub(crate) fn ddb(&self) -> &aws_sdk_dynamodb::Client {
        &self.clients.dynamodb
    }

    pub(crate) fn table(&self) -> &str {
        &self.config.table
    }

    pub(crate) fn cached(map: &Mutex<HashMap<String, String>>, key: &str) -> Option<String> {
        map.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    pub(crate) fn remember(map: &Mutex<HashMap<String, String>>, key: &str, value: &str) {
        map.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), value.to_owned());
    }
}

/// A DynamoDB string attribute.
pub(crate) fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A DynamoDB number attribute.
pub(crate) fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(AwsError::Item(format!(
            "attribute `{name}` missing or not a string"
        ))),
    }
}

pub(crate) fn get_n(item: &Item, name: &str) -> Result<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| AwsError::Item(format!("attribute `{name}` is not an integer"))),
        _ => Err(AwsError::Item(format!(
            "attribute `{name}` missing or not a number"
        ))),
    }
}

/// True when an SDK error is a failed condition (the conditional write lost).
pub(crate) fn condition_failed<E>(
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// A conditional write's answer: `true` when written, `false` when its
/// condition failed (another writer got there first), else the error.
pub(crate) fn conditional<T, E>(
    result: std::result::Result<
        T,
        aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    >,
) -> hookflow::Result<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
    aws_sdk_dynamodb::Error:
        From<aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if condition_failed(&err) => Ok(false),
        Err(err) => Err(ddb(err).into()),
    }
}

impl AwsStore {
    /// Every item of partition `pk` (whose sort key is at most `sk_max`,
    /// if given), read consistently, page by page.
    pub(crate) async fn query_partition(
        &self,
        pk: AttributeValue,
        sk_max: Option<&str>,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .ddb()
                .query()
                .table_name(self.table())
                .expression_attribute_values(":pk", pk.clone())
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match sk_max {
                Some(last) => query
                    .key_condition_expression("pk = :pk AND sk <= :last")
                    .expression_attribute_values(":last", string(last)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query.send().await.map_err(ddb)?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

fn ttl(at_ms: i64, keep_secs: i64) -> AttributeValue {
    number(at_ms / 1000 + keep_secs)
}

/// `from_ms` plus `keep`, in the epoch seconds DynamoDB's TTL reads.
pub(crate) fn expires(from_ms: i64, keep: std::time::Duration) -> AttributeValue {
    number(from_ms / 1000 + i64::try_from(keep.as_secs()).unwrap_or(i64::MAX / 2))
}

impl AwsStore {
    async fn stored_event(&self, item: &Item) -> Result<StoredEvent> {
        Ok(StoredEvent {
            event: self.decode(item, "body").await?,
            received_at: get_n(item, "received_at")?,
        })
    }

    /// Stores `event` (serialized: `json`) unless its id was received within
    /// `dedupe_ms`; true if stored.
    async fn put_event(
        &self,
        event: &Event,
        json: String,
        received_at: i64,
        dedupe_ms: i64,
    ) -> hookflow::Result<bool> {
        let (body_name, body) = self.body_attribute("body", json).await?;
        let result = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", string(format!("EVT#{}", event.id)))
            .item("sk", string("EVT"))
            .item("name", string(&event.name))
            .item(body_name, body)
            .item("received_at", number(received_at))
            // Kept from when it is due, so a future `ts` outlives its wait.
            .item(
                "ttl",
                expires(received_at.max(event.ts), self.config.retention.events),
            )
            .condition_expression("attribute_not_exists(pk) OR received_at <= :cutoff")
            .expression_attribute_values(":cutoff", number(received_at - dedupe_ms))
            .send()
            .await;
        conditional(result)
    }
}

impl AwsStore {
    /// Stores each event (deduplicated) and queues its route, at its `ts`
    /// when that is later.
    pub(crate) async fn store_and_route(
        &self,
        events: &[Event],
        received_at: i64,
        dedupe_ms: i64,
    ) -> hookflow::Result<Vec<bool>> {
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            let json = serde_json::to_string(event).map_err(AwsError::from)?;
            let small = json.len() <= CARRIED_EVENT_BYTES;
            let new = self.put_event(event, json, received_at, dedupe_ms).await?;
            stored.push(new);
            // A duplicate is routed again too: if whoever stored it died before
            // queuing its route, this redelivery is the only way it gets
            // routed. Routing is idempotent, so a duplicate starts nothing new.
            // A route sent now carries the event it has just stored, when
            // small, so the router need not read it back (a duplicate's may
            // differ from the stored one: the router reads that).
            let route = if new && small && event.ts <= received_at {
                Envelope::route_stored(StoredEvent {
                    event: event.clone(),
                    received_at,
                })
            } else {
                Envelope::route(&event.id)
            };
            if event.ts > received_at {
                self.schedule(&route, event.ts).await?;
            } else {
                self.send(&route).await?;
            }
        }
        Ok(stored)
    }
}

impl EventLog for AwsStore {
    async fn append(
        &self,
        events: &[Event],
        received_at: i64,
        dedupe_ms: i64,
    ) -> hookflow::Result<Vec<bool>> {
        self.store_and_route(events, received_at, dedupe_ms).await
    }

    async fn get_event(&self, id: &str) -> hookflow::Result<Option<StoredEvent>> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key("pk", string(format!("EVT#{id}")))
            .key("sk", string("EVT"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        match out.item() {
            Some(item) => Ok(Some(self.stored_event(item).await?)),
            None => Ok(None),
        }
    }

    async fn record_routed(&self, stored: &StoredEvent, starts_runs: bool) -> hookflow::Result<()> {
        let event = &stored.event;
        let (body_name, body) = self
            .body_attribute(
                "body",
                serde_json::to_string(event).map_err(AwsError::from)?,
            )
            .await?;
        let (pk, sk) = routed_key(&event.name, stored.received_at, &event.id);
        let put = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", string(pk))
            .item("sk", string(sk))
            .item(body_name, body)
            .item("received_at", number(stored.received_at));
        // A record's life is only ever extended: a run may refer to it, and
        // the same event may be routed again later (a duplicate delivery)
        // when it no longer triggers anything (a function removed since).
        let put = if starts_runs {
            put.item("ttl", self.unfinished_ttl(self.clock.now_ms()))
        } else {
            put.item("ttl", ttl(stored.received_at, ROUTED_TTL_SECS))
                .condition_expression("attribute_not_exists(pk)")
        };
        conditional(put.send().await)?;
        Ok(())
    }

    async fn events_since(
        &self,
        name: &str,
        since: i64,
        limit: usize,
    ) -> hookflow::Result<Vec<StoredEvent>> {
        // A page stops at 1 MB: follow the pages until `limit` events.
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let left = limit.saturating_sub(events.len());
            let out = self
                .ddb()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND sk >= :from")
                .expression_attribute_values(":pk", string(format!("EVN#{name}")))
                .expression_attribute_values(":from", string(format!("{:015}", since.max(0))))
                .consistent_read(true)
                .limit(i32::try_from(left).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(ddb)?;
            for item in out.items() {
                events.push(self.stored_event(item).await?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() || events.len() >= limit {
                return Ok(events);
            }
        }
    }
}
