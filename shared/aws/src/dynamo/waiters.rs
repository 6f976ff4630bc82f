//! Waiters on DynamoDB: `pk = WAIT#{event}`, `sk = {run}#{step}`, written and
//! removed only by transitions ([`super::runs`]); the router reads them here.

use hookflow::run::Waiter;
use hookflow::store::Waiters;

use super::{AwsStore, string};

impl Waiters for AwsStore {
    async fn waiters_for(&self, event: &str) -> hookflow::Result<Vec<Waiter>> {
        let items = self
            .query_partition(string(format!("WAIT#{event}")), None)
            .await?;
        let mut waiters = Vec::with_capacity(items.len());
        for item in &items {
            waiters.push(self.decode(item, "body").await?);
        }
        Ok(waiters)
    }
}
