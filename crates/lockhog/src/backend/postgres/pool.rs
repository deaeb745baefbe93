//! Connections: one session each, with its prepared statements, for the small shared set of
//! session connections that carries uncontended locks and the idle pool of waiter
//! connections that block in `pg_advisory_lock` (both kept by [`SessionPool`]).
//!
//! Every connection is driven by its own task; when that task ends (the server closed the
//! session, the network failed) every guard registered on the connection is marked lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::{Client, Config, Statement};

use super::fencing::{self, Sequence};
use super::key::Advisory;
use super::owned::Checked;
use super::tls::MakeRustls;
use super::{pg_error, SCHEME};
use crate::backend::session_pool::{self, open_within, Connect, Pooled, SessionPool};
use crate::backend::LostSender;
use crate::error::{Error, Result};
use crate::secret::Secrets;

/// The statements of one key space, each `[exclusive, shared]`, binding the key as one
/// bigint `$1` ([`Advisory::packed`]); the locking ones also by `[unfenced, fenced]`.
pub(crate) struct Keyed {
    /// `pg_try_advisory_lock` and, only when it succeeds, the next fencing token (0 when
    /// unfenced, NULL when not acquired).
    pub try_lock: [[Statement; 2]; 2],
    /// `pg_advisory_lock` and then the next fencing token (0 when unfenced).
    pub lock: [[Statement; 2]; 2],
    /// `pg_advisory_unlock`: true when the lock was held by this session.
    pub unlock: [Statement; 2],
}

/// The prepared statements of one connection. Lock names never reach SQL: keys are bound.
pub(crate) struct Statements {
    /// By [`Advisory::space`]: `pg_advisory_lock(bigint)`, then `pg_advisory_lock(int, int)`.
    keyed: [Keyed; 2],
    /// `pg_advisory_unlock_all()`.
    pub unlock_all: Statement,
    /// `set_config('lock_timeout', $1, false)`.
    pub set_lock_timeout: Statement,
}

/// `$1` unpacked into the two ints of [`Advisory::Two`]: its high and its low 32 bits, each
/// sign-extended, operators schema-qualified like the functions.
const TWO_INTS: &str = "($1::pg_catalog.int8 OPERATOR(pg_catalog.>>) 32)::pg_catalog.int4, \
     (($1::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.>>) 32)::pg_catalog.int4";

impl Statements {
    /// Prepares them, drawing tokens from the sequence with OID `seq` (checked by
    /// [`fencing::ensure`]). Every function is schema-qualified: a `nextval(text)` or
    /// `pg_advisory_lock(text)` someone created in a schema of the `search_path` would
    /// otherwise win the overload resolution for an untyped argument.
    async fn prepare(
        client: &Client,
        seq: u32,
    ) -> std::result::Result<Statements, tokio_postgres::Error> {
        // All in one round trip: tokio-postgres pipelines requests made together.
        let (one, two, ua, slt) = tokio::join!(
            Keyed::prepare(client, seq, "$1"),
            Keyed::prepare(client, seq, TWO_INTS),
            client.prepare("SELECT pg_catalog.pg_advisory_unlock_all()"),
            client.prepare("SELECT pg_catalog.set_config('lock_timeout', $1, false)"),
        );
        Ok(Statements {
            keyed: [one?, two?],
            unlock_all: ua?,
            set_lock_timeout: slt?,
        })
    }

    /// The statements of `key`'s space.
    pub(crate) fn of(&self, key: Advisory) -> &Keyed {
        &self.keyed[key.space()]
    }
}

impl Keyed {
    /// Prepares the statements of the key space whose functions take `args`.
    async fn prepare(
        client: &Client,
        seq: u32,
        args: &str,
    ) -> std::result::Result<Keyed, tokio_postgres::Error> {
        let next = format!("pg_catalog.nextval({seq}::pg_catalog.regclass)");
        // An unfenced acquire (opted out, or a foreign resource) skips the sequence.
        let sql = |f: &str, fenced: bool| {
            let then = if fenced {
                next.as_str()
            } else {
                "0::pg_catalog.int8"
            };
            format!("SELECT CASE WHEN {f} THEN {then} END")
        };
        let try_x = format!("pg_catalog.pg_try_advisory_lock({args})");
        let try_s = format!("pg_catalog.pg_try_advisory_lock_shared({args})");
        // void cast to text is '': the CASE makes nextval run only once the lock is held, so a
        // waiter's token is drawn after every earlier holder's.
        let held = "::pg_catalog.text OPERATOR(pg_catalog.=) ''";
        let lock_x = format!("pg_catalog.pg_advisory_lock({args}){held}");
        let lock_s = format!("pg_catalog.pg_advisory_lock_shared({args}){held}");
        let unlock_x = format!("SELECT pg_catalog.pg_advisory_unlock({args})");
        let unlock_s = format!("SELECT pg_catalog.pg_advisory_unlock_shared({args})");
        // [fenced][exclusive, shared] × [try, wait]: made before the join, which borrows them.
        let texts =
            [false, true].map(|fenced| [&try_x, &try_s, &lock_x, &lock_s].map(|f| sql(f, fenced)));
        let [[utx, uts, ulx, uls], [tx, ts, lx, ls]] = &texts;
        let (tx, ts, lx, ls, ux, us, utx, uts, ulx, uls) = tokio::join!(
            client.prepare(tx),
            client.prepare(ts),
            client.prepare(lx),
            client.prepare(ls),
            client.prepare(&unlock_x),
            client.prepare(&unlock_s),
            client.prepare(utx),
            client.prepare(uts),
            client.prepare(ulx),
            client.prepare(uls),
        );
        Ok(Keyed {
            try_lock: [[utx?, uts?], [tx?, ts?]],
            lock: [[ulx?, uls?], [lx?, ls?]],
            unlock: [ux?, us?],
        })
    }
}

