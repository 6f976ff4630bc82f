//! Counting what a run costs: an SDK interceptor that counts every DynamoDB,
//! SQS, Scheduler and S3 call by operation, and the items each DynamoDB
//! transaction writes (`DynamoDB.TransactWriteItems.items`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts SDK calls as `Service.Operation`. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    /// A counter at zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls so far, by `Service.Operation`.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Total calls so far.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| !k.ends_with(".items"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Calls to one service (`DynamoDB`, `SQS`, `Scheduler`).
    #[must_use]
    pub fn service_total(&self, service: &str) -> u64 {
        let prefix = format!("{service}.");
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !k.ends_with(".items"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "HookflowCallCounter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or_else(
                || "unknown".to_owned(),
                |m| format!("{}.{}", m.service(), m.name()),
            );
        let items = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput>()
            .map(|input| input.transact_items().len() as u64);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(items) = items {
            *counts.entry(format!("{key}.items")).or_default() += items;
        }
        *counts.entry(key).or_default() += 1;
        Ok(())
    }
}
