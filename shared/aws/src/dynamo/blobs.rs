//! Large bodies on S3: a record body over [`INLINE_BYTES`] is stored once in
//! the stack's bucket under its content key and the item keeps
//! `<attribute>_blob = <key>` (as bytes) instead, so no item nears DynamoDB's 400 KB and
//! copies of one large event (its log entry, each run's trigger, each waiter)
//! share one object. Blobs are written before the transaction that refers to
//! them: a crash in between leaves an unreferenced object, never a dangling
//! reference; the bucket's lifecycle rule expires old objects.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use hookflow::limits::{INLINE_BYTES, blob_key};
use hookflow::store::Blobs;

use super::packed::{pack, unpack};
use super::{AwsStore, Item};
use crate::error::{AwsError, Result};

impl AwsStore {
    /// The attribute `name` holding `body`: inline when small (compressed
    /// from [`super::packed::PACK_FROM`] bytes), else a blob key under
    /// `<name>_blob`.
    pub(crate) async fn body_attribute(
        &self,
        name: &str,
        body: String,
    ) -> Result<(String, AttributeValue)> {
        self.body_attribute_as(name, body, pack).await
    }

    /// [`Self::body_attribute`], an inline body written by `inline`.
    pub(crate) async fn body_attribute_as(
        &self,
        name: &str,
        body: String,
        inline: impl FnOnce(String) -> AttributeValue,
    ) -> Result<(String, AttributeValue)> {
        if body.len() <= INLINE_BYTES {
            return Ok((name.to_owned(), inline(body)));
        }
        // The key as bytes: a reader from before compression, which reads
        // only text, then fails on the item (see `packed`).
        let key = self.put_object(body.as_bytes()).await?;
        Ok((
            format!("{name}_blob"),
            AttributeValue::B(Blob::new(key.into_bytes())),
        ))
    }

    /// The body kept in attribute `name` of `item`, inline or as a blob.
    pub(crate) async fn read_body(&self, item: &Item, name: &str) -> Result<Option<String>> {
        if let Some(body) = item.get(name).map(unpack).transpose()?.flatten() {
            return Ok(Some(body));
        }
        let key = match item.get(&format!("{name}_blob")) {
            Some(AttributeValue::S(key)) => key.clone(),
            Some(AttributeValue::B(key)) => String::from_utf8(key.as_ref().to_vec())
                .map_err(|e| AwsError::Item(format!("blob key (attribute {name}): {e}")))?,
            _ => return Ok(None),
        };
        let key = key.as_str();
        let bytes = self
            .get_object(key)
            .await?
            .ok_or_else(|| AwsError::Item(format!("blob {key} (attribute {name}) is missing")))?;
        Ok(Some(
            String::from_utf8(bytes).map_err(|e| AwsError::Item(format!("blob {key}: {e}")))?,
        ))
    }

    /// The record kept in attribute `name` of `item`.
    pub(crate) async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        item: &Item,
        name: &str,
    ) -> Result<T> {
        let body = self
            .read_body(item, name)
            .await?
            .ok_or_else(|| AwsError::Item(format!("attribute `{name}` missing")))?;
        Ok(serde_json::from_str(&body)?)
    }

    async fn put_object(&self, bytes: &[u8]) -> Result<String> {
        let key = blob_key(bytes);
        self.clients
            .s3
            .put_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .map_err(|e| AwsError::S3(Box::new(e.into())))?;
        Ok(key)
    }

    async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let result = self
            .clients
            .s3
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => {
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| AwsError::Item(format!("reading blob {key}: {e}")))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(err)
                if err.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(AwsError::S3(Box::new(err.into()))),
        }
    }
}

impl Blobs for AwsStore {
    async fn put_blob(&self, bytes: &[u8]) -> hookflow::Result<String> {
        Ok(self.put_object(bytes).await?)
    }

    async fn get_blob(&self, key: &str) -> hookflow::Result<Option<Vec<u8>>> {
        Ok(self.get_object(key).await?)
    }
}
