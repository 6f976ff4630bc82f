//! Waiters on DynamoDB: `pk = WAIT#{event}`, `sk = {run}#{step}`, written and
//! removed only by transitions ([`super::runs`]); the router reads them here.
//! Flow-control records likewise: `pk = FC#{key}`, `sk = FC`.

use hookflow::flow::{FlowRecord, FlowWrite};
use hookflow::run::Waiter;
use hookflow::store::{FlowStore, Waiters};

use super::commit::flow_pk;
use super::{AwsStore, get_n, get_s, string};
use crate::coalesce::shared_read;
use crate::error::Result;

impl Waiters for AwsStore {
    /// One consistent Query of `WAIT#{event}`, shared by the callers that
    /// overlap ([`crate::coalesce`]): each gets a read that began after it
    /// asked.
    async fn waiters_for(&self, event: &str) -> hookflow::Result<Vec<Waiter>> {
        let read = || self.read_waiters(event);
        // Boxed: the router's futures are deep already.
        Ok(Box::pin(shared_read(&self.waiter_reads, event, read)).await?)
    }
}

impl AwsStore {
    async fn read_waiters(&self, event: &str) -> Result<Vec<Waiter>> {
        let items = self
            .query_partition(string(format!("WAIT#{event}")), None)
            .await?;
        let mut waiters = Vec::with_capacity(items.len());
        for item in &items {
            waiters.push(self.decode(item, "body").await?);
        }
        Ok(waiters)
    }

    async fn read_flow(&self, key: &str) -> Result<Option<FlowRecord>> {
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
}

impl FlowStore for AwsStore {
    /// One consistent GetItem, shared like [`Waiters::waiters_for`]'s
    /// Query (a function's pause record is read for every run it starts).
    async fn flow_get(&self, key: &str) -> hookflow::Result<Option<FlowRecord>> {
        let read = || self.read_flow(key);
        // Boxed: the router's futures are deep already.
        Ok(Box::pin(shared_read(&self.flow_reads, key, read)).await?)
    }

    async fn flow_put(
        &self,
        write: &FlowWrite,
    ) -> hookflow::Result<Result<(), hookflow::transition::Conflict>> {
        self.put_flow(write).await
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use futures::future::join_all;
    use hookflow::Function;
    use hookflow::flow::{FlowState, FlowWrite, pause_key};
    use hookflow::store::{FlowStore, Waiters};

    use crate::testing::AwsTestEnv;

    #[tokio::test]
    async fn overlapping_reads_share_one_call_and_later_ones_see_later_writes() {
        // GIVEN a function's pause record
        let f = Function::new("f")
            .on_event("go")
            .handler(|_| async { Ok(()) });
        let env = AwsTestEnv::new(vec![f]).await;
        let store = env.store();
        let key = pause_key("f");
        let paused = FlowState::Pause {
            since: Some(1),
            resuming: false,
        };
        let write = FlowWrite::after(key.clone(), None, paused);
        store.flow_put(&write).await.unwrap().unwrap();
        env.counter.reset();
        // WHEN eight reads of it overlap, and eight of one name's waiters
        let records = join_all((0..8).map(|_| store.flow_get(&key))).await;
        let waiters = join_all((0..8).map(|_| store.waiters_for("go"))).await;
        // THEN each kind took two calls: the first alone, the rest shared
        let calls = env.calls();
        assert_eq!(calls.get("DynamoDB.GetItem"), Some(&2), "{calls:?}");
        assert_eq!(calls.get("DynamoDB.Query"), Some(&2), "{calls:?}");
        let first = records[0].as_ref().unwrap().clone().expect("stored");
        assert!(
            records
                .iter()
                .all(|r| r.as_ref().unwrap().as_ref() == Some(&first))
        );
        assert!(waiters.iter().all(|w| w.as_ref().unwrap().is_empty()));
        // AND a read after a write sees the write
        let resumed = FlowState::Pause {
            since: None,
            resuming: false,
        };
        let write = FlowWrite::after(key.clone(), Some(&first), resumed.clone());
        store.flow_put(&write).await.unwrap().unwrap();
        let read = store.flow_get(&key).await.unwrap().expect("stored");
        assert_eq!(read.state, resumed);
        assert!(read.version > first.version);
    }
}
