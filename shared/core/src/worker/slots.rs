//! Concurrency slots: a run executes only while it holds a slot of each of
//! its function's concurrency limits, taken with its lease and given back with
//! its conclusion, in the same transitions (`FlowState::Slots` records,
//! written at the version read).
//!
//! A run that finds no slot joins the line (by rank: when it began waiting,
//! minus its priority) and its delivery is acknowledged; a run giving a slot
//! back wakes the first in line, reserving the slot for it. Nothing polls,
//! except one timer per limit with a line: it wakes the first waiter when
//! the earliest slot would lapse, so a slot whose worker crashed (its lease
//! lapsed) is reclaimed within a lease period.

use serde_json::Value;

use crate::error::Result;
use crate::flow::{
    ConcurrencyScope, FlowKind, FlowRecord, FlowState, FlowWrite, SlotHolder, SlotWaiter,
    key_value, record_key,
};
use crate::function::Function;
use crate::run::{Envelope, Message, Run, Target};
use crate::store::{FlowStore, RunStore};
use crate::transition::Outgoing;

/// Runs a line keeps in order; more wait without a place, retried by timer
/// (a DynamoDB item holds the line: this keeps it far below 400 KB).
const LINE_MAX: usize = 1_000;
/// The soonest the holder check repeats (ms).
const MIN_RECHECK_MS: i64 = 1_000;

/// One concurrency limit as it applies to a run.
struct Gate {
    key: String,
    limit: usize,
}

/// The concurrency limits of `function` for `run` (none for most functions).
fn gates(function: &Function, run: &Run) -> Vec<Gate> {
    let (flow, keys) = function.flow();
    if flow.concurrency.is_empty() {
        return Vec::new();
    }
    let event = serde_json::to_value(&run.event).unwrap_or(Value::Null);
    flow.concurrency
        .iter()
        .zip(&keys.concurrency)
        .map(|(limit, expr)| {
            let value = key_value(expr.as_ref(), &event).unwrap_or_else(|err| {
                tracing::warn!(run.id = %run.id, error = %err, "concurrency key failed to evaluate; the function-wide limit applies");
                String::new()
            });
            let owner = match limit.scope {
                ConcurrencyScope::Function => function.id(),
                ConcurrencyScope::Global => "*",
            };
            Gate {
                key: record_key(FlowKind::Concurrency, owner, &value),
                limit: limit.limit as usize,
            }
        })
        .fold(Vec::<Gate>::new(), |mut gates, gate| {
            // Two limits on one record (same key value and scope) are one
            // limit, the smaller: a record is written once per commit.
            match gates.iter_mut().find(|g| g.key == gate.key) {
                Some(same) => same.limit = same.limit.min(gate.limit),
                None => gates.push(gate),
            }
            gates
        })
}

/// The run's priority in ms (positive: ahead), from the function's CEL
/// expression, clamped to ±600 s; 0 when it fails to evaluate.
fn priority_ms(function: &Function, run: &Run) -> i64 {
    let Some(expr) = function.flow().1.priority.as_ref() else {
        return 0;
    };
    let event = serde_json::to_value(&run.event).unwrap_or(Value::Null);
    match expr.eval(&[("event", &event)]) {
        Ok(value) => value.as_f64().map_or(0, |s| {
            #[allow(clippy::cast_possible_truncation)]
            let ms = (s.clamp(-600.0, 600.0) * 1000.0) as i64;
            ms
        }),
        Err(err) => {
            tracing::warn!(run.id = %run.id, error = %err, "priority failed to evaluate; 0 used");
            0
        }
    }
}

/// A limit's record, as read.
struct Slots {
    holders: Vec<SlotHolder>,
    waiting: Vec<SlotWaiter>,
    timer: Option<(i64, String)>,
}

impl Slots {
    fn of(record: Option<&FlowRecord>) -> Self {
        match record.map(|r| &r.state) {
            Some(FlowState::Slots {
                holders,
                waiting,
                timer,
            }) => Self {
                holders: holders.clone(),
                waiting: waiting.clone(),
                timer: timer.clone(),
            },
            _ => Self {
                holders: Vec::new(),
                waiting: Vec::new(),
                timer: None,
            },
        }
    }

    fn state(self) -> FlowState {
        FlowState::Slots {
            holders: self.holders,
            waiting: self.waiting,
            timer: self.timer,
        }
    }

    /// Drops the holders whose slot lapsed at `now`: woken runs that never
    /// came, and runs whose lease is no longer the one they took the slot
    /// with (their worker crashed or lost it). A holder still leased keeps
    /// its slot until its lease's new end.
    async fn drop_lapsed<S: RunStore>(&mut self, store: &S, now: i64) -> Result<()> {
        let mut kept = Vec::with_capacity(self.holders.len());
        for mut holder in std::mem::take(&mut self.holders) {
            if holder.until > now {
                kept.push(holder);
                continue;
            }
            let Some(token) = holder.token.as_deref() else {
                continue;
            };
            let lease = store
                .get_run(&holder.run_id)
                .await?
                .and_then(|run| run.lease)
                .filter(|lease| lease.token == token && lease.until > now);
            if let Some(lease) = lease {
                holder.until = lease.until;
                kept.push(holder);
            }
        }
        self.holders = kept;
        Ok(())
    }

