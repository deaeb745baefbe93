//! `mysql://…` — `GET_LOCK` / `RELEASE_LOCK` named locks on MySQL (5.7 and later) and
//! MariaDB (10.0.2 and later) (feature `mysql`).
//!
//! The client is `mysql_async` built without TLS and with its pure-Rust zlib, so the feature
//! needs no system library.
//!
//! # The lock string
//!
//! MySQL limits `GET_LOCK` names to 64 characters, lockhog names may have 1024 bytes. A name
//! and its namespace map to `lh:<readable>:<digest>` (at most 60 characters, ASCII):
//!
//! - `<readable>`: the name's first 24 characters, each one outside `[A-Za-z0-9._-]` replaced
//!   by `_` — enough to recognise the lock in `SHOW PROCESSLIST` or `metadata_lock_info`;
//! - `<digest>`: the first 16 bytes, as 32 lower-case hex digits, of the SHA-256 of the
//!   namespace's byte length as a little-endian `u64`, the namespace, then the name
//!   ([`LockKey::digest`]): what keeps two names apart.
//!
//! `hold` and `status` print this string as the RESOURCE, and [`lock_string`] computes it.
//! The same in SQL (namespaces are at most 128 bytes, so the length is one byte followed by
//! seven zero bytes):
//!
//! ```sql
//! SELECT CONCAT('lh:', REGEXP_REPLACE(LEFT(@name, 24), '[^A-Za-z0-9._-]', '_'), ':',
//!        LEFT(SHA2(CONCAT(UNHEX(LPAD(HEX(OCTET_LENGTH(@ns)), 2, '0')), UNHEX('00000000000000'),
//!                         @ns, @name), 256), 32)) AS lock_string;
//! ```
//!
//! so the `mysql` client can take, wait for or inspect the very lock lockhog takes
//! (`SELECT GET_LOCK(lock_string, 10)` waits while lockhog holds it, and the other way
//! round). Lock strings are always bound as parameters, never spliced into SQL.
//!
//! # Connections
//!
//! lockhog keeps its own connections and never uses mysql_async's pool, which resets and
//! closes connections as it sees fit: a `GET_LOCK` lock belongs to its session.
//!
//! - Each connection is owned by a task that runs its commands in order and to completion
//!   (see `session.rs`): a statement is never abandoned half-way, a lock taken for an acquire
//!   that was dropped meanwhile is released at once, and a release from `Drop` is a channel
//!   send that never blocks.
//! - A small shared set of **session connections** (at most `?connections=`, default 4,
//!   opened as needed) carries every uncontended lock: acquiring is one round trip of
//!   `SELECT CASE GET_LOCK(?, 0) WHEN 1 THEN NEXTVAL(lockhog_fencing) WHEN 0 THEN 0 END`,
//!   releasing one round trip of `RELEASE_LOCK(?)` on the connection that locked. Any number
//!   of locks share these few connections (MySQL 5.7+ and MariaDB 10.0.2+ allow many locks
//!   per session).
//! - A session takes its own lock again re-entrantly, so two guards of one process would not
//!   exclude each other on a shared connection. Every acquire first takes an in-process
//!   permit for (server `host:port`, lock string) — `GET_LOCK` names are server-wide — and
//!   contention inside the process is settled there, in FIFO order, without a round trip.
//! - **Waiting** for a lock held elsewhere happens on a **waiter connection** of its own (from
//!   a small idle pool, opened on demand, at most `?max_waiters=`, default 64, at once; past
//!   that, waiters poll with the request's retry policy) blocked in `GET_LOCK(?, timeout)`
//!   with what is left of the wait bound (fractional seconds; an unbounded wait renews an
//!   hour-long wait), so the server wakes it the moment the holder releases, whoever the
//!   holder is, and other locks are never stalled behind it. A lock taken by a waiter stays
//!   on its connection until released; then the connection, holding nothing, goes back to
//!   the idle pool.
//! - **Cancel safety**: a dropped try is finished by the connection's task, which releases
//!   a lock it got. A dropped wait sends `KILL CONNECTION` for its waiter connection from a
//!   session connection: the server ends the wait and the session, and with it anything the
//!   session could hold; the in-process permit is given up only once the wait has returned.
//! - Sessions are set up with `max_statement_time = 0` (MariaDB) or
//!   `max_execution_time = 0` (MySQL) so no limit cuts a wait short, and TCP keepalives.
//! - **Semaphores**: a semaphore's N permits are the named locks of its slots
//!   `NAME#permit-0` … (polled one try at a time; not FIFO), and its count is a row of
//!   `lockhog_semaphores` in the URL's database (see `semaphore.rs`).
//!
//! # Fencing tokens
//!
//! Tokens come from one counter per database, `lockhog_fencing`, drawn only once the lock is
//! held:
//!
//! - on MariaDB 10.3 and later a `SEQUENCE` (`CACHE 1000`), drawn with `NEXTVAL` in the very
//!   statement that takes the lock — no extra round trip and no transaction commit;
//! - elsewhere (MySQL, older MariaDB, or `?fencing=table` when the counter is created) a
//!   one-row InnoDB table, bumped right after the lock is taken with
//!   `UPDATE lockhog_fencing SET value = LAST_INSERT_ID(value + 1) WHERE id = 1` — the new
//!   value comes back in the OK packet, so this is one more round trip and one commit.
//!
//! The counter is created on first connect (`CREATE … IF NOT EXISTS`); an existing one is
//! used whatever its kind, so every client of a database draws from the same counter. Every
//! token is strictly greater than every token drawn before it from that counter — across
//! holders, names, processes and restarts of clients and server (a sequence's cache skips
//! values after a restart, it never goes back; the table's row is transactional). Tokens can
//! repeat only if someone resets the counter (`SETVAL`, `ALTER SEQUENCE … RESTART`, an
//! `UPDATE` of the row, dropping it) or the database is restored from an older backup, or
//! InnoDB loses committed writes on a crash (`innodb_flush_log_at_trx_commit` other than 1).
//! Databases replicated with several writers (Galera) keep one counter per node: point all
//! lockers at one node.
//!
//! MySQL and MariaDB record no owner for a table or sequence, and an ordinary account cannot
//! read others' grants, so lockhog cannot tell who created the counter or who may reset it:
//! **no account lockhog does not trust may have `CREATE`, `INSERT`, `UPDATE`, `ALTER`, `DROP`
//! or `TRIGGER` on its database** — that is for the administrator. What lockhog does check on
//! connect, refusing with an [`Error::Backend`] that names the object and the fix, is the
//! counter's shape, which a planted object could get wrong on purpose: it must be a sequence
//! or a base table (not a view), stored by InnoDB (a `MEMORY` table starts over after a
//! restart), a sequence must count up without `CYCLE`, a table must have no triggers.
//!
//! # Lost locks
//!
//! A `GET_LOCK` lock lives as long as its session. A connection that holds locks is pinged
//! every `?lost_check=` (default 1 s); when a ping or any statement finds it dead (the
//! server was restarted, an administrator ran `KILL`, the network failed and TCP keepalives
//! gave up), every guard on it is marked lost ([`LockGuard::lost`]) and its `release`
//! returns `Ok(false)`. So a lost lock is noticed within about `lost_check` plus a round
//! trip.
//!
//! # Status
//!
//! `status NAME…` asks `IS_USED_LOCK` for each lock string and describes the holder from
//! `information_schema.PROCESSLIST`. `status` without names lists every `lh:` lock the
//! server can list — MariaDB's `information_schema.METADATA_LOCK_INFO` (the
//! `metadata_lock_info` plugin: `INSTALL SONAME 'metadata_lock_info'`), or MySQL's
//! `performance_schema.metadata_locks` — together with the locks this process holds. Without
//! either (MariaDB's default) it lists only the locks this process holds.
//!
//! # URL
//!
//! `mysql://user:password@host:port/database?…`, the database being where the fencing
//! counter lives. Options: `connections=N`, `max_waiters=N`, `connect_timeout=SECS`
//! (default 10), `lost_check=SECS` (default 1), `fencing=sequence|table` (which counter to
//! create when the database has none), `prefer_socket=true|false` (default true: on a
//! loopback address, reconnect through the server's Unix socket when it can be reached, as
//! mysql_async does). Any other option is refused. No TLS in this build.
//!
//! [`Error::Backend`]: crate::Error::Backend
//! [`LockGuard::lost`]: crate::LockGuard::lost

