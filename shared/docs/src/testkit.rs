//! Contract checks for [`Documents`](crate::docs::Documents): conditional
//! create, replace and delete, ordered listing scoped to a collection, the size
//! limit, and [`DocStore`]'s retrying update, on every backend.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Documents;
use crate::{DocStore, Document, DocumentError, MAX_DOCUMENT_BYTES};
use hookflow::clock::FakeClock;
use hookflow::store::{RunFilter, RunStore};

const T0: i64 = 1_800_000_000_000;

/// A document is created once; the first write wins and later ones change nothing.
pub async fn documents_are_created_once<S: Documents + RunStore + Clone + 'static>(store: S) {
    let payment = json!({"status": "paid", "amount": 5000});
    assert!(
        store
            .create_doc("payments", "cs_1", &payment, T0)
            .await
            .unwrap(),
        "first write creates"
    );
    assert!(
        !store
            .create_doc("payments", "cs_1", &json!({"status": "dup"}), T0 + 1)
            .await
            .unwrap(),
        "a duplicate webhook does not create it again"
    );
    let doc = store.get_doc("payments", "cs_1").await.unwrap().unwrap();
    assert_eq!(
        (
            doc.collection.as_str(),
            doc.key.as_str(),
            &doc.value,
            doc.version,
            doc.updated_at
        ),
        ("payments", "cs_1", &payment, 1, T0)
    );
    assert!(store.get_doc("payments", "cs_2").await.unwrap().is_none());
    assert!(
        store.get_doc("refunds", "cs_1").await.unwrap().is_none(),
        "keys are scoped to their collection"
    );
}

/// A replace is written only at the version the writer read: of two writers
/// holding the same version, exactly one wins.
pub async fn document_replace_is_conditional<S: Documents + RunStore + Clone + 'static>(store: S) {
    store
        .create_doc("packs", "order-1", &json!({"sessions": 0}), T0)
        .await
        .unwrap();
    assert!(
        store
            .replace_doc("packs", "order-1", &json!({"sessions": 1}), 1, T0 + 10)
            .await
            .unwrap(),
        "writer A holds the current version"
    );
    assert!(
        !store
            .replace_doc("packs", "order-1", &json!({"sessions": 99}), 1, T0 + 20)
            .await
            .unwrap(),
        "writer B's version is stale"
    );
    let doc = store.get_doc("packs", "order-1").await.unwrap().unwrap();
    assert_eq!(
        (doc.value, doc.version, doc.updated_at),
        (json!({"sessions": 1}), 2, T0 + 10)
    );
    assert!(
        store
            .replace_doc("packs", "order-1", &json!({"sessions": 2}), 2, T0 + 30)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_doc("packs", "order-1")
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    assert!(
        !store
            .replace_doc("packs", "missing", &json!({}), 1, T0)
            .await
            .unwrap(),
        "replace never creates"
    );
    assert!(store.get_doc("packs", "missing").await.unwrap().is_none());
}

/// A delete happens only at the expected version; the key can then be created again.
pub async fn document_delete_is_conditional<S: Documents + RunStore + Clone + 'static>(store: S) {
    store
        .create_doc("seats", "s-1", &json!({"held": true}), T0)
        .await
        .unwrap();
    store
        .replace_doc("seats", "s-1", &json!({"held": false}), 1, T0 + 1)
        .await
        .unwrap();
    assert!(
        !store.delete_doc("seats", "s-1", 1).await.unwrap(),
        "stale version"
    );
    assert!(store.get_doc("seats", "s-1").await.unwrap().is_some());
    assert!(store.delete_doc("seats", "s-1", 2).await.unwrap());
    assert!(store.get_doc("seats", "s-1").await.unwrap().is_none());
    assert!(
        !store.delete_doc("seats", "s-1", 2).await.unwrap(),
        "already gone"
    );
    assert!(
        store
            .create_doc("seats", "s-1", &json!({"held": true}), T0 + 2)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_doc("seats", "s-1")
            .await
            .unwrap()
            .unwrap()
            .version,
        1,
        "a re-created document starts over"
    );
}

