//! Runs on DynamoDB: every transition is one `TransactWriteItems` whose run
//! item carries the fence as its condition, and whose outbox is kept on the
//! run item until the run's next transition replaces it.
//!
//! A run's items share a partition, its function's (or, for an id of
//! another form, its own: [`super::run_keys`]):
//!
//! | item | sk |
//! |---|---|
//! | run | `{id}` (`RUN`): state (no event), lease, cancellation request, outbox, small step records (`j{position}`), the trigger event's key (`event_pk`, `event_sk`, and `event_at`, when it was received) |
//! | trigger event | `{id}#EVENT` (`EVENT`): a copy, for a run whose event has no record of its own (cron, invoked, replayed); a key, when the item has one, wins over it |
//! | step | `{id}#STEP#{step id}` (`STEP#{step id}`): a step's record over 2 KiB, or from the 65th step on |
//!
//! Idempotency keys are `IDEM#{function}#{key}`, `IDEM`.
//!
//! A run started by a routed event refers to that event's own record
//! (`EVT#{id}`, kept as long as a run may live; runs created before that
//! refer to its routed record, `EVN#{name}`) instead of a copy: one
//! consistent Query of the run's items loads the run and its journal, and one
//! consistent GetItem its event, unless the start message carried that very
//! event ([`RunStore::load_started_run`]). A later event of the same id
//! (after the deduplication window) moves the record it replaces aside, so
//! a reference also says when its event was received. A reference wins
//! over a copy in the partition (a debounce fold re-points a run at a newer
//! record).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use hookflow::run::{Envelope, Lease, Message, Run, RunStatus, StepRecord, Target};
use hookflow::store::{LoadedRun, Outbox, RunFilter, RunStore, StoredEvent};
use hookflow::transition::{Committed, Conflict, Outgoing, Transition};

use super::run_item::{RUN_ATTRIBUTES, TERMINAL};
use super::run_keys::{RunKeys, SHARD_PREFIX, function_partitions, run_id_of};
use super::{
    AwsStore, Item, condition_failed, event_pk, get_n, get_s, number, replaced_event_sk,
    routed_key, string,
};
use super::{inline, packed};
use crate::error::{AwsError, Result, ddb};
use hookflow::run_id::{RunIdParts, time_part};

/// The event record a run item refers to, if it does (else its trigger
/// event is the `EVENT` item of its partition).
struct Reference<'a> {
    pk: &'a str,
    sk: &'a str,
    /// When the event was received, for a reference to an event's own
    /// record (`EVT#{id}`, `EVT`), which a later event of its id may have
    /// taken: the one received then is at [`replaced_event_sk`]. (A
    /// reference to a routed record names it exactly.)
    at: Option<i64>,
}

impl Reference<'_> {
    /// Whether `record` is the event referred to.
    fn is(&self, record: &Item) -> bool {
        self.at
            .is_none_or(|at| get_n(record, "received_at").is_ok_and(|then| then == at))
    }

    /// Whether `stored` is the event referred to.
    fn is_stored(&self, stored: &StoredEvent) -> bool {
        match self.at {
            Some(at) => self.pk == event_pk(&stored.event.id) && at == stored.received_at,
            None => {
                let (pk, sk) = routed_key(&stored.event.name, stored.received_at, &stored.event.id);
                (pk.as_str(), sk.as_str()) == (self.pk, self.sk)
            }
        }
    }
}

fn referenced_event(item: &Item) -> Option<Reference<'_>> {
    match (item.get("event_pk"), item.get("event_sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some(Reference {
            pk,
            sk,
            at: get_n(item, "event_at").ok(),
        }),
        _ => None,
    }
}

pub(super) fn time_key(run: &Run) -> String {
    format!("{:015}#{}", run.created_at, run.id)
}

