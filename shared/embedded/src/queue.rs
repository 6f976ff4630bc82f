//! The persisted queue: messages become visible at a time (now, or a timer's
//! due time), are received with a visibility timeout like SQS, and are deleted
//! on acknowledgement. Messages received too often go to a dead-letter state.

use hookflow::run::{Envelope, Target};
use rusqlite::params;

use crate::Result;
use crate::store::SqliteStore;

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Queue row id.
    pub id: i64,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// The message.
    pub envelope: Envelope,
}

/// What [`SqliteStore::receive_next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The messages received.
    pub deliveries: Vec<Delivery>,
    /// When the earliest message still queued (these included, now hidden)
    /// becomes visible.
    pub next_visible_at: Option<i64>,
}

/// When the earliest message not dead-lettered becomes visible.
fn next_visible_at(c: &rusqlite::Connection) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT MIN(visible_at) FROM queue WHERE dead = 0")?
            .query_row([], |r| r.get(0))?,
    )
}

impl SqliteStore {
    /// Receives up to `max` messages visible at `now`, hiding them for `visibility_ms`.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn receive(&self, now: i64, max: usize, visibility_ms: i64) -> Result<Vec<Delivery>> {
        Ok(self.receive_next(now, max, visibility_ms).await?.deliveries)
    }

    /// [`Self::receive`], also saying when the next message not received
    /// becomes visible: one write for what a dispatcher needs to know.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn receive_next(&self, now: i64, max: usize, visibility_ms: i64) -> Result<Received> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.write_relaxed(move |c| {
            let rows: Vec<(i64, String, u32)> = {
                let mut stmt = c.prepare_cached(
                    "SELECT id, body, receive_count FROM queue WHERE dead = 0 AND visible_at <= ?1
                     ORDER BY visible_at, id LIMIT ?2",
                )?;
                stmt.query_map(params![now, max], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut deliveries = Vec::with_capacity(rows.len());
            for (id, body, count) in rows {
                c.prepare_cached(
                    "UPDATE queue SET visible_at = ?2, receive_count = receive_count + 1
                     WHERE id = ?1",
                )?
                .execute(params![id, now + visibility_ms])?;
                deliveries.push(Delivery {
                    id,
                    receive_count: count + 1,
                    envelope: serde_json::from_str(&body)?,
                });
            }
            Ok(Received {
                deliveries,
                next_visible_at: next_visible_at(c)?,
            })
        })
        .await
    }

    /// Deletes a processed message (only if not received again since).
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn ack(&self, delivery: &Delivery) -> Result<()> {
        let (id, count) = (delivery.id, delivery.receive_count);
        self.write_relaxed(move |c| {
            c.prepare_cached("DELETE FROM queue WHERE id = ?1 AND receive_count = ?2")?
                .execute(params![id, count])?;
            Ok(())
        })
        .await
    }

    /// Makes a message visible again at `at`, recording why it was not processed.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn retry_at(
        &self,
        delivery: &Delivery,
        at: i64,
        error: Option<String>,
    ) -> Result<()> {
        let id = delivery.id;
        self.write_relaxed(move |c| {
            c.prepare_cached(
                "UPDATE queue SET visible_at = ?2, last_error = COALESCE(?3,
             last_error) WHERE id = ?1",
            )?
            .execute(params![id, at, error])?;
            Ok(())
        })
        .await
    }

    /// Puts a message back to be delivered at `at` without counting this
    /// delivery (the run was busy elsewhere: not the message's fault).
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn defer(&self, delivery: &Delivery, at: i64) -> Result<()> {
        let id = delivery.id;
        self.write_relaxed(move |c| {
            c.prepare_cached(
                "UPDATE queue SET visible_at = ?2, receive_count = MAX(receive_count
             - 1, 0) WHERE id = ?1",
            )?
            .execute(params![id, at])?;
            Ok(())
        })
        .await
    }

    /// Moves a message to the dead-letter state (kept for `redrive`).
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn dead_letter(&self, delivery: &Delivery, error: String) -> Result<()> {
        let id = delivery.id;
        self.write(move |c| {
            c.prepare_cached("UPDATE queue SET dead = 1, last_error = ?2 WHERE id = ?1")?
                .execute(params![id, error])?;
            Ok(())
        })
        .await
    }

    /// Puts every dead-lettered message back on its queue; returns how many.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn redrive(&self, now: i64) -> Result<usize> {
        let n = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE queue SET dead = 0, receive_count = 0, visible_at = ?1
             WHERE dead = 1",
                )?
                .execute([now])?)
            })
            .await?;
        self.notify.notify_waiters();
        Ok(n)
    }

    /// Dead-lettered messages with their last error.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn dead_letters(&self) -> Result<Vec<(Delivery, Option<String>)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, body, receive_count, last_error FROM queue WHERE dead =
             1 ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, body, receive_count, error) = row?;
                out.push((
                    Delivery {
                        id,
                        receive_count,
                        envelope: serde_json::from_str(&body)?,
                    },
                    error,
                ));
            }
            Ok(out)
        })
        .await
    }

    /// When the next message becomes visible, if any is pending.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn next_visible_at(&self) -> Result<Option<i64>> {
        self.read(next_visible_at).await
    }

    /// Messages waiting (visible or scheduled), per queue.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn depth(&self) -> Result<Vec<(Target, u64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT target, COUNT(*) FROM queue WHERE dead = 0 GROUP BY target",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (name, n) = row?;
                if let Some(target) = Target::from_queue_name(&name) {
                    out.push((target, u64::try_from(n).unwrap_or(0)));
                }
            }
            Ok(out)
        })
        .await
    }

    /// After a restart of the only process using this file: makes messages that
    /// were in flight visible now and frees run leases, so nothing waits for a
    /// visibility timeout or lease held by the dead process.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn recover(&self, now: i64) -> Result<usize> {
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE queue SET visible_at = ?1 WHERE dead = 0 AND receive_count >
             0 AND visible_at > ?1",
                )?
                .execute([now])?;
            c.prepare_cached(
                "UPDATE runs SET lease_token = NULL, lease_until = 0
             WHERE lease_token IS NOT NULL",
            )?
            .execute([])?;
            Ok(n)
        })
        .await
    }
}

#[cfg(feature = "testing")]
impl hookflow::testkit::QueueProbe for SqliteStore {
    async fn take_due(&self, now: i64) -> hookflow::Result<Vec<Envelope>> {
        let mut out = Vec::new();
        for delivery in self.receive(now, 1000, 60_000).await? {
            self.ack(&delivery).await?;
            out.push(delivery.envelope);
        }
        Ok(out)
    }

    async fn next_due(&self) -> hookflow::Result<Option<i64>> {
        Ok(self.next_visible_at().await?)
    }
}
