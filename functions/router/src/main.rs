//! The router Lambda (SQS): routes events to waiters and functions; knows every function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookflow_aws::lambda::run_worker(hookflow_registry::registry()?).await
}
