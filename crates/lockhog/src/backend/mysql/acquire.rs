//! Taking a lock: one try on a shared session connection, then a wait blocked in
//! `GET_LOCK(?, timeout)` on a waiter connection of its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::session::{Cmd, Failure, LockCmd, LockReply, Session, Timeout};
use super::{HeldInner, LocalKey, MysqlBackend, MysqlHeld, NameTicket, Permit, LOCAL, SCHEME};
use crate::backend::session_pool::{Checkout, Waiter};
use crate::backend::{AcquireContext, Acquired};
use crate::error::{Error, Result};
use crate::name::LockKey;

/// How long past its bound a wait may go before lockhog gives up on it itself, should the
/// server's `GET_LOCK` timeout not answer (a server that stopped answering).
const BACKSTOP: Duration = Duration::from_millis(500);

/// What a lock command came to.
enum Outcome {
    Got(Acquired<MysqlHeld>),
    Busy(Permit),
    /// The connection died before or while running the command; the permit is gone.
    Dead(String),
}

/// Whether an acquire draws a fencing token: a named lock whose request did not opt out.
fn fenced(key: &LockKey, ctx: &AcquireContext) -> bool {
    ctx.options.fencing && key.foreign_resource().is_none()
}

impl MysqlBackend {
    fn failed(&self, doing: &str, message: &str) -> Error {
        let c = &self.pool.connector;
        Error::backend(
            SCHEME,
            format!("{doing} ({}): {}", c.redacted, c.scrub(message.to_string())),
        )
    }

    /// Sends a lock command to `session` and waits for its answer.
    async fn lock_on(
        &self,
        key: &LockKey,
        id: &LocalKey,
        session: &Arc<Session>,
        waiter_slot: Option<OwnedSemaphorePermit>,
        cmd: impl FnOnce(oneshot::Sender<std::result::Result<LockReply, Failure>>) -> LockCmd,
    ) -> Result<std::result::Result<Outcome, (Permit, Option<OwnedSemaphorePermit>)>> {
        let (reply, rx) = oneshot::channel();
        if let Err(Cmd::Lock(c)) = session.send(Cmd::Lock(cmd(reply))) {
            return Ok(Err((c.permit, waiter_slot))); // never ran: try elsewhere
        }
        let outcome = match rx.await {
            Ok(Ok(LockReply::Got(claim))) => {
                // An unfenced command (a foreign lock, whose other holders lockhog's counter
                // does not number, or a request that opted out) drew no token: 0. A drawn
                // one is always above 0.
                let token = (claim.token > 0).then_some(claim.token);
                let (registration, permit) = claim.take();
                Outcome::Got(Acquired {
                    held: MysqlHeld {
                        inner: Some(HeldInner {
                            pool: self.pool.clone(),
                            session: session.clone(),
                            waiter_slot,
                            lock: id.1.clone(),
                            registration,
                            name: NameTicket::new(id, key),
                            permit,
                        }),
                    },
                    token,
                })
            }
            Ok(Ok(LockReply::Busy(permit))) => Outcome::Busy(permit),
            Ok(Err(Failure::Server(m))) => return Err(self.failed("cannot lock", &m)),
            Ok(Err(Failure::Dead(m))) => Outcome::Dead(m),
            Err(_) => Outcome::Dead("the connection has closed".into()),
        };
        Ok(Ok(outcome))
    }

