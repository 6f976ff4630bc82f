//! The embedded runtime: the engine over [`SqliteStore`] plus the loop that
//! receives queue messages and hands them to [`Engine::handle`], acknowledging,
//! retrying with backoff, or dead-lettering them like an SQS event source.

use std::sync::Arc;
use std::time::Duration;

use hookflow::clock::duration_ms;
use hookflow::{Clock, Engine, EngineConfig, Handled, Registry, Retention};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::queue::Delivery;
use crate::store::SqliteStore;
use crate::{Pruned, Result};

/// Worker loop settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Messages handled at once (each in its own task).
    pub workers: usize,
    /// How long a received message stays hidden while it is handled.
    pub visibility: Duration,
    /// Deliveries before a failing message is dead-lettered.
    pub max_receives: u32,
    /// Longest idle wait between queue polls.
    pub idle_poll: Duration,
    /// Delay before re-delivering a message whose run is held by another worker.
    pub busy_delay: Duration,
    /// How long a run's lease lasts; a running execution extends it every third.
    pub lease: Duration,
    /// What finished work is kept, and for how long.
    pub retention: Retention,
    /// How often the worker loop prunes what retention no longer keeps
    /// (and once when it starts).
    pub prune_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 64,
            visibility: Duration::from_secs(15 * 60),
            max_receives: 10,
            idle_poll: Duration::from_millis(250),
            busy_delay: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            retention: Retention::default(),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// The engine on the embedded store, with its worker loop.
#[derive(Clone)]
pub struct Embedded {
    engine: Engine<SqliteStore>,
    config: WorkerConfig,
}

impl Embedded {
    /// An embedded runtime over `store` for `registry`.
    pub fn new(
        store: SqliteStore,
        registry: Registry,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        let store = store.with_clock(clock.clone());
        let engine_config = EngineConfig::with_lease(config.lease);
        Self {
            engine: Engine::new(store, registry, clock, engine_config),
            config,
        }
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Engine<SqliteStore> {
        &self.engine
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &SqliteStore {
        self.engine.store()
    }

    fn now(&self) -> i64 {
        self.engine.clock().now_ms()
    }

    /// Prepares a (re)started process: frees what the previous process held
    /// and schedules cron ticks. Returns how many in-flight messages were recovered.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn start(&self) -> hookflow::Result<usize> {
        let recovered = self.store().recover(self.now()).await?;
        self.engine.schedule_crons().await?;
        Ok(recovered)
    }

    /// Handles one delivery: acknowledge on success, redeliver later when the
    /// run is busy or handling failed, dead-letter after too many receives.
    ///
    /// # Errors
    /// Storage errors while acknowledging.
    pub async fn process(&self, delivery: &Delivery) -> Result<()> {
        let store = self.store();
        // Boxed: the engine's future is deep, and worker threads' stacks are small.
        match Box::pin(self.engine.handle(&delivery.envelope)).await {
            Ok(Handled::Done) => store.ack(delivery).await,
            Ok(Handled::Busy) => {
                let at = self.now() + duration_ms(self.config.busy_delay);
                store.defer(delivery, at).await
            }
            Err(err) => {
                let error = format!("{err:#}");
                if delivery.receive_count >= self.config.max_receives {
                    // Its kind and run, not the message: an invoke's carries its data.
                    let message = &delivery.envelope.message;
                    tracing::error!(
                        message = message.kind(),
                        run.id = message.run_id(),
                        error,
                        "message dead-lettered"
                    );
                    store.dead_letter(delivery, error).await
                } else {
                    let backoff = Duration::from_secs(1 << delivery.receive_count.min(6));
                    let message = &delivery.envelope.message;
                    tracing::warn!(
                        message = message.kind(),
                        run.id = message.run_id(),
                        error,
                        "message failed; will retry"
                    );
                    store
                        .retry_at(delivery, self.now() + duration_ms(backoff), Some(error))
                        .await
                }
            }
        }
    }

    /// Handles messages one at a time until none is visible at the clock's
    /// current time; returns how many were handled. With a fake clock this runs
    /// everything due "now", deterministically.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn drain(&self) -> Result<usize> {
        let visibility = duration_ms(self.config.visibility);
        let mut handled = 0;
        loop {
            let batch = self.store().receive(self.now(), 1, visibility).await?;
            let Some(delivery) = batch.into_iter().next() else {
                return Ok(handled);
            };
            self.process(&delivery).await?;
            handled += 1;
        }
    }