/// The index of runs by function and creation time (`gsi1pk` =
/// `FN#{function}`, `gsi1sk` = [`time_key`]) for runs whose ids are of
/// another form than [`hookflow::run_id`]'s (made before it), which the
/// table cannot list by key; a run of the current form is in none. It
/// projects keys only, and a run's keys in it never change, so it is
/// written once, when the run is created.
pub const FUNCTION_INDEX: &str = "by_function";

/// The index of the runs an operator looks up by status, failed and
/// cancelled ones (`gsi2pk` = `FS#{function}#{status}`, `gsi2sk` =
/// [`time_key`]; every attribute projected). A run enters it only when it
/// ends that way, so a run that completes never writes it.
pub const STATUS_INDEX: &str = "gsi2";

/// The most runs of a function a listing by a status the [`STATUS_INDEX`]
/// does not hold looks through (newest first, in the time range asked).
const STATUS_SCAN: usize = 10_000;

/// Whether runs with `status` are in the [`STATUS_INDEX`] (others are
/// listed from their function's partitions, and through the
/// [`FUNCTION_INDEX`], and filtered).
fn status_indexed(status: RunStatus) -> bool {
    matches!(status, RunStatus::Failed | RunStatus::Cancelled)
}

/// The run's key in the [`STATUS_INDEX`], if its status belongs there.
pub(super) fn status_index_key(run: &Run) -> Option<String> {
    status_indexed(run.status).then(|| format!("FS#{}#{}", run.function_id, run.status.as_str()))
}

