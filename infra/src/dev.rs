//! `hookflow dev`: the HTTP API and the worker loop over one SQLite file.
//! Killing it at any point loses nothing: on start it recovers in-flight
//! messages and leases and resumes every run from its journal.

use std::sync::Arc;

use anyhow::Context;
use hookflow::{Clock, SystemClock};
use hookflow_clients::Services;
use hookflow_docs::DocStore;
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use hookflow_webhooks::{Provider, Receiver, WebhookConfig};
use tokio::sync::watch;

use crate::DevArgs;

/// Starts the runtime on `args.db` and serves until SIGINT/SIGTERM.
///
/// # Errors
/// Registry, database or bind failures, with what to fix.
pub async fn serve(args: DevArgs) -> anyhow::Result<()> {
    let token = crate::access::admin_token_for(
        args.host,
        hookflow_clients::process_env(crate::access::ADMIN_TOKEN_VAR).as_deref(),
    )?;
    if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = SqliteStore::open(&args.db)
        .with_context(|| format!("cannot open database {}", args.db.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let docs = DocStore::new(store.clone()).with_clock(clock.clone());
    let services = Services::from_env(docs, &hookflow_clients::process_env)
        .context("workflow configuration (API clients and settings)")?;
    let mut functions = hookflow_registry::functions_with(&services);
    if args.bench {
        functions.extend(crate::bench::workloads(args.step_log.clone()));
    }
    let registry = hookflow::Registry::new(functions).context("invalid function registry")?;
    let retention = hookflow::Retention::from_env()
        .map_err(anyhow::Error::msg)
        .context("retention settings")?;
    let config = WorkerConfig {
        workers: args.workers,
        retention,
        ..WorkerConfig::default()
    };
    let webhooks = WebhookConfig::from_env().context("webhook configuration")?;
    let (enabled, disabled): (Vec<_>, Vec<_>) = Provider::ALL
        .into_iter()
        .partition(|p| webhooks.is_configured(*p));
    for provider in &disabled {
        tracing::info!(
            %provider,
            set = WebhookConfig::env_vars(*provider).join(" + "),
            "webhook endpoint disabled until its secret is set"
        );
    }
    let receiver = Arc::new(Receiver::new(webhooks).context("webhook receiver")?);
    let runtime = Embedded::new(store, registry, clock, config);
    let recovered = runtime.start().await.context("recovery on start failed")?;
    let listener = tokio::net::TcpListener::bind(args.addr())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another hookflow dev running? try --port)",
                args.addr()
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(
        url = %format!("http://{addr}"),
        db = %args.db.display(),
        functions = runtime.engine().registry().len(),
        webhooks = ?enabled.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        recovered,
        admin_token = token.is_some(),
        "hookflow dev listening"
    );
    println!("hookflow dev listening on http://{addr}");

    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.run_workers(stop_rx).await })
    };
    axum::serve(
        listener,
        crate::api::router_with_access(runtime, receiver, token),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server failed")?;
    let _ = stop_tx.send(true);
    workers.await.context("workers ended abnormally")?;
    tracing::info!("hookflow dev stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
