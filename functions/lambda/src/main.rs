//! `bootstrap`: every Hookflow Lambda; `HOOKFLOW_ROLE` says which (see the crate docs).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookflow_lambda::run().await
}
