//! The `expire-pack` function's Lambda (SQS): runs its steps.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookflow_aws::lambda::run_worker_with(|docs| {
        let services = hookflow_clients::Services::from_env(docs, &hookflow_clients::process_env)?;
        Ok(hookflow::Registry::new([expire_pack::function(&services)])?)
    })
    .await
}
