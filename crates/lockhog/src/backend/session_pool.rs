//! The connection bookkeeping of the two SQL session-lock backends (Postgres advisory locks,
//! MySQL/MariaDB named locks), whose locks belong to the server session that took them:
//!
//! - a small shared set of **session connections** that carries uncontended locks, opened as
//!   needed up to a maximum, the least busy one picked for each request;
//! - an idle pool of **waiter connections**, each blocked in the server's own lock wait for
//!   one waiter, and the slots that bound how many wait (or hold what they waited for) at once;
//! - opening a connection within the connect timeout, and the URL's connection counts.
//!
//! What differs between the backends — what a connection is and how one is opened — is the
//! [`Connect`] and [`Pooled`] implementations.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::AcquireContext;
use crate::error::{Error, Result};
use crate::url::BackendUrl;

/// Idle waiter connections kept for reuse.
const MAX_IDLE_WAITERS: usize = 4;

/// One connection to the server, as the pool sees it.
pub(crate) trait Pooled: Send + Sync {
    /// True once the connection has ended.
    fn is_dead(&self) -> bool;

    /// Requests in flight (or queued) on this connection: how session connections are picked.
    fn load(&self) -> usize;
}

/// How a backend opens its connections.
pub(crate) trait Connect: Send + Sync {
    type Conn: Pooled;

    /// What debug messages call a session connection.
    const SESSION: &'static str;

