//! Function definitions: what starts a function, how it retries, and its handler.
//!
//! ```
//! use hookflow::{Function, step::WaitFor};
//! use std::time::Duration;
//!
//! let f = Function::new("post-purchase")
//!     .on_event("purchase/created")
//!     .retries(3)
//!     .idempotency("event.data.orderId")
//!     .handler(|ctx| async move {
//!         let order: String = ctx.step.run("load-order", || async { Ok("o-1".to_string()) }).await?;
//!         ctx.step.sleep("cool-off", Duration::from_secs(3600)).await?;
//!         Ok(order)
//!     });
//! assert!(f.validate().is_ok());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::{Event, FUNCTION_FAILED};
use crate::expr::Expr;
use crate::failure::DEFAULT_RETRIES;
use crate::flow::{
    Batch, Concurrency, Debounce, FlowControl, FlowKeys, RateLimit, Singleton, Throttle,
};
use crate::step::Step;

/// What a handler receives.
pub struct Ctx {
    /// The event that started the run (for a batch, the first).
    pub event: Event,
    /// Every event the run handles: the batch for a batched function (in
    /// arrival order), otherwise `event` alone.
    pub events: Vec<Event>,
    /// The durable step API.
    pub step: Step,
    /// This run's id.
    pub run_id: String,
    /// Run-level attempt (0 for the first execution, counts handler retries).
    pub attempt: u32,
}

/// A type-erased handler.
pub type Handler = Arc<dyn Fn(Ctx) -> BoxFuture<'static, anyhow::Result<Value>> + Send + Sync>;

/// What starts a function.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// An event by name, optionally filtered by a CEL expression over `event`.
    Event {
        /// Event name.
        name: String,
        /// CEL filter source.
        condition: Option<String>,
    },
    /// A cron schedule (5 fields, or 6 with seconds) in a time zone.
    Cron {
        /// The cron expression.
        schedule: String,
        /// IANA time zone name (`UTC` by default).
        timezone: String,
        /// The setting (environment variable) the time zone was read from,
        /// if any: a deployment renders its schedule in that setting's
        /// value rather than in the one this definition was built with.
        timezone_setting: Option<String>,
    },
}

/// Cancels a run when a matching event arrives.
#[derive(Debug, Clone)]
pub struct CancelOn {
    /// The cancelling event's name.
    pub event: String,
    /// CEL condition over `event` (trigger) and `async` (the cancelling event).
    pub condition: Option<String>,
}

impl CancelOn {
    /// Cancel on any `event`.
    pub fn event(name: impl Into<String>) -> Self {
        Self {
            event: name.into(),
            condition: None,
        }
    }

    /// Only when the field at `path` (e.g. `data.orderId`) is equal in both events.
    #[must_use]
    pub fn matching(mut self, path: &str) -> Self {
        self.condition = Some(match_condition(path));
        self
    }

    /// Only when the CEL `condition` over `event` and `async` holds.
    #[must_use]
    pub fn when(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
}

/// The CEL condition for "field `path` is equal in `event` and `async`".
#[must_use]
pub fn match_condition(path: &str) -> String {
    let path = path.trim_start_matches('.');
    format!("event.{path} == async.{path}")
}

/// A function: triggers, policies and handler.
#[derive(Clone)]
pub struct Function {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) retries: u32,
    pub(crate) idempotency: Option<String>,
    pub(crate) cancel_on: Vec<CancelOn>,
    pub(crate) waits_for: Vec<String>,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) finish_timeout: Option<Duration>,
    pub(crate) on_failure: Option<Handler>,
    pub(crate) handler: Option<Handler>,
    pub(crate) settings: Vec<String>,
    pub(crate) flow: FlowControl,
    // compiled on validate()
    pub(crate) compiled: Compiled,
}

#[derive(Clone, Default)]
pub(crate) struct Compiled {
    pub(crate) conditions: Vec<Option<Expr>>,
    pub(crate) crons: Vec<Option<(croner::Cron, chrono_tz::Tz)>>,
    pub(crate) idempotency: Option<Expr>,
    pub(crate) flow: FlowKeys,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("id", &self.id)
            .field("triggers", &self.triggers)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

fn erase<F, Fut, T>(f: F) -> Handler
where
    F: Fn(Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Serialize,
{
    Arc::new(move |ctx| {
        let fut = f(ctx);
        Box::pin(async move { Ok(serde_json::to_value(fut.await?)?) })
    })
}

impl Function {
    /// A function with this id (lowercase letters, digits and `-`).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            triggers: Vec::new(),
            retries: DEFAULT_RETRIES,
            idempotency: None,
            cancel_on: Vec::new(),
            waits_for: Vec::new(),
            start_timeout: None,
            finish_timeout: None,
            on_failure: None,
            handler: None,
            settings: Vec::new(),
            flow: FlowControl::default(),
            compiled: Compiled::default(),
        }
    }

