//! Hookflow on AWS: the store traits on DynamoDB (one table), SQS (one queue
//! per function plus the router's) and EventBridge Scheduler (timers beyond
//! SQS's 15-minute delay), and the Lambda adapters that put the engine behind
//! API Gateway and SQS event sources.
//!
//! Every state transition is one conditional write, so concurrent or duplicate
//! deliveries never create two runs, claim a key twice or resolve a wait twice.
//! Clients are built once per Lambda container from the standard AWS
//! configuration, so `AWS_ENDPOINT_URL` points them at a local endpoint.

pub mod calls;
mod coalesce;
pub mod config;
mod dynamo;
pub mod error;
pub mod lambda;
pub mod queue;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use calls::CallCounter;
pub use config::{AwsClients, AwsConfig};
pub use dynamo::{AwsStore, FUNCTION_INDEX, STATUS_INDEX, run_event_key, run_item_key};
pub use error::AwsError;
