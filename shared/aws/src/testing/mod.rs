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

/// The workload the cost test prices and the `sqs_batch` bench drives: a
/// function on `bench/go` with five checkpointed steps, returning their sum.
#[must_use]
pub fn five_steps() -> hookflow::Function {
    hookflow::Function::new("five-steps")
        .on_event("bench/go")
        .handler(|ctx| async move {
            let mut total = 0;
            for i in 0..5 {
                total += ctx.step.run("step", move || async move { Ok(i) }).await?;
            }
            Ok(total)
        })
}
