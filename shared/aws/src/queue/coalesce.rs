//! Sends to one queue that overlap share a `SendMessageBatch`.
//!
//! A send to an idle queue goes at once, alone, as a `SendMessage`: a lone
//! send costs and waits what it always did. Sends that arrive while one is
//! in flight wait in the queue's lane and leave together when it returns,
//! up to SQS's ten entries and 256 KiB a call, in the order they came. So
//! the ten routes of an SQS batch, each starting a run, send their ten
//! starts in two or three calls instead of ten.
//!
//! Whoever finds the lane idle takes it, sends the batch at its front, and
//! gives it back; if more wait, one of them is woken to take it next. Each
//! sender waits for its own entry's result: an entry SQS refused fails
//! alone, and a failed call fails every entry in it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, oneshot};

/// The most entries one `SendMessageBatch` takes.
pub(super) const MAX_ENTRIES: usize = 10;
/// The most bytes of message bodies one `SendMessageBatch` takes.
pub(super) const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One lane per queue URL. Clones share the lanes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lanes(Arc<Mutex<HashMap<String, Arc<Lane>>>>);

impl Lanes {
    /// The lane of the queue at `url`.
    pub(super) fn lane(&self, url: &str) -> Arc<Lane> {
        let mut lanes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(lanes.entry(url.to_owned()).or_default())
    }
}

/// The sends waiting for one queue, and whether one is in flight.
#[derive(Debug, Default)]
pub(super) struct Lane {
    state: Mutex<LaneState>,
    /// Wakes a waiting sender to take the lane.
    turn: Notify,
}

#[derive(Debug, Default)]
struct LaneState {
    busy: bool,
    queued: VecDeque<Pending>,
}

/// A message waiting to be sent, and where its result goes.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) body: String,
    pub(super) delay: i32,
    done: oneshot::Sender<Result<(), String>>,
}

impl Pending {
    /// Hands the sender its entry's result.
    pub(super) fn finish(self, result: Result<(), String>) {
        // A sender that stopped waiting no longer wants it.
        let _ = self.done.send(result);
    }
}

/// The lane taken by one sender: given back when dropped (even by a
/// panic), waking a waiting sender when more are queued.
pub(super) struct Turn<'a> {
    lane: &'a Lane,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.lane.lock();
        state.busy = false;
        if !state.queued.is_empty() {
            self.lane.turn.notify_one();
        }
    }
}

impl Lane {
    fn lock(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a message; returns where its result will come, and the lane
    /// if it was idle (the caller then sends).
    pub(super) fn enqueue(
        &self,
        body: String,
        delay: i32,
    ) -> (oneshot::Receiver<Result<(), String>>, Option<Turn<'_>>) {
        let (done, result) = oneshot::channel();
        let mut state = self.lock();
        state.queued.push_back(Pending { body, delay, done });
        let turn = (!state.busy).then(|| {
            state.busy = true;
            Turn { lane: self }
        });
        (result, turn)
    }

    /// The lane, if it is idle.
    pub(super) fn try_take(&self) -> Option<Turn<'_>> {
        let mut state = self.lock();
        (!state.busy).then(|| {
            state.busy = true;
            Turn { lane: self }
        })
    }

    /// Waits until a sender gives the lane back with messages queued.
    pub(super) async fn woken(&self) {
        self.turn.notified().await;
    }

    /// The messages at the front of the queue that fit in one call.
    pub(super) fn next_batch(&self, _turn: &Turn<'_>) -> Vec<Pending> {
        let mut state = self.lock();
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(front) = state.queued.front() {
            let full = batch.len() == MAX_ENTRIES
                || (!batch.is_empty() && bytes + front.body.len() > MAX_BATCH_BYTES);
            if full {
                break;
            }
            bytes += front.body.len();
            batch.extend(state.queued.pop_front());
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_ten_entries_or_256_kib_from_the_front() {
        let lane = Lane::default();
        let (_first, turn) = lane.enqueue("a".repeat(10), 0);
        let turn = turn.expect("idle lane");
        let mut results = Vec::new();
        for i in 0..12 {
            let (result, again) = lane.enqueue(format!("{i}"), 0);
            assert!(again.is_none(), "the lane is taken");
            results.push(result);
        }
        let batch = lane.next_batch(&turn);
        assert_eq!(batch.len(), MAX_ENTRIES);
        assert_eq!(batch[0].body, "a".repeat(10), "in the order they came");
        assert_eq!(lane.next_batch(&turn).len(), 3);
        assert!(lane.next_batch(&turn).is_empty());
        // Bodies over 256 KiB together go in separate calls; one alone goes.
        let big = "b".repeat(150 * 1024);
        let _kept: Vec<_> = (0..3).map(|_| lane.enqueue(big.clone(), 0).0).collect();
        assert_eq!(lane.next_batch(&turn).len(), 1);
        assert_eq!(lane.next_batch(&turn).len(), 1);
        assert_eq!(lane.next_batch(&turn).len(), 1);
    }

    #[tokio::test]
    async fn giving_the_lane_back_wakes_a_waiting_sender() {
        let lane = Lane::default();
        let (_first, turn) = lane.enqueue("0".into(), 0);
        let turn = turn.expect("idle lane");
        let _waiting: Vec<_> = (1..=10)
            .map(|i| {
                let (result, none) = lane.enqueue(i.to_string(), 0);
                assert!(none.is_none());
                result
            })
            .collect();
        assert!(lane.try_take().is_none(), "taken");
        assert_eq!(lane.next_batch(&turn).len(), MAX_ENTRIES);
        drop(turn);
        // A waiting sender is woken for the eleventh (the wake is kept until
        // one waits).
        lane.woken().await;
        let turn = lane.try_take().expect("given back");
        assert_eq!(lane.next_batch(&turn).len(), 1);
        drop(turn);
        assert!(lane.try_take().is_some(), "idle, nothing queued");
    }
}
