//! `sqlite:///abs/path.db` — a lock table with leases in an embedded SQLite database: locks
//! that many processes of one machine share through one file, with no server. The table may
//! live in the application's own database.
//!
//! # URL and options
//!
//! `sqlite:///abs/path.db[?ttl=30s][&steal_after=10m][&synchronous=normal][&namespace=app]`. The path is absolute
//! (percent-encoded where needed); a relative path is an [`InvalidUrl`](crate::Error::InvalidUrl).
//! The file is created when missing, its directory is not: a mistyped directory is a
//! [`Backend`](crate::Error::Backend) error rather than a new tree (as in SQLite's own shell). A
//! file that is not a SQLite database is refused before anything is written to it. The tables
//! (see `schema.rs`, all prefixed `lockhog_`) may live in an application's own database.
//!
//! - `ttl` (default [`DEFAULT_TTL`]): the lease, renewed every ttl/3 while the guard lives.
//! - `synchronous` (`full` by default, or `normal`): SQLite's sync mode. With `full` every
//!   commit is on disk before an acquire or release returns, so nothing is lost in a power
//!   cut or an OS crash. `normal` (WAL mode) is an order of magnitude faster (see the
//!   numbers in `tests/sqlite_bench.rs`) and as safe against crashed processes, but a power
//!   cut may lose the last commits: fencing tokens handed out just before it may be handed
//!   out again after the reboot.
//! - `steal_after`: a lock acquired longer ago than this counts
//!   as free **even when its holder is alive and renewing**: the next acquirer takes it (with
//!   a greater fencing token), and the old holder learns it at its next renewal (its guard
//!   reports the lock lost; its `release` returns `false`). Use it only for work that must
//!   never be blocked longer than that, and pass the fencing token to what the lock protects.
//!   A `steal_after` shorter than the lease's ttl is refused with
//!   [`InvalidOption`](crate::Error::InvalidOption) when acquiring: a lock would then be taken
//!   from its holder before a dead holder's lease could even run out, which is never what is
//!   meant (the ttl is what frees a dead holder's lock).
//!
//! # Resource
//!
//! `<path>#<namespace>/<name>`: the row of `lockhog_locks` with that namespace and name, e.g.
//! `sqlite3 /tmp/locks.db "SELECT owner, token FROM lockhog_locks WHERE name = CAST('x' AS BLOB)"`.
//!
//! # How it works
//!
//! - **Acquire** is one `BEGIN IMMEDIATE` transaction: read the row; it is free when missing,
//!   expired (`expires_at <= now`) or older than `steal_after`; if free (and no fair waiter
//!   is queued ahead), bump the fencing counter and write the row with a fresh owner value
//!   (`<random>/<pid>/<host>`).
//! - **Release** deletes the row only if it still carries our owner value (0 rows: it had
//!   been lost, `Ok(false)`); a **renewal** moves `expires_at` the same way, and 0 rows marks
//!   the guard lost. Neither can touch a later holder's row.
//! - **Fencing tokens** come from one counter row per database (`lockhog_fencing`), so they
//!   increase across all names; `cleanup` never touches it. Whoever can write the file can
//!   set the counter back, so before SQLite reads it the file and its `-wal`, `-shm` and
//!   `-journal` companions must be owned by the running user or root and not writable by all
//!   users (group write is allowed, for a group sharing one lock database), and nothing but
//!   lockhog's table may be named `lockhog_fencing` or fire on it (a trigger): otherwise the
//!   database is refused with a [`Backend`](crate::Error::Backend) error before anything is
//!   written to it.
//! - **Many processes**: WAL mode (readers never block the writer), every writing
//!   transaction takes the write lock at `BEGIN` (so a read-then-write never fails half-way),
//!   writers of one process take turns in the process before they meet SQLite's lock, and a
//!   busy handler retries another process's write lock every 2 ms at most, for 5 s; a waiter
//!   that still meets `SQLITE_BUSY` retries within its own bound. An attempt on a lock that
//!   is held only reads (no write lock, no sync). Connections are pooled; an operation runs
//!   on the backend's own thread, or on tokio's blocking pool while that thread is busy.
//! - **Waiting** polls with the request's [`RetryPolicy`](crate::RetryPolicy) (bounded
//!   backoff, 100 ms at most by default), sleeping no longer than the holder's remaining
//!   lease; a release by this process wakes its own waiters at once.
//! - **Fair (FIFO) locks**: a fair waiter that cannot take the lock takes a ticket in
//!   `lockhog_waiters` (an `AUTOINCREMENT` key, so never reused) and takes the lock only when
//!   its ticket is first. Its polls keep the ticket alive ([`TICKET_TTL`]); the ticket of a
//!   waiter that died or gave up is forgotten, so a dead waiter holds the queue up for at
//!   most that long. Unfair requests never overtake queued fair waiters, but they do not
//!   queue themselves: they take the lock once no fair waiter is queued.
//! - **Shared (reader) locks**: a leased row per reader in `lockhog_readers`, renewed,
//!   released and expiring as a holder's row; a writer that waits behind readers queues, so
//!   later readers wait for it (writer priority). See `readers.rs`.
//! - **Cancel safety**: an attempt runs on a thread of its own and outlives an acquire that is
//!   dropped; if the acquire was dropped before the attempt began to commit, the attempt
//!   takes nothing, and a row or ticket it committed meanwhile is given back in the
//!   background as soon as it finishes.
//!
//! # Time
//!
//! Expiry is judged by the wall clock (UNIX milliseconds) of whichever process looks, since
//! processes share the file but not their monotonic clocks. A wall clock stepped forward by
//! more than a lease makes live leases look expired (another process may take the lock; the
//! holder learns it at its next renewal); stepped back, it makes dead holders' leases last
//! longer by the step. Keep the clock slewed (NTP), not stepped.

