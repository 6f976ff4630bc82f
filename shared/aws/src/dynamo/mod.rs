//! [`AwsStore`]: the store traits on one DynamoDB table.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | event (dedupe) | `EVT#{id}` | `EVT`: also the trigger event of the runs it starts (`kept` as long as they may live) |
//! | earlier event of a reused id | `EVT#{id}` | `EVT#{received_at:015}`: a kept event its id's next event replaced |
//! | routed event, by name | `EVN#{name}` | `{received_at:015}#{id}`: for a name something waits for, or held for a paused function (before: the trigger event of the runs it started) |
//! | run | `FR#{function tag}#{shard}` | `{id}`: a function's runs in time order, by the parts of their ids ([`hookflow::run_id`]; [`STATUS_INDEX`]: `FS#{function}#{status}`, failed and cancelled runs) |
//! | trigger event | `FR#{function tag}#{shard}` | `{id}#EVENT` |
//! | step | `FR#{function tag}#{shard}` | `{id}#STEP#{step id}` |
//! | run of an id of another form (made before that format) | `RUN#{id}` | `RUN` ([`FUNCTION_INDEX`]: `FN#{function}`, keys only), with `EVENT` and `STEP#{step id}` beside it |
//! | idempotency key | `IDEM#{function}#{key}` | `IDEM` |
//! | waiter | `WAIT#{event}` | `{run}#{step}` |
//! | document | `DOC#{collection}` | `{key}` |
//!
//! Run state changes only by transitions ([`runs`]); where a run's items
//! are follows from its id ([`run_keys`]). Reads that decide anything are
//! strongly consistent; only run listing reads eventually consistently (a
//! function's partitions and the indexes).

mod blobs;
mod commit;
mod docs;
mod inline;
mod packed;
mod run_item;
mod run_keys;
mod runs;
mod waiters;

pub use run_keys::{run_event_key, run_item_key};
pub use runs::{FUNCTION_INDEX, STATUS_INDEX};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use hookflow::Clock;
use hookflow::event::Event;
use hookflow::limits::CARRIED_EVENT_BYTES;
use hookflow::run::Envelope;
use hookflow::store::{EventLog, StoredEvent};

use crate::coalesce::{Answer, Lanes};
use crate::config::{AwsClients, AwsConfig};
use crate::error::{AwsError, Result, ddb};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long a routed event's record lives when it is not held for a paused
/// function (waiters only look back seconds); a held one lives as long as
/// a run may.
const ROUTED_TTL_SECS: i64 = 2 * 86_400;

/// How many times storing an event tries again when its id's record changes
/// under it.
const EVENT_ATTEMPTS: usize = 3;

/// The key of a routed event's record. Runs created before their trigger
/// was kept on the event's own record refer to it (`event_pk`, `event_sk`).
pub(crate) fn routed_key(name: &str, received_at: i64, id: &str) -> (String, String) {
    (format!("EVN#{name}"), format!("{received_at:015}#{id}"))
}

/// The partition of an event's records: the current one (sort key `EVT`)
/// and those of earlier events of its id that runs may still refer to.
pub(crate) fn event_pk(id: &str) -> String {
    format!("EVT#{id}")
}

/// The sort key an event received at `received_at` keeps once a later
/// event of its id took the `EVT` record.
pub(crate) fn replaced_event_sk(received_at: i64) -> String {
    format!("EVT#{received_at:015}")
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
    /// The event names that start runs ([`Self::keeping_events_for`]):
    /// their records are kept as long as a run may live when stored.
    /// Unknown: each is kept when the router first starts a run of it.
    pub(crate) run_starting_names: Option<Arc<HashSet<String>>>,
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
            run_starting_names: None,
        }
    }

    /// The same store, knowing which event names start runs of `registry`'s
    /// functions: it keeps such an event's record as long as a run may live
    /// when it stores it, so the router need not write it again before the
    /// runs refer to it. Every role builds the same registry (one binary).
    #[must_use]
    pub fn keeping_events_for(mut self, registry: &hookflow::Registry) -> Self {
        self.run_starting_names = Some(Arc::new(
            registry.trigger_names().map(str::to_owned).collect(),
        ));
        self
    }

    /// Whether an event named `name` is kept for runs when stored.
    fn keeps(&self, name: &str) -> bool {
        self.run_starting_names
            .as_ref()
            .is_some_and(|names| names.contains(name))
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

/// The item a refused `PutItem` met, when it asked for it
/// (`ReturnValuesOnConditionCheckFailure`).
fn record_met(
    err: &aws_sdk_dynamodb::error::SdkError<PutItemError, aws_smithy_runtime_api::http::Response>,
) -> Option<Item> {
    match err.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(refused)) => refused.item().cloned(),
        _ => None,
    }
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
        sk_range: Option<(String, String)>,
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
            query = match &sk_range {
                Some((first, last)) => query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                    .expression_attribute_values(":first", string(first))
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
    number(expiry_secs(from_ms, keep))
}