/// A collection lists in key order, at most `limit`, after the given key, and
/// only its own documents; documents never show up as engine records.
pub async fn documents_are_listed_by_key<S: Documents + RunStore + Clone + 'static>(store: S) {
    for key in ["b", "a", "c", "RUN", "a#1"] {
        store
            .create_doc("packs", key, &json!({"key": key}), T0)
            .await
            .unwrap();
    }
    for (collection, key) in [("pack", "a0"), ("packs2", "a1"), ("packs.old", "a2")] {
        store
            .create_doc(collection, key, &json!({}), T0)
            .await
            .unwrap();
    }
    let keys = |docs: Vec<Document>| {
        docs.into_iter()
            .map(|d| {
                assert_eq!(d.collection, "packs");
                assert_eq!(d.value, json!({"key": d.key}));
                d.key
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.list_docs("packs", None, 100).await.unwrap()),
        ["RUN", "a", "a#1", "b", "c"],
        "byte order of the keys"
    );
    assert_eq!(
        keys(store.list_docs("packs", None, 2).await.unwrap()),
        ["RUN", "a"]
    );
    assert_eq!(
        keys(store.list_docs("packs", Some("a"), 2).await.unwrap()),
        ["a#1", "b"],
        "the next page starts after the last key read"
    );
    assert_eq!(
        keys(store.list_docs("packs", Some("b"), 10).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        keys(store.list_docs("packs", Some("a0"), 10).await.unwrap()),
        ["b", "c"],
        "`after` need not be a stored key"
    );
    assert!(
        store
            .list_docs("packs", Some("c"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_docs("empty", None, 10).await.unwrap().is_empty());
    assert!(
        store
            .list_runs(&RunFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "a document keyed `RUN` is not a run"
    );
}

/// Values up to the documented limit are stored whole; larger ones and bad
/// names are refused with a [`DocumentError`] and nothing is written.
pub async fn document_size_is_limited<S: Documents + RunStore + Clone + 'static>(store: S) {
    let at_limit = json!("x".repeat(MAX_DOCUMENT_BYTES - 2));
    assert!(
        store
            .create_doc("blobs", "max", &at_limit, T0)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_doc("blobs", "max").await.unwrap().unwrap().value,
        at_limit
    );
    let over = json!("x".repeat(MAX_DOCUMENT_BYTES - 1));
    let err = store
        .create_doc("blobs", "over", &over, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            DocumentError::of(&err),
            Some(DocumentError::TooLarge { .. })
        ),
        "{err}"
    );
    let err = store
        .replace_doc("blobs", "max", &over, 1, T0)
        .await
        .unwrap_err();
    assert!(matches!(
        DocumentError::of(&err),
        Some(DocumentError::TooLarge { .. })
    ));
    assert!(store.get_doc("blobs", "over").await.unwrap().is_none());
    assert_eq!(
        store
            .get_doc("blobs", "max")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    for (collection, key) in [("", "k"), ("a/b", "k"), ("blobs", "")] {
        let err = store
            .create_doc(collection, key, &json!({}), T0)
            .await
            .unwrap_err();
        assert!(
            matches!(
                DocumentError::of(&err),
                Some(DocumentError::InvalidName { .. })
            ),
            "{collection:?}/{key:?}: {err}"
        );
    }
    let err = store.get_doc("blobs", "").await.unwrap_err();
    assert!(DocumentError::of(&err).is_some());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pack {
    sessions: u32,
}

/// [`DocStore`]'s typed helpers over the backend: create once, read typed, and
/// `update` retries until concurrent read-modify-writes all land.
pub async fn doc_store_updates_retry_on_conflict<S: Documents + RunStore + Clone + 'static>(
    store: S,
) {
    let docs = DocStore::new(store).with_clock(Arc::new(FakeClock::new(T0)));
    assert!(
        docs.create("packs", "order-1", &Pack { sessions: 0 })
            .await
            .unwrap()
    );
    assert!(
        !docs
            .create("packs", "order-1", &Pack { sessions: 7 })
            .await
            .unwrap()
    );
    assert_eq!(
        docs.get::<Pack>("packs", "order-1").await.unwrap(),
        Some((Pack { sessions: 0 }, 1))
    );
    assert_eq!(docs.get::<Pack>("packs", "none").await.unwrap(), None);

    // A writer that read an old version loses and reads again.
    let (pack, version) = docs.get::<Pack>("packs", "order-1").await.unwrap().unwrap();
    assert!(
        docs.replace_doc(
            "packs",
            "order-1",
            &serde_json::json!({"sessions": 5}),
            version
        )
        .await
        .unwrap()
    );
    let stale = serde_json::to_value(Pack {
        sessions: pack.sessions + 1,
    })
    .unwrap();
    assert!(
        !docs
            .replace_doc("packs", "order-1", &stale, version)
            .await
            .unwrap(),
        "stale version loses"
    );
    let updated = docs
        .update("packs", "order-1", |pack: Option<Pack>| {
            pack.map(|p| Pack {
                sessions: p.sessions + 1,
            })
        })
        .await
        .unwrap();
    assert_eq!(updated, Some(Pack { sessions: 6 }));
    assert_eq!(
        docs.get::<Pack>("packs", "order-1").await.unwrap(),
        Some((Pack { sessions: 6 }, 3))
    );

    let created = docs
        .update("packs", "order-2", |pack: Option<Pack>| {
            Some(pack.unwrap_or(Pack { sessions: 1 }))
        })
        .await
        .unwrap();
    assert_eq!(created, Some(Pack { sessions: 1 }));
    let untouched = docs
        .update("packs", "order-3", |pack: Option<Pack>| pack)
        .await
        .unwrap();
    assert_eq!(untouched, None, "returning None writes nothing");
    assert!(docs.get_doc("packs", "order-3").await.unwrap().is_none());

    // A transition reports what it decided, whether or not it wrote.
    let take = |pack: Option<Pack>| match pack {
        Some(p) if p.sessions > 0 => (
            Some(Pack {
                sessions: p.sessions - 1,
            }),
            Ok(p.sessions),
        ),
        _ => (None, Err("none left")),
    };
    assert_eq!(
        docs.update_with("packs", "order-2", take).await.unwrap(),
        Ok(1)
    );
    assert_eq!(
        docs.update_with("packs", "order-2", take).await.unwrap(),
        Err("none left")
    );
    assert_eq!(
        docs.get::<Pack>("packs", "order-2").await.unwrap(),
        Some((Pack { sessions: 0 }, 2))
    );
    let listed = docs.list_docs("packs", None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.updated_at == T0));
}

/// Concurrent `update`s on one document lose no increment. Needs a backend
/// whose conditional writes are atomic under concurrency (SQLite here; real
/// DynamoDB too, but the local emulator does not serialize them).
pub async fn doc_store_concurrent_updates_lose_nothing<
    S: Documents + RunStore + Clone + 'static,
>(
    store: S,
) {
    let docs = DocStore::new(store).with_clock(Arc::new(FakeClock::new(T0)));
    assert!(
        docs.create("packs", "hot", &Pack { sessions: 0 })
            .await
            .unwrap()
    );
    let writers = 5;
    let increments = (0..writers).map(|_| {
        docs.update("packs", "hot", |pack: Option<Pack>| {
            pack.map(|p| Pack {
                sessions: p.sessions + 1,
            })
        })
    });
    for written in futures::future::join_all(increments).await {
        assert!(written.unwrap().is_some());
    }
    assert_eq!(
        docs.get::<Pack>("packs", "hot").await.unwrap(),
        Some((Pack { sessions: writers }, u64::from(writers) + 1)),
        "no increment is lost"
    );
}

/// Generates one `#[tokio::test]` per document contract check, each on a
/// fresh store built by `$make` (an async expression).
#[macro_export]
macro_rules! document_contract_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn contract_documents_are_created_once() {
            $crate::testkit::documents_are_created_once($make.await).await;
        }
        #[tokio::test]
        async fn contract_document_replace_is_conditional() {
            $crate::testkit::document_replace_is_conditional($make.await).await;
        }
        #[tokio::test]
        async fn contract_document_delete_is_conditional() {
            $crate::testkit::document_delete_is_conditional($make.await).await;
        }
        #[tokio::test]
        async fn contract_documents_are_listed_by_key() {
            $crate::testkit::documents_are_listed_by_key($make.await).await;
        }
        #[tokio::test]
        async fn contract_document_size_is_limited() {
            $crate::testkit::document_size_is_limited($make.await).await;
        }
        #[tokio::test]
        async fn contract_doc_store_updates_retry_on_conflict() {
            $crate::testkit::doc_store_updates_retry_on_conflict($make.await).await;
        }
    };
}
