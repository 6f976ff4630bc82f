//! [`Documents`] on DynamoDB: one item per document, `pk = DOC#{collection}`,
//! `sk = {key}`, with `version`, `updated_at` and the JSON `body`. Create is a
//! PutItem conditional on the item being absent; replace and delete are
//! conditional on the stored version; reads are strongly consistent and a
//! collection lists with a paginated Query in sort-key (UTF-8 byte) order.

use aws_sdk_dynamodb::types::AttributeValue;
use hookflow_docs::{Document, Documents, check_collection, check_names, encode_document};
use serde_json::Value;

use super::{AwsStore, Item, conditional, get_n, get_s, number, string};
use crate::error::{AwsError, Result, ddb};

fn doc_pk(collection: &str) -> AttributeValue {
    string(format!("DOC#{collection}"))
}

fn version(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn document(collection: &str, item: &Item) -> Result<Document> {
    let version = match item.get("version") {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| AwsError::Item("attribute `version` is not an unsigned integer".into()))?,
        _ => {
            return Err(AwsError::Item(
                "attribute `version` missing or not a number".into(),
            ));
        }
    };
    Ok(Document {
        collection: collection.to_owned(),
        key: get_s(item, "sk")?.to_owned(),
        value: serde_json::from_str(get_s(item, "body")?)?,
        version,
        updated_at: get_n(item, "updated_at")?,
    })
}

impl Documents for AwsStore {
    async fn get_doc(&self, collection: &str, key: &str) -> hookflow::Result<Option<Document>> {
        check_names(collection, key)?;
        Ok(self
            .item(doc_pk(collection), key.to_owned())
            .await?
            .map(|item| document(collection, &item))
            .transpose()?)
    }

    async fn create_doc(
        &self,
        collection: &str,
        key: &str,
        value: &Value,
        now: i64,
    ) -> hookflow::Result<bool> {
        let body = encode_document(collection, key, value)?;
        let result = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .item("pk", doc_pk(collection))
            .item("sk", string(key))
            .item("version", version(1))
            .item("updated_at", number(now))
            .item("body", string(body))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(result)
    }

    async fn replace_doc(
        &self,
        collection: &str,
        key: &str,
        value: &Value,
        expected_version: u64,
        now: i64,
    ) -> hookflow::Result<bool> {
        let body = encode_document(collection, key, value)?;
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table())
            .key("pk", doc_pk(collection))
            .key("sk", string(key))
            .update_expression("SET #version = :next, updated_at = :now, body = :body")
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", version(expected_version))
            .expression_attribute_values(":next", version(expected_version.saturating_add(1)))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":body", string(body))
            .send()
            .await;
        conditional(result)
    }

    async fn delete_doc(
        &self,
        collection: &str,
        key: &str,
        expected_version: u64,
    ) -> hookflow::Result<bool> {
        check_names(collection, key)?;
        let result = self
            .ddb()
            .delete_item()
            .table_name(self.table())
            .key("pk", doc_pk(collection))
            .key("sk", string(key))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", version(expected_version))
            .send()
            .await;
        conditional(result)
    }

    async fn list_docs(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> hookflow::Result<Vec<Document>> {
        check_collection(collection)?;
        let mut docs = Vec::new();
        let mut start = None;
        let (condition, after) = match after {
            Some(after) => ("pk = :pk AND sk > :after", Some(string(after))),
            None => ("pk = :pk", None),
        };
        while docs.len() < limit {
            let page = i32::try_from(limit - docs.len()).unwrap_or(i32::MAX);
            let mut query = self
                .ddb()
                .query()
                .table_name(self.table())
                .key_condition_expression(condition)
                .expression_attribute_values(":pk", doc_pk(collection));
            if let Some(after) = &after {
                query = query.expression_attribute_values(":after", after.clone());
            }
            let out = query
                .consistent_read(true)
                .limit(page)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(ddb)?;
            for item in out.items() {
                docs.push(document(collection, item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        docs.truncate(limit);
        Ok(docs)
    }
}