impl AwsStore {
    /// A run from its item and its trigger event.
    async fn run_of(&self, item: &Item, event: serde_json::Value) -> Result<Run> {
        let body = self
            .read_body(item, "body")
            .await?
            .ok_or_else(|| AwsError::Item("run item without a body".into()))?;
        // The fields the item holds as attributes of their own (bodies
        // written before they were left out still hold them too).
        let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body)?;
        let id = run_id_of(item)?;
        let values = [
            serde_json::Value::from(id),
            get_s(item, "function_id")?.into(),
            get_s(item, "status")?.into(),
            get_n(item, "created_at")?.into(),
        ];
        for (name, value) in RUN_ATTRIBUTES.into_iter().zip(values) {
            fields.entry(name).or_insert(value);
        }
        let mut run = Run::from_stored_fields(fields, event)?;
        run.lease = match item.get("lease_token") {
            Some(AttributeValue::S(token)) => Some(Lease {
                token: token.clone(),
                until: get_n(item, "lease_until")?,
            }),
            _ => None,
        };
        run.version = get_n(item, "version")
            .ok()
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0);
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

    /// The trigger event of the run `item`: the routed record it refers to
    /// (`carried` when that is the record a start message brought, else
    /// read), else the copy in its partition (`in_partition`, if read). A
    /// reference wins: a debounce fold may point a run that had a copy at a
    /// newer event's record.
    async fn trigger_event(
        &self,
        item: &Item,
        in_partition: Option<&Item>,
        carried: Option<&StoredEvent>,
    ) -> Result<serde_json::Value> {
        let Some(reference) = referenced_event(item) else {
            return match in_partition {
                Some(event) => self.decode(event, "body").await,
                None => Err(AwsError::Item(format!(
                    "run item {} has no trigger event",
                    get_s(item, "pk")?
                ))),
            };
        };
        if let Some(carried) = carried
            && reference.is_stored(carried)
        {
            return Ok(serde_json::to_value(&carried.event)?);
        }
        let record = self.event_item(reference.pk, reference.sk).await?;
        // Boxed: rarely needed, and a run's load is deep in a worker's future.
        let event = Box::pin(self.referred(&reference, record))
            .await?
            .ok_or_else(|| {
                AwsError::Item(format!(
                    "the trigger event {} {} of run item {} is gone (kept as long as a run may \
                     live: did the run outlive LongestRunDays?)",
                    reference.pk,
                    reference.sk,
                    get_s(item, "pk").unwrap_or_default()
                ))
            })?;
        self.decode(&event, "body").await
    }

    /// The event record `reference` names, given what was read at its key
    /// (`record`): that, unless a later event of its id took the key, when
    /// the one moved aside is read; `None` if it is gone.
    async fn referred(
        &self,
        reference: &Reference<'_>,
        record: Option<Item>,
    ) -> Result<Option<Item>> {
        match (record, reference.at) {
            (Some(record), _) if reference.is(&record) => Ok(Some(record)),
            (_, Some(at)) => self.event_item(reference.pk, &replaced_event_sk(at)).await,
            // Without a time, the reference names its record exactly.
            (_, None) => Ok(None),
        }
    }

    pub(super) fn run_item(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Item>>> + Send + '_ {
        let keys = RunKeys::of(id);
        self.item(keys.pk(), keys.run_sk())
    }

    /// The run's item and its event copy, with its step items if
    /// `with_steps`.
    async fn run_items(&self, keys: &RunKeys<'_>, with_steps: bool) -> Result<Vec<Item>> {
        self.query_partition(keys.pk(), Some(keys.range(with_steps)))
            .await
    }

    /// The items with these keys that exist, by key (`BatchGetItem`, 100
    /// keys a call, unprocessed keys asked again).
    async fn batch_get(
        &self,
        keys: &[(String, String)],
        consistent: bool,
    ) -> Result<HashMap<(String, String), Item>> {
        // Up to eight calls at a time.
        let mut found = HashMap::new();
        let chunks: Vec<&[(String, String)]> = keys.chunks(100).collect();
        for group in chunks.chunks(8) {
            let calls = group
                .iter()
                .map(|chunk| self.batch_get_chunk(chunk, consistent));
            for items in futures::future::try_join_all(calls).await? {
                found.extend(items);
            }
        }
        Ok(found)
    }

    /// One `BatchGetItem` of up to 100 keys (unprocessed keys asked again).
    async fn batch_get_chunk(
        &self,
        chunk: &[(String, String)],
        consistent: bool,
    ) -> Result<Vec<((String, String), Item)>> {
        let mut found = Vec::new();
        let mut wanted = KeysAndAttributes::builder().consistent_read(consistent);
        for (pk, sk) in chunk {
            wanted = wanted.keys(HashMap::from([
                ("pk".into(), string(pk)),
                ("sk".into(), string(sk)),
            ]));
        }
        let mut request = Some(HashMap::from([(
            self.table().to_owned(),
            wanted
                .build()
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
                let key = (get_s(item, "pk")?.to_owned(), get_s(item, "sk")?.to_owned());
                found.push((key, item.clone()));
            }
            request = out.unprocessed_keys().cloned();
        }
        Ok(found)
    }

    /// Runs (with their trigger events) for run items found by a listing.
    async fn with_events(&self, items: &[Item]) -> Result<Vec<Run>> {
        // Each run's event: the record it refers to (several runs may share
        // one), or its own item.
        let key_of = |item: &Item| -> Result<(String, String)> {
            Ok(match referenced_event(item) {
                Some(reference) => (reference.pk.to_owned(), reference.sk.to_owned()),
                None => (
                    get_s(item, "pk")?.to_owned(),
                    RunKeys::of(run_id_of(item)?).event_sk(),
                ),
            })
        };
        let mut wanted = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for item in items {
            let key = key_of(item)?;
            if seen.insert(key.clone()) {
                wanted.push(key);
            }
        }
        let events = self.batch_get(&wanted, false).await?;
        let mut runs = Vec::with_capacity(items.len());
        for item in items {
            let found = events.get(&key_of(item)?);
            let event = match referenced_event(item) {
                // A later event of its id took the record (or it expired,
                // while the one kept for its runs was moved): read its own.
                Some(reference)
                    if reference.at.is_some() && !found.is_some_and(|e| reference.is(e)) =>
                {
                    self.referred(&reference, found.cloned())
                        .await?
                        .map(Cow::Owned)
                }
                _ => found.map(Cow::Borrowed),
            };
            match event {
                Some(event) => {
                    runs.push(
                        self.run_of(item, self.decode(&event, "body").await?)
                            .await?,
                    );
                }
                // Its event expired (the run outlived LongestRunDays) or is
                // not visible yet to this eventually consistent read.
                None => tracing::warn!(
                    run = get_s(item, "pk").unwrap_or_default(),
                    "run listed without its trigger event; left out"
                ),
            }
        }
        Ok(runs)
    }
}

impl AwsStore {
    /// The run with its journal and outbox; its event from `carried` when
    /// that is the routed record the run refers to.
    async fn load(&self, id: &str, carried: Option<&StoredEvent>) -> Result<Option<LoadedRun>> {
        let keys = RunKeys::of(id);
        let items = self.run_items(&keys, true).await?;
        let find = |sk: &str| {
            items
                .iter()
                .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(v)) if v == sk))
        };
        let Some(item) = find(&keys.run_sk()) else {
            return Ok(None);
        };
        let event = self
            .trigger_event(item, find(&keys.event_sk()), carried)
            .await?;
        let mut journal: Vec<StepRecord> = Vec::new();
        for step in items
            .iter()
            .filter(|i| matches!(i.get("sk"), Some(AttributeValue::S(v)) if keys.is_step(v)))
        {
            journal.push(self.decode(step, "body").await?);
        }
        // A record kept on the run item replaces the same step's in its own
        // item (say, a sleep's), unless that one is finished and it is not:
        // a write of a step's own item removes its record from the run item,
        // and a finished record is never written again.
        for (name, value) in item {
            if let Some(position) = inline::position(name)
                && let Some(text) = packed::unpack(value)?
            {
                let step = inline::decode(position, &text)?;
                let own = journal.iter().position(|s| s.id == step.id);
                match own {
                    Some(i)
                        if inline::finished(journal[i].status)
                            && !inline::finished(step.status) => {}
                    Some(i) => journal[i] = step,
                    None => journal.push(step),
                }
            }
        }
        journal.sort_by_key(|step| step.position);
        Ok(Some(LoadedRun {
            run: self.run_of(item, event).await?,
            journal,
            undelivered: self.outbox_of(item).await?,
        }))
    }
}

