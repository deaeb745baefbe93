//! `postgres://…` / `postgresql://…` — session-level advisory locks (feature `postgres`).
//!
//! # The key
//!
//! A lock name and its namespace map to one signed 64-bit key, given to
//! `pg_advisory_lock(bigint)`: the first 8 bytes, read big-endian as a signed integer, of the
//! SHA-256 of the namespace's byte length as a little-endian `u64`, the namespace, then the
//! name ([`LockKey::digest`], [`advisory_key`]). `hold` and `status` print it as the RESOURCE
//! `advisory:<key>`. The same key in SQL (namespaces are at most 128 bytes, so the length is
//! one byte followed by seven zero bytes):
//!
//! ```sql
//! SELECT ('x' || encode(substr(sha256(
//!            decode(lpad(to_hex(octet_length(convert_to(:'ns', 'UTF8'))), 2, '0')
//!                   || '00000000000000', 'hex')
//!            || convert_to(:'ns', 'UTF8') || convert_to(:'name', 'UTF8')), 1, 8), 'hex')
//!        )::bit(64)::bigint AS key;
//! ```
//!
//! so `psql` can take, wait for or inspect the very lock lockhog takes
//! (`SELECT pg_advisory_lock(key)` blocks while lockhog holds it, and the other way round).
//! Lock names are never spliced into SQL: keys are bound as parameters.
//!
//! # Connections
//!
//! - A small shared set of **session connections** (at most `?connections=`, default 4,
//!   opened as needed) carries every uncontended lock: acquiring is one round trip of a
//!   prepared `SELECT CASE WHEN pg_try_advisory_lock($1) THEN nextval('lockhog_fencing') END`,
//!   releasing one round trip of `pg_advisory_unlock($1)` on the connection that locked. Many
//!   held locks share these few connections.
//! - A session holds advisory locks re-entrantly, so two guards of one process would not
//!   exclude each other on a shared connection. Every acquire therefore first takes a
//!   process-wide in-process permit for (server, database, key): exclusive acquires take all
//!   of a key's permits, shared ones one each. Contention inside the process is settled there,
//!   in FIFO order, without a round trip.
//! - **Waiting** for a lock held elsewhere happens on a **waiter connection** of its own (from
//!   a small idle pool, opened on demand, at most `?max_waiters=`, default 64, at once; past
//!   that, waiters poll with the request's retry policy): it blocks in `pg_advisory_lock($1)`
//!   with `lock_timeout` set to what is left of the wait bound, so the server wakes it the
//!   moment the holder releases, and other locks are never stalled behind it. Blocking in the
//!   server was chosen over LISTEN/NOTIFY because it needs no cooperation from other holders:
//!   `psql`, PALs or a crashed process releasing by closing its session all wake the waiter.
//!   A lock taken by a waiter stays on its connection until released; then
//!   `pg_advisory_unlock_all()` runs before the connection goes back to the idle pool, so a
//!   pooled connection never holds a lock nobody owns (PALs' pool hygiene).
//! - **Cancel safety**: a dropped try is followed by an unlock on its connection (in order,
//!   after the attempt); a dropped wait cancels the server's wait (a protocol cancel request with
//!   the session's cancel key), runs `pg_advisory_unlock_all()`, closes the connection, and only
//!   then lets the next in-process waiter in. A `lock_timeout` that fires just as the lock is
//!   granted leaves the lock held by the session; that is why every waiter connection is
//!   unlocked wholesale before reuse.
//! - Sessions get `application_name=lockhog` (unless the URL sets one), no
//!   `statement_timeout` and no `idle_session_timeout`, and TCP keepalives after 30 s idle
//!   (unless the URL sets `keepalives_idle`).
//!
//! # Fencing tokens
//!
//! Tokens come from one sequence per database, `lockhog_fencing` (created on first connect
//! with `CREATE SEQUENCE IF NOT EXISTS`, in the first schema of the `search_path`), drawn in
//! the same statement that takes the lock and only once it is held. So every token is
//! strictly greater than every token drawn before it in that database — across holders,
//! names, processes and restarts of clients and of the server. A sequence can skip values
//! (a cached or rolled-back `nextval`), never go back, unless someone resets it (`ALTER
//! SEQUENCE … RESTART`, `setval`, dropping it) or the database is restored from an older
//! backup or rewound (`pg_resetwal`, point-in-time recovery): after that, tokens can repeat.
//!
//! # Lost locks
//!
//! A session lock lives as long as its session. When a connection ends (the server was
//! restarted, an administrator ran `pg_terminate_backend`, the network failed and TCP
//! keepalives gave up), every guard on it is marked lost ([`LockGuard::lost`]) and its
//! `release` returns `Ok(false)`.
//!
//! # Shared locks
//!
//! [`LockRequest::shared`] takes `pg_advisory_lock_shared`: any number of shared holders at
//! once, across processes, none while an exclusive holder has it.
//!
//! # PgBouncer
//!
//! Session locks need a session: behind PgBouncer in transaction or statement pooling mode
//! the server connection changes under the client between statements, so a session lock
//! would be held by whoever gets that server connection next and released by nobody. Point
//! lockhog at PostgreSQL itself or at a session-mode pool. The transaction-level helpers
//! ([`xact_lock`], [`try_xact_lock`], [`xact_lock_timeout`]) do work behind PgBouncer in
//! transaction mode: their lock lives and dies with the transaction, which PgBouncer keeps on
//! one server connection.
//!
//! # URL options
//!
//! The libpq options tokio-postgres knows (`connect_timeout` — 10 s by default,
//! `application_name`, `options`, `keepalives*`, `target_session_attrs`, `host`, `hostaddr`,
//! `port`, `user`, `password`, `dbname`, `channel_binding`, …), libpq's `sslmode` and
//! `sslrootcert` (below), plus `connections=N` and `max_waiters=N`. Any other option is
//! refused (client certificates, `sslcert`/`sslkey`, are not supported).
//!
//! # TLS
//!
//! `sslmode` means what it means to libpq (rustls underneath, no system OpenSSL):
//!
//! | `sslmode` | encrypts | verifies the server's certificate chain | and its host name |
//! |---|---|---|---|
//! | `disable` | never | — | — |
//! | `prefer` (the default) | when the server offers TLS | no | no |
//! | `require` | always, or the connection fails | only when a root certificate is given | no |
//! | `verify-ca` | always, or the connection fails | yes | no |
//! | `verify-full` | always, or the connection fails | yes | yes |
//!
//! - The trusted roots: `sslrootcert=/path/ca.pem` (PEM, read once at connect), else
//!   `~/.postgresql/root.crt` when it exists (libpq's default), or `sslrootcert=system` for
//!   the system's trusted roots. An `sslrootcert` that cannot be read is an error in every
//!   mode that verifies.
//! - **`require` without a root certificate encrypts but does not verify** whom it talks to,
//!   exactly like libpq: it defeats eavesdroppers, not an active man in the middle. Use
//!   `verify-full` with `sslrootcert` for that. With a root certificate, `require` checks the
//!   chain like `verify-ca` (libpq does the same).
//! - `verify-full` checks the name in the URL's host (a DNS name, or an IP address against
//!   the certificate's IP subject alternative names); with `hostaddr=` the connection goes to
//!   that address and the certificate is still checked against the host name, as in libpq.
//!   `verify-ca` and `verify-full` without any root certificate fail before connecting.
//! - `prefer` never verifies (libpq verifies when it has a root certificate and falls back to
//!   an unencrypted session when that fails: neither is authenticated). `allow` is refused.
//! - A certificate that does not verify, a wrong host name, or a server without TLS under
//!   `require` and stricter is an [`Error::Backend`] that says why, with the URL's password
//!   redacted; cancel requests (a dropped wait) go over TLS the same way.
//! - Over TLS, SCRAM authentication is bound to the server's certificate (channel binding
//!   `tls-server-end-point`) when the server offers `SCRAM-SHA-256-PLUS`.
//!
//! [`LockGuard::lost`]: crate::LockGuard::lost
//! [`LockRequest::shared`]: crate::LockRequest::shared

