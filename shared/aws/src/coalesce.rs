//! Calls that overlap share one request: a lane per key (a queue's URL, an
//! item read) through which one caller at a time makes the call for
//! everyone waiting.
//!
//! A caller that finds its lane idle makes its call at once, for itself
//! alone: a lone call costs and waits what it always did. Callers that
//! arrive while it is in flight wait in the lane, and when it returns one
//! of them is woken to make the next call for the ones at the front, in
//! the order they came. Each caller waits for its own result.
//!
//! - Sends to one queue ([`crate::queue`]): up to SQS's ten entries and 256
//!   KiB per `SendMessageBatch`; an entry SQS refused fails alone.
//! - Consistent reads of one item or partition (a function's pause record,
//!   an event name's waiters): every waiting caller shares the one read,
//!   which began after each of them arrived, so each sees what it wrote
//!   before asking, as with a read of its own.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, oneshot};

/// How many lanes a process keeps before it forgets the idle ones.
const MAX_IDLE_LANES: usize = 1024;

/// One lane per key. Clones share the lanes.
#[derive(Debug)]
pub(crate) struct Lanes<T>(Arc<Mutex<HashMap<String, Arc<Lane<T>>>>>);

impl<T> Clone for Lanes<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Lanes<T> {
    /// The lane of `key`.
    pub(crate) fn lane(&self, key: &str) -> Arc<Lane<T>> {
        let mut lanes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Keys come from data (flow-control keys): forget the lanes no
        // caller is in, now and then, so a warm process keeps few.
        if lanes.len() >= MAX_IDLE_LANES && !lanes.contains_key(key) {
            lanes.retain(|_, lane| Arc::strong_count(lane) > 1);
        }
        Arc::clone(lanes.entry(key.to_owned()).or_default())
    }
}

/// The callers waiting on one key, and whether a call is in flight.
#[derive(Debug)]
pub(crate) struct Lane<T> {
    state: Mutex<LaneState<T>>,
    /// Wakes a waiting caller to take the lane.
    turn: Notify,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(LaneState {
                busy: false,
                queued: VecDeque::new(),
            }),
            turn: Notify::new(),
        }
    }
}

#[derive(Debug)]
struct LaneState<T> {
    busy: bool,
    queued: VecDeque<T>,
}

/// The lane, taken by one caller: given back when dropped (even by a
/// panic), waking a waiting caller when more are queued.
pub(crate) struct Turn<'a, T> {
    lane: &'a Lane<T>,
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        let mut state = self.lane.lock();
        state.busy = false;
        if !state.queued.is_empty() {
            self.lane.turn.notify_one();
        }
    }
}

impl<T> Lane<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, LaneState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, and takes the lane if it is idle.
    fn enqueue(&self, item: T) -> Option<Turn<'_, T>> {
        let mut state = self.lock();
        state.queued.push_back(item);
        self.take(&mut state)
    }

    /// The lane, if it is idle.
    fn try_take(&self) -> Option<Turn<'_, T>> {
        let mut state = self.lock();
        self.take(&mut state)
    }

    fn take(&self, state: &mut LaneState<T>) -> Option<Turn<'_, T>> {
        (!state.busy).then(|| {
            state.busy = true;
            Turn { lane: self }
        })
    }

    /// The items at the front of the queue, as many as `fits` lets one
    /// call take (it is asked with the items taken so far and the next).
    fn next_batch(&self, _turn: &Turn<'_, T>, fits: impl Fn(&[T], &T) -> bool) -> Vec<T> {
        let mut state = self.lock();
        let mut batch = Vec::new();
        while let Some(front) = state.queued.front() {
            if !batch.is_empty() && !fits(&batch, front) {
                break;
            }
            batch.extend(state.queued.pop_front());
        }
        batch
    }

    /// Puts `item` through the lane and waits for `result`, its own: when
    /// the lane is (or becomes) idle, this caller takes the items at the
    /// front (as many as `fits` allows, its own among them or not) and
    /// hands them to `call`, which answers each item's caller. `None` if
    /// the result never came (whoever held the item dropped it).
    pub(crate) async fn run<R, Fut>(
        &self,
        item: T,
        mut result: oneshot::Receiver<R>,
        fits: impl Fn(&[T], &T) -> bool,
        call: impl Fn(Vec<T>) -> Fut,
    ) -> Option<R>
    where
        Fut: Future<Output = ()>,
    {
        let mut turn = self.enqueue(item);
        loop {
            if let Some(taken) = turn.take() {
                let batch = self.next_batch(&taken, &fits);
                // Empty when a caller woken to take the lane found that one
                // who arrived meanwhile took it and served everyone.
                if !batch.is_empty() {
                    call(batch).await;
                }
            }
            tokio::select! {
                biased;
                answered = &mut result => return answered.ok(),
                () = self.turn.notified() => turn = self.try_take(),
            }
        }
    }
}