    /// A human-readable name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Starts on every event named `name`.
    #[must_use]
    pub fn on_event(mut self, name: impl Into<String>) -> Self {
        self.triggers.push(Trigger::Event {
            name: name.into(),
            condition: None,
        });
        self
    }

    /// Starts on events named `name` for which the CEL `condition` over `event` is true.
    #[must_use]
    pub fn on_event_if(mut self, name: impl Into<String>, condition: impl Into<String>) -> Self {
        self.triggers.push(Trigger::Event {
            name: name.into(),
            condition: Some(condition.into()),
        });
        self
    }

    /// Starts on a cron schedule in UTC.
    #[must_use]
    pub fn on_cron(self, schedule: impl Into<String>) -> Self {
        self.on_cron_in(schedule, "UTC")
    }

    /// Starts on a cron schedule in an IANA time zone (e.g. `Europe/London`).
    #[must_use]
    pub fn on_cron_in(mut self, schedule: impl Into<String>, timezone: impl Into<String>) -> Self {
        self.triggers.push(Trigger::Cron {
            schedule: schedule.into(),
            timezone: timezone.into(),
            timezone_setting: None,
        });
        self
    }

    /// Starts on a cron schedule in the time zone a setting holds: `timezone`
    /// is the setting's value here (read by the caller), `setting` the
    /// variable's name, which a deployment template uses for its schedule
    /// (`ScheduleExpressionTimezone: !Ref` the setting's parameter). The
    /// setting is added to the function's [`Self::reads_env`].
    #[must_use]
    pub fn on_cron_in_setting(
        mut self,
        schedule: impl Into<String>,
        timezone: impl Into<String>,
        setting: impl Into<String>,
    ) -> Self {
        let setting = setting.into();
        self.triggers.push(Trigger::Cron {
            schedule: schedule.into(),
            timezone: timezone.into(),
            timezone_setting: Some(setting.clone()),
        });
        self.reads_env([setting])
    }

    /// Retries after the first attempt, for each step and for the handler
    /// (default [`DEFAULT_RETRIES`]).
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// At most one run per value of this CEL key over `event` per 24 h.
    #[must_use]
    pub fn idempotency(mut self, key: impl Into<String>) -> Self {
        self.idempotency = Some(key.into());
        self
    }

    /// Runs take events in batches (`ctx.events`); see [`Batch`].
    #[must_use]
    pub fn batch(mut self, batch: Batch) -> Self {
        self.flow.batch = Some(batch);
        self
    }

