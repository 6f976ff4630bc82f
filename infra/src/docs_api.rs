//! The document store over HTTP, for `hookflow dev`: look at the records the
//! reference workflows keep, and load the ones they read (a catalog, users)
//! before trying a workflow by hand.
//!
//! - `GET /docs/{collection}?after=&limit=`: documents in key order;
//! - `GET /docs/{collection}/{key}`: one document (404 when absent);
//! - `PUT /docs/{collection}/{key}`: sets its value (created, or replaced
//!   whatever its version: this is the operator's hand, not a workflow's);
//! - `POST /docs`: `[{"collection", "key", "value"}, ..]`, each set as by
//!   `PUT`, in order; a bad name or an oversized value rejects the batch
//!   before any write.
//!
//! Invalid names and values over the size limit are a 400, storage failures
//! a 503.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use hookflow::Error;
use hookflow_docs::{DocStore, Document, DocumentError, encode_document};
use hookflow_embedded::Embedded;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::ApiError;

/// Most documents one `GET /docs/{collection}` answers with.
pub const MAX_LIST: usize = 1_000;

fn docs(rt: &Embedded) -> DocStore {
    DocStore::new(rt.store().clone()).with_clock(rt.engine().clock().clone())
}

fn failed(err: &Error) -> ApiError {
    match DocumentError::of(err) {
        Some(DocumentError::InvalidName { .. } | DocumentError::TooLarge { .. }) => {
            ApiError::new(StatusCode::BAD_REQUEST, err.to_string())
        }
        _ => {
            tracing::error!(error = %err, "document request failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
    }
}

fn shown(doc: Document) -> Value {
    json!({
        "collection": doc.collection,
        "key": doc.key,
        "value": doc.value,
        "version": doc.version,
        "updated_at": doc.updated_at,
    })
}

/// The JSON body (any content type: `curl -d @file` works as is).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

/// Sets `value` at (`collection`, `key`); returns the version written.
async fn set(docs: &DocStore, collection: &str, key: &str, value: Value) -> Result<u64, ApiError> {
    docs.update::<Value, _>(collection, key, |_| Some(value.clone()))
        .await
        .map_err(|e| failed(&e))?;
    let written = docs
        .get_doc(collection, key)
        .await
        .map_err(|e| failed(&e))?;
    Ok(written.map_or(0, |doc| doc.version))
}

/// Query of `GET /docs/{collection}`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /docs/{collection}`.
pub async fn list(
    State(rt): State<Embedded>,
    Path(collection): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let page = docs(&rt)
        .list_docs(&collection, q.after.as_deref(), limit)
        .await
        .map_err(|e| failed(&e))?;
    let next = (page.len() == limit).then(|| page.last().map(|d| d.key.clone()));
    Ok(Json(json!({
        "documents": page.into_iter().map(shown).collect::<Vec<_>>(),
        "next_after": next.flatten(),
    })))
}

/// `GET /docs/{collection}/{key}`.
pub async fn get(
    State(rt): State<Embedded>,
    Path((collection, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    match docs(&rt)
        .get_doc(&collection, &key)
        .await
        .map_err(|e| failed(&e))?
    {
        Some(doc) => Ok(Json(shown(doc))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no document {collection}/{key}"),
        )),
    }
}

/// `PUT /docs/{collection}/{key}`.
pub async fn put(
    State(rt): State<Embedded>,
    Path((collection, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value: Value = parse(&body)?;
    let version = set(&docs(&rt), &collection, &key, value).await?;
    Ok(Json(
        json!({ "collection": collection, "key": key, "version": version }),
    ))
}

/// One entry of `POST /docs`.
#[derive(Debug, Deserialize)]
pub struct Entry {
    collection: String,
    key: String,
    value: Value,
}

/// `POST /docs`.
pub async fn load(State(rt): State<Embedded>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let entries: Vec<Entry> = parse(&body)?;
    for entry in &entries {
        encode_document(&entry.collection, &entry.key, &entry.value).map_err(|e| failed(&e))?;
    }
    let docs = docs(&rt);
    let mut written = Vec::with_capacity(entries.len());
    for Entry {
        collection,
        key,
        value,
    } in entries
    {
        let version = set(&docs, &collection, &key, value).await?;
        written.push(json!({ "collection": collection, "key": key, "version": version }));
    }
    Ok(Json(json!({ "written": written })))
}
