//! The router Lambda (SQS): routes events to waiters and functions; knows every function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookflow_aws::lambda::run_worker_with(|docs| {
        let services = hookflow_clients::Services::from_env(docs, &hookflow_clients::process_env)?;
        Ok(hookflow_registry::registry(&services)?)
    })
    .await
}