impl RunStore for AwsStore {
    async fn load_run(&self, id: &str) -> hookflow::Result<Option<LoadedRun>> {
        Ok(self.load(id, None).await?)
    }

    /// A run its start message brought the routed event of: no read of the
    /// event while the run refers to that record (one consistent read unit
    /// less per run).
    async fn load_started_run(
        &self,
        id: &str,
        trigger: &StoredEvent,
    ) -> hookflow::Result<Option<LoadedRun>> {
        Ok(self.load(id, Some(trigger)).await?)
    }

    fn wants_carried_trigger(&self) -> bool {
        true
    }

    async fn get_run(&self, id: &str) -> hookflow::Result<Option<Run>> {
        let keys = RunKeys::of(id);
        let items = self.run_items(&keys, false).await?;
        let find = |sk: &str| {
            items
                .iter()
                .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(v)) if v == sk))
        };
        match find(&keys.run_sk()) {
            Some(item) => {
                let event = self
                    .trigger_event(item, find(&keys.event_sk()), None)
                    .await?;
                Ok(Some(self.run_of(item, event).await?))
            }
            None => Ok(None),
        }
    }

    async fn commit(&self, t: &Transition) -> hookflow::Result<Result<Committed, Conflict>> {
        Box::pin(self.commit_transition(t)).await
    }

    async fn extend_lease(
        &self,
        run_id: &str,
        token: &str,
        now: i64,
        until: i64,
    ) -> hookflow::Result<Result<(), Conflict>> {
        let keys = RunKeys::of(run_id);
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", keys.pk())
            .key("sk", string(keys.run_sk()))
            .update_expression("SET lease_until = :until")
            .condition_expression("lease_token = :token AND lease_until > :now")
            .expression_attribute_values(":until", number(until))
            .expression_attribute_values(":token", string(token))
            .expression_attribute_values(":now", number(now))
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
    ) -> hookflow::Result<bool> {
        let keys = RunKeys::of(run_id);
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", keys.pk())
            .key("sk", string(keys.run_sk()))
            .update_expression("SET cancel_requested = if_not_exists(cancel_requested, :reason)")
            .condition_expression(
                "attribute_exists(pk) AND NOT (#status IN (:completed, :failed, :cancelled, :skipped))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":reason", string(reason))
            .expression_attribute_values(":completed", string(TERMINAL[0]))
            .expression_attribute_values(":failed", string(TERMINAL[1]))
            .expression_attribute_values(":cancelled", string(TERMINAL[2]))
            .expression_attribute_values(":skipped", string(TERMINAL[3]))
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

    async fn list_runs(&self, filter: &RunFilter) -> hookflow::Result<Vec<Run>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Ok(Vec::new());
        }
        let mut items = match &filter.function_id {
            // Failed and cancelled runs from the status index, which holds
            // them whole.
            Some(function) if filter.status.is_some_and(status_indexed) => {
                let status = filter.status.map(RunStatus::as_str).unwrap_or_default();
                let key = format!("FS#{function}#{status}");
                self.indexed_runs(STATUS_INDEX, "gsi2", &key, filter, limit)
                    .await?
            }
            // Any other: from the function's partitions, and those with ids
            // of another form from the function index; newest first.
            Some(function) => {
                let mut items = self.function_runs(function, filter, limit).await?;
                let key = format!("FN#{function}");
                items.extend(
                    self.indexed_runs(FUNCTION_INDEX, "gsi1", &key, filter, limit)
                        .await?,
                );
                items
            }
            None => self.scanned_runs(filter).await?,
        };
        items.sort_by_cached_key(|item| std::cmp::Reverse(listing_key(item)));
        items.truncate(limit);
        Ok(self.with_events(&items).await?)
    }
}

