//! Waiters on DynamoDB: `pk = WAIT#{event}`, `sk = {run}#{step}`, written and
//! removed only by transitions ([`super::runs`]); the router reads them here.
//! Flow-control records likewise: `pk = FC#{key}`, `sk = FC`.

use hookflow::flow::{FlowRecord, FlowWrite};
use hookflow::run::Waiter;
use hookflow::store::{FlowStore, Waiters};

use super::commit::flow_pk;
use super::{AwsStore, get_n, get_s, string};

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

impl FlowStore for AwsStore {
    async fn flow_get(&self, key: &str) -> hookflow::Result<Option<FlowRecord>> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key("pk", string(flow_pk(key)))
            .key("sk", string("FC"))
            .consistent_read(true)
            .send()
            .await
            .map_err(crate::error::ddb)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        Ok(Some(FlowRecord {
            version: u64::try_from(get_n(item, "version")?).unwrap_or_default(),
            state: serde_json::from_str(get_s(item, "body")?)?,
        }))
    }

    async fn flow_put(
        &self,
        write: &FlowWrite,
    ) -> hookflow::Result<Result<(), hookflow::transition::Conflict>> {
        self.put_flow(write).await
    }
}