    /// Deletes what retention no longer keeps (see [`crate::Pruned`]); events
    /// are kept while any function is paused or resuming, since resuming it
    /// routes the events it missed.
    ///
    /// # Errors
    /// Store failures (what was deleted before stays deleted).
    pub async fn prune(&self) -> hookflow::Result<Pruned> {
        // Paused, or still resuming: its held events are (about to be) routed.
        let mut paused = false;
        for function in self.engine().registry().iter() {
            let record = hookflow::store::FlowStore::flow_get(
                self.store(),
                &hookflow::flow::pause_key(function.id()),
            )
            .await?;
            if matches!(
                record.map(|r| r.state),
                Some(hookflow::flow::FlowState::Pause { since: Some(_), .. })
            ) {
                paused = true;
                break;
            }
        }
        let pruned = self
            .store()
            .prune(self.now(), &self.config.retention, !paused)
            .await?;
        if pruned != Pruned::default() {
            tracing::info!(
                runs = pruned.runs,
                events = pruned.events,
                claims = pruned.claims,
                flow = pruned.flow,
                blobs = pruned.blobs,
                "pruned what retention no longer keeps"
            );
        }
        Ok(pruned)
    }

    /// Prunes now and every [`WorkerConfig::prune_every`] until `shutdown`.
    async fn prune_loop(self, mut shutdown: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.config.prune_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(err) = self.prune().await {
                        tracing::error!(error = %err, "prune failed; retried at the next");
                    }
                }
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Runs the worker loop until `shutdown` turns true, then waits for the
    /// messages in hand.
    ///
    /// One dispatcher receives, in one queue update, as many messages as
    /// there are free worker slots, and hands each to its own task: idle
    /// slots cost nothing, and a new message wakes one receive, not every
    /// idle worker. It sleeps only when nothing is visible, until the next
    /// message is due or one is queued, whichever comes first.
    pub async fn run_workers(&self, mut shutdown: watch::Receiver<bool>) {
        let pruning = tokio::spawn(self.clone().prune_loop(shutdown.clone()));
        let visibility = duration_ms(self.config.visibility);
        let slots = Arc::new(Semaphore::new(self.config.workers.max(1)));
        let mut running = JoinSet::new();
        while !*shutdown.borrow() {
            let first = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => permit,
                _ = shutdown.changed() => break,
            };
            let Ok(first) = first else { break };
            let mut permits = vec![first];
            while let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
                permits.push(permit);
            }
            // Registered before the receive, so a message queued after it
            // still wakes the wait below.
            let notified = self.store().notify.notified();
            let free = permits.len();
            let next_visible_at = match self
                .store()
                .receive_next(self.now(), free, visibility)
                .await
            {
                Ok(received) => {
                    let full = received.deliveries.len() == free;
                    for (delivery, permit) in received.deliveries.into_iter().zip(permits) {
                        let this = self.clone();
                        running.spawn(async move {
                            if let Err(err) = this.process(&delivery).await {
                                tracing::error!(error = %err, "queue update failed");
                            }
                            drop(permit);
                        });
                    }
                    while let Some(done) = running.try_join_next() {
                        log_abnormal_end(done);
                    }
                    if full {
                        // Every slot taken: more may be waiting.
                        continue;
                    }
                    received.next_visible_at
                }
                Err(err) => {
                    tracing::error!(error = %err, "queue receive failed");
                    None
                }
            };
            // Nothing more visible now: sleep until a message is queued or
            // the next one is due.
            let wait = next_visible_at
                .map_or(self.config.idle_poll, |at| {
                    Duration::from_millis(u64::try_from(at - self.now()).unwrap_or(0))
                })
                .min(self.config.idle_poll);
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        while let Some(done) = running.join_next().await {
            log_abnormal_end(done);
        }
        let _ = pruning.await;
    }
}

fn log_abnormal_end(done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(err) = done {
        tracing::error!(error = %err, "worker task ended abnormally");
    }
}
