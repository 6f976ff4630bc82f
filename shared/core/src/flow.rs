//! Flow control at start time: rate limit, throttle, debounce and singleton.
//!
//! Each option keeps a small record per function and key (a CEL expression
//! over the trigger `event`; no key means one record for the function). The
//! router reads the records, decides, and commits the new record in the same
//! [`crate::transition::Transition`] as the run it gates, on the condition
//! that the record is still at the version it read ([`FlowWrite::expect`]);
//! a concurrent decision makes the commit fail with
//! [`crate::transition::Conflict::FlowChanged`] and the router decides again.
//!
//! - **Rate limit** ([`RateLimit`], GCRA): an event over the limit starts
//!   nothing; its run is stored as [`crate::RunStatus::Skipped`] with the reason.
//! - **Throttle** ([`Throttle`], GCRA): a run over the limit is queued and
//!   starts at the first time the limit allows; nothing is dropped.
//! - **Debounce** ([`Debounce`]): the first event of a key creates a queued
//!   run due `period` later; each further event before it starts replaces
//!   the run's event and pushes its start back (never past `timeout` after
//!   the first), so the run starts once, with the last event.
//! - **Singleton** ([`Singleton`]): at most one unfinished run per key; a new
//!   one is skipped, or replaces the running one (which is cancelled).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::duration_ms;
use crate::error::Result;
use crate::expr::Expr;

/// At most `limit` runs started per `period` per key; events over it start
/// nothing (their runs are stored as skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub(crate) limit: u32,
    pub(crate) period: Duration,
    pub(crate) key: Option<String>,
}

impl RateLimit {
    /// `limit` runs per `period`.
    #[must_use]
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit,
            period,
            key: None,
        }
    }

    /// One limit per value of the CEL expression `key` over `event`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    fn gcra(&self) -> Gcra {
        // A full period's worth may come at once.
        Gcra::new(self.limit, self.period, self.limit)
    }
}

/// Runs start at most `limit` per `period` per key, `burst` of them at once;
/// runs over it are queued until the limit allows them (none are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub(crate) limit: u32,
    pub(crate) period: Duration,
    pub(crate) burst: u32,
    pub(crate) key: Option<String>,
}

impl Throttle {
    /// `limit` starts per `period`, evenly spaced (a burst of 1).
    #[must_use]
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit,
            period,
            burst: 1,
            key: None,
        }
    }

    /// How many runs may start at once when none started for a while.
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// One limit per value of the CEL expression `key` over `event`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    fn gcra(&self) -> Gcra {
        Gcra::new(self.limit, self.period, self.burst)
    }
}

/// A run starts `period` after the last event for its key, with that event;
/// `timeout` caps how long a stream of events can push it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    pub(crate) period: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) key: Option<String>,
}

impl Debounce {
    /// Start `period` after the last event.
    #[must_use]
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            timeout: None,
            key: None,
        }
    }

    /// Start at the latest `timeout` after the first event of a burst.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// One debounce per value of the CEL expression `key` over `event`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// When a run whose burst began at `first_at` is due, given an event at `now`.
    pub(crate) fn due(&self, first_at: i64, now: i64) -> i64 {
        let due = now + duration_ms(self.period);
        self.timeout
            .map_or(due, |timeout| due.min(first_at + duration_ms(timeout)))
    }
}

/// Runs take events in batches: the first event of a key opens a queued run
/// that starts when `max_size` events joined it or `timeout` after the
/// first, whichever comes first; its handler gets them all as `ctx.events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub(crate) max_size: u32,
    pub(crate) timeout: Duration,
    pub(crate) key: Option<String>,
}

impl Batch {
    /// Up to `max_size` events (1..=100) per run, waiting at most `timeout`
    /// (up to an hour) after the first.
    #[must_use]
    pub fn new(max_size: u32, timeout: Duration) -> Self {
        Self {
            max_size,
            timeout,
            key: None,
        }
    }

    /// One batch per value of the CEL expression `key` over `event`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Largest concurrency limit: a limit's slots and line are one record,
/// which stays far below DynamoDB's 400 KB item limit.
pub const MAX_CONCURRENCY: u32 = 1_000;

/// Largest batch a run takes.
pub const MAX_BATCH: u32 = 100;

/// What a singleton does with a new run while one is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SingletonMode {
    /// The new run is skipped.
    Skip,
    /// The unfinished run is cancelled (at its next step boundary) and the
    /// new one starts.
    Cancel,
}