    /// One `GET_LOCK(?, 0)` on a session connection, with the in-process permit held. The
    /// permit comes back when someone else holds the lock. A connection found dead is
    /// replaced once.
    pub(super) async fn try_on_session(
        &self,
        key: &LockKey,
        id: &LocalKey,
        permit: Permit,
        ctx: &AcquireContext,
    ) -> Result<std::result::Result<Acquired<MysqlHeld>, Permit>> {
        let mut permit = Some(permit);
        let mut last = String::new();
        for _ in 0..3 {
            let p = match permit.take() {
                Some(p) => p,
                // The dead connection took the permit with it: take it again, without waiting.
                None => match LOCAL.try_acquire(id) {
                    Some(p) => p,
                    None => return Err(self.failed("cannot lock", &last)),
                },
            };
            let session = self.pool.session().await?;
            let lost = ctx.lost.clone();
            let fenced = fenced(key, ctx);
            let sent = self
                .lock_on(key, id, &session, None, |reply| LockCmd {
                    lock: id.1.clone(),
                    timeout: Timeout::Try,
                    permit: p,
                    lost,
                    fenced,
                    close_if_abandoned: false,
                    reply,
                })
                .await?;
            match sent {
                Ok(Outcome::Got(a)) => return Ok(Ok(a)),
                Ok(Outcome::Busy(p)) => return Ok(Err(p)),
                Ok(Outcome::Dead(m)) => last = m,
                Err((p, _)) => {
                    permit = Some(p);
                    last = "the connection has closed".into();
                }
            }
        }
        Err(self.failed("cannot lock", &last))
    }

    /// Blocks in `GET_LOCK(?, timeout)` on a waiter connection until `deadline`.
    pub(super) async fn wait_on_server(
        &self,
        key: &LockKey,
        id: &LocalKey,
        permit: Permit,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<MysqlHeld>>> {
        let poll = |permit| self.try_on_session(key, id, permit, ctx);
        let (session, slot, permit) = match self.pool.waiter(ctx, deadline, permit, poll).await? {
            Checkout::Ready(Waiter { conn, slot }, permit) => (conn, slot, permit),
            Checkout::Acquired(acquired) => return Ok(Some(acquired)),
            Checkout::TimedOut => return Ok(None),
        };
        ctx.note_attempt();
        let timeout = match deadline {
            // Whole milliseconds, rounded up: the server never gives up before the bound.
            Some(d) => Timeout::For(Duration::from_millis(
                (d.saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000) as u64)
                    .max(1),
            )),
            None => Timeout::Forever,
        };
        let mut guard = KillOnDrop {
            backend: self,
            session: Some(session.clone()),
        };
        let lost = ctx.lost.clone();
        let fenced = fenced(key, ctx);
        let wait = self.lock_on(key, id, &session, Some(slot), |reply| LockCmd {
            lock: id.1.clone(),
            timeout,
            permit,
            lost,
            fenced,
            close_if_abandoned: true,
            reply,
        });
        let outcome = match deadline {
            None => wait.await,
            Some(d) => match tokio::time::timeout_at(d + BACKSTOP, wait).await {
                Ok(o) => o,
                Err(_) => return Ok(None), // the guard ends the wait
            },
        };
        guard.session = None;
        match outcome {
            Ok(Ok(Outcome::Got(acquired))) => Ok(Some(acquired)),
            Ok(Ok(Outcome::Busy(_))) => {
                // The wait ran out; the connection holds nothing and can wait again.
                self.pool.return_waiter(session);
                Ok(None)
            }
            Ok(Ok(Outcome::Dead(m))) => Err(self.failed("cannot wait for the lock", &m)),
            Ok(Err(_)) => Err(self.failed("cannot wait for the lock", "the connection has closed")),
            Err(e) => Err(e),
        }
    }
}

/// While a wait runs on its waiter connection: dropped before the answer came (the acquire
/// was dropped, or the server did not answer in time), it has the server end that
/// connection, so the wait stops and whatever the session might hold is freed. The
/// connection's task then gives up the in-process permit.
struct KillOnDrop<'a> {
    backend: &'a MysqlBackend,
    session: Option<Arc<Session>>,
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.session.take() else {
            return;
        };
        let Ok(handle) = Handle::try_current() else {
            return; // the connection's task finishes the wait and closes it
        };
        let pool = self.backend.pool.clone();
        drop(handle.spawn(async move {
            let killed = match pool.session().await {
                Ok(s) => s
                    .rows(format!("KILL CONNECTION {}", waiter.id), None)
                    .await
                    .map(drop)
                    .map_err(|f| f.message().to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = killed {
                // "Unknown thread id": the wait had already ended and closed.
                tracing::debug!("mysql: cannot end a cancelled wait: {e}");
            }
        }));
    }
}
