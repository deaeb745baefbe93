//! One connection to the server, owned by a task of its own (an actor).
//!
//! `GET_LOCK` locks belong to the session, so a connection that holds locks must never be
//! reset, returned to a pool, or left half-way through a statement. Each connection is
//! therefore driven by one task that runs commands in order to completion, whatever happens
//! to whoever sent them:
//!
//! - a lock command whose sender went away (a dropped acquire) is still finished, and a lock
//!   it got is released at once, before the in-process permit it carries is dropped;
//! - a release sent from `Drop` is an unbounded channel send: it never blocks and needs no
//!   runtime handle;
//! - while the connection holds locks it is pinged every `lost_check` (1 s by default), and
//!   every minute when it holds none; a connection that fails marks every guard on it lost
//!   and the task ends, dropping the connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connector::describe;
use super::sql::{self, classify};
use super::Permit;
use crate::backend::session_pool::Pooled;
use crate::backend::LostSender;

/// How often an idle connection that holds no lock is pinged (it keeps the server's
/// `wait_timeout` away and finds dead connections before they are used).
const IDLE_PING: Duration = Duration::from_secs(60);

/// How the fencing token is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fencing {
    /// `NEXTVAL(lockhog_fencing)` inside the lock statement.
    Sequence,
    /// `UPDATE lockhog_fencing … LAST_INSERT_ID(value + 1)` right after the lock.
    Table,
}

/// How long `GET_LOCK` may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timeout {
    Try,
    For(Duration),
    Forever,
}

/// What a lock command answers.
pub(crate) enum LockReply {
    /// Held, with its fencing token.
    Got(Claim),
    /// Someone else holds it (or the wait ran out); the permit comes back.
    Busy(Permit),
}

/// A lock taken for an acquire that has not picked it up yet. Dropped unclaimed (the
/// acquire was dropped between the answer and reading it), it queues the release on its
/// connection, with the permit, so that no lock is ever left held by nobody.
pub(crate) struct Claim {
    pub token: u64,
    held: Option<(Arc<str>, u64, Permit)>,
    me: mpsc::WeakUnboundedSender<Cmd>,
    queued: Arc<AtomicUsize>,
}

