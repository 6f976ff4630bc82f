//! The step journal and waiters on DynamoDB.

use hookflow::run::{StepRecord, StepStatus, Waiter};
use hookflow::store::{Journal, Waiters};

use super::{AwsStore, HfResult, Item, body, conditional, n, s};
use crate::error::{AwsError, Result, ddb};

/// How long waiter items outlive their expiry (cancel_on waiters have none: 90 days).
const WAITER_TTL_SECS: i64 = 90 * 86_400;

fn status_name(status: StepStatus) -> Result<String> {
    Ok(serde_json::to_value(status)?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

impl AwsStore {
    async fn query_all(&self, pk: String, sk_prefix: Option<&str>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .ddb()
                .query()
                .table_name(self.table())
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query.send().await.map_err(ddb)?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    fn step_item(
        &self,
        run_id: &str,
        step: &StepRecord,
    ) -> Result<aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder> {
        Ok(self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", s(format!("RUN#{run_id}")))
            .item("sk", s(format!("STEP#{}", step.id)))
            .item("position", n(i64::from(step.position)))
            .item("status", s(status_name(step.status)?))
            .item("body", s(serde_json::to_string(step)?)))
    }
}

impl Journal for AwsStore {
    async fn load_steps(&self, run_id: &str) -> HfResult<Vec<StepRecord>> {
        let items = self
            .query_all(format!("RUN#{run_id}"), Some("STEP#"))
            .await?;
        let mut steps: Vec<StepRecord> = items.iter().map(body).collect::<Result<_>>()?;
        steps.sort_by_key(|step| step.position);
        Ok(steps)
    }

    async fn get_step(&self, run_id: &str, step_id: &str) -> HfResult<Option<StepRecord>> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key("pk", s(format!("RUN#{run_id}")))
            .key("sk", s(format!("STEP#{step_id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        Ok(out.item().map(body).transpose()?)
    }

    async fn put_step(&self, run_id: &str, step: &StepRecord) -> HfResult<()> {
        self.step_item(run_id, step)?.send().await.map_err(ddb)?;
        Ok(())
    }

    async fn resolve_step(&self, run_id: &str, step: &StepRecord) -> HfResult<bool> {
        let result = self
            .step_item(run_id, step)?
            .condition_expression("#status = :waiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":waiting", s("waiting"))
            .send()
            .await;
        conditional(result)
    }
}

impl Waiters for AwsStore {
    async fn add_waiter(&self, waiter: &Waiter) -> HfResult<()> {
        let expires = waiter.expires_at.unwrap_or(waiter.registered_at);
        self.ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", s(format!("WAIT#{}", waiter.event)))
            .item("sk", s(format!("{}#{}", waiter.run_id, waiter.step_id)))
            .item(
                "body",
                s(serde_json::to_string(waiter).map_err(AwsError::from)?),
            )
            .item("ttl", n(expires / 1000 + WAITER_TTL_SECS))
            .send()
            .await
            .map_err(ddb)?;
        Ok(())
    }

    async fn waiters_for(&self, event: &str) -> HfResult<Vec<Waiter>> {
        let items = self.query_all(format!("WAIT#{event}"), None).await?;
        Ok(items.iter().map(body).collect::<Result<_>>()?)
    }

    async fn remove_waiter(&self, event: &str, run_id: &str, step_id: &str) -> HfResult<()> {
        self.ddb()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(format!("WAIT#{event}")))
            .key("sk", s(format!("{run_id}#{step_id}")))
            .send()
            .await
            .map_err(ddb)?;
        Ok(())
    }
}