/// What runs are listed by, newest first: when the run's trigger came for
/// an id that says it (the function's partitions are in that order), else
/// when it was created; then the id.
fn listing_key(item: &Item) -> (i64, String) {
    let id = run_id_of(item).unwrap_or_default();
    let at = RunIdParts::parse(id).map_or_else(|| get_n(item, "created_at").unwrap_or(0), |p| p.at);
    (at, id.to_owned())
}

/// The index sort keys (`{created_at:015}#{id}`) of a time range: the
/// lowest and highest (`~` sorts after `#`).
fn index_range(filter: &RunFilter) -> (String, String) {
    (
        format!("{:015}", filter.since.unwrap_or(0).max(0)),
        format!(
            "{:015}~",
            filter.until.map_or(999_999_999_999_999, |t| t.max(1) - 1)
        ),
    )
}

/// One of a function's partitions in a listing that merges them.
struct Shard {
    pk: String,
    /// Its runs read and not yet listed, newest first.
    read: VecDeque<Item>,
    /// Where its next page starts (`Some(None)`: at its newest), or `None`
    /// once it is read to the end.
    next: Option<Option<Item>>,
}

/// Whether a listing that found `found` runs of `limit` after looking at
/// `looked` stops: it has enough, or a status filter has looked far enough.
fn listed_enough(filter: &RunFilter, found: usize, looked: usize, limit: usize) -> bool {
    found >= limit || looked_far_enough(filter, looked)
}

/// Whether a listing filtered by status has looked at as many runs as it
/// may ([`STATUS_SCAN`]).
fn looked_far_enough(filter: &RunFilter, looked: usize) -> bool {
    filter.status.is_some() && looked >= STATUS_SCAN
}