mod key;
mod pool;
mod status;
mod tls;
mod xact;

pub use key::{advisory_key, resource};
pub use xact::{blocking, try_xact_lock, xact_lock, xact_lock_timeout};

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::Config;

use self::key::key_of;
use self::pool::{Conn, Connector, Pool, Waiter};
use self::tls::{MakeRustls, RootCert, SslMode};
use super::named_semaphores::{NamedPermit, NamedSemaphores};
use super::session_pool::{count_option, Checkout, Connect};
use super::with_causes;
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::error::{Error, Result};
use crate::guard::LostSender;
use crate::name::{percent_encode, LockKey};
use crate::url::BackendUrl;

pub(crate) const SCHEME: &str = "postgres";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SESSIONS: usize = 4;
const DEFAULT_MAX_WAITERS: usize = 64;
/// How long past its bound a wait may go before lockhog cancels it itself, should the
/// server's `lock_timeout` not answer (a server that stopped answering).
const BACKSTOP: Duration = Duration::from_millis(500);

/// The options tokio-postgres understands in a URL's query.
const LIBPQ_OPTIONS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// A (server and database, key) pair: the unit of in-process arbitration.
type LocalKey = (Arc<str>, i64);
type Permit = NamedPermit<LocalKey>;
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// Permits per key: an exclusive holder takes them all, a shared one takes one.
const SHARED_PERMITS: u32 = 1 << 20;