    /// Limits how many runs execute a step at once (up to two limits).
    #[must_use]
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.flow.concurrency.push(concurrency);
        self
    }

    /// A CEL expression over `event` giving seconds (-600..=600) by which a
    /// run waiting for a concurrency slot goes ahead of (positive) or behind
    /// (negative) the others.
    #[must_use]
    pub fn priority(mut self, seconds: impl Into<String>) -> Self {
        self.flow.priority = Some(seconds.into());
        self
    }

    /// Starts at most `limit` runs per period per key; events over it start
    /// nothing (their runs are stored as skipped, with the reason).
    #[must_use]
    pub fn rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.flow.rate_limit = Some(rate_limit);
        self
    }

    /// Starts runs at most `limit` per period per key; runs over it wait
    /// (queued) until the limit allows them. Nothing is dropped.
    #[must_use]
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.flow.throttle = Some(throttle);
        self
    }

    /// Starts one run per burst of events for a key, `period` after the last
    /// one, with the last one.
    #[must_use]
    pub fn debounce(mut self, debounce: Debounce) -> Self {
        self.flow.debounce = Some(debounce);
        self
    }

    /// Keeps at most one unfinished run per key.
    #[must_use]
    pub fn singleton(mut self, singleton: Singleton) -> Self {
        self.flow.singleton = Some(singleton);
        self
    }

    /// Cancels a run when a matching event arrives.
    #[must_use]
    pub fn cancel_on(mut self, cancel: CancelOn) -> Self {
        self.cancel_on.push(cancel);
        self
    }

    /// Declares that its runs call `step.wait_for_event` on events named
    /// `name`. A wait on an undeclared name fails its step: the router
    /// looks for waiters (and keeps the record a new waiter catches up
    /// from) only for the names some function declares here or in
    /// `cancel_on`, so an event nothing waits for costs no read or write
    /// beyond its own.
    #[must_use]
    pub fn waits_for(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.waits_for.contains(&name) {
            self.waits_for.push(name);
        }
        self
    }

    /// Cancels a run that has not started within `timeout` of being queued.
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// Cancels a run that has not finished within `timeout` of starting.
    #[must_use]
    pub fn finish_timeout(mut self, timeout: Duration) -> Self {
        self.finish_timeout = Some(timeout);
        self
    }

    /// Runs when this function fails for good. Its context's event is the
    /// `hookflow/function.failed` event: `data.function_id`, `data.run_id`,
    /// `data.error` and the original `data.event`.
    #[must_use]
    pub fn on_failure<F, Fut, T>(mut self, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
        T: Serialize,
    {
        self.on_failure = Some(erase(f));
        self
    }

    /// The handler; completes the definition.
    #[must_use]
    pub fn handler<F, Fut, T>(mut self, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
        T: Serialize,
    {
        self.handler = Some(erase(f));
        self
    }

    /// The environment variables (API keys, settings) this function reads:
    /// a deployment gives them to its Lambda and to no other.
    #[must_use]
    pub fn reads_env<I, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.settings.extend(vars.into_iter().map(Into::into));
        self
    }

    /// The environment variables it reads (see [`Function::reads_env`]).
    #[must_use]
    pub fn settings(&self) -> &[String] {
        &self.settings
    }

    /// The function id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its triggers.
    #[must_use]
    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// Its retry count.
    #[must_use]
    pub fn retry_count(&self) -> u32 {
        self.retries
    }

    /// Its cancel_on entries.
    #[must_use]
    pub fn cancellations(&self) -> &[CancelOn] {
        &self.cancel_on
    }

    /// The event names its runs may wait for ([`Self::waits_for`]).
    #[must_use]
    pub fn awaited_events(&self) -> &[String] {
        &self.waits_for
    }

    /// Its run options in words, one line each (idempotency, timeouts,
    /// `cancel_on` and flow control), for people reading a function list.
    #[must_use]
    pub fn options_summary(&self) -> Vec<String> {
        let keyed = |key: &Option<String>| {
            key.as_deref()
                .map_or_else(String::new, |k| format!(" per `{k}`"))
        };
        let every = |d: Duration| humanize(d);
        let mut out = Vec::new();
        if let Some(key) = &self.idempotency {
            out.push(format!("idempotent per `{key}`"));
        }
        for name in &self.waits_for {
            out.push(format!("waits for {name}"));
        }
        for cancel in &self.cancel_on {
            out.push(match &cancel.condition {
                Some(c) => format!("cancelled by {} if `{c}`", cancel.event),
                None => format!("cancelled by {}", cancel.event),
            });
        }
        if let Some(t) = self.start_timeout {
            out.push(format!("must start within {}", every(t)));
        }
        if let Some(t) = self.finish_timeout {
            out.push(format!("must finish within {}", every(t)));
        }
        let flow = &self.flow;
        if let Some(r) = &flow.rate_limit {
            out.push(format!(
                "rate limit {} per {}{}",
                r.limit,
                every(r.period),
                keyed(&r.key)
            ));
        }
        if let Some(t) = &flow.throttle {
            out.push(format!(
                "throttle {} per {} (burst {}){}",
                t.limit,
                every(t.period),
                t.burst,
                keyed(&t.key)
            ));
        }
        if let Some(d) = &flow.debounce {
            let cap = d
                .timeout
                .map_or_else(String::new, |t| format!(", at most {}", every(t)));
            out.push(format!(
                "debounce {}{cap}{}",
                every(d.period),
                keyed(&d.key)
            ));
        }
        if let Some(s) = &flow.singleton {
            let mode = match s.mode {
                crate::flow::SingletonMode::Skip => "skip new",
                crate::flow::SingletonMode::Cancel => "cancel running",
            };
            out.push(format!("singleton ({mode}){}", keyed(&s.key)));
        }
        if let Some(b) = &flow.batch {
            out.push(format!(
                "batch up to {} within {}{}",
                b.max_size,
                every(b.timeout),
                keyed(&b.key)
            ));
        }
        for c in &flow.concurrency {
            let scope = match c.scope {
                crate::flow::ConcurrencyScope::Function => "",
                crate::flow::ConcurrencyScope::Global => " across functions",
            };
            out.push(format!("concurrency {}{}{scope}", c.limit, keyed(&c.key)));
        }
        if let Some(p) = &flow.priority {
            out.push(format!("priority `{p}`"));
        }
        out
    }

    /// Checks the definition: id, handler, triggers, expressions and schedules.
    ///
    /// # Errors
    /// [`Error::InvalidFunction`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        self.compile().map(|_| ())
    }

    pub(crate) fn compile(&self) -> Result<Compiled> {
        let invalid = |reason: String| Error::InvalidFunction {
            function: self.id.clone(),
            reason,
        };
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err(invalid(
                "id must be 1-64 characters of a-z, 0-9 and '-'".into(),
            ));
        }
        if self.handler.is_none() {
            return Err(invalid("no handler".into()));
        }
        if self.triggers.is_empty() {
            return Err(invalid("no trigger (on_event or on_cron)".into()));
        }
        let mut compiled = Compiled::default();
        for trigger in &self.triggers {
            match trigger {
                Trigger::Event { name, condition } => {
                    if name.trim().is_empty() {
                        return Err(invalid("empty trigger event name".into()));
                    }
                    let expr = condition
                        .as_deref()
                        .map(Expr::compile)
                        .transpose()
                        .map_err(|e| invalid(e.to_string()))?;
                    compiled.conditions.push(expr);
                    compiled.crons.push(None);
                }
                Trigger::Cron {
                    schedule, timezone, ..
                } => {
                    let cron = croner::Cron::from_str(schedule)
                        .map_err(|e| invalid(format!("cron `{schedule}`: {e}")))?;
                    let tz = chrono_tz::Tz::from_str(timezone)
                        .map_err(|_| invalid(format!("unknown time zone `{timezone}`")))?;
                    compiled.conditions.push(None);
                    compiled.crons.push(Some((cron, tz)));
                }
            }
        }
        if self.waits_for.iter().any(String::is_empty) {
            return Err(invalid("waits_for needs an event name".into()));
        }
        for cancel in &self.cancel_on {
            if let Some(condition) = &cancel.condition {
                Expr::compile(condition).map_err(|e| invalid(e.to_string()))?;
            }
        }
        compiled.idempotency = self
            .idempotency
            .as_deref()
            .map(Expr::compile)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        compiled.flow = self.flow.compile().map_err(invalid)?;
        if self.flow.batch.is_some() {
            // A batch run's events are not its trigger alone.
            if self.idempotency.is_some() {
                return Err(invalid("batch and idempotency cannot combine".into()));
            }
            if !self.cancel_on.is_empty() {
                return Err(invalid("batch and cancel_on cannot combine".into()));
            }
        }
        if self.flow.debounce.is_some() {
            // A debounced run's trigger event is replaced until it starts:
            // a key claimed or a cancellation registered from the first
            // event would no longer describe it.
            if self.idempotency.is_some() {
                return Err(invalid("debounce and idempotency cannot combine".into()));
            }
            if !self.cancel_on.is_empty() {
                return Err(invalid("debounce and cancel_on cannot combine".into()));
            }
        }
        Ok(compiled)
    }

    /// The next cron fire time strictly after `after_ms`, over all cron triggers.
    #[must_use]
    pub fn next_cron_after(&self, after_ms: i64) -> Option<i64> {
        use chrono::TimeZone;
        self.compiled
            .crons
            .iter()
            .flatten()
            .filter_map(|(cron, tz)| {
                let start = tz.timestamp_millis_opt(after_ms).single()?;
                cron.find_next_occurrence(&start, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            })
            .min()
    }

    /// True if `event` starts this function (name and condition).
    #[must_use]
    pub fn is_triggered_by(&self, event: &Event, event_json: &Value) -> bool {
        self.triggers
            .iter()
            .zip(&self.compiled.conditions)
            .any(|(trigger, expr)| match trigger {
                Trigger::Event { name, .. } if *name == event.name => expr
                    .as_ref()
                    .is_none_or(|e| e.matches(&[("event", event_json)])),
                _ => false,
            })
    }

    /// True if the function has a cron trigger.
    #[must_use]
    pub fn has_cron(&self) -> bool {
        self.compiled.crons.iter().any(Option::is_some)
    }

    pub(crate) fn handler_fn(&self) -> Option<&Handler> {
        self.handler.as_ref()
    }

    pub(crate) fn idempotency_expr(&self) -> Option<&Expr> {
        self.compiled.idempotency.as_ref()
    }

    pub(crate) fn flow(&self) -> (&FlowControl, &FlowKeys) {
        (&self.flow, &self.compiled.flow)
    }
}

