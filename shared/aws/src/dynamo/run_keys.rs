//! Where a run's items are, from its id alone.
//!
//! A run id of the current format ([`hookflow::run_id`]) says when the run's
//! trigger came, its function's tag and its shard, so its items live in its
//! function's shard partition, in time order, and the table itself lists a
//! function's runs (no index entry to write):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | run | `FR#{tag}#{shard}` | `{id}` |
//! | trigger event (a copy) | `FR#{tag}#{shard}` | `{id}#EVENT` |
//! | step | `FR#{tag}#{shard}` | `{id}#STEP#{step id}` |
//!
//! A run id of any other form (runs made before it; ids a test chose) keeps
//! its own partition, `RUN#{id}` with `RUN`, `EVENT` and `STEP#{step id}`,
//! and is listed through the [`super::FUNCTION_INDEX`].

use aws_sdk_dynamodb::types::AttributeValue;
use hookflow::run_id::{RunIdParts, function_tag};

use super::{Item, get_s, string};
use crate::error::Result;

/// What the partition keys of functions' runs begin with.
pub(super) const SHARD_PREFIX: &str = "FR#";

/// The partition of a function's runs in shard `shard` (a hex digit), by
/// the function's tag.
fn shard_pk(tag: &str, shard: char) -> String {
    format!("{SHARD_PREFIX}{tag}#{shard}")
}

/// The 16 partitions the runs of `function_id` (with ids of the current
/// format) are in.
pub(super) fn function_partitions(function_id: &str) -> impl Iterator<Item = String> {
    let tag = function_tag(function_id);
    "0123456789abcdef"
        .chars()
        .map(move |shard| shard_pk(&tag, shard))
}

/// The keys of one run's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RunKeys<'a> {
    pk: String,
    /// The prefix of its items' sort keys (`{id}#`), or `None` for a run in
    /// a partition of its own.
    id: Option<&'a str>,
}

impl<'a> RunKeys<'a> {
    /// The keys of run `id`'s items.
    pub(super) fn of(id: &'a str) -> Self {
        match RunIdParts::parse(id) {
            Some(parts) => Self {
                pk: shard_pk(parts.tag, parts.shard),
                id: Some(id),
            },
            None => Self {
                pk: format!("RUN#{id}"),
                id: None,
            },
        }
    }

    /// Its partition key.
    pub(super) fn pk(&self) -> AttributeValue {
        string(&self.pk)
    }

    /// The run item's sort key.
    pub(super) fn run_sk(&self) -> String {
        self.id.map_or_else(|| "RUN".to_owned(), str::to_owned)
    }

    /// The sort key of the run's copy of its trigger event.
    pub(super) fn event_sk(&self) -> String {
        self.own_sk("EVENT")
    }

    /// The sort key of step `step_id`'s item.
    pub(super) fn step_sk(&self, step_id: &str) -> String {
        self.own_sk(&format!("STEP#{step_id}"))
    }

    fn own_sk(&self, name: &str) -> String {
        match self.id {
            Some(id) => format!("{id}#{name}"),
            None => name.to_owned(),
        }
    }

    /// Whether the sort key `sk` is one of the run's step items'.
    pub(super) fn is_step(&self, sk: &str) -> bool {
        let name = match self.id {
            Some(id) => sk.strip_prefix(id).and_then(|rest| rest.strip_prefix('#')),
            None => Some(sk),
        };
        name.is_some_and(|name| name.starts_with("STEP#"))
    }

    /// The range of sort keys holding the run and its event copy, and its
    /// step items too if `with_steps` (no other run's item is in it: the
    /// ids of one format have one length).
    pub(super) fn range(&self, with_steps: bool) -> (String, String) {
        let last = if with_steps { "STEP$" } else { "RUN" };
        match self.id {
            // `{id}` < `{id}#EVENT` < `{id}#STEP#…` < `{id}#STEP$`.
            Some(id) => (
                id.to_owned(),
                if with_steps {
                    format!("{id}#{last}")
                } else {
                    format!("{id}#EVENT")
                },
            ),
            // `EVENT` < `RUN` < `STEP#…` < `STEP$`.
            None => ("EVENT".to_owned(), last.to_owned()),
        }
    }

