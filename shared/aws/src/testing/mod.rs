//! Test support against a real local AWS endpoint: a moto server (installed
//! into the project's `.venv` by `scripts/aws-tools`), the table, queues and
//! scheduler group the template creates, and [`AwsTestEnv`], which plays
//! Lambda's SQS event source (receive, invoke [`handle_sqs`], delete or leave
//! for redelivery) and fires due Scheduler schedules, since moto stores
//! schedules but never fires them. Time is a [`FakeClock`].

mod env;
mod moto;
mod probe;

pub use env::{AwsTestEnv, START_MS};
pub use moto::{Moto, create_resources};
pub use probe::{fault_store, fresh_store};
