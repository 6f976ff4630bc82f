//! Settings (from the Lambda environment the template sets) and SDK clients.

use std::time::Duration;

use crate::calls::CallCounter;
use crate::error::{AwsError, Result};

/// Where Hookflow's resources are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// The DynamoDB table (`HOOKFLOW_TABLE`).
    pub table: String,
    /// The S3 bucket for payloads over the inline size (`HOOKFLOW_BUCKET`).
    pub bucket: String,
    /// Queue name prefix (`HOOKFLOW_QUEUE_PREFIX`, the stack name): queues are
    /// `<prefix>-router` and `<prefix>-<function id>`.
    pub queue_prefix: String,
    /// EventBridge Scheduler group for one-time timers (`HOOKFLOW_SCHEDULER_GROUP`).
    pub scheduler_group: String,
    /// Role the Scheduler assumes to send to the queues (`HOOKFLOW_SCHEDULER_ROLE_ARN`).
    pub scheduler_role_arn: String,
    /// Where the Scheduler puts timers it could not deliver (`HOOKFLOW_SCHEDULER_DLQ_ARN`).
    pub scheduler_dlq_arn: Option<String>,
    /// Use SQS `DelaySeconds` for timers up to 15 minutes (off in tests that
    /// drive a fake clock, where the consumer holds messages until due).
    pub sqs_delays: bool,
    /// How long a run lease lasts from its last extension
    /// (`HOOKFLOW_LEASE_SECS`, default 60 s); a running execution extends it
    /// every third of that, never past the invocation's deadline, so a
    /// crashed worker's lease frees itself.
    pub lease: Duration,
    /// How long finished runs and events are kept (DynamoDB TTL): see
    /// [`hookflow::retention`] (`HOOKFLOW_RUN_RETENTION_DAYS`, ...).
    pub retention: hookflow::Retention,
}

/// Longest SQS `DelaySeconds`.
pub const MAX_SQS_DELAY: Duration = Duration::from_secs(15 * 60);
/// How early a Scheduler timer is set: it fires within a minute of its time,
/// and the consumer finishes the remainder with an SQS delay.
pub const SCHEDULER_EARLY: Duration = Duration::from_secs(60);

impl AwsConfig {
    /// Reads the configuration from the environment.
    ///
    /// # Errors
    /// [`AwsError::Config`] naming the missing or invalid variable.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`.
    ///
    /// # Errors
    /// [`AwsError::Config`] naming the missing or invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &str| {
            var(name)
                .ok_or_else(|| AwsError::Config(format!("environment variable {name} is not set")))
        };
        let lease = match var("HOOKFLOW_LEASE_SECS") {
            Some(v) => Duration::from_secs(v.parse().map_err(|_| {
                AwsError::Config(format!(
                    "HOOKFLOW_LEASE_SECS `{v}` is not a number of seconds"
                ))
            })?),
            None => Duration::from_secs(60),
        };
        let retention = hookflow::Retention::from_lookup(&lookup).map_err(AwsError::Config)?;
        Ok(Self {
            table: required("HOOKFLOW_TABLE")?,
            bucket: required("HOOKFLOW_BUCKET")?,
            queue_prefix: required("HOOKFLOW_QUEUE_PREFIX")?,
            scheduler_group: required("HOOKFLOW_SCHEDULER_GROUP")?,
            scheduler_role_arn: required("HOOKFLOW_SCHEDULER_ROLE_ARN")?,
            scheduler_dlq_arn: var("HOOKFLOW_SCHEDULER_DLQ_ARN"),
            sqs_delays: true,
            lease,
            retention,
        })
    }
}

/// The SDK clients, built once per process.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge Scheduler.
    pub scheduler: aws_sdk_scheduler::Client,
    /// S3 (large payloads).
    pub s3: aws_sdk_s3::Client,
}

impl AwsClients {
    /// Clients from the standard AWS configuration (environment, profile,
    /// `AWS_ENDPOINT_URL`), optionally counting every call.
    pub async fn from_env(counter: Option<&CallCounter>) -> Self {
        let sdk = aws_config::load_from_env().await;
        Self::from_sdk_config(&sdk, counter)
    }

    /// Clients from a loaded SDK configuration.
    #[must_use]
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, counter: Option<&CallCounter>) -> Self {
        let mut ddb = aws_sdk_dynamodb::config::Builder::from(sdk);
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        let mut scheduler = aws_sdk_scheduler::config::Builder::from(sdk);
        // A local endpoint serves buckets by path, not by host name.
        let mut s3 =
            aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some());
        if let Some(counter) = counter {
            ddb = ddb.interceptor(counter.clone());
            sqs = sqs.interceptor(counter.clone());
            scheduler = scheduler.interceptor(counter.clone());
            s3 = s3.interceptor(counter.clone());
        }
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            scheduler: aws_sdk_scheduler::Client::from_conf(scheduler.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let err = AwsConfig::from_lookup(|_| None).unwrap_err();
        assert!(err.to_string().contains("HOOKFLOW_TABLE"), "{err}");
        let env = |name: &str| match name {
            "HOOKFLOW_TABLE" => Some("t".into()),
            "HOOKFLOW_BUCKET" => Some("b".into()),
            "HOOKFLOW_QUEUE_PREFIX" => Some("app".into()),
            "HOOKFLOW_SCHEDULER_GROUP" => Some("app".into()),
            "HOOKFLOW_SCHEDULER_ROLE_ARN" => Some("arn:aws:iam::1:role/r".into()),
            "HOOKFLOW_LEASE_SECS" => Some("60".into()),
            _ => None,
        };
        let config = AwsConfig::from_lookup(env).unwrap();
        assert_eq!(config.lease, Duration::from_secs(60));
        assert_eq!(config.scheduler_dlq_arn, None);
    }
}
