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
//!   prepared `SELECT CASE WHEN pg_try_advisory_lock($1) THEN nextval('lockhog_fencing') END`
//!   (every function `pg_catalog.`-qualified, the sequence named by its OID),
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
//!   `psql`, other advisory-lock clients or a crashed process releasing by closing its
//!   session all wake the waiter.
//!   A lock taken by a waiter stays on its connection until released; then
//!   `pg_advisory_unlock_all()` runs before the connection goes back to the idle pool, so a
//!   pooled connection never holds a lock nobody owns.
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
//! Tokens come from one sequence per database, `lockhog_fencing` (found on the `search_path`
//! on first connect, else created in its first schema), drawn in the same statement that
//! takes the lock and only once it is held. Before it is used, the sequence is checked (see
//! `fencing.rs`): it must be a sequence owned by the connecting role or a role it is a member
//! of, grant `UPDATE` (which allows `setval`) to no role outside those and not to `PUBLIC`, and
//! sit in a schema owned by such a role, a superuser or the database's owner; otherwise
//! connecting fails with an [`Error::Backend`] naming the object, its owner and the fix. The
//! statements then name it by OID and call `pg_catalog.nextval`, so neither a later
//! `lockhog_fencing` earlier on the `search_path` nor a `nextval(text)` planted in `public` can
//! stand in for it. So every token is
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
//! Writer priority is not claimed
//! ([`Capabilities::shared_writer_priority`](crate::Capabilities::shared_writer_priority) is
//! false). PostgreSQL queues a new request behind a conflicting *waiter*, and inside one
//! process the permits are FIFO, so a writer waiting in this process, or in the server, holds
//! back the readers that come after it — except one: a session holds advisory locks
//! re-entrantly, so a reader whose try runs on a session connection that already holds the
//! key shared (another reader of the same locker) is granted at once, ahead of a writer
//! waiting in another process. A stream of such readers can keep that writer waiting.
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
//! [`Error::Backend`]: crate::Error::Backend
//! [`LockGuard::lost`]: crate::LockGuard::lost
//! [`LockRequest::shared`]: crate::LockRequest::shared

mod acquire;
mod config;
mod fencing;
mod held;
mod key;
mod local;
mod pool;
mod status;
mod tls;
mod xact;

pub use held::PostgresHeld;
pub use key::{advisory_key, resource};
pub use xact::{blocking, try_xact_lock, xact_lock, xact_lock_timeout};

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use tokio::time::Instant;

use self::acquire::Request;
use self::key::{key_of, Advisory};
use self::local::{permits, LocalKey, LOCAL};
use self::pool::Pool;
use super::session_pool::Connect;
use super::with_causes;
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::error::Result;
use crate::name::LockKey;
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::row::BackendRow = super::row::BackendRow::of::<PostgresBackend>(
    &["postgres", "postgresql"],
    Some("postgres"),
    |url| Ok(super::row::connecting(PostgresBackend::connect(url)?)),
)
.port(config::DEFAULT_PORT);

pub(crate) const SCHEME: &str = "postgres";

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

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
    /// with), or the fencing sequence cannot be created or is not safe to use (another role
    /// owns it or may reset it: see [Fencing tokens](self#fencing-tokens)). Messages carry the URL with its password
    /// redacted.
    ///
    /// [`Error::InvalidUrl`]: crate::Error::InvalidUrl
    /// [`Error::Backend`]: crate::Error::Backend
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn connect(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let config::Settings {
            connector,
            server,
            sessions,
            max_waiters,
        } = config::parse(url)?;
        Ok(async move {
            let first = connector
                .connect(None)
                .await?
                .expect("no deadline, so no timeout");
            Ok(PostgresBackend {
                pool: Arc::new(Pool::new(connector, first, sessions, max_waiters)),
                server: server.into(),
            })
        })
    }

    fn local_key(&self, key: Advisory) -> LocalKey {
        (self.server.clone(), key)
    }
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
            // A reader on a session that already holds the key shared jumps the server's
            // queue ("Shared locks" in the module docs).
            shared_writer_priority: false,
            crash_release: true,
            native_wait: true,
            cross_process: true,
            // A live session's lock cannot be taken from it.
            steal_after: false,
            resource_fencing: false,
            semaphore: false,
        }
    }

    fn parse_resource(resource: &str) -> Result<String> {
        key::parse(resource).map(|k| k.to_string())
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
        let Some(permit) = LOCAL.try_acquire_many(&id, permits(req.shared)) else {
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
        let Some(permit) = LOCAL.acquire_many(&id, permits(req.shared), deadline).await else {
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

    async fn release(&self, held: PostgresHeld) -> Result<bool> {
        held::release(held).await
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        status::status(self, namespace, keys).await
    }

    async fn cleanup(&self, _namespace: &str) -> Result<CleanupReport> {
        // Advisory locks leave nothing behind: they end with their session.
        Ok(CleanupReport::default())
    }
}