/// In-process arbitration, process-wide: every locker of this process on the same server and
/// database shares it.
static LOCAL: LazyLock<NamedSemaphores<LocalKey>> =
    LazyLock::new(|| NamedSemaphores::with_capacity(SHARED_PERMITS));

/// The names of the locks this process holds, for `status`.
static NAMES: LazyLock<Mutex<HashMap<LocalKey, HeldName>>> = LazyLock::new(Default::default);

struct HeldName {
    namespace: String,
    name: String,
    since: SystemTime,
    holders: usize,
}

/// A held lock's entry in [`NAMES`]; removed with the last holder.
struct NameTicket(LocalKey);

impl NameTicket {
    fn new(id: &LocalKey, key: &LockKey) -> NameTicket {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        names
            .entry(id.clone())
            .or_insert_with(|| HeldName {
                namespace: key.namespace().to_string(),
                name: key.name().to_string(),
                since: SystemTime::now(),
                holders: 0,
            })
            .holders += 1;
        NameTicket(id.clone())
    }
}

impl Drop for NameTicket {
    fn drop(&mut self) {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = names.get_mut(&self.0) {
            e.holders -= 1;
            if e.holders == 0 {
                names.remove(&self.0);
            }
        }
    }
}

/// One acquire's lock, key, mode and lost notice.
#[derive(Clone, Copy)]
struct Request<'a> {
    lock: &'a LockKey,
    key: i64,
    shared: bool,
    lost: &'a LostSender,
}

impl<'a> Request<'a> {
    fn new(lock: &'a LockKey, ctx: &'a AcquireContext) -> Self {
        Request {
            lock,
            key: key_of(lock),
            shared: ctx.options.shared,
            lost: &ctx.lost,
        }
    }
}

/// A tokio-postgres error as text: the server's message with its SQLSTATE when there is one.
pub(crate) fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        // tokio-postgres's Display names only the kind ("error performing TLS handshake"):
        // the cause says what went wrong.
        None => with_causes(e),
    }
}

/// The Postgres advisory-lock backend. See the [module docs](self).
pub struct PostgresBackend {
    pool: Arc<Pool>,
    server: Arc<str>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("url", &self.pool.connector.redacted)
            .finish()
    }
}

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
    key: i64,
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