mod acquire;
mod db;
mod lease;
mod look;
mod readers;
mod schema;
mod semaphore;
mod status;
mod sync;
mod trust;
mod wait;
mod worker;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use self::acquire::{Attempt, Claim, Interest, Outcome, Queue, Row};
use self::db::{Db, Failure, Sync, SCHEME};
use self::lease::RowLease;
use super::lease::Renewal;
use super::owner::new_owner;
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::error::{Error, Result};
use crate::name::{percent_decode, LockKey, LockName};
use crate::url::parse_duration;
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::row::BackendRow =
    super::row::BackendRow::of::<SqliteBackend>(&["sqlite"], Some("sqlite"), |url| {
        Ok(super::row::connecting(SqliteBackend::open(url)?))
    });

/// The lease when neither the URL (`?ttl=`) nor the request says.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How long a fair waiter's ticket lives without a poll; waiters poll at least five times in
/// this span.
pub const TICKET_TTL: Duration = Duration::from_secs(5);

/// The `sqlite://` backend. See the [module docs](self). Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteBackend {
    db: Arc<Db>,
    steal_after: Option<Duration>,
}

/// A held SQLite lock: our row (given back when dropped) and its renewal task.
#[derive(Debug)]
pub struct SqliteHeld {
    // Field order matters: the renewal stops before the row is given back.
    renewal: Renewal,
    claim: Claim,
}