/// How many items a listing reads at a time: more when a status filter
/// skips runs (a page is at most 1 MB anyway).
fn listing_page(filter: &RunFilter, limit: usize, filtered: bool) -> i32 {
    let page = if filtered && filter.status.is_some() {
        (limit * 4).clamp(100, 1000)
    } else {
        limit.min(1000)
    };
    i32::try_from(page).unwrap_or(i32::MAX)
}

impl AwsStore {
    /// The newest `limit` runs of `function` in its partitions, in the
    /// filter's time range (the time in their ids; a run created after
    /// `until` whose trigger came before it is left out too) and with its
    /// status: the partitions read a page at a time, each only while it may
    /// hold a run newer than the others' next, merged. Eventually
    /// consistent, as an index would be.
    async fn function_runs(
        &self,
        function: &str,
        filter: &RunFilter,
        limit: usize,
    ) -> Result<Vec<Item>> {
        // A page of each shard holds a sixteenth of what is asked, and some.
        let page = listing_page(filter, limit.div_ceil(16) + 10, true);
        let mut shards: Vec<Shard> = function_partitions(function)
            .map(|pk| Shard {
                pk,
                read: VecDeque::new(),
                next: Some(None),
            })
            .collect();
        let mut runs = Vec::new();
        let mut looked = 0;
        while runs.len() < limit {
            // Until every shard that is not read to the end has a run read
            // (a page whose every item the filter left out has none).
            loop {
                let wanting: Vec<usize> = (0..shards.len())
                    .filter(|&i| shards[i].read.is_empty() && shards[i].next.is_some())
                    .collect();
                if wanting.is_empty() || looked_far_enough(filter, looked) {
                    break;
                }
                let pages = wanting.iter().map(|&i| {
                    let shard = &shards[i];
                    let start = shard.next.clone().flatten();
                    self.partition_page(&shard.pk, function, filter, page, start)
                });
                for (i, (items, next, scanned)) in wanting
                    .iter()
                    .zip(futures::future::try_join_all(pages).await?)
                {
                    looked += scanned;
                    shards[*i].read.extend(items);
                    shards[*i].next = next.map(Some);
                }
            }
            // The newest run read (ids sort by their time).
            let newest = shards
                .iter_mut()
                .filter_map(|shard| {
                    let sk = get_s(shard.read.front()?, "sk").ok()?.to_owned();
                    Some((sk, shard))
                })
                .max_by(|(a, _), (b, _)| a.cmp(b));
            match newest.and_then(|(_, shard)| shard.read.pop_front()) {
                Some(run) => runs.push(run),
                None => break,
            }
        }
        Ok(runs)
    }

    /// One page of the run items of `function` in its partition `pk`,
    /// newest first, in the filter's range and with its status: the items,
    /// where the next page starts (`None` at the end) and how many items
    /// the page looked at.
    async fn partition_page(
        &self,
        pk: &str,
        function: &str,
        filter: &RunFilter,
        page: i32,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>, usize)> {
        let lowest = time_part(filter.since.unwrap_or(0));
        let highest = match filter.until {
            Some(until) => time_part(until.max(1) - 1) + "~",
            // After every id's time.
            None => "~".to_owned(),
        };
        // Only run items (their steps and event copies have no function),
        // and only this function's (two functions' tags may be the same).
        let mut condition = "function_id = :function".to_owned();
        let mut query = self
            .ddb()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", string(pk))
            .expression_attribute_values(":lo", string(lowest))
            .expression_attribute_values(":hi", string(highest))
            .expression_attribute_values(":function", string(function))
            .scan_index_forward(false)
            .limit(page)
            .set_exclusive_start_key(start);
        if let Some(until) = filter.until {
            condition.push_str(" AND created_at < :until");
            query = query.expression_attribute_values(":until", number(until));
        }
        if let Some(status) = filter.status {
            condition.push_str(" AND #status = :status");
            query = query
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", string(status.as_str()));
        }
        let out = query
            .filter_expression(condition)
            .send()
            .await
            .map_err(ddb)?;
        Ok((
            out.items().to_vec(),
            out.last_evaluated_key().cloned(),
            usize::try_from(out.scanned_count()).unwrap_or(0),
        ))
    }

