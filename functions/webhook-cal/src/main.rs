//! `POST /webhooks/cal` (API Gateway HTTP API): verify, store, acknowledge.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookflow_aws::lambda::run_webhook(hookflow_webhooks::Provider::Cal).await
}