/// Every registered function, validated, indexed by id and trigger event.
#[derive(Clone, Default)]
pub struct Registry {
    functions: BTreeMap<String, Arc<Function>>,
    by_event: BTreeMap<String, Vec<Arc<Function>>>,
    /// The event names some function waits for or is cancelled by.
    awaited: BTreeSet<String>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.functions.keys()).finish()
    }
}

/// Suffix of the function generated for an `on_failure` handler.
pub const FAILURE_SUFFIX: &str = "-on-failure";

impl Registry {
    /// Validates and indexes `functions`. Each `on_failure` handler becomes a
    /// function `<id>-on-failure` triggered by `hookflow/function.failed`.
    ///
    /// # Errors
    /// [`Error::InvalidFunction`] for the first invalid definition or a duplicate id.
    pub fn new(functions: impl IntoIterator<Item = Function>) -> Result<Self> {
        let mut registry = Self::default();
        for function in functions {
            if function.id.ends_with(FAILURE_SUFFIX) {
                return Err(Error::InvalidFunction {
                    function: function.id,
                    reason: format!(
                        "ids ending in `{FAILURE_SUFFIX}` are reserved for on_failure handlers \
                         (they run in their function's Lambda and queue)"
                    ),
                });
            }
            if let Some(on_failure) = function.on_failure.clone() {
                let mut failure = Function::new(format!("{}{FAILURE_SUFFIX}", function.id))
                    .on_event_if(
                        FUNCTION_FAILED,
                        format!("event.data.function_id == '{}'", function.id),
                    )
                    .retries(function.retries);
                failure.waits_for.clone_from(&function.waits_for);
                failure.handler = Some(on_failure);
                registry.insert(failure)?;
            }
            registry.insert(function)?;
        }
        Ok(registry)
    }

