//! The store contract suite: one set of checks, written once over the store
//! traits, that every backend runs against itself (the embedded backend always;
//! the AWS backend against a local AWS endpoint). Use the
//! [`store_contract_tests!`](crate::store_contract_tests) macro with an
//! expression that builds a fresh, empty store implementing [`QueueProbe`].

mod contract;
pub mod faults;
pub mod scenarios;

use std::future::Future;

use crate::error::Result;
use crate::run::Envelope;

pub use self::contract::{
    a_deferred_lease_is_taken_by_the_first_commit, blobs_are_stored_once_by_content,
    cancellation_requests_fence_the_holder, events_are_deduplicated_and_routed,
    flow_records_change_only_at_the_version_read, idempotency_keys_are_claimed_once,
    journal_checkpoints_are_ordered_and_replaced, large_payloads_round_trip,
    leases_fence_every_commit, runs_are_created_once_and_frozen_when_finished,
    runs_are_listed_by_their_current_status, runs_are_listed_newest_first_however_their_ids_spread,
    runs_keep_their_event_when_its_id_comes_again, runs_of_current_ids_are_created_once_and_frozen,
    runs_of_current_ids_are_listed_by_their_current_status,
    runs_read_the_routed_event_they_refer_to, the_outbox_delivers_on_time,
    waiters_are_registered_by_transitions,
};

/// Lets the suite observe deliveries: the messages due at `now`, removed from
/// the queue. (Production consumers are the worker loop or Lambda's event source.)
pub trait QueueProbe: Send + Sync {
    /// Receives and deletes every message due at `now`.
    fn take_due(&self, now: i64) -> impl Future<Output = Result<Vec<Envelope>>> + Send;

    /// When the next queued message or timer is due, if any.
    fn next_due(&self) -> impl Future<Output = Result<Option<i64>>> + Send;
}

/// Generates one `#[tokio::test]` per contract check, each on a fresh store
/// built by `$make` (an async expression).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn contract_events_are_deduplicated_and_routed() {
            $crate::testkit::events_are_deduplicated_and_routed($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_are_created_once_and_frozen_when_finished() {
            $crate::testkit::runs_are_created_once_and_frozen_when_finished($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_are_listed_by_their_current_status() {
            $crate::testkit::runs_are_listed_by_their_current_status($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_of_current_ids_are_created_once_and_frozen() {
            $crate::testkit::runs_of_current_ids_are_created_once_and_frozen($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_of_current_ids_are_listed_by_their_current_status() {
            $crate::testkit::runs_of_current_ids_are_listed_by_their_current_status($make.await)
                .await;
        }
        #[tokio::test]
        async fn contract_runs_are_listed_newest_first_however_their_ids_spread() {
            $crate::testkit::runs_are_listed_newest_first_however_their_ids_spread($make.await)
                .await;
        }
        #[tokio::test]
        async fn contract_leases_fence_every_commit() {
            $crate::testkit::leases_fence_every_commit($make.await).await;
        }
        #[tokio::test]
        async fn contract_cancellation_requests_fence_the_holder() {
            $crate::testkit::cancellation_requests_fence_the_holder($make.await).await;
        }
        #[tokio::test]
        async fn contract_a_deferred_lease_is_taken_by_the_first_commit() {
            $crate::testkit::a_deferred_lease_is_taken_by_the_first_commit($make.await).await;
        }
        #[tokio::test]
        async fn contract_idempotency_keys_are_claimed_once() {
            $crate::testkit::idempotency_keys_are_claimed_once($make.await).await;
        }
        #[tokio::test]
        async fn contract_flow_records_change_only_at_the_version_read() {
            $crate::testkit::flow_records_change_only_at_the_version_read($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_keep_their_event_when_its_id_comes_again() {
            $crate::testkit::runs_keep_their_event_when_its_id_comes_again($make.await).await;
        }
        #[tokio::test]
        async fn contract_runs_read_the_routed_event_they_refer_to() {
            $crate::testkit::runs_read_the_routed_event_they_refer_to($make.await).await;
        }
        #[tokio::test]
        async fn contract_journal_checkpoints_are_ordered_and_replaced() {
            $crate::testkit::journal_checkpoints_are_ordered_and_replaced($make.await).await;
        }
        #[tokio::test]
        async fn contract_waiters_are_registered_by_transitions() {
            $crate::testkit::waiters_are_registered_by_transitions($make.await).await;
        }
        #[tokio::test]
        async fn contract_the_outbox_delivers_on_time() {
            $crate::testkit::the_outbox_delivers_on_time($make.await).await;
        }
        #[tokio::test]
        async fn contract_blobs_are_stored_once_by_content() {
            $crate::testkit::blobs_are_stored_once_by_content($make.await).await;
        }
        #[tokio::test]
        async fn contract_large_payloads_round_trip() {
            $crate::testkit::large_payloads_round_trip($make.await).await;
        }
    };
}
