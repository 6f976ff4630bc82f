//! The generic store contract suite, run against the embedded SQLite backend.

use hookflow_embedded::SqliteStore;

async fn fresh() -> SqliteStore {
    SqliteStore::in_memory().expect("in-memory sqlite")
}

hookflow::store_contract_tests!(fresh());