    /// Whether the run is listed through the function index: a run in a
    /// partition of its own, whose key says nothing of its function.
    pub(super) fn indexed(&self) -> bool {
        self.id.is_none()
    }
}

/// The key (`pk`, `sk`) of run `run_id`'s item, for tools and tests that
/// read the table.
#[must_use]
pub fn run_item_key(run_id: &str) -> (String, String) {
    let keys = RunKeys::of(run_id);
    let sk = keys.run_sk();
    (keys.pk, sk)
}

/// The key (`pk`, `sk`) of run `run_id`'s own copy of its trigger event
/// (a run whose event has no record of its own has one).
#[must_use]
pub fn run_event_key(run_id: &str) -> (String, String) {
    let keys = RunKeys::of(run_id);
    let sk = keys.event_sk();
    (keys.pk, sk)
}

/// The id of the run whose item is `item`.
pub(super) fn run_id_of(item: &Item) -> Result<&str> {
    let (pk, sk) = (get_s(item, "pk")?, get_s(item, "sk")?);
    Ok(if sk == "RUN" {
        pk.strip_prefix("RUN#").unwrap_or(pk)
    } else {
        sk
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use hookflow::run_id::derived_run_id;

    use super::*;

    #[test]
    fn a_run_of_the_current_format_is_in_its_functions_shard_in_time_order() {
        let id = derived_run_id("send-welcome", 1_000, &["e1"]);
        let keys = RunKeys::of(&id);
        let shard = id.chars().nth(22).unwrap();
        let pk = format!("FR#{}#{shard}", function_tag("send-welcome"));
        assert_eq!(keys.pk(), string(&pk));
        assert!(function_partitions("send-welcome").any(|p| p == pk));
        assert_eq!(function_partitions("send-welcome").count(), 16);
        assert_eq!(keys.run_sk(), id);
        assert!(keys.is_step(&keys.step_sk("charge")));
        assert!(!keys.is_step(&keys.event_sk()));
        assert!(!keys.is_step(&keys.run_sk()));
        assert!(!keys.indexed());
        // Its items, and no other run's, are in its ranges.
        let (lo, hi) = keys.range(true);
        for sk in [keys.run_sk(), keys.event_sk(), keys.step_sk("a#b")] {
            assert!(lo <= sk && sk <= hi, "{sk}");
        }
        let (lo, hi) = keys.range(false);
        assert!(lo <= keys.event_sk() && keys.event_sk() <= hi);
        assert!(keys.step_sk("a") > hi);
        let later = derived_run_id("send-welcome", 1_001, &["e1"]);
        let (lo, hi) = keys.range(true);
        assert!(later > hi && id >= lo);
        let item = HashMap::from([
            ("pk".to_owned(), string(&pk)),
            ("sk".to_owned(), string(&id)),
        ]);
        assert_eq!(run_id_of(&item).unwrap(), id);
    }

    #[test]
    fn a_run_of_another_form_keeps_its_own_partition() {
        let keys = RunKeys::of("run-1");
        assert_eq!(keys.pk(), string("RUN#run-1"));
        assert_eq!(keys.run_sk(), "RUN");
        assert_eq!(keys.event_sk(), "EVENT");
        assert_eq!(keys.step_sk("s"), "STEP#s");
        assert!(keys.is_step("STEP#s"));
        assert!(keys.indexed());
        assert_eq!(keys.range(false), ("EVENT".to_owned(), "RUN".to_owned()));
        assert_eq!(keys.range(true), ("EVENT".to_owned(), "STEP$".to_owned()));
        let item = HashMap::from([
            ("pk".to_owned(), string("RUN#run-1")),
            ("sk".to_owned(), string("RUN")),
        ]);
        assert_eq!(run_id_of(&item).unwrap(), "run-1");
    }
}
