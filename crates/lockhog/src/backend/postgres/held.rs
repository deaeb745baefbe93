//! A held lock: its lost notice (registered on the session that holds it), its release, and
//! what a release dropped half-way leaves to do.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::OwnedSemaphorePermit;

use super::acquire::Request;
use super::key::Advisory;
use super::local::{NameTicket, Permit};
use super::pool::{Conn, Pool};
use super::{after_first_poll, Param, PostgresBackend, SCHEME};
use crate::backend::Acquired;
use crate::error::{Error, Result};

/// A held advisory lock: the session that holds it, the in-process permit, and the runtime
/// to release it on when the guard is dropped.
pub struct PostgresHeld {
    inner: Option<HeldInner>,
}

impl std::fmt::Debug for PostgresHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("PostgresHeld");
        if let Some(i) = &self.inner {
            d.field("key", &i.key)
                .field("shared", &i.shared)
                .field("pid", &i.conn.pid);
        }
        d.finish()
    }
}

struct HeldInner {
    pool: Arc<Pool>,
    conn: Arc<Conn>,
    /// `Some` when the lock is held on a waiter connection of its own.
    waiter_slot: Option<OwnedSemaphorePermit>,
    key: Advisory,
    shared: bool,
    registration: u64,
    handle: Handle,
    // Dropped last: nobody else in this process takes the key before the unlock is done.
    _name: NameTicket,
    _permit: Permit,
}

impl Drop for PostgresHeld {
    fn drop(&mut self) {
        // On a runtime that is shutting down the task is dropped: then its connections close
        // too, which frees the lock.
        drop(Releasing {
            slot: self.inner.take(),
            sent: false,
        });
    }
}

impl PostgresBackend {
    /// The lock of `req` is held on `conn`: registers its lost notice and its name, and turns
    /// the fencing sequence's value into its token (none for a foreign resource: lockhog's
    /// sequence does not number the other program's holders; none when the request opted
    /// out, whose statement skipped the sequence).
    pub(super) fn held(
        &self,
        req: &Request<'_>,
        conn: Arc<Conn>,
        waiter_slot: Option<OwnedSemaphorePermit>,
        permit: Permit,
        token: Option<i64>,
    ) -> Result<Acquired<PostgresHeld>> {
        let Request {
            lock, key, shared, ..
        } = *req;
        let registration = conn.register(req.lost.clone());
        let held = PostgresHeld {
            inner: Some(HeldInner {
                pool: self.pool.clone(),
                conn,
                waiter_slot,
                key,
                shared,
                registration,
                handle: Handle::current(),
                _name: NameTicket::new(&self.local_key(key), lock),
                _permit: permit,
            }),
        };
        if !req.fenced {
            return Ok(Acquired { held, token: None });
        }
        // Dropping `held` on an error path releases the lock.
        let token = token
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .ok_or_else(|| {
                Error::backend(
                    SCHEME,
                    format!(
                        "the fencing sequence {} gave no positive value",
                        super::fencing::NAME
                    ),
                )
            })?;
        Ok(Acquired {
            held,
            token: Some(token),
        })
    }
}

/// Releases `held`: what `release` of the backend does.
pub(super) async fn release(mut held: PostgresHeld) -> Result<bool> {
    let mut releasing = Releasing {
        slot: held.inner.take(),
        sent: false,
    };
    release_in(&mut releasing.slot, &mut releasing.sent).await
}

/// Releases the lock in `slot`, taking it out once done. `sent` turns true once the unlock
/// is on its way to the server, so that a [`Releasing`] dropped half-way knows what is left.
async fn release_in(slot: &mut Option<HeldInner>, sent: &mut bool) -> Result<bool> {
    let Some(inner) = slot.as_ref() else {
        return Ok(false);
    };
    if !inner.conn.unregister(inner.registration) {
        slot.take();
        return Ok(false); // the session ended, and the lock with it
    }
    let conn = inner.conn.clone();
    let packed = inner.key.packed();
    let key: [Param; 1] = [&packed];
    let unlock = &conn.stmts.of(inner.key).unlock[inner.shared as usize];
    let outcome = {
        let _busy = conn.busy();
        if inner.waiter_slot.is_none() {
            after_first_poll(conn.client.query_one(unlock, &key), || *sent = true).await
        } else {
            let both = async {
                tokio::join!(
                    conn.client.query_one(unlock, &key),
                    conn.client.query(&conn.stmts.unlock_all, &[]),
                )
            };
            let (one, all) = after_first_poll(both, || *sent = true).await;
            all.and(one)
        }
    };
    let mut inner = slot.take().expect("still there");
    match outcome {
        Ok(row) => {
            let ours: bool = row.get(0);
            if let Some(slot) = inner.waiter_slot.take() {
                inner.pool.return_waiter(conn.clone());
                drop(slot);
            }
            Ok(ours)
        }
        Err(e) if e.is_closed() => Ok(false),
        Err(e) => Err(inner.pool.connector.error("cannot release", e)),
    }
}

/// A release under way. Dropped before its unlock was sent, it sends it from a task;
/// dropped after, it waits (in a task) for the server to have run it — the next request on
/// the session answers after it — and only then lets go of the in-process permit. An unlock
/// is never sent twice: that could take a shared lock from another guard on the session.
struct Releasing {
    slot: Option<HeldInner>,
    sent: bool,
}

impl Drop for Releasing {
    fn drop(&mut self) {
        let Some(inner) = self.slot.take() else {
            return;
        };
        let handle = inner.handle.clone();
        if self.sent {
            drop(handle.spawn(async move {
                let _ = inner.conn.client.batch_execute("").await;
                // A waiter connection is closed rather than reused: whether its
                // pg_advisory_unlock_all() ran is not known here.
                drop(inner);
            }));
        } else {
            drop(handle.spawn(async move {
                let (mut slot, mut sent) = (Some(inner), false);
                if let Err(e) = release_in(&mut slot, &mut sent).await {
                    tracing::warn!("postgres: release after drop failed: {e}");
                }
            }));
        }
    }
}
