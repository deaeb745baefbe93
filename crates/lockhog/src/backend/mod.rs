//! The [`Backend`] trait every lock store implements, and the backends themselves.
//!
//! # Writing a backend
//!
//! A backend turns a [`LockKey`] into a resource of its store and knows how to take and give
//! back that resource. It implements [`Backend`]:
//!
//! - `Held` is the per-acquisition state that `release` consumes (as in `lock_api`): the open
//!   file, the owner token and connection, the lease. The library keeps it inside the
//!   [`LockGuard`](crate::LockGuard) and hands it back exactly once, to `release` or to
//!   `release_on_drop`.
//! - `try_acquire` makes one attempt and returns `Ok(None)` when someone else holds the lock. A
//!   failure to talk to the store is `Err(Error::Backend { .. })`, never `Ok(None)`.
//! - `wait_acquire` waits until the deadline. The provided version polls `try_acquire` with
//!   the caller's [`RetryPolicy`](crate::RetryPolicy); override it when the store can wake a
//!   waiter on release (a blocking call, a notification) and say so in
//!   [`Capabilities::native_wait`].
//! - Every successful acquire of a named key returns a fencing token strictly greater than
//!   that of every earlier holder of the same key on the same store, unless the request opted
//!   out ([`AcquireOptions::fencing`] false): then it skips its counter and returns `None`
//!   (or the token anyway, when it costs nothing: [`Capabilities::free_fencing`]). A foreign resource (see
//!   below) returns one only when the store itself numbers its holders.
//! - Futures must be cancel safe: dropping one at any await point leaves nothing held.
//! - `release_on_drop` runs inside `Drop` and must not block: spawn the work on a runtime
//!   handle captured at acquire time, or do something that cannot block.
//! - A backend that can lose a lock while its guard lives (a lease that ran out, a connection
//!   that died) calls [`LostSender::mark_lost`] on the sender found in the
//!   [`AcquireContext`].
//!
//! # Locking a resource another program names
//!
//! Code under test often takes locks under names another library chose:
//! `pg_advisory_lock(42)`, `GET_LOCK('import')`, `flock` on `/run/app.pid`. A backend whose
//! store has such a convention lets [`Locker::lock_resource`](crate::Locker::lock_resource)
//! take them, through one function, [`Backend::parse_resource`]:
//!
//! - it checks the text (the same syntax `resource` prints for a named lock, so what
//!   `lockhog hold` prints can be given back) and returns it in the one form the backend
//!   will later read back from [`LockKey::foreign_resource`]; bad text is
//!   [`Error::InvalidOption`] naming the expected form (use [`bad_resource`]). It takes no
//!   `self` and does no I/O, so a bad resource is refused before the store is touched
//!   ([`Locker::check_resource`](crate::Locker::check_resource) runs it from the URL alone,
//!   before connecting: connecting may create a directory or a database file);
//! - `try_acquire`, `wait_acquire` and `status` then see keys whose
//!   [`LockKey::foreign_resource`] is `Some`, and lock exactly that resource: no lockhog
//!   namespace or digest, and nothing written that the other program would not write (no
//!   fencing counter in someone's pid file);
//! - the token is `None` unless the store numbers holders itself (etcd's revisions); say so
//!   in [`Capabilities::resource_fencing`];
//! - `resource` is never called for such keys: the library prints the parsed text.
//!
//! The provided `parse_resource` refuses every resource, naming the backends that have them
//! ([`RESOURCE_FORMS`]): a backend without a convention (`mem:`, `sqlite:`) needs nothing.
//! Adding one to a built-in backend is that function, the `foreign_resource` branch in its
//! acquire and status, its form in [`RESOURCE_FORMS`], and its interop tests against the
//! other client (its row already points at `parse_resource` through
//! `BackendRow::of` in `row.rs`).
//!
//! Use it through [`Locker::with_backend`](crate::Locker::with_backend), and run the
//! conformance suite in [`testkit`](crate::testkit) against it with a target made by
//! [`Target::from_factory`](crate::testkit::Target::from_factory) (the crate's
//! `tests/out_of_tree_backend.rs` does both for an in-memory backend).
//!
//! # Adding a backend to lockhog
//!
//! One module, one feature, one row, one conformance line:
//!
//! 1. A module `backend/<name>` with the type implementing [`Backend`] and a constructor that
//!    takes the backend's own options off the [`BackendUrl`] without I/O
//!    and returns the future that connects.
//! 2. A cargo feature in `crates/lockhog/Cargo.toml` for its dependencies (forwarded by the
//!    CLI's `Cargo.toml`), and `#[cfg(feature = "<name>")] pub mod <name>;` here.
//! 3. Its row, `pub(crate) const ROW: row::BackendRow = BackendRow::of::<TheBackend>(..)` in
//!    the module: its URL schemes, its feature and its connect function, with `.port(N)` for
//!    a backend reached over TCP (its default port, which [`default_port`] answers, e.g. for
//!    the torture proxy). Add the row to the list in `registry.rs`, with a
//!    `BackendRow::not_built` twin for builds without the feature, so its URLs are told which
//!    feature they need. The registry refuses options the backend did not take, so a backend
//!    never checks for unknown options itself.
//! 4. One `conformance_suite!` line in the CLI crate's `tests/conformance.rs`, and a line in
//!    the URL table of the crate docs.