mod acquire;
mod connector;
mod fencing;
mod name;
mod pool;
mod semaphore;
mod session;
mod sql;
mod status;

pub use name::lock_string;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use tokio::sync::OwnedSemaphorePermit;

use self::connector::Connector;
use self::name::lock_string_of;
use self::pool::Pool;
use self::session::{Cmd, Session};
use super::named_semaphores::{NamedPermit, NamedSemaphores};
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::error::{Error, Result};
use crate::name::LockKey;
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::row::BackendRow =
    super::row::BackendRow::of::<MysqlBackend>(&["mysql"], Some("mysql"), |url| {
        Ok(super::row::connecting(MysqlBackend::connect(url)?))
    })
    .port(connector::DEFAULT_PORT);

pub(crate) const SCHEME: &str = "mysql";

/// A (server `host:port`, lock string) pair: the unit of in-process arbitration.
type LocalKey = (Arc<str>, Arc<str>);
pub(crate) type Permit = NamedPermit<LocalKey>;

/// In-process arbitration, process-wide: every locker of this process on the same server
/// shares it.
static LOCAL: LazyLock<NamedSemaphores<LocalKey>> = LazyLock::new(NamedSemaphores::new);

/// The names of the locks this process holds, for `status`.
static NAMES: LazyLock<Mutex<HashMap<LocalKey, HeldName>>> = LazyLock::new(Default::default);

