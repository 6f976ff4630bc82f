//! How long finished work is kept, so storage does not grow without bound.
//!
//! | what | kept | then |
//! |---|---|---|
//! | a finished run (its steps, its trigger event copy if it has one), a skipped one too | [`Retention::runs`] after it ended (default 30 days) | deleted: SQLite's periodic prune, DynamoDB TTL |
//! | an event (and so its dedupe record) | [`Retention::events`] after it was received or became due, whichever is later (default 7 days; at least two dedupe windows) | deleted; SQLite keeps every event while a function is paused or resuming (resuming routes the events it missed) and any event a queued message or an unfinished run names |
//! | an idempotency claim | until its window ends (24 h) | deleted |
//! | an unfinished run | on DynamoDB, [`Retention::longest_run`] (default 365 days) plus the runs' retention from its last change; its step and event items from when they were written, and the routed record of the event that started it from when it was routed | deleted: a run must not outlive it |
//!
//! Backends read it from `HOOKFLOW_RUN_RETENTION_DAYS`,
//! `HOOKFLOW_EVENT_RETENTION_DAYS` and `HOOKFLOW_LONGEST_RUN_DAYS`.

use std::time::Duration;

use crate::event::DEDUPE_WINDOW;

const DAY: Duration = Duration::from_secs(86_400);

/// Retention periods (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a finished run is kept after it ended.
    pub runs: Duration,
    /// How long an event is kept after it was received or due.
    pub events: Duration,
    /// The longest a run may live: what an unfinished run wrote expires
    /// this long after it was written (DynamoDB).
    pub longest_run: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            runs: DAY * 30,
            events: DAY * 7,
            longest_run: DAY * 365,
        }
    }
}

impl Retention {
    /// Days a finished run is kept.
    pub const RUNS_VAR: &'static str = "HOOKFLOW_RUN_RETENTION_DAYS";
    /// Days an event is kept.
    pub const EVENTS_VAR: &'static str = "HOOKFLOW_EVENT_RETENTION_DAYS";
    /// The longest a run may live, in days.
    pub const LONGEST_RUN_VAR: &'static str = "HOOKFLOW_LONGEST_RUN_DAYS";

    /// Reads the periods through `lookup` (unset: the defaults).
    ///
    /// # Errors
    /// A message naming the variable: not a whole number of days above
    /// zero, or events kept less than two dedupe windows.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let defaults = Self::default();
        let days = |var: &str, default: Duration| -> Result<Duration, String> {
            match lookup(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                None => Ok(default),
                Some(v) => match v.parse::<u32>() {
                    Ok(n) if n > 0 => Ok(DAY * n),
                    _ => Err(format!(
                        "{var} `{v}` is not a whole number of days above zero"
                    )),
                },
            }
        };
        let retention = Self {
            runs: days(Self::RUNS_VAR, defaults.runs)?,
            events: days(Self::EVENTS_VAR, defaults.events)?,
            longest_run: days(Self::LONGEST_RUN_VAR, defaults.longest_run)?,
        };
        if retention.events < DEDUPE_WINDOW * 2 {
            return Err(format!(
                "{} must be at least 2 days (events deduplicate for a day)",
                Self::EVENTS_VAR
            ));
        }
        Ok(retention)
    }

    /// From the process environment.
    ///
    /// # Errors
    /// As [`Self::from_lookup`].
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }
}

/// Milliseconds of `d`.
#[must_use]
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_and_parse_and_refuse_nonsense() {
        assert_eq!(
            Retention::from_lookup(|_| None).unwrap(),
            Retention::default()
        );
        let set = |var: &'static str, value: &'static str| {
            move |name: &str| (name == var).then(|| value.to_owned())
        };
        let r = Retention::from_lookup(set(Retention::RUNS_VAR, "90")).unwrap();
        assert_eq!(r.runs, DAY * 90);
        for bad in ["0", "-1", "1.5", "soon"] {
            let err = Retention::from_lookup(set(Retention::RUNS_VAR, bad)).unwrap_err();
            assert!(err.contains(Retention::RUNS_VAR), "{err}");
        }
        assert!(Retention::from_lookup(set(Retention::EVENTS_VAR, "1")).is_err());
    }
}
