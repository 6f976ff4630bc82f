//! A real `hookflow dev` for the CLI's tests: its router and workers over
//! an in-memory store with the registry's functions, on a free loopback
//! port.

use std::sync::Arc;

use hookflow::{Registry, SystemClock};
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use tokio::sync::watch;

/// A running dev server: its URL, its runtime, and the workers' stop
/// switch (they stop when it is dropped).
pub struct Dev {
    pub url: String,
    #[allow(
        dead_code,
        reason = "the dashboard test reads the store; the CLI test only HTTP"
    )]
    pub runtime: Embedded,
    pub _stop: watch::Sender<bool>,
}

pub async fn dev_server() -> Dev {
    let registry = Registry::new(hookflow_registry::functions()).unwrap();
    let runtime = Embedded::new(
        SqliteStore::in_memory().unwrap(),
        registry,
        Arc::new(SystemClock),
        WorkerConfig::default(),
    );
    runtime.start().await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let workers = runtime.clone();
    tokio::spawn(async move { workers.run_workers(stopped).await });
    let receiver = Arc::new(hookflow_webhooks::test_secrets::receiver().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = hookflow_cli::api::router(runtime.clone(), receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Dev {
        url,
        runtime,
        _stop: stop,
    }
}