    /// Gives free slots to the first in line, each woken by a message.
    fn wake(&mut self, limit: usize, now: i64, lease_ms: i64, outbox: &mut Vec<Outgoing>) {
        while let Some(first) = self.waiting.first() {
            // Each waiter under its own function's limit (first come first
            // served: one that must wait holds up those behind it).
            let cap = if first.limit == 0 {
                limit
            } else {
                first.limit as usize
            };
            if self.holders.len() >= cap {
                break;
            }
            let next = self.waiting.remove(0);
            self.holders.push(SlotHolder {
                run_id: next.run_id.clone(),
                token: None,
                until: now + lease_ms,
            });
            outbox.push(Outgoing::Send {
                envelope: wake(&next),
            });
        }
    }

    /// Makes sure a timer will re-check the holders for the first in line
    /// while there is a line (one at a time: a new one only when the last
    /// has fired or its run left the line).
    fn keep_timer(&mut self, now: i64, outbox: &mut Vec<Outgoing>) {
        let Some(first) = self.waiting.first() else {
            self.timer = None;
            return;
        };
        let live = self.timer.as_ref().is_some_and(|(at, run_id)| {
            *at > now && self.waiting.iter().any(|w| w.run_id == *run_id)
        });
        if live {
            return;
        }
        let at = self
            .holders
            .iter()
            .map(|h| h.until)
            .min()
            .unwrap_or(now)
            .max(now + MIN_RECHECK_MS);
        outbox.push(Outgoing::Later {
            envelope: wake(first),
            at,
        });
        self.timer = Some((at, first.run_id.clone()));
    }

    /// Puts `run` in line by rank, after everyone of the same rank.
    fn join(&mut self, waiter: SlotWaiter) -> bool {
        if self.waiting.iter().any(|w| w.run_id == waiter.run_id) {
            return true;
        }
        if self.waiting.len() >= LINE_MAX {
            return false;
        }
        let at = self.waiting.partition_point(|w| w.rank <= waiter.rank);
        self.waiting.insert(at, waiter);
        true
    }
}

/// The message that wakes a waiting run.
fn wake(waiter: &SlotWaiter) -> Envelope {
    Envelope::new(
        Target::Function(waiter.function_id.clone()),
        Message::Resume {
            run_id: waiter.run_id.clone(),
        },
    )
}

/// What taking the slots of a run led to.
pub(super) enum Take {
    /// Every slot is the run's: commit these with its lease.
    Granted {
        writes: Vec<FlowWrite>,
        outbox: Vec<Outgoing>,
    },
    /// A limit is full: the run waits in its line (commit these without a
    /// lease); `why` is for its note.
    Wait {
        writes: Vec<FlowWrite>,
        outbox: Vec<Outgoing>,
        why: String,
    },
}

/// What a run needs to execute under lease `token` until `until`.
pub(super) async fn take<S: RunStore + FlowStore>(
    store: &S,
    function: &Function,
    run: &Run,
    token: &str,
    until: i64,
    now: i64,
    lease_ms: i64,
) -> Result<Take> {
    let mut writes = Vec::new();
    let mut outbox = Vec::new();
    for gate in gates(function, run) {
        let read = store.flow_get(&gate.key).await?;
        let mut slots = Slots::of(read.as_ref());
        slots.drop_lapsed(store, now).await?;
        let first_in_line = slots.waiting.first().is_none_or(|w| w.run_id == run.id);
        if let Some(mine) = slots.holders.iter_mut().find(|h| h.run_id == run.id) {
            // Woken for a reserved slot, or still holding it.
            mine.token = Some(token.to_owned());
            mine.until = until;
        } else if slots.holders.len() < gate.limit && first_in_line {
            slots.waiting.retain(|w| w.run_id != run.id);
            slots.holders.push(SlotHolder {
                run_id: run.id.clone(),
                token: Some(token.to_owned()),
                until,
            });
        } else {
            // No slot: wait in line (the slots taken so far are not kept).
            let mut outbox = Vec::new();
            let in_line = slots.join(SlotWaiter {
                run_id: run.id.clone(),
                function_id: run.function_id.clone(),
                rank: now - priority_ms(function, run),
                limit: u32::try_from(gate.limit).unwrap_or(u32::MAX),
            });
            slots.wake(gate.limit, now, lease_ms, &mut outbox);
            slots.keep_timer(now, &mut outbox);
            if !in_line {
                // The line is full: try again when the earliest slot lapses.
                let at = slots.holders.iter().map(|h| h.until).min().unwrap_or(now);
                outbox.push(Outgoing::Later {
                    envelope: wake(&SlotWaiter {
                        run_id: run.id.clone(),
                        function_id: run.function_id.clone(),
                        rank: 0,
                        limit: 0,
                    }),
                    at: at.max(now + MIN_RECHECK_MS),
                });
            }
            let why = format!(
                "waiting for a concurrency slot ({} of {} in use, {} waiting)",
                slots.holders.len(),
                gate.limit,
                slots.waiting.len()
            );
            let writes = vec![FlowWrite::after(gate.key, read.as_ref(), slots.state())];
            return Ok(Take::Wait {
                writes,
                outbox,
                why,
            });
        }
        slots.wake(gate.limit, now, lease_ms, &mut outbox);
        slots.keep_timer(now, &mut outbox);
        writes.push(FlowWrite::after(gate.key, read.as_ref(), slots.state()));
    }
    Ok(Take::Granted { writes, outbox })
}