/// At most one unfinished run per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Singleton {
    pub(crate) mode: SingletonMode,
    pub(crate) key: Option<String>,
}

impl Singleton {
    /// One unfinished run per function; `mode` says which one gives way.
    #[must_use]
    pub fn new(mode: SingletonMode) -> Self {
        Self { mode, key: None }
    }

    /// One unfinished run per value of the CEL expression `key` over `event`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Which runs a concurrency limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyScope {
    /// This function's runs (per key value).
    Function,
    /// Every function's runs with the same key value (the key is required):
    /// e.g. all calls to one tenant's API, whichever function makes them.
    Global,
}

/// At most `limit` runs executing a step at once, per key. A run that sleeps
/// or waits holds no slot; runs over the limit wait in line (FIFO, or by
/// [`Function::priority`](crate::Function::priority)) and start as slots free
/// up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    pub(crate) limit: u32,
    pub(crate) key: Option<String>,
    pub(crate) scope: ConcurrencyScope,
}

impl Concurrency {
    /// At most `limit` at once for the function.
    #[must_use]
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            key: None,
            scope: ConcurrencyScope::Function,
        }
    }

    /// One limit per value of the CEL expression `key` over `event`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Counts the runs of every function with the same key value.
    #[must_use]
    pub fn scope(mut self, scope: ConcurrencyScope) -> Self {
        self.scope = scope;
        self
    }
}

/// A function's flow-control options.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowControl {
    pub(crate) batch: Option<Batch>,
    pub(crate) concurrency: Vec<Concurrency>,
    pub(crate) priority: Option<String>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) throttle: Option<Throttle>,
    pub(crate) debounce: Option<Debounce>,
    pub(crate) singleton: Option<Singleton>,
}

/// The compiled key expressions of a function's options (`None`: no option
/// or no key).
#[derive(Clone, Default)]
pub(crate) struct FlowKeys {
    pub(crate) batch: Option<Expr>,
    pub(crate) concurrency: Vec<Option<Expr>>,
    pub(crate) priority: Option<Expr>,
    pub(crate) rate_limit: Option<Expr>,
    pub(crate) throttle: Option<Expr>,
    pub(crate) debounce: Option<Expr>,
    pub(crate) singleton: Option<Expr>,
}

impl FlowControl {
    /// True when nothing gates the run's creation (concurrency gates its
    /// executions instead).
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_none()
            && self.rate_limit.is_none()
            && self.throttle.is_none()
            && self.debounce.is_none()
            && self.singleton.is_none()
    }

    /// Checks the options and compiles their keys; the error names the problem.
    pub(crate) fn compile(&self) -> std::result::Result<FlowKeys, String> {
        let key = |source: Option<&String>| -> std::result::Result<Option<Expr>, String> {
            source
                .map(|s| Expr::compile(s).map_err(|e| e.to_string()))
                .transpose()
        };
        let positive = |what: &str, limit: u32, period: Duration| {
            if limit == 0 || period.is_zero() {
                Err(format!("{what} needs a limit and a period above zero"))
            } else if duration_ms(period) < i64::from(limit) {
                Err(format!("{what}: at most one run per millisecond"))
            } else {
                Ok(())
            }
        };
        if let Some(b) = &self.batch {
            if !(1..=MAX_BATCH).contains(&b.max_size) {
                return Err(format!("a batch holds 1 to {MAX_BATCH} events"));
            }
            if b.timeout.is_zero() || b.timeout > Duration::from_secs(3_600) {
                return Err("a batch timeout is above zero and at most an hour".into());
            }
            let others = [
                ("rate_limit", self.rate_limit.is_some()),
                ("throttle", self.throttle.is_some()),
                ("debounce", self.debounce.is_some()),
                ("singleton", self.singleton.is_some()),
                ("priority", self.priority.is_some()),
            ];
            if let Some((name, _)) = others.iter().find(|(_, set)| *set) {
                return Err(format!("batch and {name} cannot combine"));
            }
        }
        if self.concurrency.len() > 2 {
            return Err("at most two concurrency limits per function".into());
        }
        for c in &self.concurrency {
            if !(1..=MAX_CONCURRENCY).contains(&c.limit) {
                return Err(format!(
                    "a concurrency limit is 1 to {MAX_CONCURRENCY} (its slots are one record)"
                ));
            }
            if c.scope == ConcurrencyScope::Global && c.key.is_none() {
                return Err("a global concurrency limit needs a key".into());
            }
        }
        if self.priority.is_some() && self.concurrency.is_empty() {
            return Err(
                "priority orders runs waiting for a concurrency slot: add a concurrency limit"
                    .into(),
            );
        }
        if let Some(r) = &self.rate_limit {
            positive("rate_limit", r.limit, r.period)?;
        }
        if let Some(t) = &self.throttle {
            positive("throttle", t.limit, t.period)?;
            if t.burst == 0 {
                return Err("throttle burst must be at least 1".into());
            }
        }
        if let Some(d) = &self.debounce {
            if d.period.is_zero() {
                return Err("debounce period must be above zero".into());
            }
            if d.timeout.is_some_and(|t| t < d.period) {
                return Err("debounce timeout must be at least its period".into());
            }
            if self.throttle.is_some() {
                return Err(
                    "debounce and throttle cannot combine (both decide when a run starts)".into(),
                );
            }
            if self.singleton.is_some() {
                return Err(
                    "debounce and singleton cannot combine (a debounced run is already one per key)"
                        .into(),
                );
            }
        }
        Ok(FlowKeys {
            batch: key(self.batch.as_ref().and_then(|b| b.key.as_ref()))?,
            concurrency: self
                .concurrency
                .iter()
                .map(|c| key(c.key.as_ref()))
                .collect::<std::result::Result<_, _>>()?,
            priority: key(self.priority.as_ref())?,
            rate_limit: key(self.rate_limit.as_ref().and_then(|r| r.key.as_ref()))?,
            throttle: key(self.throttle.as_ref().and_then(|t| t.key.as_ref()))?,
            debounce: key(self.debounce.as_ref().and_then(|d| d.key.as_ref()))?,
            singleton: key(self.singleton.as_ref().and_then(|s| s.key.as_ref()))?,
        })
    }
}

