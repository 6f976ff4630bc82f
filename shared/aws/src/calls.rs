//! Counting what a run costs: an SDK interceptor that counts every DynamoDB,
//! SQS, Scheduler and S3 call by operation, the items each DynamoDB
//! transaction writes (`DynamoDB.TransactWriteItems.items`), and the item
//! writes that set a secondary index's key (`DynamoDB.IndexKeys.gsi1`,
//! `.gsi2`): DynamoDB bills a write to each index it changes. Only keys set
//! are counted (not an item leaving an index, nor the size of its entry).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
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
            .filter(|(k, _)| is_call(k))
            .map(|(_, v)| v)
            .sum()
    }

    /// Calls to one service (`DynamoDB`, `SQS`, `Scheduler`).
    #[must_use]
    pub fn service_total(&self, service: &str) -> u64 {
        let prefix = format!("{service}.");
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && is_call(k))
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
        let input = context.input();
        let mut writes = Vec::new();
        let mut items = None;
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            writes.push(Written::Item(put.item()));
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            writes.push(Written::Update(update.update_expression()));
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            items = Some(transaction.transact_items().len() as u64);
            for item in transaction.transact_items() {
                if let Some(put) = item.put() {
                    writes.push(Written::Item(Some(put.item())));
                }
                if let Some(update) = item.update() {
                    writes.push(Written::Update(Some(update.update_expression())));
                }
            }
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(items) = items {
            *counts.entry(format!("{key}.items")).or_default() += items;
        }
        for index in ["gsi1", "gsi2"] {
            let keyed = writes.iter().filter(|w| w.sets_key_of(index)).count() as u64;
            if keyed > 0 {
                *counts
                    .entry(format!("DynamoDB.IndexKeys.{index}"))
                    .or_default() += keyed;
            }
        }
        *counts.entry(key).or_default() += 1;
        Ok(())
    }
}

/// Whether a count is of calls (not of items or index keys).
fn is_call(key: &str) -> bool {
    !key.ends_with(".items") && !key.contains(".IndexKeys.")
}

/// One item write in a request: a whole item, or an update expression.
enum Written<'a> {
    Item(Option<&'a std::collections::HashMap<String, AttributeValue>>),
    Update(Option<&'a str>),
}

impl Written<'_> {
    /// Whether it sets the key attribute `{index}pk`.
    fn sets_key_of(&self, index: &str) -> bool {
        let key = format!("{index}pk");
        match self {
            Self::Item(item) => item.is_some_and(|item| item.contains_key(&key)),
            Self::Update(expression) => expression.is_some_and(|e| {
                let set = e.split(" REMOVE ").next().unwrap_or(e);
                set.starts_with("SET ") && set.contains(&key)
            }),
        }
    }
}
