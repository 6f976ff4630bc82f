//! The generic store contract suite, run against DynamoDB, SQS and Scheduler
//! on a local moto server.

async fn fresh() -> hookflow_aws::AwsStore {
    hookflow_aws::testing::fresh_store(1_800_000_000_000).await
}

hookflow::store_contract_tests!(fresh());
hookflow_docs::document_contract_tests!(fresh());

/// Crash at every write of the engine's scenarios, on DynamoDB, SQS and Scheduler.
mod faults {
    hookflow::fault_injection_tests!(hookflow_aws::testing::fault_store);
}
