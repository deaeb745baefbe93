//! Acquiring: one `pg_try_advisory_lock` on a shared session connection, and the wait that
//! blocks in `pg_advisory_lock` on a waiter connection of its own; with what a try or a wait
//! dropped half-way leaves to undo ("Connections" in the [module docs](super)).

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;

use super::held::PostgresHeld;
use super::key::Advisory;
use super::local::Permit;
use super::pool::{Conn, Pool, Waiter};
use super::{after_first_poll, Param, PostgresBackend};
use crate::backend::session_pool::Checkout;
use crate::backend::LostSender;
use crate::backend::{AcquireContext, Acquired};
use crate::error::Result;
use crate::name::LockKey;

/// How long past its bound a wait may go before lockhog cancels it itself, should the
/// server's `lock_timeout` not answer (a server that stopped answering).
const BACKSTOP: Duration = Duration::from_millis(500);

/// One acquire's lock, key, mode and lost notice.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) lock: &'a LockKey,
    pub(super) key: Advisory,
    pub(super) shared: bool,
    /// Draw a fencing token: a named lock whose request did not opt out.
    pub(super) fenced: bool,
    pub(super) lost: &'a LostSender,
}

impl<'a> Request<'a> {
    pub(super) fn new(lock: &'a LockKey, ctx: &'a AcquireContext) -> Self {
        Request {
            lock,
            key: Advisory::of(lock),
            shared: ctx.options.shared,
            fenced: ctx.options.fencing && lock.foreign_resource().is_none(),
            lost: &ctx.lost,
        }
    }
}

/// A try on a session connection whose outcome is not known yet. Dropped before the answer
/// came (the acquire future was dropped), it sends an unlock after the attempt on the same
/// connection — harmless when the attempt failed — and only then gives up the permit.
struct Attempt {
    conn: Arc<Conn>,
    key: Advisory,
    shared: bool,
    permit: Option<Permit>,
    sent: bool,
    handle: Handle,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        if !self.sent {
            return;
        }
        // The attempt was sent. When it failed, this session holds the key in no mode that an
        // unlock could take from someone else: an exclusive attempt held every permit of the
        // key, and a shared attempt only fails while nobody on this session holds it shared.
        let (conn, key, shared) = (self.conn.clone(), self.key, self.shared);
        drop(self.handle.spawn(async move {
            let _ = conn
                .client
                .query_one(
                    &conn.stmts.of(key).unlock[shared as usize],
                    &[&key.packed()],
                )
                .await;
            drop(permit);
        }));
    }
}

/// A wait on a waiter connection. Dropped while the wait may still run, it cancels the
/// server's wait, unlocks everything the session may hold, closes the connection, and only
/// then gives up the permit. Dropped after the wait ended without the lock, it unlocks
/// wholesale (a `lock_timeout` can lose a race with the grant) and returns the connection.
struct WaitGuard {
    pool: Arc<Pool>,
    waiter: Option<Waiter>,
    permit: Option<Permit>,
    running: bool,
    handle: Handle,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let (Some(w), Some(permit)) = (self.waiter.take(), self.permit.take()) else {
            return;
        };
        let (pool, running) = (self.pool.clone(), self.running);
        drop(self.handle.spawn(async move {
            if running
                && w.conn
                    .client
                    .cancel_token()
                    .cancel_query(pool.connector.tls.clone())
                    .await
                    .is_err()
            {
                // Closing the session is then the only way to end the wait.
                drop(w);
                drop(permit);
                return;
            }
            let clean = w
                .conn
                .client
                .query(&w.conn.stmts.unlock_all, &[])
                .await
                .is_ok();
            drop(permit);
            // A cancel request may still be on its way to this session: do not reuse it.
            if clean && !running {
                pool.return_waiter(w.conn);
            }
        }));
    }
}

impl PostgresBackend {
    /// One `pg_try_advisory_lock` on a session connection, with the in-process permit held.
    /// The permit comes back when someone else holds the lock.
    pub(super) async fn try_on_session(
        &self,
        req: &Request<'_>,
        permit: Permit,
    ) -> Result<std::result::Result<Acquired<PostgresHeld>, Permit>> {
        let (key, shared) = (req.key, req.shared);
        let conn = self.pool.session().await?;
        let mut attempt = Attempt {
            conn: conn.clone(),
            key,
            shared,
            permit: Some(permit),
            sent: false,
            handle: Handle::current(),
        };
        let row = {
            let _busy = conn.busy();
            let packed = key.packed();
            let params: [Param; 1] = [&packed];
            let query = conn.client.query_one(
                &conn.stmts.of(key).try_lock[req.fenced as usize][shared as usize],
                &params,
            );
            after_first_poll(query, || attempt.sent = true).await
        };
        attempt.sent = false;
        let permit = attempt.permit.take().expect("taken once");
        let token: Option<i64> = match row {
            Ok(row) => row.get(0),
            Err(e) => return Err(self.pool.connector.error("cannot lock", e)),
        };
        match token {
            None => Ok(Err(permit)),
            Some(t) => self.held(req, conn, None, permit, Some(t)).map(Ok),
        }
    }

    /// Blocks in `pg_advisory_lock` on a waiter connection until `deadline`.
    pub(super) async fn wait_on_server(
        &self,
        req: &Request<'_>,
        permit: Permit,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<PostgresHeld>>> {
        let (key, shared) = (req.key, req.shared);
        let poll = |permit| self.try_on_session(req, permit);
        let (waiter, permit) = match self.pool.waiter(ctx, deadline, permit, poll).await? {
            Checkout::Ready(waiter, permit) => (waiter, permit),
            Checkout::Acquired(acquired) => return Ok(Some(acquired)),
            Checkout::TimedOut => return Ok(None),
        };
        ctx.note_attempt();
        let conn = waiter.conn.clone();
        let mut guard = WaitGuard {
            pool: self.pool.clone(),
            waiter: Some(waiter),
            permit: Some(permit),
            running: false,
            handle: Handle::current(),
        };
        let timeout = match deadline {
            // Whole milliseconds, rounded up: the server never gives up before the bound.
            Some(d) => format!(
                "{}ms",
                d.saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000)
                    .max(1)
            ),
            None => "0".to_string(),
        };
        let both = async {
            let packed = key.packed();
            let (timeout, params): ([Param; 1], [Param; 1]) = ([&timeout], [&packed]);
            tokio::join!(
                conn.client
                    .query_one(&conn.stmts.set_lock_timeout, &timeout),
                conn.client.query_one(
                    &conn.stmts.of(key).lock[req.fenced as usize][shared as usize],
                    &params
                ),
            )
        };
        let both = after_first_poll(both, || guard.running = true);
        let outcome = match deadline {
            None => Ok(both.await),
            Some(d) => tokio::time::timeout_at(d + BACKSTOP, both).await,
        };
        let (set, locked) = match outcome {
            Ok(pair) => pair,
            Err(_) => return Ok(None), // the guard cancels the wait
        };
        guard.running = false;
        let row = match set.and(locked) {
            Ok(row) => row,
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                return Ok(None); // the guard unlocks wholesale and returns the connection
            }
            Err(e) => {
                guard.running = !e.is_closed();
                return Err(self.pool.connector.error("cannot wait for the lock", e));
            }
        };
        let waiter = guard.waiter.take().expect("taken once");
        let permit = guard.permit.take().expect("taken once");
        let Waiter { conn, slot } = waiter;
        self.held(req, conn, Some(slot), permit, row.get(0))
            .map(Some)
    }
}