mod capabilities;
mod erased;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod file;
#[cfg(feature = "etcd")]
mod finish;
mod foreign;
pub mod lease;
mod lost;
pub mod mem;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "mysql")]
pub mod mysql;
mod named_semaphores;
#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "sqlite",
    feature = "etcd"
))]
mod owner;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub(crate) mod registry;
mod row;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod session_pool;
pub mod slots;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::future::Future;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;

pub use crate::name::LockKey;
pub use crate::options::AcquireOptions;
pub use crate::url::BackendUrl;
pub use capabilities::Capabilities;
pub(crate) use erased::{BoxFuture, DynBackend, ErasedHeld};
pub(crate) use foreign::scoped_parse;
pub use foreign::{bad_resource, RESOURCE_FORMS};
pub use lost::LostSender;
pub use slots::Permit;

use crate::error::{Error, Result};

/// What a successful acquire returns to the library.
#[derive(Debug)]
pub struct Acquired<H> {
    /// The backend's per-acquisition state, handed back to `release`.
    pub held: H,
    /// The fencing token: strictly greater than every earlier holder's of the same key.
    /// Always `Some` for a named key unless the request opted out
    /// ([`AcquireOptions::fencing`] false: then `None`, unless the token comes free); for a
    /// foreign resource, `Some` only when the store numbers its holders itself.
    pub token: Option<u64>,
}

/// What a backend gets on each acquire: the caller's options, the sender to report a lost lock
/// on, and an attempt counter for statistics.
#[derive(Debug)]
pub struct AcquireContext {
    /// ttl and retry policy.
    pub options: AcquireOptions,
    /// Call [`LostSender::mark_lost`] when the lock is lost while its guard lives.
    pub lost: LostSender,
    attempts: AtomicU32,
}

impl AcquireContext {
    pub(crate) fn new(options: AcquireOptions, lost: LostSender) -> Self {
        AcquireContext {
            options,
            lost,
            attempts: AtomicU32::new(0),
        }
    }

    /// Counts one attempt to take the lock from the store (a `try_lock`, a `SET NX`, one
    /// blocking wait). The provided `wait_acquire` counts its own; a native one calls this.
    pub fn note_attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }
}

/// Whether a lock is held, as a backend's status sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockState {
    /// Someone holds it.
    Held,
    /// Nobody holds it.
    Free,
    /// The backend cannot tell.
    Unknown,
}

/// One lock as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockStatus {
    /// The lock's name, when the backend can recover it from the resource.
    pub name: Option<String>,
    /// The backend's own name for the lock (a file path, `advisory:<key>`, a Redis key).
    pub resource: String,
    /// Held or free.
    pub state: LockState,
    /// Who holds it, when the backend knows (e.g. `pid 4242`).
    pub holder: Option<String>,
}

impl LockStatus {
    /// A status line for `resource`.
    pub fn new(
        name: Option<String>,
        resource: String,
        state: LockState,
        holder: Option<String>,
    ) -> Self {
        LockStatus {
            name,
            resource,
            state,
            holder,
        }
    }
}

