//! Every size limit, in one table. Each is checked where the data enters
//! (ingest, a step's checkpoint, a run's end), with an error naming the limit,
//! and sits below what the backends can carry: payloads above
//! [`INLINE_BYTES`] are stored once, by the SHA-256 of their bytes, in the
//! blob store (S3 on AWS, a table in SQLite), and records keep the key, so no
//! DynamoDB item (400 KB), transaction (4 MB) or SQS message (256 KiB) is
//! ever exceeded and a large event is stored once however many runs and
//! waiters refer to it.
//!
//! | what | limit | over the limit |
//! |---|---|---|
//! | event (serialized) | [`MAX_EVENT_BYTES`] | `413` at ingest, nothing stored; a `StepError` from `send_event` / `invoke` |
//! | event name / id | [`MAX_EVENT_NAME_BYTES`] / [`MAX_EVENT_ID_BYTES`] | `400` |
//! | events per `send_event` | [`MAX_EVENTS_PER_SEND`] | `StepError`, nothing sent |
//! | step output | [`MAX_STEP_OUTPUT_BYTES`] | the step fails (not retried) naming the limit |
//! | run output | [`MAX_RUN_OUTPUT_BYTES`] | the run fails naming the limit |
//! | steps per run | [`MAX_STEPS_PER_RUN`] | the run fails naming the limit |
//! | stored inline | [`INLINE_BYTES`] | stored once as a blob, by reference |
//! | idempotency or flow-control key | [`MAX_KEY_BYTES`] | replaced by its hash ([`bounded_key`]) |

/// Largest serialized event (1 MiB).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Longest event name.
pub const MAX_EVENT_NAME_BYTES: usize = 256;
/// Longest event id.
pub const MAX_EVENT_ID_BYTES: usize = 256;
/// Most events one `send_event` step sends.
pub const MAX_EVENTS_PER_SEND: usize = 1_000;
/// Largest journaled step output (4 MiB).
pub const MAX_STEP_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// Largest run output (4 MiB).
pub const MAX_RUN_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// Most steps one run may reach.
pub const MAX_STEPS_PER_RUN: u32 = 1_000;
/// Largest event (serialized) a route or start message carries to spare its
/// receiver a read (see [`crate::run::Message::Route`]): with its envelope,
/// a message stays within SQS's first 64 KiB billing chunk. (A resume's
/// `RouteTo` carries its event whatever the size: it must not depend on the
/// event log's retention, and a large message goes by reference.)
pub const CARRIED_EVENT_BYTES: usize = 48 * 1024;
/// Largest record body stored inline; larger ones are stored as blobs.
pub const INLINE_BYTES: usize = 64 * 1024;

/// Longest idempotency or flow-control key kept as it is (a DynamoDB
/// partition key holds at most 2,048 bytes).
pub const MAX_KEY_BYTES: usize = 128;

/// `key`, or its hash when it is over [`MAX_KEY_BYTES`]: the key a store
/// keeps for an idempotency or flow-control key, whatever its expression
/// returned.
#[must_use]
pub fn bounded_key(key: &str) -> String {
    if key.len() > MAX_KEY_BYTES {
        blob_key(key.as_bytes())
    } else {
        key.to_owned()
    }
}

/// The blob key of `bytes`: `sha256-<hex>`, so equal payloads share one blob.
#[must_use]
pub fn blob_key(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256-{}", hex::encode(Sha256::digest(bytes)))
}
