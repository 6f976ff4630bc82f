//! Waiters on DynamoDB: `pk = WAIT#{event}`, `sk = {run}#{step}`, written and
//! removed only by transitions ([`super::runs`]); the router reads them here.

use hookflow::run::Waiter;
use hookflow::store::Waiters;

use super::{AwsStore, HfResult, body, s};
use crate::error::Result;

impl Waiters for AwsStore {
    async fn waiters_for(&self, event: &str) -> HfResult<Vec<Waiter>> {
        let items = self
            .query_partition(s(format!("WAIT#{event}")), None)
            .await?;
        Ok(items.iter().map(body).collect::<Result<_>>()?)
    }
}
