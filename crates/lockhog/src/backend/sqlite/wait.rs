//! Waiting for a lock: polling with the request's retry policy, woken early by releases of
//! this process, and the fair queue's ticket kept alive while waiting.

use std::time::Duration;

use tokio::time::Instant;

use super::acquire::{self, Outcome, Queue, Row, Ticket};
use super::{SqliteBackend, SqliteHeld, TICKET_TTL};
use crate::backend::{AcquireContext, Acquired};
use crate::error::Result;
use crate::name::LockKey;

impl SqliteBackend {
    /// [`Backend::wait_acquire`](crate::backend::Backend::wait_acquire) for SQLite.
    ///
    /// # Cancel safety
    ///
    /// Dropped at any await point, it holds nothing: an attempt in flight gives back what it
    /// took, and our queue ticket leaves the queue, both in the background.
    pub(super) async fn wait(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<SqliteHeld>>> {
        // A fair waiter queues from the start; a writer once it finds readers holding the
        // lock, so that later readers wait for it (see `readers.rs`).
        let mut queues = ctx.options.fair;
        // Our place in the fair queue; dropped (the acquire was cancelled or failed), it
        // leaves the queue in the background.
        let mut ticket: Option<Ticket> = None;
        let mut attempt = 0u32;
        loop {
            // Registered before the attempt, so a release during it is not missed.
            let released = self.db.released().notified();
            tokio::pin!(released);
            released.as_mut().enable();
            ctx.note_attempt();
            attempt = attempt.saturating_add(1);
            let queue = match (&ticket, queues) {
                (_, false) => Queue::Outside,
                (None, true) => Queue::Join {
                    ticket_ttl: TICKET_TTL,
                },
                (Some(t), true) => Queue::Ticket {
                    id: t.id,
                    ticket_ttl: TICKET_TTL,
                },
            };
            let holder_left = match self.attempt(key, ctx, queue).await {
                Ok((started, Outcome::Acquired { claim, token })) => {
                    // The acquiring transaction removed our ticket.
                    if let Some(mut t) = ticket.take() {
                        t.disarm();
                    }
                    return Ok(Some(self.held(claim, token, started, ctx)));
                }
                Ok((
                    _,
                    Outcome::Busy {
                        new_ticket,
                        holder_left,
                        readers,
                    },
                )) => {
                    queues |= readers;
                    if let Some(new) = new_ticket {
                        // A previous ticket, if any, ran out and is gone already.
                        if let Some(mut old) = ticket.replace(new) {
                            old.disarm();
                        }
                    }
                    holder_left
                }
                Err(f) if f.busy => {
                    tracing::debug!(error = %f.error, "database busy; trying again");
                    None
                }
                Err(f) => return Err(f.into()),
            };
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                if let Some(t) = ticket.take() {
                    self.leave(t, key).await;
                }
                return Ok(None);
            }
            let mut pause = ctx.options.retry.delay(attempt);
            if let Some(left) = holder_left {
                // One millisecond past the holder's expiry.
                pause = pause.min(left + Duration::from_millis(1));
            }
            if queues {
                pause = pause.min(TICKET_TTL / 5);
            }
            let mut wake = now + pause;
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            tokio::select! {
                _ = released => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Leaves the fair queue now (rather than in the background), so a waiter that gave up
    /// is gone from the queue when its acquire returns.
    async fn leave(&self, mut ticket: Ticket, key: &LockKey) {
        ticket.disarm();
        let (row, id) = (Row::of(key), ticket.id);
        if let Err(f) = self
            .db
            .call_write("leaving the queue in", move |c| {
                acquire::leave_queue(c, &row, id)
            })
            .await
        {
            tracing::debug!(error = %f.error, "leaving the queue failed; the ticket will run out");
        }
        self.db.notify_released();
    }
}