    /// Opens one connection within the connect timeout and `deadline`: `Ok(None)` when the
    /// deadline passed first.
    fn connect(
        &self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Option<Arc<Self::Conn>>>> + Send;
}

/// The shared session connections and the idle waiter connections of one backend.
pub(crate) struct SessionPool<K: Connect> {
    pub connector: K,
    sessions: Mutex<Vec<Arc<K::Conn>>>,
    max_sessions: usize,
    opening: tokio::sync::Mutex<()>,
    idle_waiters: Mutex<Vec<Arc<K::Conn>>>,
    /// Bounds the connections blocked in the server's lock wait (or holding a lock taken that
    /// way).
    waiter_slots: Arc<Semaphore>,
}

/// A waiter connection checked out of the pool, with its slot.
pub(crate) struct Waiter<C> {
    pub conn: Arc<C>,
    pub slot: OwnedSemaphorePermit,
}

/// What getting a waiter connection came to.
pub(crate) enum Checkout<C, A, P> {
    /// A waiter connection of its own, and the in-process permit to wait with.
    Ready(Waiter<C>, P),
    /// A poll on a session connection got the lock meanwhile.
    Acquired(A),
    /// The deadline passed first.
    TimedOut,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K: Connect> SessionPool<K> {
    /// A pool around `first`, the connection that connecting opened.
    pub fn new(connector: K, first: Arc<K::Conn>, max_sessions: usize, max_waiters: usize) -> Self {
        SessionPool {
            connector,
            sessions: Mutex::new(vec![first]),
            max_sessions: max_sessions.max(1),
            opening: tokio::sync::Mutex::new(()),
            idle_waiters: Mutex::new(Vec::new()),
            waiter_slots: Arc::new(Semaphore::new(max_waiters.max(1))),
        }
    }

    /// Live session connections.
    pub fn sessions(&self) -> Vec<Arc<K::Conn>> {
        let mut s = lock(&self.sessions);
        s.retain(|c| !c.is_dead());
        s.clone()
    }

    /// The least busy live session connection, opening another (up to the maximum) when every
    /// one is busy.
    pub async fn session(&self) -> Result<Arc<K::Conn>> {
        loop {
            // Picked under the lock, without copying the list: this runs on every acquire.
            let (best, live) = {
                let mut s = lock(&self.sessions);
                s.retain(|c| !c.is_dead());
                (s.iter().min_by_key(|c| c.load()).cloned(), s.len())
            };
            if let Some(c) = &best {
                if c.load() == 0 || live >= self.max_sessions {
                    return Ok(c.clone());
                }
            }
            // Open one more; while another task is already opening, use what there is.
            let opening = match (self.opening.try_lock(), &best) {
                (Ok(g), _) => g,
                (Err(_), Some(c)) => return Ok(c.clone()),
                (Err(_), None) => self.opening.lock().await,
            };
            if self.sessions().len() >= self.max_sessions {
                drop(opening);
                continue;
            }
            // Boxed here and below: opening a connection (a TLS handshake, statements to
            // prepare) is a future of tens of kilobytes, which every acquire's future would
            // otherwise carry — and copy when it is boxed — though it rarely opens one.
            let conn = match Box::pin(self.connector.connect(None)).await {
                Ok(Some(c)) => c,
                Ok(None) => unreachable!("no deadline"),
                Err(e) => match best {
                    // A busy server that refuses one more connection is no reason to fail.
                    Some(c) => {
                        tracing::debug!("cannot open another {}: {e}", K::SESSION);
                        return Ok(c);
                    }
                    None => return Err(e),
                },
            };
            lock(&self.sessions).push(conn.clone());
            return Ok(conn);
        }
    }

    /// A waiter connection of its own for a wait in the server: a free waiter slot, then an
    /// idle connection or a new one. While every slot is taken, `poll` (one try on a session
    /// connection, which gives the in-process `permit` back when the lock is held elsewhere)
    /// runs on the request's retry policy meanwhile.
    pub async fn waiter<A, P, F, Fut>(
        &self,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
        permit: P,
        mut poll: F,
    ) -> Result<Checkout<K::Conn, A, P>>
    where
        F: FnMut(P) -> Fut,
        Fut: Future<Output = Result<std::result::Result<A, P>>>,
    {
        let mut permit = permit;
        let mut attempt = 0u32;
        let slot = loop {
            if let Ok(slot) = self.waiter_slots.clone().try_acquire_owned() {
                break slot;
            }
            attempt = attempt.saturating_add(1);
            let mut wake = Instant::now() + ctx.options.retry.delay(attempt);
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Ok(Checkout::TimedOut);
                }
                wake = wake.min(d);
            }
            tokio::select! {
                slot = self.waiter_slots.clone().acquire_owned() => {
                    break slot.expect("the slots are never closed");
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            ctx.note_attempt();
            permit = match poll(permit).await? {
                Ok(acquired) => return Ok(Checkout::Acquired(acquired)),
                Err(p) => p,
            };
        };
        let idle = {
            let mut idle = lock(&self.idle_waiters);
            idle.retain(|c| !c.is_dead());
            idle.pop()
        };
        let conn = match idle {
            Some(c) => c,
            None => match Box::pin(self.connector.connect(deadline)).await? {
                Some(c) => c,
                None => return Ok(Checkout::TimedOut),
            },
        };
        Ok(Checkout::Ready(Waiter { conn, slot }, permit))
    }

    /// Takes back a waiter connection that holds no lock, or closes it when enough are idle.
    pub fn return_waiter(&self, conn: Arc<K::Conn>) {
        if conn.is_dead() {
            return;
        }
        let mut idle = lock(&self.idle_waiters);
        if idle.len() < MAX_IDLE_WAITERS {
            idle.push(conn);
        }
    }
}

/// `open` bounded by `connect_timeout` and by `deadline`: `Ok(None)` when the deadline passed
/// first, an error naming the connect timeout when that did.
pub(crate) async fn open_within<T>(
    scheme: &'static str,
    redacted: &str,
    connect_timeout: Duration,
    deadline: Option<Instant>,
    open: impl Future<Output = Result<T>>,
) -> Result<Option<T>> {
    let bound = Instant::now() + connect_timeout;
    let until = deadline.map_or(bound, |d| d.min(bound));
    match tokio::time::timeout_at(until, open).await {
        Ok(r) => r.map(Some),
        Err(_) if deadline.is_some_and(|d| d <= bound) => Ok(None),
        Err(_) => Err(Error::backend(
            scheme,
            format!(
                "cannot connect to {redacted}: no answer within {connect_timeout:?} \
                 (connect_timeout)"
            ),
        )),
    }
}

/// The URL's `key=N` (a number of connections, from 1 to 10000), or `default`.
pub(crate) fn count_option(url: &mut BackendUrl, key: &str, default: usize) -> Result<usize> {
    match url.take_option(key) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(url.invalid(&format!("{key} is a number from 1 to 10000"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::{Connect, Pooled, SessionPool};
    use crate::error::Result;

    struct Conn;

    impl Pooled for Conn {
        fn is_dead(&self) -> bool {
            false
        }
        fn load(&self) -> usize {
            0
        }
    }

    /// Opens connections with a future as large as a real one (a TLS handshake, statements
    /// to prepare): 64 KiB kept across an await.
    struct Large;

    impl Connect for Large {
        type Conn = Conn;
        const SESSION: &'static str = "test connection";

        async fn connect(&self, _deadline: Option<Instant>) -> Result<Option<Arc<Conn>>> {
            let state = [1u8; 64 * 1024];
            tokio::task::yield_now().await;
            std::hint::black_box(&state);
            Ok(Some(Arc::new(Conn)))
        }
    }

    /// Picking a session is part of every acquire's future, which the erased backend boxes
    /// (copies) on every acquire: it must not carry the connect future inline.
    #[test]
    fn picking_a_session_does_not_carry_the_connect_future() {
        let pool = SessionPool::new(Large, Arc::new(Conn), 4, 4);
        let pick = pool.session();
        let size = std::mem::size_of_val(&pick);
        assert!(size < 4096, "the session() future is {size} bytes");
    }
}