/// Gives back the slots `run` holds (and its places in line), waking the
/// first in line for each freed slot.
pub(super) async fn give_back<S: FlowStore>(
    store: &S,
    function: &Function,
    run: &Run,
    now: i64,
    lease_ms: i64,
) -> Result<(Vec<FlowWrite>, Vec<Outgoing>)> {
    let mut writes = Vec::new();
    let mut outbox = Vec::new();
    for gate in gates(function, run) {
        let read = store.flow_get(&gate.key).await?;
        let mut slots = Slots::of(read.as_ref());
        let before = (slots.holders.len(), slots.waiting.len());
        slots.holders.retain(|h| h.run_id != run.id);
        slots.waiting.retain(|w| w.run_id != run.id);
        if (slots.holders.len(), slots.waiting.len()) == before {
            continue;
        }
        slots.wake(gate.limit, now, lease_ms, &mut outbox);
        slots.keep_timer(now, &mut outbox);
        writes.push(FlowWrite::after(gate.key, read.as_ref(), slots.state()));
    }
    Ok((writes, outbox))
}

/// True if `function` has a concurrency limit.
pub(super) fn limited(function: &Function) -> bool {
    !function.flow().0.concurrency.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(id: &str, rank: i64) -> SlotWaiter {
        SlotWaiter {
            run_id: id.into(),
            function_id: "f".into(),
            rank,
            limit: 0,
        }
    }

    #[test]
    fn the_line_is_ordered_by_rank_then_arrival() {
        let mut slots = Slots::of(None);
        assert!(slots.join(waiter("a", 100)));
        assert!(slots.join(waiter("b", 100)));
        assert!(slots.join(waiter("urgent", 40)));
        assert!(slots.join(waiter("a", 0)), "already in line: stays put");
        let order: Vec<&str> = slots.waiting.iter().map(|w| w.run_id.as_str()).collect();
        assert_eq!(order, ["urgent", "a", "b"]);
    }

    #[test]
    fn a_waiter_is_woken_only_under_its_own_functions_limit() {
        // A global key shared by a function limited to 1 and one limited to 3.
        let mut slots = Slots::of(None);
        slots.holders.push(SlotHolder {
            run_id: "running".into(),
            token: Some("t".into()),
            until: 60_000,
        });
        slots.join(SlotWaiter {
            limit: 1,
            ..waiter("small", 0)
        });
        slots.join(SlotWaiter {
            limit: 3,
            ..waiter("large", 0)
        });
        let mut outbox = Vec::new();
        // A run of the larger function frees nothing the small one may use.
        slots.wake(3, 0, 60_000, &mut outbox);
        assert!(outbox.is_empty(), "first come first served: small waits");
        slots.holders.clear();
        slots.wake(3, 0, 60_000, &mut outbox);
        let woken: Vec<&str> = slots.holders.iter().map(|h| h.run_id.as_str()).collect();
        assert_eq!(woken, ["small", "large"]);
    }

    #[test]
    fn freed_slots_go_to_the_first_in_line_and_one_timer_watches_the_rest() {
        let mut slots = Slots::of(None);
        for id in ["a", "b", "c"] {
            slots.join(waiter(id, 0));
        }
        let mut outbox = Vec::new();
        slots.wake(1, 1_000, 60_000, &mut outbox);
        assert_eq!(slots.holders.len(), 1);
        assert_eq!(slots.holders[0].run_id, "a");
        assert_eq!(slots.holders[0].until, 61_000);
        slots.keep_timer(1_000, &mut outbox);
        assert_eq!(slots.timer, Some((61_000, "b".into())));
        // one wake-up and one timer, nothing for c
        assert_eq!(outbox.len(), 2);
        slots.keep_timer(2_000, &mut outbox);
        assert_eq!(outbox.len(), 2, "a live timer is not repeated");
    }
}