/// Where one caller's answer goes.
pub(crate) type Answer<V> = oneshot::Sender<Result<V, String>>;

/// `read` once for every caller waiting on `key` in `lanes` (see the module
/// docs); an error reaches each of them as its message.
pub(crate) async fn shared_read<V, Fut>(
    lanes: &Lanes<Answer<V>>,
    key: &str,
    read: impl Fn() -> Fut,
) -> crate::error::Result<V>
where
    V: Clone,
    Fut: Future<Output = crate::error::Result<V>>,
{
    let lane = lanes.lane(key);
    let (answer, result) = oneshot::channel();
    let everyone = |_: &[Answer<V>], _: &Answer<V>| true;
    let call = |waiting: Vec<Answer<V>>| {
        let read = read();
        async move {
            let value = read.await.map_err(|e| e.to_string());
            for answer in waiting {
                let _ = answer.send(value.clone());
            }
        }
    };
    lane.run(answer, result, everyone, call)
        .await
        .unwrap_or_else(|| Err("the read was abandoned".to_owned()))
        .map_err(crate::error::AwsError::Shared)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::join_all;

    use super::*;

    /// An item and where its answer goes.
    type Asked = (usize, oneshot::Sender<usize>);

    /// At most three items per call.
    fn three(batch: &[Asked], _next: &Asked) -> bool {
        batch.len() < 3
    }

    #[tokio::test]
    async fn a_lone_call_goes_alone_and_overlapping_ones_share_calls() {
        let lane: Lane<Asked> = Lane::default();
        let calls = AtomicUsize::new(0);
        let sizes = Mutex::new(Vec::new());
        let call = |batch: Vec<Asked>| {
            let (calls, sizes) = (&calls, &sizes);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                sizes.lock().unwrap().push(batch.len());
                tokio::task::yield_now().await; // in flight
                for (n, answer) in batch {
                    let _ = answer.send(n * 10);
                }
            }
        };
        let ask = |n: usize| {
            let (answer, result) = oneshot::channel();
            lane.run((n, answer), result, three, call)
        };
        assert_eq!(ask(1).await, Some(10));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Eight at once: the first alone, the other seven in threes, each
        // caller answered with its own result.
        let answers = join_all((0..8).map(ask)).await;
        let expected: Vec<_> = (0..8).map(|n| Some(n * 10)).collect();
        assert_eq!(answers, expected);
        assert_eq!(*sizes.lock().unwrap(), [1, 1, 3, 3, 1]);
        assert!(lane.try_take().is_some(), "idle once everyone is answered");
    }

    #[test]
    fn idle_lanes_are_forgotten_past_a_thousand() {
        let lanes: Lanes<Asked> = Lanes::default();
        let held = lanes.lane("held");
        for i in 0..MAX_IDLE_LANES + 10 {
            drop(lanes.lane(&format!("k{i}")));
        }
        let kept = lanes.0.lock().unwrap().len();
        assert!(kept <= MAX_IDLE_LANES, "{kept}");
        assert!(
            Arc::ptr_eq(&held, &lanes.lane("held")),
            "a lane in use is kept"
        );
    }

    #[tokio::test]
    async fn a_caller_whose_item_was_dropped_is_told() {
        let lane: Lane<Asked> = Lane::default();
        let (answer, result) = oneshot::channel();
        let got = lane
            .run(
                (1, answer),
                result,
                three,
                |batch| async move { drop(batch) },
            )
            .await;
        assert_eq!(got, None);
    }
}