struct HeldName {
    namespace: String,
    name: String,
    since: SystemTime,
}

/// A held lock's entry in [`NAMES`], removed on release.
struct NameTicket(LocalKey);

impl NameTicket {
    fn new(id: &LocalKey, key: &LockKey) -> NameTicket {
        NAMES.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id.clone(),
            HeldName {
                namespace: key.namespace().to_string(),
                name: key.name().to_string(),
                since: SystemTime::now(),
            },
        );
        NameTicket(id.clone())
    }
}

impl Drop for NameTicket {
    fn drop(&mut self) {
        NAMES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

/// The MySQL/MariaDB named-lock backend. See the [module docs](self).
pub struct MysqlBackend {
    pool: Arc<Pool>,
    server: Arc<str>,
    /// Set once `lockhog_semaphores` is known to exist.
    semaphore_table: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for MysqlBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlBackend")
            .field("url", &self.pool.connector.redacted)
            .finish()
    }
}

/// A held named lock: the connection that holds it, the in-process permit, and (for a lock
/// taken while waiting) the waiter slot of its connection.
pub struct MysqlHeld {
    inner: Option<HeldInner>,
}

impl std::fmt::Debug for MysqlHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("MysqlHeld");
        if let Some(i) = &self.inner {
            d.field("lock", &i.lock)
                .field("connection_id", &i.session.id);
        }
        d.finish()
    }
}

struct HeldInner {
    pool: Arc<Pool>,
    session: Arc<Session>,
    /// `Some` when the lock is held on a waiter connection of its own.
    waiter_slot: Option<OwnedSemaphorePermit>,
    lock: Arc<str>,
    registration: u64,
    name: NameTicket,
    permit: Permit,
}