/// The generic cell rate algorithm: one run per `interval`, up to
/// `tolerance` early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    interval: i64,
    tolerance: i64,
}

impl Gcra {
    /// `limit` per `period`, evenly spaced, up to `at_once` together.
    fn new(limit: u32, period: Duration, at_once: u32) -> Self {
        // Rounded up: a limit never admits more than it says.
        let limit = i64::from(limit.max(1));
        let interval = (duration_ms(period) + limit - 1) / limit;
        Self {
            interval,
            tolerance: interval * (i64::from(at_once.max(1)) - 1),
        }
    }

    /// The earliest start at or after `now` given the stored theoretical
    /// arrival time, and the arrival time once that start is taken.
    pub(crate) fn next(self, tat: Option<i64>, now: i64) -> (i64, i64) {
        let tat = tat.unwrap_or(now).max(now);
        let start = (tat - self.tolerance).max(now);
        (start, tat.max(start) + self.interval)
    }
}

impl RateLimit {
    /// `Some(new arrival time)` when a run may start at `now`, `None` when
    /// the limit is reached.
    pub(crate) fn admit(&self, tat: Option<i64>, now: i64) -> Option<i64> {
        let (start, tat) = self.gcra().next(tat, now);
        (start <= now).then_some(tat)
    }
}

impl Throttle {
    /// When a run may start (`now` or later), and the new arrival time.
    pub(crate) fn schedule(&self, tat: Option<i64>, now: i64) -> (i64, i64) {
        self.gcra().next(tat, now)
    }
}

/// Which option a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// [`RateLimit`].
    RateLimit,
    /// [`Throttle`].
    Throttle,
    /// [`Debounce`].
    Debounce,
    /// [`Singleton`].
    Singleton,
    /// [`Concurrency`].
    Concurrency,
    /// [`Batch`].
    Batch,
    /// A paused function.
    Pause,
}

impl FlowKind {
    /// The short name used in record keys.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimit => "rate",
            Self::Throttle => "throttle",
            Self::Debounce => "debounce",
            Self::Singleton => "singleton",
            Self::Concurrency => "concurrency",
            Self::Batch => "batch",
            Self::Pause => "pause",
        }
    }
}

/// The key of a flow-control record: `{kind}#{function}#{key}`, with long
/// keys replaced by their hash ([`crate::limits::bounded_key`]: records stay
/// small, keys bounded).
#[must_use]
pub fn record_key(kind: FlowKind, function_id: &str, key: &str) -> String {
    let key = crate::limits::bounded_key(key);
    format!("{}#{function_id}#{key}", kind.as_str())
}