    fn insert(&mut self, mut function: Function) -> Result<()> {
        function.compiled = function.compile()?;
        if self.functions.contains_key(&function.id) {
            return Err(Error::InvalidFunction {
                function: function.id,
                reason: "duplicate id".into(),
            });
        }
        let function = Arc::new(function);
        for trigger in &function.triggers {
            if let Trigger::Event { name, .. } = trigger {
                let list = self.by_event.entry(name.clone()).or_default();
                if !list.iter().any(|f| f.id == function.id) {
                    list.push(function.clone());
                }
            }
        }
        let cancels = function.cancel_on.iter().map(|c| &c.event);
        self.awaited
            .extend(function.waits_for.iter().chain(cancels).cloned());
        self.functions.insert(function.id.clone(), function);
        Ok(())
    }

    /// The function with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Arc<Function>> {
        self.functions.get(id)
    }

    /// Functions with an event trigger named `event`.
    #[must_use]
    pub fn triggered_by(&self, event: &str) -> &[Arc<Function>] {
        self.by_event.get(event).map_or(&[], Vec::as_slice)
    }

    /// The event names some function is triggered by.
    pub fn trigger_names(&self) -> impl Iterator<Item = &str> {
        self.by_event.keys().map(String::as_str)
    }

    /// Whether some function waits for events named `event` (declared
    /// with [`Function::waits_for`]) or is cancelled by them (`cancel_on`):
    /// only then can an event of that name have waiters.
    #[must_use]
    pub fn is_awaited(&self, event: &str) -> bool {
        self.awaited.contains(event)
    }

    /// Every function, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.functions.values()
    }

    /// Number of functions (including generated on-failure functions).
    #[must_use]
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// True if empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