#[derive(Default)]
struct Registry {
    /// Why the connection ended, once it has.
    dead: Option<String>,
    guards: HashMap<u64, LostSender>,
    next: u64,
}

/// One session to the server.
pub(crate) struct Conn {
    pub client: Client,
    pub stmts: Statements,
    /// The server process serving this session (`pg_backend_pid()`).
    pub pid: i32,
    registry: Arc<Mutex<Registry>>,
    /// Requests in flight on this connection: how session connections are picked.
    inflight: AtomicUsize,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("pid", &self.pid).finish()
    }
}

fn lock_registry(r: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pooled for Conn {
    /// True once the session has ended.
    fn is_dead(&self) -> bool {
        lock_registry(&self.registry).dead.is_some() || self.client.is_closed()
    }

    fn load(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

impl Conn {
    /// Registers a guard's lost notice: it fires when this session ends. A session that has
    /// already ended fires it at once.
    pub fn register(&self, lost: LostSender) -> u64 {
        let mut r = lock_registry(&self.registry);
        if let Some(why) = &r.dead {
            lost.mark_lost(why.clone());
        }
        r.next += 1;
        let id = r.next;
        r.guards.insert(id, lost);
        id
    }

    /// Forgets a guard; true when the session is still alive (so the lock was still ours).
    pub fn unregister(&self, id: u64) -> bool {
        let mut r = lock_registry(&self.registry);
        r.guards.remove(&id);
        r.dead.is_none()
    }

    /// Counts a request in flight until the returned value is dropped.
    pub fn busy(&self) -> Busy<'_> {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }
}

pub(crate) struct Busy<'a>(&'a Conn);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Settings for opening sessions.
pub(crate) struct Connector {
    pub config: Config,
    /// The TLS side of `sslmode`: also used by cancel requests, which open a connection.
    pub tls: MakeRustls,
    pub connect_timeout: Duration,
    /// The URL with its password redacted, for messages.
    pub redacted: String,
    /// The URL's passwords, so that no message can carry one even by accident.
    pub secrets: Secrets,
    /// The fencing sequence, found and checked by the first connection.
    pub fencing: OnceLock<Sequence>,
    /// The semaphore table, found (or created) and checked by the first semaphore.
    pub semaphores: OnceLock<Checked>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand: the config holds the password.
        f.debug_struct("Connector")
            .field("url", &self.redacted)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Strips the password from `message` should a server or library ever echo it.
    pub fn scrub(&self, message: String) -> String {
        self.secrets.scrub(&message)
    }

    pub fn error(&self, doing: &str, e: tokio_postgres::Error) -> Error {
        let message = self.scrub(format!("{doing} ({}): {}", self.redacted, pg_error(&e)));
        Error::Backend {
            backend: SCHEME,
            message,
            source: Some(self.secrets.wrap(&e)),
        }
    }

    async fn open_unbounded(&self) -> Result<Arc<Conn>> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.error("cannot connect", e))?;
        let registry = Arc::new(Mutex::new(Registry::default()));
        let reg = registry.clone();
        let secrets = self.secrets.clone();
        tokio::spawn(async move {
            let why = match connection.await {
                Ok(()) => "the connection to the server was closed".to_string(),
                Err(e) => secrets.scrub(&format!(
                    "the connection to the server failed: {}",
                    pg_error(&e)
                )),
            };
            let guards = {
                let mut r = lock_registry(&reg);
                r.dead = Some(why.clone());
                std::mem::take(&mut r.guards)
            };
            if !guards.is_empty() {
                tracing::warn!(locks = guards.len(), "postgres session ended: {why}");
            }
            for lost in guards.into_values() {
                lost.mark_lost(why.clone());
            }
        });
        // No statement timeout may cut a lock wait short, and no idle-session timeout may end
        // a session that holds locks while it sits idle.
        let init = client.query_one(
            "SELECT pg_catalog.pg_backend_pid(), \
             pg_catalog.set_config('statement_timeout', '0', false), \
             CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 140000 \
             THEN pg_catalog.set_config('idle_session_timeout', '0', false) END",
            &[],
        );
        let init = init
            .await
            .map_err(|e| self.error("cannot set up session", e))?;
        let pid: i32 = init.get(0);
        let seq = match self.fencing.get() {
            Some(seq) => seq.oid,
            None => {
                let found = fencing::ensure(&client, &self.redacted, |d, e| self.error(d, e));
                let found = found.await?;
                self.fencing.get_or_init(|| found).oid
            }
        };
        let stmts = Statements::prepare(&client, seq)
            .await
            .map_err(|e| self.error("cannot prepare statements", e))?;
        Ok(Arc::new(Conn {
            client,
            stmts,
            pid,
            registry,
            inflight: AtomicUsize::new(0),
        }))
    }
}

impl Connect for Connector {
    type Conn = Conn;

    const SESSION: &'static str = "session connection";

    /// Opens one session, bounded by the connect timeout and by `deadline`: `Ok(None)` when
    /// the deadline passed first.
    async fn connect(&self, deadline: Option<Instant>) -> Result<Option<Arc<Conn>>> {
        let open = self.open_unbounded();
        open_within(SCHEME, &self.redacted, self.connect_timeout, deadline, open).await
    }
}

/// The shared session connections and the idle waiter connections of one backend.
pub(crate) type Pool = SessionPool<Connector>;

/// A waiter connection checked out of the pool, with its slot.
pub(crate) type Waiter = session_pool::Waiter<Conn>;
