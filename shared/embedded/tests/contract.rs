//! The generic store contract suite, run against the embedded SQLite backend.

use hookflow_embedded::SqliteStore;

async fn fresh() -> SqliteStore {
    SqliteStore::in_memory().expect("in-memory sqlite")
}

hookflow::store_contract_tests!(fresh());
hookflow_docs::document_contract_tests!(fresh());

#[tokio::test]
async fn contract_doc_store_concurrent_updates_lose_nothing() {
    hookflow_docs::testkit::doc_store_concurrent_updates_lose_nothing(fresh().await).await;
}

mod queue {
    use hookflow::run::{Envelope, Message, Target};
    use hookflow::store::Outbox;
    use hookflow::transition::Outgoing;
    use hookflow_embedded::SqliteStore;

    fn start() -> Envelope {
        Envelope::new(
            Target::Function("f".into()),
            Message::Start {
                run_id: "r".into(),
                due: None,
                trigger: None,
            },
        )
    }

    #[tokio::test]
    async fn a_deferred_delivery_does_not_count_toward_dead_lettering() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .deliver(&[Outgoing::Send { envelope: start() }])
            .await
            .unwrap();
        for round in 0..20 {
            let delivery = store.receive(round, 1, 1000).await.unwrap().pop().unwrap();
            assert_eq!(delivery.receive_count, 1, "round {round}");
            store.defer(&delivery, round + 1).await.unwrap();
        }
    }

    #[tokio::test]
    async fn dead_letters_are_kept_and_redriven() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .deliver(&[Outgoing::Send { envelope: start() }])
            .await
            .unwrap();
        let delivery = store.receive(0, 1, 1000).await.unwrap().pop().unwrap();
        store.dead_letter(&delivery, "boom".into()).await.unwrap();
        assert!(store.receive(10_000, 1, 1000).await.unwrap().is_empty());
        let dead = store.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].1.as_deref(), Some("boom"));
        assert_eq!(store.redrive(20_000).await.unwrap(), 1);
        let again = store.receive(20_000, 1, 1000).await.unwrap().pop().unwrap();
        assert_eq!(again.envelope, start());
        assert_eq!(again.receive_count, 1);
    }

    #[tokio::test]
    async fn recovery_after_a_crash_makes_in_flight_messages_visible() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .deliver(&[Outgoing::Send { envelope: start() }])
            .await
            .unwrap();
        let _in_flight = store.receive(0, 1, 900_000).await.unwrap();
        assert!(store.receive(1, 1, 900_000).await.unwrap().is_empty());
        assert_eq!(store.recover(2).await.unwrap(), 1);
        assert_eq!(store.receive(2, 1, 900_000).await.unwrap().len(), 1);
    }
}

mod faults {
    use std::sync::Arc;

    async fn fresh(
        clock: hookflow::FakeClock,
        _functions: Vec<String>,
    ) -> hookflow_embedded::SqliteStore {
        hookflow_embedded::SqliteStore::in_memory()
            .expect("in-memory sqlite")
            .with_clock(Arc::new(clock))
    }

    hookflow::fault_injection_tests!(fresh);
}