/// `d` in the largest whole unit that fits (`90s`, `5m`, `36h`, `7d`), or
/// milliseconds.
fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_read_as_words() {
        let f = Function::new("f")
            .on_event("a")
            .idempotency("event.data.id")
            .throttle(Throttle::new(10, Duration::from_secs(1)).key("event.data.tenant"))
            .debounce(Debounce::new(Duration::from_secs(300)).timeout(Duration::from_secs(7200)))
            .concurrency(Concurrency::new(2))
            .cancel_on(CancelOn::event("b"));
        assert_eq!(
            f.options_summary(),
            [
                "idempotent per `event.data.id`",
                "cancelled by b",
                "throttle 10 per 1s (burst 1) per `event.data.tenant`",
                "debounce 5m, at most 2h",
                "concurrency 2",
            ]
        );
        assert_eq!(humanize(Duration::from_millis(1500)), "1500ms");
        assert_eq!(humanize(Duration::from_secs(7 * 86_400)), "7d");
    }

    fn noop(id: &str) -> Function {
        Function::new(id).handler(|_ctx| async { Ok(()) })
    }

    #[test]
    fn invalid_definitions_are_reported() {
        assert!(noop("Bad Id").on_event("a").validate().is_err());
        assert!(noop("ok").validate().is_err(), "no trigger");
        let err = noop("ok")
            .on_event_if("a", "event.data.(")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("event.data.("), "{err}");
        let err = noop("ok").on_cron("not a cron").validate().unwrap_err();
        assert!(err.to_string().contains("cron"), "{err}");
        let err = noop("ok")
            .on_cron_in("0 9 * * *", "Mars/Base")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("Mars/Base"), "{err}");
    }

    #[test]
    fn trigger_conditions_filter_events() {
        let registry =
            Registry::new([noop("big").on_event_if("order/paid", "event.data.total >= 100")])
                .unwrap();
        let f = &registry.triggered_by("order/paid")[0];
        let big = Event::new("order/paid", json!({"total": 150}));
        let small = Event::new("order/paid", json!({"total": 5}));
        assert!(f.is_triggered_by(&big, &serde_json::to_value(&big).unwrap()));
        assert!(!f.is_triggered_by(&small, &serde_json::to_value(&small).unwrap()));
    }

    #[test]
    fn cron_respects_the_time_zone() {
        let registry =
            Registry::new([noop("daily").on_cron_in("0 9 * * *", "Europe/London")]).unwrap();
        let f = registry.get("daily").unwrap();
        // 2026-07-01T00:00:00Z: London is on BST (UTC+1), so 09:00 local = 08:00 UTC.
        let start = 1_782_864_000_000;
        let next = f.next_cron_after(start).unwrap();
        assert_eq!(next - start, 8 * 3_600_000);
    }

    #[test]
    fn on_failure_becomes_a_function() {
        let registry = Registry::new([noop("pay")
            .on_event("a")
            .on_failure(|_ctx| async { Ok(()) })])
        .unwrap();
        assert!(registry.get("pay-on-failure").is_some());
        assert_eq!(registry.triggered_by(FUNCTION_FAILED).len(), 1);
        let err = Registry::new([noop("retry-on-failure").on_event("a")]).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(Registry::new([noop("x").on_event("a"), noop("x").on_event("b")]).is_err());
    }

    #[test]
    fn only_declared_waits_and_cancellations_make_a_name_awaited() {
        // GIVEN one function waiting for `linked`, another cancelled by
        // `stop`, a third only triggered by `go`
        let registry = Registry::new([
            noop("wait")
                .on_event("go")
                .waits_for("linked")
                .waits_for("linked")
                .on_failure(|_ctx| async { Ok(()) }),
            noop("stoppable")
                .on_event("go")
                .cancel_on(CancelOn::event("stop")),
            noop("plain").on_event("go"),
        ])
        .unwrap();
        // THEN exactly the declared names are awaited (a trigger is not)
        assert!(registry.is_awaited("linked"));
        assert!(registry.is_awaited("stop"));
        assert!(!registry.is_awaited("go"));
        assert!(!registry.is_awaited("other"));
        let wait = registry.get("wait").unwrap();
        assert_eq!(wait.awaited_events(), ["linked"], "declared once");
        assert!(
            wait.options_summary()
                .contains(&"waits for linked".to_owned())
        );
        // AND the on_failure handler may wait for what its function does
        assert_eq!(
            registry.get("wait-on-failure").unwrap().awaited_events(),
            ["linked"]
        );
        // AND an empty name is refused
        let err = Registry::new([noop("bad").on_event("go").waits_for("")]).unwrap_err();
        assert!(err.to_string().contains("waits_for"), "{err}");
    }
}