impl HeldInner {
    /// Queues the `RELEASE_LOCK` on the connection that holds the lock; the permit goes
    /// with it and is dropped only after the statement ran.
    fn send_release(self, reply: Option<session::Reply<bool>>) {
        let HeldInner {
            pool,
            session,
            waiter_slot,
            lock,
            registration,
            name,
            permit,
        } = self;
        let back = waiter_slot.map(|slot| (pool, session.clone(), slot));
        let after: session::After = Box::new(move |idle| {
            drop(name);
            if let (true, Some((pool, session, slot))) = (idle, back) {
                pool.return_waiter(session);
                drop(slot);
            }
        });
        let cmd = Cmd::Release {
            lock,
            registration,
            permit,
            reply,
            after: Some(after),
        };
        // A connection that has ended took the lock with it; dropping the command drops
        // the permit and the reply sender (the release then says `false`).
        drop(session.send(cmd));
    }
}

impl Drop for MysqlHeld {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.send_release(None);
        }
    }
}

impl MysqlBackend {
    /// Connects to `mysql://user:password@host:port/database?…`, opening one connection and
    /// finding or creating the fencing counter.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a malformed URL or an unknown option; [`Error::Backend`] when
    /// the server cannot be reached within `connect_timeout` (10 s by default), refuses the
    /// login, has no such database, or the counter cannot be created or has an unsafe shape (see
    /// [Fencing tokens](self#fencing-tokens)). Messages carry the URL
    /// with its password redacted.
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn connect(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let connector = Connector::from_url(url)?;
        let server: Arc<str> = connector.server.clone().into();
        Ok(async move {
            let pool = pool::connect(connector).await?;
            Ok(MysqlBackend {
                pool: Arc::new(pool),
                server,
                semaphore_table: Default::default(),
            })
        })
    }

    fn local_key(&self, lock: &str) -> LocalKey {
        (self.server.clone(), lock.into())
    }
}

impl Backend for MysqlBackend {
    type Held = MysqlHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lease: false,
            native_fencing: true,
            lost_notice: true,
            fair: false,
            shared: false,
            shared_writer_priority: false,
            crash_release: true,
            native_wait: true,
            cross_process: true,
            // A live session's lock cannot be taken from it.
            steal_after: false,
            resource_fencing: false,
            semaphore: true,
        }
    }

    fn parse_resource(resource: &str) -> Result<String> {
        name::parse(resource)
    }

    fn resource(&self, key: &LockKey) -> String {
        lock_string_of(key)
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<MysqlHeld>>> {
        let id = self.local_key(&lock_string_of(key));
        let Some(permit) = LOCAL.try_acquire(&id) else {
            return Ok(None);
        };
        Ok(self.try_on_session(key, &id, permit, ctx).await?.ok())
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Acquired<MysqlHeld>>> {
        ctx.note_attempt();
        let id = self.local_key(&lock_string_of(key));
        let Some(permit) = LOCAL.acquire(&id, deadline).await else {
            return Ok(None);
        };
        let permit = match self.try_on_session(key, &id, permit, ctx).await? {
            Ok(acquired) => return Ok(Some(acquired)),
            Err(permit) => permit,
        };
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(None);
        }
        self.wait_on_server(key, &id, permit, ctx, deadline).await
    }

    async fn record_permits(&self, key: &LockKey, permits: u32) -> Result<()> {
        self.record_permits_in_table(key, permits).await
    }

    async fn release(&self, mut held: MysqlHeld) -> Result<bool> {
        let Some(inner) = held.inner.take() else {
            return Ok(false);
        };
        let (reply, rx) = tokio::sync::oneshot::channel();
        inner.send_release(Some(reply));
        // Dropping this future leaves the release queued: it runs all the same.
        match rx.await {
            Ok(Ok(ours)) => Ok(ours),
            Ok(Err(session::Failure::Server(m))) => Err(Error::backend(
                SCHEME,
                format!(
                    "cannot release ({}): {}",
                    self.pool.connector.redacted,
                    self.pool.connector.scrub(m)
                ),
            )),
            // The connection ended, and the lock with it.
            Ok(Err(session::Failure::Dead(_))) | Err(_) => Ok(false),
        }
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        status::status(self, namespace, keys).await
    }

    async fn cleanup(&self, _namespace: &str) -> Result<CleanupReport> {
        // Named locks leave nothing behind: they end with their session.
        Ok(CleanupReport::default())
    }
}