/// What `cleanup` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Stale resources removed (unheld lock files, expired rows).
    pub removed: u64,
    /// Resources left because they were held.
    pub kept: u64,
}

impl CleanupReport {
    /// A report of `removed` and `kept` resources.
    pub fn new(removed: u64, kept: u64) -> Self {
        CleanupReport { removed, kept }
    }
}

/// A lock store. See the [module docs](self) for the contract an implementation keeps.
pub trait Backend: Send + Sync + 'static {
    /// Per-acquisition state consumed by `release`.
    type Held: Send + Sync + 'static;

    /// The URL scheme, used in messages (`file`, `mem`, `postgres`).
    fn scheme(&self) -> &'static str;

    /// What this backend guarantees.
    fn capabilities(&self) -> Capabilities;

    /// The backend's own name for the lock, printed by `hold` and `status`. Called only for
    /// named keys (a foreign resource is printed as [`Backend::parse_resource`] returned it).
    fn resource(&self, key: &LockKey) -> String;

    /// Checks `resource`, a lock another program takes under the store's own convention, and
    /// returns it in the form [`LockKey::foreign_resource`] will carry to this backend's
    /// acquire and status. No `self` and no I/O: it runs before connecting. See the module
    /// docs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the expected form, its reason reading on from the
    /// backend's name ([`bad_resource`]). The provided version refuses every resource,
    /// naming the backends that have them.
    fn parse_resource(resource: &str) -> Result<String> {
        let _ = resource;
        Err(Error::InvalidOption {
            reason: format!(
                "locks names only, no resource of another program; backends that do: \
                 {RESOURCE_FORMS}"
            ),
        })
    }

    /// One attempt: `Ok(None)` when someone else holds the lock.
    fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> impl Future<Output = Result<Option<Acquired<Self::Held>>>> + Send;

    /// One attempt decided at once, with nothing to await (a lock taken by a system call):
    /// `None` when this backend cannot decide so, and the caller awaits
    /// [`Backend::try_acquire`] instead. The provided version always says `None`. A backend
    /// whose attempt never waits saves a future per attempt.
    fn try_acquire_now(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Option<Result<Option<Acquired<Self::Held>>>> {
        let _ = (key, ctx);
        None
    }

    /// Waits until acquired or until `deadline` (`None`: forever); `Ok(None)` when the deadline
    /// passed. The provided version polls [`Backend::try_acquire`] with the retry policy.
    fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Option<Acquired<Self::Held>>>> + Send {
        poll(ctx, deadline, move || self.try_acquire(key, ctx))
    }

    /// Records `permits` as the permit count of the semaphore `key` the first time, and
    /// refuses with [`Error::InvalidOption`] a count that differs from the recorded one.
    /// The default refuses every semaphore: a backend that keeps the count implements this
    /// (and says so in [`Capabilities::semaphore`]), and gets the slot-based permits of
    /// [`slots`] from the provided [`Backend::try_acquire_permit`].
    fn record_permits(
        &self,
        key: &LockKey,
        permits: u32,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (key, permits);
        let scheme = self.scheme();
        async move { Err(slots::unsupported(scheme)) }
    }

    /// One attempt at one of the `permits` permits of the semaphore `key`: `Ok(None)` when all
    /// are held. The provided version records the count and tries the slots `0..permits`
    /// (see [`slots`]), each an ordinary lock of this backend, so permits inherit the lock's
    /// crash release, leases and lost notice.
    fn try_acquire_permit(
        &self,
        key: &LockKey,
        permits: u32,
        ctx: &AcquireContext,
    ) -> impl Future<Output = Result<Option<Permit<Self::Held>>>> + Send {
        async move {
            self.record_permits(key, permits).await?;
            slots::try_slots(self, key, permits, ctx).await
        }
    }

    /// Waits for a permit until `deadline` (`None`: forever); `Ok(None)` when the deadline
    /// passed. The provided version records the count once, then polls the slots with the
    /// retry policy.
    fn wait_acquire_permit(
        &self,
        key: &LockKey,
        permits: u32,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Option<Permit<Self::Held>>>> + Send {
        async move {
            self.record_permits(key, permits).await?;
            poll(ctx, deadline, || slots::try_slots(self, key, permits, ctx)).await
        }
    }

    /// Gives the lock back. `Ok(true)` when it was still ours, `Ok(false)` when it had been
    /// lost (expired, taken over) before the release.
    fn release(&self, held: Self::Held) -> impl Future<Output = Result<bool>> + Send;

    /// Gives the lock back at once, with nothing to await (a descriptor unlocked): `Err(held)`
    /// when this backend cannot, and the caller awaits [`Backend::release`] instead. The
    /// provided version always hands `held` back.
    fn release_now(&self, held: Self::Held) -> std::result::Result<Result<bool>, Self::Held> {
        Err(held)
    }

    /// Gives the lock back from `Drop`, without blocking. The default drops `held`, which is
    /// right when dropping it releases (a closed file, a returned permit).
    fn release_on_drop(&self, held: Self::Held) {
        drop(held);
    }

    /// A descriptor whose copy in a child process keeps the lock held for as long as the child
    /// keeps it open, even after this process died: the `flock(2)` descriptor that `flock(1)`
    /// hands to its command. `None` (the default) where no descriptor carries the lock (a
    /// connection's session, a lease, a process-owned record lock).
    fn inheritable_fd<'h>(&self, held: &'h Self::Held) -> Option<BorrowedFd<'h>> {
        let _ = held;
        None
    }

    /// The locks named by `keys`, or every lock of `namespace` the backend can find when
    /// `keys` is empty.
    fn status(
        &self,
        namespace: &str,
        keys: &[LockKey],
    ) -> impl Future<Output = Result<Vec<LockStatus>>> + Send;

    /// Removes stale resources of `namespace` that nobody holds.
    fn cleanup(&self, namespace: &str) -> impl Future<Output = Result<CleanupReport>> + Send;
}