/// The record that says whether `function_id` is paused.
#[must_use]
pub fn pause_key(function_id: &str) -> String {
    record_key(FlowKind::Pause, function_id, "")
}

/// When `record` says its function was paused, if it is paused now (a
/// function resuming runs new events already).
#[must_use]
pub fn paused_since(record: Option<&FlowRecord>) -> Option<i64> {
    match record.map(|r| &r.state) {
        Some(FlowState::Pause {
            since: Some(since),
            resuming: false,
        }) => Some(*since),
        _ => None,
    }
}

/// The key value of `expr` for the trigger `event`: empty without an
/// expression (one record for the function).
pub(crate) fn key_value(expr: Option<&Expr>, event: &Value) -> Result<String> {
    expr.map_or_else(|| Ok(String::new()), |e| e.key(&[("event", event)]))
}

/// What a flow-control record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FlowState {
    /// A GCRA theoretical arrival time (ms).
    Gcra {
        /// When the next run would start with no tolerance.
        tat: i64,
    },
    /// The queued run collecting a key's events.
    Debounce {
        /// The run that starts with the last event.
        run_id: String,
        /// When the burst's first event arrived (ms).
        first_at: i64,
        /// When the run is due to start (ms).
        due_at: i64,
        /// Events debounced into it so far.
        events: u32,
    },
    /// The key's unfinished run.
    Singleton {
        /// The run.
        run_id: String,
    },
    /// Whether a function is paused: since when (`None`: running), and
    /// whether the events it held are being started.
    Pause {
        /// When it was paused.
        since: Option<i64>,
        /// Its held events are being started (it runs new ones already).
        resuming: bool,
    },
    /// A key's open batch.
    Batch {
        /// The queued run collecting events (`None`: no batch is open).
        run_id: Option<String>,
        /// Events in it so far.
        size: u32,
    },
    /// A concurrency limit's slots and the runs waiting for one.
    Slots {
        /// Runs holding a slot (executing, or woken to take one).
        holders: Vec<SlotHolder>,
        /// Runs waiting, in the order they get slots.
        waiting: Vec<SlotWaiter>,
        /// The timer that re-checks the holders for the first waiter (in
        /// case a holder's worker crashed): when, and for which run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timer: Option<(i64, String)>,
    },
}

impl FlowState {
    /// When a store may forget a record of this state written at `written_at`
    /// (ms; `None`: never): a day after a GCRA time or a debounce's due time
    /// passed (it then means what no record means), a day after a batch's
    /// last write, and `longest_run` (the longest a run may stay unchanged)
    /// after a singleton's holder or a concurrency limit's slots were last
    /// written, since the runs they name may live that long. A pause lasts
    /// until it is lifted. DynamoDB's TTL and the SQLite prune both follow
    /// this; the prune also keeps any record that names an unfinished run.
    #[must_use]
    pub fn forget_after(&self, written_at: i64, longest_run: Duration) -> Option<i64> {
        const DAY: i64 = 86_400_000;
        match self {
            Self::Gcra { tat } => Some(tat.max(&written_at) + DAY),
            Self::Debounce { due_at, .. } => Some(due_at.max(&written_at) + DAY),
            Self::Batch { .. } => Some(written_at + DAY),
            Self::Singleton { .. } | Self::Slots { .. } => {
                Some(written_at.saturating_add(crate::clock::duration_ms(longest_run)))
            }
            Self::Pause { .. } => None,
        }
    }
}

/// A run holding a concurrency slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHolder {
    /// The run.
    pub run_id: String,
    /// Its lease token when it took the slot (`None`: woken, not yet here).
    pub token: Option<String>,
    /// When the slot lapses unless the run's lease is still held (ms).
    pub until: i64,
}

/// A run waiting for a concurrency slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotWaiter {
    /// The run.
    pub run_id: String,
    /// Its function (whose queue wakes it).
    pub function_id: String,
    /// Its place: when it began waiting, minus its priority (ms).
    pub rank: i64,
    /// Its own function's limit (a global key may be shared by functions
    /// with different limits); 0 in records written before it was kept.
    #[serde(default)]
    pub limit: u32,
}

