//! The `hello-world` function's Lambda (SQS): runs its steps.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let registry = hookflow::Registry::new([hello_world::function()])?;
    hookflow_aws::lambda::run_worker(registry).await
}