impl Claim {
    /// The registration of the lock's lost notice, and the permit: the lock is the caller's.
    pub fn take(mut self) -> (u64, Permit) {
        let (_, registration, permit) = self.held.take().expect("claimed once");
        (registration, permit)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some((lock, registration, permit)) = self.held.take() else {
            return;
        };
        // A connection that has ended holds nothing any more.
        if let Some(tx) = self.me.upgrade() {
            self.queued.fetch_add(1, Ordering::Relaxed);
            let cmd = Cmd::Release {
                lock,
                registration,
                permit,
                reply: None,
                after: None,
            };
            if tx.send(cmd).is_err() {
                self.queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection is gone; nothing it held is held any more.
    Dead(String),
    /// The server refused the statement; the connection lives on.
    Server(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Dead(m) | Failure::Server(m) => m,
        }
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Failure>>;

pub(crate) struct LockCmd {
    pub lock: Arc<str>,
    pub timeout: Timeout,
    pub permit: Permit,
    pub lost: LostSender,
    /// Draw a fencing token (a named lock whose request did not opt out).
    pub fenced: bool,
    /// Close the connection when the sender went away (a waiter's connection: a cancelled
    /// wait may have been interrupted by `KILL`, so the session is not reused).
    pub close_if_abandoned: bool,
    pub reply: Reply<LockReply>,
}

/// Runs after a release, with `true` when the session lives and holds nothing.
pub(crate) type After = Box<dyn FnOnce(bool) + Send>;

pub(crate) enum Cmd {
    Lock(LockCmd),
    Release {
        lock: Arc<str>,
        registration: u64,
        permit: Permit,
        reply: Option<Reply<bool>>,
        after: Option<After>,
    },
    /// Any statement, for status and `KILL`: text protocol without params.
    Rows {
        sql: String,
        params: Option<Params>,
        reply: Reply<Vec<Row>>,
    },
}

/// The handle on one connection's task.
pub(crate) struct Session {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The server's id of this connection (`CONNECTION_ID()`, what `KILL` takes).
    pub id: u32,
    queued: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).finish()
    }
}

impl Pooled for Session {
    /// True once the connection has failed or closed.
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    /// Commands sent and not finished yet: how the least busy connection is picked.
    fn load(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Session {
    /// Starts the task that owns `conn` on the current runtime.
    pub fn spawn(conn: Conn, fencing: Fencing, lost_check: Duration) -> Arc<Session> {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        let id = conn.id();
        let actor = Actor {
            me: tx.downgrade(),
            conn,
            fencing,
            lost_check,
            guards: HashMap::new(),
            next: 0,
            queued: queued.clone(),
            dead: dead.clone(),
        };
        tokio::spawn(actor.run(rx));
        Arc::new(Session {
            tx,
            id,
            queued,
            dead,
        })
    }

    /// Queues `cmd`; gives it back when the task has ended.
    pub fn send(&self, cmd: Cmd) -> Result<(), Cmd> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(cmd).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }

    /// Runs `sql` and waits for its rows.
    pub async fn rows(&self, sql: String, params: Option<Params>) -> Result<Vec<Row>, Failure> {
        let (reply, rx) = oneshot::channel();
        if self.send(Cmd::Rows { sql, params, reply }).is_err() {
            return Err(Failure::Dead("the connection has closed".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(Failure::Dead("the connection has closed".into())))
    }
}

struct Actor {
    /// Its own commands' queue, for claims dropped unclaimed.
    me: mpsc::WeakUnboundedSender<Cmd>,
    conn: Conn,
    fencing: Fencing,
    lost_check: Duration,
    guards: HashMap<u64, LostSender>,
    next: u64,
    queued: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        // The ping is due `every` after the last command or ping. The timer is moved earlier
        // when it must be, and otherwise only when it fires early: re-arming it on every
        // command cost more than the command's own bookkeeping.
        let mut last = Instant::now();
        let timer = tokio::time::sleep_until(last + IDLE_PING);
        tokio::pin!(timer);
        let why = loop {
            let every = if self.guards.is_empty() {
                IDLE_PING
            } else {
                self.lost_check
            };
            let due = last + every;
            if due < timer.deadline() {
                timer.as_mut().reset(due);
            }
            let cmd = tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => cmd,
                    None => break None, // every handle is gone: close quietly
                },
                () = &mut timer => {
                    if Instant::now() < due {
                        timer.as_mut().reset(due);
                        continue;
                    }
                    match self.conn.ping().await {
                        Ok(()) => {
                            last = Instant::now();
                            continue;
                        }
                        Err(e) => {
                            break Some(format!(
                                "the connection to the server failed: {}",
                                describe(&e)
                            ))
                        }
                    }
                }
            };
            let outcome = self.handle(cmd).await;
            last = Instant::now();
            self.queued.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(true) => {}
                Ok(false) => break None,
                Err(why) => break Some(why),
            }
        };
        self.dead.store(true, Ordering::Relaxed);
        rx.close();
        if let Some(why) = why {
            if !self.guards.is_empty() {
                tracing::warn!(locks = self.guards.len(), "mysql connection ended: {why}");
            }
            for lost in std::mem::take(&mut self.guards).into_values() {
                lost.mark_lost(why.clone());
            }
        }
        // Commands still queued are dropped with `rx`: their senders learn the connection is
        // gone, and the permits they carry are dropped after the connection is, below.
        drop(self.conn);
        drop(rx);
    }

    /// Runs one command. `Ok(false)`: close the connection; `Err`: it failed.
    async fn handle(&mut self, cmd: Cmd) -> Result<bool, String> {
        match cmd {
            Cmd::Lock(c) => self.lock(c).await,
            Cmd::Release {
                lock,
                registration,
                permit,
                reply,
                after,
            } => {
                let outcome = self.release(&lock, registration).await;
                drop(permit); // only now may another task of this process take the name
                let fatal = match &outcome {
                    Err(Failure::Dead(m)) => Some(m.clone()),
                    _ => None,
                };
                if let Some(after) = after {
                    after(fatal.is_none() && self.guards.is_empty());
                }
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
                fatal.map_or(Ok(true), Err)
            }
            Cmd::Rows { sql, params, reply } => {
                let outcome = match params {
                    None => self.conn.query::<Row, _>(sql).await,
                    Some(p) => self.conn.exec::<Row, _, _>(sql, p).await,
                };
                let outcome = outcome.map_err(|e| classify(&e));
                let fatal = match &outcome {
                    Err(Failure::Dead(m)) => Some(m.clone()),
                    _ => None,
                };
                let _ = reply.send(outcome);
                fatal.map_or(Ok(true), Err)
            }
        }
    }

    /// Forgets the guard, then `RELEASE_LOCK`.
    async fn release(&mut self, lock: &str, registration: u64) -> Result<bool, Failure> {
        self.guards.remove(&registration);
        sql::release_lock(&mut self.conn, lock).await
    }

    async fn get_lock(
        &mut self,
        lock: &str,
        timeout: Timeout,
        fenced: bool,
    ) -> Result<Option<u64>, Failure> {
        let fencing = fenced.then_some(self.fencing);
        sql::get_lock(&mut self.conn, fencing, lock, timeout).await
    }

    async fn lock(&mut self, c: LockCmd) -> Result<bool, String> {
        let mut outcome = self.get_lock(&c.lock, c.timeout, c.fenced).await;
        while let (Ok(None), Timeout::Forever) = (&outcome, c.timeout) {
            if c.reply.is_closed() {
                break;
            }
            outcome = self.get_lock(&c.lock, c.timeout, c.fenced).await;
        }
        let fatal = match &outcome {
            Err(Failure::Dead(m)) => Some(m.clone()),
            _ => None,
        };
        let reply = match outcome {
            Ok(Some(token)) => {
                self.next += 1;
                self.guards.insert(self.next, c.lost);
                Ok(LockReply::Got(Claim {
                    token,
                    held: Some((c.lock.clone(), self.next, c.permit)),
                    me: self.me.clone(),
                    queued: self.queued.clone(),
                }))
            }
            Ok(None) => Ok(LockReply::Busy(c.permit)),
            Err(f) => Err(f),
        };
        if let Err(unsent) = c.reply.send(reply) {
            // The acquire was dropped: give back what it got, then its permit.
            if let Ok(LockReply::Got(claim)) = unsent {
                let (registration, permit) = claim.take();
                let released = self.release(&c.lock, registration).await;
                drop(permit);
                if let Err(Failure::Dead(m)) = released {
                    return Err(m);
                }
            }
            if c.close_if_abandoned {
                return if self.guards.is_empty() {
                    Ok(false)
                } else {
                    Err("a cancelled wait closed the connection".into())
                };
            }
        }
        fatal.map_or(Ok(true), Err)
    }
}
