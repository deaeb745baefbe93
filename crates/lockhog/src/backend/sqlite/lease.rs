//! The lease of a lock row, renewed by the shared renewal task of
//! [`backend::lease`](crate::backend::lease): every ttl/3, a compare-and-extend `UPDATE` that
//! only moves the expiry of a row that still carries our owner value.
//!
//! The renewals of one process on one file are committed together: each one queues, and the
//! first to find the queue empty starts a flush that takes everything queued by the time it
//! gets its turn to write, in one transaction (one sync to disk for all of them). A process
//! holding many locks renews each every ttl/3; one commit per renewal would need more syncs a
//! second than a disk gives, the renewals would fall behind and the leases run out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::TransactionBehavior;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::acquire::{renew, Row};
use super::db::{Db, SCHEME};
use crate::backend::lease::Lease;
use crate::error::{Error, Result};

/// The most renewals one transaction commits: a long queue is flushed in several, so that an
/// acquire of this process waits for the write turn no longer than a few milliseconds.
const BATCH: usize = 512;

/// One lock row's lease.
pub(super) struct RowLease {
    pub(super) db: Arc<Db>,
    pub(super) row: Row,
    pub(super) owner: String,
    pub(super) ttl: Duration,
}

impl Lease for RowLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        // Counted from before the write: the row's new expiry is at least this late.
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            row: self.row.clone(),
            owner: self.owner.clone(),
            ttl: self.ttl,
            reply,
        };
        if self.db.renewals().push(ask) {
            // On its own task: a renewal stopped half-way (its guard released) must not leave
            // the others queued with nobody to flush them.
            tokio::spawn(flush(self.db.clone()));
        }
        let ours = answer.await.map_err(|_| {
            Error::backend(
                SCHEME,
                "a lease renewal was dropped before it was committed",
            )
        })??;
        Ok(ours.then(|| started + self.ttl))
    }
}

/// A renewal waiting for the next commit, and where its outcome goes: true when the row was
/// still ours and its expiry moved.
struct Ask {
    row: Row,
    owner: String,
    ttl: Duration,
    reply: oneshot::Sender<Result<bool>>,
}

/// The renewals queued for the next commit on one file (shared by every backend of the
/// process on it).
#[derive(Default)]
pub(super) struct Renewals {
    queued: Mutex<Vec<Ask>>,
}

impl Renewals {
    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Ask>> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `ask`; true when the queue was empty, so the caller starts a flush.
    fn push(&self, ask: Ask) -> bool {
        let mut queued = self.queued();
        queued.push(ask);
        queued.len() == 1
    }

    /// Up to [`BATCH`] of the queued renewals, oldest first.
    fn take(&self) -> Vec<Ask> {
        let mut queued = self.queued();
        let n = queued.len().min(BATCH);
        queued.drain(..n).collect()
    }

    fn is_empty(&self) -> bool {
        self.queued().is_empty()
    }
}

impl std::fmt::Debug for Renewals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewals")
            .field("queued", &self.queued().len())
            .finish()
    }
}

/// Commits the queued renewals, a batch per write transaction, until the queue is empty when
/// a batch is taken. Each renewal hears its own outcome, or the error of the transaction.
async fn flush(db: Arc<Db>) {
    loop {
        let took = Arc::new(AtomicBool::new(false));
        let (took_in, db_in) = (took.clone(), db.clone());
        let outcome = db
            .call_write("renewing leases in", move |c| {
                let batch = db_in.renewals().take();
                took_in.store(true, Ordering::SeqCst);
                if batch.is_empty() {
                    return Ok(());
                }
                let done = (|| -> rusqlite::Result<Vec<bool>> {
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let ours = batch
                        .iter()
                        .map(|a| renew(&tx, &a.row, &a.owner, a.ttl))
                        .collect::<rusqlite::Result<Vec<bool>>>()?;
                    tx.commit()?;
                    Ok(ours)
                })();
                match done {
                    Ok(ours) => {
                        for (ask, ours) in batch.into_iter().zip(ours) {
                            let _ = ask.reply.send(Ok(ours));
                        }
                        Ok(())
                    }
                    Err(e) => {
                        let said = e.to_string();
                        for ask in batch {
                            let _ = ask.reply.send(Err(failed(&said)));
                        }
                        Err(e)
                    }
                }
            })
            .await;
        if let Err(failure) = outcome {
            if !took.load(Ordering::SeqCst) {
                // No connection to run on: this flush's renewals hear why, and later ones
                // start a flush of their own.
                let said = failure.error.to_string();
                loop {
                    let batch = db.renewals().take();
                    if batch.is_empty() {
                        break;
                    }
                    for ask in batch {
                        let _ = ask.reply.send(Err(failed(&said)));
                    }
                }
                return;
            }
        }
        if db.renewals().is_empty() {
            return;
        }
    }
}

fn failed(said: &str) -> Error {
    Error::backend(SCHEME, format!("renewing a lease failed: {said}"))
}