impl SqliteBackend {
    /// Opens the database of a `sqlite:///abs/path.db` URL (namespace and ttl already taken
    /// off), creating the file and lockhog's tables when missing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a relative path or an unknown option;
    /// [`Error::InvalidOption`] for a `steal_after` that is not a positive duration;
    /// [`Error::Backend`] when the directory is missing, the file is not a SQLite database or
    /// cannot be opened for writing.
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn open(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let path = url
            .body()
            .strip_prefix("//")
            .and_then(|rest| rest.strip_prefix("localhost").or(Some(rest)))
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| url.invalid("expected an absolute path: sqlite:///abs/path.db"))?;
        let path =
            percent_decode(path).ok_or_else(|| url.invalid("bad percent-encoding in the path"))?;
        let steal_after = url
            .take_option("steal_after")
            .map(|s| parse_duration(&s))
            .transpose()?;
        if steal_after.is_some_and(|s| s.is_zero()) {
            return Err(Error::InvalidOption {
                reason: "steal_after must be above zero (leave it out to never steal)".into(),
            });
        }
        let sync = match url.take_option("synchronous") {
            None => Sync::Full,
            Some(s) => Sync::parse(&s)
                .ok_or_else(|| url.invalid("synchronous is full (the default) or normal"))?,
        };
        Ok(async move {
            let db = tokio::task::spawn_blocking(move || Db::open(path.into(), sync))
                .await
                .map_err(|e| {
                    Error::backend(SCHEME, format!("opening the database failed: {e}"))
                })??;
            Ok(SqliteBackend {
                db: Arc::new(db),
                steal_after,
            })
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// How many fair waiters are queued for the lock `name` of `namespace` (tickets whose
    /// waiters are still polling).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::Backend`].
    pub async fn waiting(&self, namespace: &str, name: &str) -> Result<u64> {
        let row = Row::of(&LockKey::new(namespace, LockName::new(name)?));
        Ok(self
            .db
            .call("reading the queue in", move |c| status::waiting(c, &row))
            .await?)
    }

    fn check_steal_after(
        &self,
        steal_after: Option<Duration>,
        ttl: Duration,
    ) -> Result<(), Failure> {
        match steal_after {
            Some(s) if s < ttl => Err(Error::InvalidOption {
                reason: format!(
                    "steal_after ({s:?}) is shorter than the lease ttl ({ttl:?}): a live \
                     holder's lock would be taken before a dead holder's lease could run out; \
                     give a steal_after of at least the ttl, or a shorter ttl"
                ),
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// One attempt; returns when it started (the lease counts from there) and how it went.
    async fn attempt(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        queue: Queue,
    ) -> Result<(Instant, Outcome), Failure> {
        let ttl = ctx.options.ttl.unwrap_or(DEFAULT_TTL);
        // The request's own, else the URL's.
        let steal_after = ctx.options.steal_after.or(self.steal_after);
        self.check_steal_after(steal_after, ttl)?;
        if ctx.options.shared && ctx.options.fair {
            return Err(Error::InvalidOption {
                reason: "the sqlite backend has no fair (FIFO) shared locks: readers never \
                         queue, they wait behind every queued writer"
                    .into(),
            }
            .into());
        }
        let owner = String::from_utf8_lossy(&new_owner()).into_owned();
        let row = if ctx.options.shared {
            Row::reader(key)
        } else {
            Row::of(key)
        };
        let a = Attempt {
            row,
            owner,
            ttl,
            steal_after,
            fenced: ctx.options.fencing,
            queue,
            interest: Interest::default(),
        };
        // Dropped with this future (or after it completed, when it changes nothing).
        struct Abandon(Interest);
        impl Drop for Abandon {
            fn drop(&mut self) {
                self.0.abandon();
            }
        }
        let _abandon = Abandon(a.interest.clone());
        let (db, runtime) = (self.db.clone(), tokio::runtime::Handle::current());
        let started = Instant::now();
        let outcome = self
            .db
            .call("acquiring a lock in", move |c| {
                acquire::attempt(&db, c, a, runtime)
            })
            .await?;
        Ok((started, outcome))
    }

    fn held(
        &self,
        claim: Claim,
        token: Option<u64>,
        started: Instant,
        ctx: &AcquireContext,
    ) -> Acquired<SqliteHeld> {
        let ttl = ctx.options.ttl.unwrap_or(DEFAULT_TTL);
        let lease = RowLease {
            db: claim.db.clone(),
            row: claim.row.clone(),
            owner: claim.owner.clone(),
            ttl,
        };
        Acquired {
            held: SqliteHeld {
                renewal: Renewal::spawn(lease, ttl, started + ttl, ctx.lost.clone()),
                claim,
            },
            token,
        }
    }
}

impl Backend for SqliteBackend {
    type Held = SqliteHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lease: true,
            native_fencing: true,
            lost_notice: true,
            fair: true,
            crash_release: true,
            cross_process: true,
            steal_after: true,
            semaphore: true,
            shared: true,
            // A writer that waits behind readers queues, and readers never overtake a queued
            // waiter (see `readers.rs`).
            shared_writer_priority: true,
            ..Capabilities::default()
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        format!(
            "{}#{}/{}",
            self.db.path().display(),
            key.namespace(),
            key.name()
        )
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<SqliteHeld>>> {
        match self.attempt(key, ctx, Queue::Outside).await? {
            (started, Outcome::Acquired { claim, token }) => {
                Ok(Some(self.held(claim, token, started, ctx)))
            }
            (_, Outcome::Busy { .. }) => Ok(None),
        }
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<SqliteHeld>>> {
        self.wait(key, ctx, deadline).await
    }

    async fn record_permits(&self, key: &LockKey, permits: u32) -> Result<()> {
        let row = Row::of(key);
        let recorded = self
            .db
            .call_write("recording a semaphore's count in", move |c| {
                semaphore::record(c, &row, permits)
            })
            .await?;
        match u32::try_from(recorded) {
            Ok(recorded) if recorded == permits => Ok(()),
            Ok(recorded) => Err(super::slots::count_mismatch(key, recorded, permits)),
            Err(_) => Err(super::slots::count_mismatch(key, u32::MAX, permits)),
        }
    }

    async fn release(&self, mut held: SqliteHeld) -> Result<bool> {
        held.renewal.stop();
        let (db, row, owner) = (
            held.claim.db.clone(),
            held.claim.row.clone(),
            held.claim.owner.clone(),
        );
        let ours = db
            .call_write("releasing a lock in", move |c| {
                acquire::delete(c, &row, &owner)
            })
            .await?;
        // Only now: had the delete failed, dropping `held` would try again in the background.
        held.claim.disarm();
        db.notify_released();
        Ok(ours)
    }

    fn release_on_drop(&self, held: SqliteHeld) {
        // Stops the renewal, then the claim deletes our row on the blocking pool.
        drop(held);
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let rows: Vec<Row> = keys.iter().map(Row::of).collect();
        let ns = namespace.to_string();
        let found = self
            .db
            .call("reading locks in", move |c| status::status(c, &ns, &rows))
            .await?;
        let path = self.db.path().display().to_string();
        Ok(found
            .into_iter()
            .map(|s| {
                let name = String::from_utf8(s.name.clone()).ok();
                let resource = format!(
                    "{path}#{namespace}/{}",
                    name.clone()
                        .unwrap_or_else(|| String::from_utf8_lossy(&s.name).into_owned())
                );
                LockStatus::new(name, resource, s.state, s.holder)
            })
            .collect())
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        let ns = namespace.to_string();
        Ok(self
            .db
            .call_write("cleaning up", move |c| status::cleanup(c, &ns))
            .await?)
    }
}