/// Polls `fut`, calling `sent` right after its first poll: tokio-postgres writes a request
/// to the connection in the first poll of its future, so after `sent` the server will run it
/// whether or not the future is polled again.
async fn after_first_poll<F: Future>(fut: F, sent: impl FnOnce()) -> F::Output {
    let mut fut = pin!(fut);
    let mut sent = Some(sent);
    std::future::poll_fn(move |cx| {
        let r = fut.as_mut().poll(cx);
        if let Some(s) = sent.take() {
            s();
        }
        r
    })
    .await
}

/// A try on a session connection whose outcome is not known yet. Dropped before the answer
/// came (the acquire future was dropped), it sends an unlock after the attempt on the same
/// connection — harmless when the attempt failed — and only then gives up the permit.
struct Attempt {
    conn: Arc<Conn>,
    key: i64,
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
                .query_one(&conn.stmts.unlock[shared as usize], &[&key])
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
    let key: [Param; 1] = [&inner.key];
    let unlock = &conn.stmts.unlock[inner.shared as usize];
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

impl PostgresBackend {
    /// Connects to `postgres://user:password@host:port/db?…`, opening one session, creating
    /// the fencing sequence if it is missing, and preparing the lock statements.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a malformed URL or an unknown option; [`Error::Backend`]
    /// when the server cannot be reached within `connect_timeout` (10 s by default), refuses
    /// the login, has no such database, fails the TLS that `sslmode` asks for (no TLS, a
    /// certificate that does not verify, a wrong host name, no root certificate to verify
    /// with), or the sequence cannot be created. Messages carry the URL with its password
    /// redacted.
    pub async fn connect(url: &mut BackendUrl) -> Result<Self> {
        if !url.body().starts_with("//") {
            return Err(url.invalid("expected postgres://user:password@host:port/database"));
        }
        let sessions = count_option(url, "connections", DEFAULT_SESSIONS)?;
        let max_waiters = count_option(url, "max_waiters", DEFAULT_MAX_WAITERS)?;
        let mut ssl_mode = None;
        while let Some(v) = url.take_option("sslmode") {
            ssl_mode = Some(SslMode::parse(&v).map_err(|why| url.invalid(&why))?);
        }
        let ssl_mode = ssl_mode.unwrap_or(SslMode::Prefer);
        let mut root_cert = None;
        while let Some(v) = url.take_option("sslrootcert") {
            root_cert = Some(v);
        }
        let mut query = Vec::new();
        for key in LIBPQ_OPTIONS {
            while let Some(v) = url.take_option(key) {
                let enc = percent_encode(&v, |b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
                });
                query.push(format!("{key}={enc}"));
            }
        }
        url.finish()?;
        let text = format!("postgresql:{}?{}", url.body(), query.join("&"));
        let mut config: Config = text.parse().map_err(|e: tokio_postgres::Error| {
            url.invalid(&format!(
                "not a postgres URL: {}",
                redact_config_error(&e, url)
            ))
        })?;
        config.ssl_mode(ssl_mode.negotiation());
        let tls = match ssl_mode {
            SslMode::Disable => None,
            _ => RootCert::from_option(root_cert),
        };
        let tls = MakeRustls::new(ssl_mode, tls.as_ref()).map_err(|why| {
            Error::backend(
                SCHEME,
                format!("cannot connect to {}: {why}", url.redacted()),
            )
        })?;
        if config.get_application_name().is_none() {
            config.application_name("lockhog");
        }
        if !query.iter().any(|q| q.starts_with("keepalives_idle=")) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        config.connect_timeout(connect_timeout);
        let server = server_identity(&config);
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let connector = Connector {
            config,
            tls,
            connect_timeout,
            redacted: url.redacted().to_string(),
            password,
        };
        let first = connector
            .connect(None)
            .await?
            .expect("no deadline, so no timeout");
        Ok(PostgresBackend {
            pool: Arc::new(Pool::new(connector, first, sessions, max_waiters)),
            server: server.into(),
        })
    }

