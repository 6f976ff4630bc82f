//! Errors of the AWS backend; each keeps the SDK error as its source, but
//! for a call shared by several callers ([`crate::coalesce`]), whose
//! error reaches each as its message.

/// AWS backend errors.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A required setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// DynamoDB failed.
    #[error("dynamodb: {0}")]
    DynamoDb(#[from] Box<aws_sdk_dynamodb::Error>),
    /// SQS failed.
    #[error("sqs: {0}")]
    Sqs(#[from] Box<aws_sdk_sqs::Error>),
    /// A send failed, alone or in a batch (the call's error, or the one SQS
    /// gave its entry).
    #[error("sqs: {0}")]
    SqsSend(String),
    /// A read shared by several callers failed (its error, as a message).
    #[error("{0}")]
    Shared(String),
    /// EventBridge Scheduler failed.
    #[error("scheduler: {0}")]
    Scheduler(#[from] Box<aws_sdk_scheduler::Error>),
    /// S3 failed.
    #[error("s3: {0}")]
    S3(#[from] Box<aws_sdk_s3::Error>),
    /// A stored item is not what this version wrote.
    #[error("stored item: {0}")]
    Item(String),
    /// A record could not be (de)serialized.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<AwsError> for hookflow::Error {
    fn from(err: AwsError) -> Self {
        Self::store(err)
    }
}

/// Result with the AWS backend's error.
pub type Result<T, E = AwsError> = std::result::Result<T, E>;

/// Converts an SDK operation error into [`AwsError`].
pub(crate) fn ddb<E>(
    err: aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError
where
    aws_sdk_dynamodb::Error:
        From<aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
{
    AwsError::DynamoDb(Box::new(aws_sdk_dynamodb::Error::from(err)))
}

/// Converts an SQS operation error into [`AwsError`].
pub(crate) fn sqs<E>(
    err: aws_sdk_sqs::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError
where
    aws_sdk_sqs::Error:
        From<aws_sdk_sqs::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
{
    AwsError::Sqs(Box::new(aws_sdk_sqs::Error::from(err)))
}

/// Converts a Scheduler operation error into [`AwsError`].
pub(crate) fn scheduler<E>(
    err: aws_sdk_scheduler::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError
where
    aws_sdk_scheduler::Error:
        From<aws_sdk_scheduler::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
{
    AwsError::Scheduler(Box::new(aws_sdk_scheduler::Error::from(err)))
}