/// [`expires`] as a number.
pub(crate) fn expiry_secs(from_ms: i64, keep: std::time::Duration) -> i64 {
    from_ms / 1000 + i64::try_from(keep.as_secs()).unwrap_or(i64::MAX / 2)
}

impl AwsStore {
    async fn stored_event(&self, item: &Item) -> Result<StoredEvent> {
        Ok(StoredEvent {
            event: self.decode(item, "body").await?,
            received_at: get_n(item, "received_at")?,
            kept_for_runs: matches!(item.get("kept"), Some(AttributeValue::Bool(true))),
        })
    }

    /// How long an event's record lives: the events' retention from when
    /// it is due, and, if `kept`, as long as a run started now may live.
    fn event_ttl(&self, event: &Event, received_at: i64, kept: bool) -> AttributeValue {
        let retained = expiry_secs(received_at.max(event.ts), self.config.retention.events);
        if !kept {
            return number(retained);
        }
        number(retained.max(self.unfinished_expiry(self.clock.now_ms())))
    }

    /// The record of `event` received at `received_at`, its body already
    /// made an attribute: current (sort key `EVT`) until a later event of
    /// its id takes that key.
    fn event_record(
        &self,
        event: &Event,
        (body_name, body): (String, AttributeValue),
        received_at: i64,
        kept: bool,
    ) -> Item {
        let mut record = HashMap::from([
            ("pk".to_owned(), string(event_pk(&event.id))),
            ("sk".to_owned(), string("EVT")),
            ("name".to_owned(), string(&event.name)),
            (body_name, body),
            ("received_at".to_owned(), number(received_at)),
            // Kept from when it is due, so a future `ts` outlives its wait.
            ("ttl".to_owned(), self.event_ttl(event, received_at, kept)),
        ]);
        if kept {
            record.insert("kept".to_owned(), AttributeValue::Bool(true));
        }
        record
    }