/// A stored flow-control record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// Its version: the time it was created (ms), plus one per write since
    /// (see [`FlowWrite::stored_version`]).
    pub version: u64,
    /// Its state.
    pub state: FlowState,
}

/// A record written by a transition, on the condition that it is still at
/// version `expect` (0: it must not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowWrite {
    /// [`record_key`].
    pub key: String,
    /// The version read.
    pub expect: u64,
    /// The new state (stored at [`Self::stored_version`]).
    pub state: FlowState,
}

impl FlowWrite {
    /// The version the record is stored at when written at `now` (ms): the
    /// one read plus one, or for a new record its creation time. A record
    /// deleted once idle (a prune, a TTL) and created again so never comes
    /// back at a version a writer read from its earlier life, which would
    /// let that writer's stale decision through.
    #[must_use]
    pub fn stored_version(&self, now: i64) -> u64 {
        if self.expect == 0 {
            u64::try_from(now).unwrap_or(0).max(1)
        } else {
            self.expect.saturating_add(1)
        }
    }

    /// Replaces `read` (or creates the record) with `state`.
    #[must_use]
    pub fn after(key: String, read: Option<&FlowRecord>, state: FlowState) -> Self {
        Self {
            key,
            expect: read.map_or(0, |r| r.version),
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    #[test]
    fn a_throttle_spaces_starts_evenly_after_its_burst() {
        // GIVEN 10 per second with a burst of 3
        let throttle = Throttle::new(10, Duration::from_secs(1)).burst(3);
        // WHEN 6 runs arrive at once
        let mut tat = None;
        let starts: Vec<i64> = (0..6)
            .map(|_| {
                let (start, next) = throttle.schedule(tat, 0);
                tat = Some(next);
                start
            })
            .collect();
        // THEN 3 start now, then one every 100 ms
        assert_eq!(starts, vec![0, 0, 0, 100, 200, 300]);
        // AND after a quiet second the burst is available again
        assert_eq!(throttle.schedule(tat, 2 * S).0, 2 * S);
    }

    #[test]
    fn a_rate_limit_admits_its_limit_per_period_then_refuses() {
        // GIVEN 2 per minute
        let rate = RateLimit::new(2, Duration::from_secs(60));
        // WHEN events arrive at 0, 1 s and 2 s, then 31 s
        let first = rate.admit(None, 0).unwrap();
        let second = rate.admit(Some(first), S).unwrap();
        // THEN the first two are admitted, the third is not
        assert_eq!(rate.admit(Some(second), 2 * S), None);
        // AND one slot comes back every 30 s
        assert!(rate.admit(Some(second), 31 * S).is_some());
    }

    #[test]
    fn a_limit_that_does_not_divide_its_period_never_admits_more() {
        // 600 a second is one every 1.67 ms: rounded up to 2 ms, not down to 1.
        let throttle = Throttle::new(600, Duration::from_secs(1));
        let mut tat = None;
        let mut last = 0;
        for _ in 0..601 {
            let (start, next) = throttle.schedule(tat, 0);
            tat = Some(next);
            last = start;
        }
        assert!(last >= S, "601 starts within a second: last at {last} ms");
    }

    #[test]
    fn long_keys_are_hashed_into_bounded_record_keys() {
        let short = record_key(FlowKind::Throttle, "send", "tenant-1");
        assert_eq!(short, "throttle#send#tenant-1");
        let long = record_key(FlowKind::Throttle, "send", &"x".repeat(500));
        assert!(long.len() < 100, "{long}");
    }

    #[test]
    fn options_that_cannot_work_are_refused() {
        let flow = FlowControl {
            throttle: Some(Throttle::new(0, Duration::from_secs(1))),
            ..FlowControl::default()
        };
        assert!(flow.compile().is_err());
        let flow = FlowControl {
            debounce: Some(Debounce::new(Duration::from_secs(60)).timeout(Duration::from_secs(1))),
            ..FlowControl::default()
        };
        assert!(flow.compile().is_err());
        let flow = FlowControl {
            singleton: Some(Singleton::new(SingletonMode::Skip).key("event.data.(")),
            ..FlowControl::default()
        };
        assert!(flow.compile().is_err());
        let flow = FlowControl {
            concurrency: vec![Concurrency::new(MAX_CONCURRENCY + 1)],
            ..FlowControl::default()
        };
        assert!(
            flow.compile().is_err(),
            "a limit whose record would not fit"
        );
    }
}