    /// Up to `limit` runs from `index` (key attributes `{key}pk`,
    /// `{key}sk`), partition `value`, newest first, in the filter's time
    /// range and with its status: the [`STATUS_INDEX`] holds its runs
    /// whole; the [`FUNCTION_INDEX`] their keys, each run then read from
    /// the table and kept if its status matches.
    async fn indexed_runs(
        &self,
        index: &str,
        key: &str,
        value: &str,
        filter: &RunFilter,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let whole = index == STATUS_INDEX;
        let ranged = filter.since.is_some() || filter.until.is_some();
        let (lowest, highest) = index_range(filter);
        let mut items: Vec<Item> = Vec::new();
        let mut start = None;
        let mut looked = 0;
        loop {
            let mut query = self
                .ddb()
                .query()
                .table_name(self.table())
                .index_name(index)
                .key_condition_expression(format!("{key}pk = :v"))
                .expression_attribute_values(":v", string(value));
            if ranged {
                query = query
                    .key_condition_expression(format!(
                        "{key}pk = :v AND {key}sk BETWEEN :lo AND :hi"
                    ))
                    .expression_attribute_values(":lo", string(lowest.clone()))
                    .expression_attribute_values(":hi", string(highest.clone()));
            }
            let out = query
                .scan_index_forward(false)
                .limit(listing_page(filter, limit, !whole))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(ddb)?;
            if whole {
                items.extend(out.items().iter().cloned());
            } else {
                let keys = out
                    .items()
                    .iter()
                    .map(|i| Ok((get_s(i, "pk")?.to_owned(), get_s(i, "sk")?.to_owned())))
                    .collect::<Result<Vec<_>>>()?;
                looked += keys.len();
                // Eventually consistent, as the index itself is.
                let mut runs = self.batch_get(&keys, false).await?;
                for key in &keys {
                    // A run gone since (past its retention) is left out.
                    let Some(item) = runs.remove(key) else {
                        continue;
                    };
                    if filter
                        .status
                        .is_none_or(|s| get_s(&item, "status").is_ok_and(|v| v == s.as_str()))
                    {
                        items.push(item);
                    }
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() || listed_enough(filter, items.len(), looked, limit) {
                items.truncate(limit);
                return Ok(items);
            }
        }
    }

    /// No function given: an administrative scan of every run item (those
    /// in partitions of their own by pk prefix and sort key, so a document
    /// keyed `RUN` is not taken for a run; those in their function's
    /// partitions by prefix and a function).
    async fn scanned_runs(&self, filter: &RunFilter) -> Result<Vec<Item>> {
        let mut condition = "((sk = :run AND begins_with(pk, :own)) \
                             OR (begins_with(pk, :shard) AND attribute_exists(function_id)))"
            .to_owned();
        if filter.status.is_some() {
            condition.push_str(" AND #status = :status");
        }
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut scan = self
                .ddb()
                .scan()
                .table_name(self.table())
                .filter_expression(&condition)
                .expression_attribute_values(":run", string("RUN"))
                .expression_attribute_values(":own", string("RUN#"))
                .expression_attribute_values(":shard", string(SHARD_PREFIX))
                .set_exclusive_start_key(start);
            if let Some(status) = filter.status {
                scan = scan
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", string(status.as_str()));
            }
            let out = scan.send().await.map_err(ddb)?;
            items.extend(
                out.items()
                    .iter()
                    .filter(|item| {
                        let created = get_n(item, "created_at").unwrap_or(0);
                        filter.since.is_none_or(|t| created >= t)
                            && filter.until.is_none_or(|t| created < t)
                    })
                    .cloned(),
            );
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}