    /// Stores `event` (serialized: `json`) unless its id was received within
    /// `dedupe_ms`; true if stored. A name that starts runs is stored `kept`
    /// for them. An id received again after the window replaces its record,
    /// except that a kept one moves to [`replaced_event_sk`] first (its
    /// runs may still read it): the one case that writes twice.
    async fn put_event(
        &self,
        event: &Event,
        json: String,
        received_at: i64,
        dedupe_ms: i64,
    ) -> hookflow::Result<bool> {
        let kept = self.keeps(&event.name);
        let body = self.body_attribute("body", json).await?;
        let pk = event_pk(&event.id);
        let cutoff = received_at - dedupe_ms;
        let put = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .set_item(Some(self.event_record(event, body, received_at, kept)));
        let first = put
            .clone()
            .condition_expression(
                "attribute_not_exists(pk) OR (received_at <= :cutoff AND attribute_not_exists(kept))",
            )
            .expression_attribute_values(":cutoff", number(cutoff))
            // A duplicate's refusal carries the record it met: no read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let mut met = match first {
            Ok(_) => return Ok(true),
            Err(err) if condition_failed(&err) => record_met(&err),
            Err(err) => return Err(ddb(err).into()),
        };
        for _ in 0..EVENT_ATTEMPTS {
            let current = match met.take() {
                Some(record) => Some(record),
                None => self.event_item(&pk, "EVT").await?,
            };
            let Some(current) = current else {
                // Gone meanwhile (expired): nothing to keep.
                let put = put.clone().condition_expression("attribute_not_exists(pk)");
                if conditional(put.send().await)? {
                    return Ok(true);
                }
                continue;
            };
            let then = get_n(&current, "received_at")?;
            if then > cutoff {
                return Ok(false);
            }
            if matches!(current.get("kept"), Some(AttributeValue::Bool(true))) {
                let mut moved = current.clone();
                moved.insert("sk".into(), string(replaced_event_sk(then)));
                self.ddb()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(moved))
                    .send()
                    .await
                    .map_err(ddb)?;
            }
            let replace = put
                .clone()
                .condition_expression("received_at = :then")
                .expression_attribute_values(":then", number(then))
                .send()
                .await;
            if conditional(replace)? {
                return Ok(true);
            }
        }
        Err(hookflow::Error::Conflict(format!(
            "the record of event {} kept changing; try again",
            event.id
        )))
    }

    /// The event record `(pk, sk)`, read consistently.
    pub(crate) fn event_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> impl Future<Output = Result<Option<Item>>> + Send + '_ {
        self.item(string(pk), sk.to_owned())
    }

    /// The item `(pk, sk)`, read consistently.
    pub(crate) async fn item(&self, pk: AttributeValue, sk: String) -> Result<Option<Item>> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key("pk", pk)
            .key("sk", string(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        Ok(out.item().cloned())
    }

    /// The `body` attribute of an event's record.
    async fn event_body(&self, event: &Event) -> Result<(String, AttributeValue)> {
        self.body_attribute("body", serde_json::to_string(event)?)
            .await
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
            // Boxed: its rare path makes it a large future, and an outbox
            // delivery (a step's sent events) holds it inside a run's.
            let new = Box::pin(self.put_event(event, json, received_at, dedupe_ms)).await?;
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
                    kept_for_runs: self.keeps(&event.name),
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
        match self.event_item(&event_pk(id), "EVT").await? {
            Some(item) => Ok(Some(self.stored_event(&item).await?)),
            None => Ok(None),
        }
    }

    async fn record_routed(&self, stored: &StoredEvent, held: bool) -> hookflow::Result<()> {
        let event = &stored.event;
        let (body_name, body) = self.event_body(event).await?;
        let (pk, sk) = routed_key(&event.name, stored.received_at, &event.id);
        let put = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", string(pk))
            .item("sk", string(sk))
            .item(body_name, body)
            .item("received_at", number(stored.received_at));
        // A record's life is only ever extended: the same event may be
        // routed again (a duplicate delivery) when nothing holds it.
        let put = if held {
            put.item("ttl", self.unfinished_ttl(self.clock.now_ms()))
        } else {
            put.item("ttl", ttl(stored.received_at, ROUTED_TTL_SECS))
                .condition_expression("attribute_not_exists(pk)")
        };
        conditional(put.send().await)?;
        Ok(())
    }

    async fn keep_for_runs(&self, stored: &StoredEvent) -> hookflow::Result<()> {
        if stored.kept_for_runs {
            return Ok(());
        }
        // Stored before its name started runs (a function added since, or a
        // store that did not know): its record's life is extended, once.
        let event = &stored.event;
        let pk = event_pk(&event.id);
        let keep = self.event_ttl(event, stored.received_at, true);
        let kept = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", string(&pk))
            .key("sk", string("EVT"))
            .update_expression("SET kept = :kept, #ttl = :ttl")
            .condition_expression("received_at = :at")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":kept", AttributeValue::Bool(true))
            .expression_attribute_values(":ttl", keep)
            .expression_attribute_values(":at", number(stored.received_at))
            .send()
            .await;
        if conditional(kept)? {
            return Ok(());
        }
        // Its id's record is another event's now (or gone): keep this one
        // where its runs look for it.
        let body = self.event_body(event).await?;
        let mut record = self.event_record(event, body, stored.received_at, true);
        record.insert(
            "sk".to_owned(),
            string(replaced_event_sk(stored.received_at)),
        );
        self.ddb()
            .put_item()
            .table_name(self.table())
            .set_item(Some(record))
            .send()
            .await
            .map_err(ddb)?;
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