    /// The process ids of this backend's live sessions (shared ones first), for tests and
    /// diagnostics.
    pub fn session_pids(&self) -> Vec<i32> {
        self.pool.sessions().iter().map(|c| c.pid).collect()
    }

    fn local_key(&self, key: i64) -> LocalKey {
        (self.server.clone(), key)
    }

    fn held(
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
        // Dropping `held` on an error path releases the lock.
        let token = token
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .ok_or_else(|| {
                Error::backend(
                    SCHEME,
                    format!(
                        "the fencing sequence {} gave no positive value",
                        pool::FENCING_SEQUENCE
                    ),
                )
            })?;
        Ok(Acquired { held, token })
    }

    /// One `pg_try_advisory_lock` on a session connection, with the in-process permit held.
    /// The permit comes back when someone else holds the lock.
    async fn try_on_session(
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
            let params: [Param; 1] = [&key];
            let query = conn
                .client
                .query_one(&conn.stmts.try_lock[shared as usize], &params);
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
    async fn wait_on_server(
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
            let (timeout, key): ([Param; 1], [Param; 1]) = ([&timeout], [&key]);
            tokio::join!(
                conn.client
                    .query_one(&conn.stmts.set_lock_timeout, &timeout),
                conn.client
                    .query_one(&conn.stmts.lock[shared as usize], &key),
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

    fn permits(shared: bool) -> u32 {
        if shared {
            1
        } else {
            LOCAL.capacity()
        }
    }
}

/// A config error's text, which names options, never their values — checked anyway.
fn redact_config_error(e: &tokio_postgres::Error, url: &BackendUrl) -> String {
    let text = e.to_string();
    let raw = url.body();
    // Any user:password@ in the body: make sure its password is not echoed.
    match raw
        .strip_prefix("//")
        .and_then(|r| r.split_once('@'))
        .and_then(|(auth, _)| auth.split_once(':'))
        .map(|(_, p)| p)
    {
        Some(p) if !p.is_empty() && text.contains(p) => text.replace(p, "***"),
        _ => text,
    }
}

/// `host:port[,host:port…]/database`: which server and database a key is arbitrated for.
fn server_identity(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    format!("{}/{db}", hosts.join(","))
}

impl Backend for PostgresBackend {
    type Held = PostgresHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lease: false,
            native_fencing: true,
            lost_notice: true,
            fair: false,
            shared: true,
            crash_release: true,
            native_wait: true,
            cross_process: true,
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        resource(key_of(key))
    }

    async fn try_acquire(
        &self,
        lock: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<PostgresHeld>>> {
        let req = Request::new(lock, ctx);
        let id = self.local_key(req.key);
        let Some(permit) = LOCAL.try_acquire_many(&id, Self::permits(req.shared)) else {
            return Ok(None);
        };
        Ok(self.try_on_session(&req, permit).await?.ok())
    }

    async fn wait_acquire(
        &self,
        lock: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<PostgresHeld>>> {
        let req = Request::new(lock, ctx);
        ctx.note_attempt();
        let id = self.local_key(req.key);
        let Some(permit) = LOCAL
            .acquire_many(&id, Self::permits(req.shared), deadline)
            .await
        else {
            return Ok(None);
        };
        let permit = match self.try_on_session(&req, permit).await? {
            Ok(acquired) => return Ok(Some(acquired)),
            Err(permit) => permit,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        self.wait_on_server(&req, permit, ctx, deadline).await
    }

    async fn release(&self, mut held: PostgresHeld) -> Result<bool> {
        let mut releasing = Releasing {
            slot: held.inner.take(),
            sent: false,
        };
        release_in(&mut releasing.slot, &mut releasing.sent).await
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        status::status(self, namespace, keys).await
    }

    async fn cleanup(&self, _namespace: &str) -> Result<CleanupReport> {
        // Advisory locks leave nothing behind: they end with their session.
        Ok(CleanupReport::default())
    }
}
