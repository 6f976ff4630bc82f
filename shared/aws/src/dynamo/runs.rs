//! Runs, leases and idempotency keys on DynamoDB.

use aws_sdk_dynamodb::types::AttributeValue;
use hookflow::run::Run;
use hookflow::store::{RunFilter, RunStore};

use super::{AwsStore, HfResult, Item, body, condition_failed, conditional, n, s};
use crate::error::{AwsError, Result, ddb};

/// How long idempotency items outlive their expiry before TTL removes them.
const IDEM_TTL_GRACE_SECS: i64 = 86_400;

fn run_pk(id: &str) -> AttributeValue {
    s(format!("RUN#{id}"))
}

fn time_key(run: &Run) -> String {
    format!("{:015}#{}", run.created_at, run.id)
}

fn runs_of(items: &[Item]) -> Result<Vec<Run>> {
    items.iter().map(body).collect()
}

impl RunStore for AwsStore {
    async fn create_run(&self, run: &Run) -> HfResult<bool> {
        let result = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", run_pk(&run.id))
            .item("sk", s("RUN"))
            .item("function_id", s(&run.function_id))
            .item("status", s(run.status.as_str()))
            .item("created_at", n(run.created_at))
            .item(
                "body",
                s(serde_json::to_string(run).map_err(AwsError::from)?),
            )
            .item("lease_until", n(0))
            .item("gsi1pk", s(format!("FN#{}", run.function_id)))
            .item("gsi1sk", s(time_key(run)))
            .item(
                "gsi2pk",
                s(format!("FS#{}#{}", run.function_id, run.status.as_str())),
            )
            .item("gsi2sk", s(time_key(run)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(result)
    }

    async fn get_run(&self, id: &str) -> HfResult<Option<Run>> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key("pk", run_pk(id))
            .key("sk", s("RUN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        Ok(out.item().map(body).transpose()?)
    }

    async fn update_run(&self, run: &Run) -> HfResult<bool> {
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", run_pk(&run.id))
            .key("sk", s("RUN"))
            .update_expression("SET #status = :status, body = :body, gsi2pk = :gsi2pk")
            .condition_expression(
                "attribute_exists(pk) AND NOT (#status IN (:completed, :failed, :cancelled))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(run.status.as_str()))
            .expression_attribute_values(
                ":body",
                s(serde_json::to_string(run).map_err(AwsError::from)?),
            )
            .expression_attribute_values(
                ":gsi2pk",
                s(format!("FS#{}#{}", run.function_id, run.status.as_str())),
            )
            .expression_attribute_values(":completed", s("completed"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":cancelled", s("cancelled"))
            .send()
            .await;
        conditional(result)
    }

    async fn list_runs(&self, filter: &RunFilter) -> HfResult<Vec<Run>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let index = match (&filter.function_id, filter.status) {
            (Some(f), Some(status)) => {
                Some(("gsi2", "gsi2pk", format!("FS#{f}#{}", status.as_str())))
            }
            (Some(f), None) => Some(("gsi1", "gsi1pk", format!("FN#{f}"))),
            (None, _) => None,
        };
        let mut runs = Vec::new();
        if let Some((index, key, value)) = index {
            let mut start = None;
            loop {
                let out = self
                    .ddb()
                    .query()
                    .table_name(self.table())
                    .index_name(index)
                    .key_condition_expression(format!("{key} = :v"))
                    .expression_attribute_values(":v", s(value.clone()))
                    .scan_index_forward(false)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(ddb)?;
                runs.extend(runs_of(out.items())?);
                start = out.last_evaluated_key().cloned();
                if start.is_none() || runs.len() >= limit {
                    break;
                }
            }
        } else {
            // No function given: an administrative scan of run items (by pk
            // prefix too, so a document keyed `RUN` is not taken for a run).
            let mut start = None;
            loop {
                let mut scan = self
                    .ddb()
                    .scan()
                    .table_name(self.table())
                    .filter_expression("sk = :run AND begins_with(pk, :prefix)")
                    .expression_attribute_values(":run", s("RUN"))
                    .expression_attribute_values(":prefix", s("RUN#"))
                    .set_exclusive_start_key(start);
                if let Some(status) = filter.status {
                    scan = scan
                        .filter_expression(
                            "sk = :run AND begins_with(pk, :prefix) AND #status = :status",
                        )
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":status", s(status.as_str()));
                }
                let out = scan.send().await.map_err(ddb)?;
                runs.extend(runs_of(out.items())?);
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
            runs.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        }
        runs.truncate(limit);
        Ok(runs)
    }

    async fn acquire_lease(
        &self,
        run_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> HfResult<bool> {
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", run_pk(run_id))
            .key("sk", s("RUN"))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(lease_owner) OR lease_owner = :owner OR lease_until <= :now)",
            )
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        conditional(result)
    }

    async fn release_lease(&self, run_id: &str, owner: &str) -> HfResult<()> {
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", run_pk(run_id))
            .key("sk", s("RUN"))
            .update_expression("REMOVE lease_owner SET lease_until = :zero")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Ok(()),
            Err(err) => Err(ddb(err).into()),
        }
    }

    async fn claim_idempotency(
        &self,
        function_id: &str,
        key: &str,
        run_id: &str,
        now: i64,
        expires_at: i64,
    ) -> HfResult<Option<String>> {
        let pk = s(format!("IDEM#{function_id}#{key}"));
        let result = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", pk.clone())
            .item("sk", s("IDEM"))
            .item("run_id", s(run_id))
            .item("expires_at", n(expires_at))
            .item("ttl", n(expires_at / 1000 + IDEM_TTL_GRACE_SECS))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) if condition_failed(&err) => {
                let out = self
                    .ddb()
                    .get_item()
                    .table_name(self.table())
                    .key("pk", pk)
                    .key("sk", s("IDEM"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(ddb)?;
                let holder = out
                    .item()
                    .map(|item| super::get_s(item, "run_id").map(str::to_owned))
                    .transpose()?;
                Ok(Some(holder.unwrap_or_default()))
            }
            Err(err) => Err(ddb(err).into()),
        }
    }
}