/// Calls `attempt` until it acquires, spaced by the retry policy's backoff, until `deadline`
/// or the policy's cap on attempts: `Ok(None)` then. Counts each attempt in `ctx`.
pub(crate) async fn poll<A, F, Fut>(
    ctx: &AcquireContext,
    deadline: Option<Instant>,
    attempt: F,
) -> Result<Option<A>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<A>>>,
{
    poll_or_woken(ctx, deadline, None, attempt).await
}

/// [`poll`], and also attempting again as soon as `wake` is notified (armed before each
/// attempt, so a notification between its answer and the wait is not missed).
pub(crate) async fn poll_or_woken<A, F, Fut>(
    ctx: &AcquireContext,
    deadline: Option<Instant>,
    wake: Option<&tokio::sync::Notify>,
    mut attempt: F,
) -> Result<Option<A>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<A>>>,
{
    let retry = ctx.options.retry;
    let mut made = 0u32;
    loop {
        let mut notified = wake.map(|n| Box::pin(n.notified()));
        if let Some(n) = &mut notified {
            n.as_mut().enable();
        }
        ctx.note_attempt();
        made = made.saturating_add(1);
        if let Some(acquired) = attempt().await? {
            return Ok(Some(acquired));
        }
        if retry.attempt_limit().is_some_and(|cap| made >= cap) {
            return Ok(None);
        }
        let mut wake = Instant::now() + retry.delay(made);
        if let Some(deadline) = deadline {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            wake = wake.min(deadline);
        }
        match notified {
            Some(notified) => {
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(wake) => {}
                }
            }
            None => tokio::time::sleep_until(wake).await,
        }
    }
}

/// The TCP port a URL of `scheme` connects to when it names none (`5432` for `postgres`),
/// for the backends in this build; `None` for other schemes and for stores not reached over
/// TCP (`file`, `sqlite`, `mem`).
///
/// # Examples
///
/// ```
/// assert_eq!(lockhog::backend::default_port("file"), None);
/// assert_eq!(lockhog::backend::default_port("gopher"), None);
/// ```
pub fn default_port(scheme: &str) -> Option<u16> {
    registry::default_port(scheme)
}

/// `e`'s text, then each of its causes that the text does not say already: for clients whose
/// errors name only the kind of failure and keep what went wrong in their sources.
#[cfg(any(feature = "postgres", feature = "etcd"))]
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
