//! The same API for synchronous code.
//!
//! Each call runs the async implementation to completion on a small runtime shared by every
//! blocking locker of the process (one worker thread, started on first use), so sync and
//! async users get the same backends and the same guarantees. The worker also carries the
//! background work of a held lock (lease renewal, release after Drop).
//!
//! # Panics
//!
//! Every blocking call panics when made from inside an async runtime, where it would block a
//! worker: use [`crate::Locker`] there.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! let locker = lockhog::blocking::Locker::connect("mem:")?;
//! let guard = locker.lock("cron:cleanup").wait_for(Duration::from_secs(5))?;
//! assert!(locker.lock("cron:cleanup").try_acquire().unwrap_err().is_not_acquired());
//! drop(guard);
//! let n = locker.with_lock("cron:cleanup", || 7)?;
//! assert_eq!(n, 7);
//! # Ok::<(), lockhog::Error>(())
//! ```
//!
//! Counting semaphores ([`Locker::semaphore`]) and several locks at once
//! ([`Locker::lock_all`]) work as their async counterparts do.

use std::future::Future;
use std::hash::Hash;
use std::sync::OnceLock;
use std::time::Duration;

use crate::backend::{Capabilities, CleanupReport, LockStatus};
use crate::error::Result;
use crate::guard::AcquireStats;
use crate::name::LockName;
use crate::options::{RetryPolicy, Wait};

/// The acquire methods of a blocking request wrapping the async request `crate::$async`: each
/// runs the async one to completion on this module's runtime and wraps its guard in `$guard`.
macro_rules! acquire_methods {
    ($async:literal, $guard:ident) => {
        /// One attempt.
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`crate::", $async, "::try_acquire`].")]
        pub fn try_acquire(self) -> Result<$guard> {
            block_on(self.0.try_acquire()).map($guard)
        }

        /// Waits at most `bound`.
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`crate::", $async, "::wait_for`].")]
        pub fn wait_for(self, bound: Duration) -> Result<$guard> {
            block_on(self.0.wait_for(bound)).map($guard)
        }

        /// Waits until acquired.
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`crate::", $async, "::wait`].")]
        pub fn wait(self) -> Result<$guard> {
            block_on(self.0.wait()).map($guard)
        }

        /// Acquires as configured (by default, waiting until acquired).
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`crate::", $async, "::acquire`].")]
        pub fn acquire(self) -> Result<$guard> {
            block_on(self.0.acquire()).map($guard)
        }
    };
}

mod lock_all;
mod semaphore;

pub use lock_all::{LockAllGuard, LockAllRequest};
pub use semaphore::SemaphoreRequest;

fn block_on<F: Future>(f: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "lockhog::blocking called from inside an async runtime; use lockhog::Locker there"
    );
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("lockhog-blocking")
                .enable_all()
                .build()
                .expect("cannot start lockhog's runtime")
        })
        .block_on(f)
}

/// A blocking handle on one lock store; see [`crate::Locker`].
#[derive(Clone, Debug)]
pub struct Locker {
    inner: crate::Locker,
}

impl Locker {
    /// Connects to the backend named by `url`; see [`crate::Locker::connect`].
    ///
    /// # Errors
    ///
    /// As [`crate::Locker::connect`].
    pub fn connect(url: &str) -> Result<Locker> {
        block_on(crate::Locker::connect(url)).map(Locker::from)
    }

    /// Connects to `LOCKHOG_URL` or the default file backend; see [`crate::Locker::from_env`].
    ///
    /// # Errors
    ///
    /// As [`crate::Locker::connect`].
    pub fn from_env() -> Result<Locker> {
        block_on(crate::Locker::from_env()).map(Locker::from)
    }

    /// The async locker underneath.
    pub fn as_async(&self) -> &crate::Locker {
        &self.inner
    }

    /// The same store under another namespace.
    ///
    /// # Errors
    ///
    /// As [`crate::Locker::with_namespace`].
    pub fn with_namespace(&self, namespace: &str) -> Result<Locker> {
        self.inner.with_namespace(namespace).map(Locker::from)
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        self.inner.url()
    }

    /// What the backend guarantees.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// Starts a request for the lock `name`.
    pub fn lock(&self, name: impl AsRef<str>) -> LockRequest {
        LockRequest(self.inner.lock(name))
    }

    /// Starts a request for the lock named by a [`Hash`] value (see [`LockName::from_hash`]).
    pub fn lock_hashed<H: Hash + ?Sized>(&self, value: &H) -> LockRequest {
        LockRequest(self.inner.lock_hashed(value))
    }

    /// Starts a request for a lock addressed by its foreign resource; see
    /// [`crate::Locker::lock_resource`].
    pub fn lock_resource(&self, resource: impl AsRef<str>) -> LockRequest {
        LockRequest(self.inner.lock_resource(resource))
    }

    /// Runs `f` while holding the lock `name`, waiting until it is acquired; see
    /// [`LockRequest::run`] for other ways of waiting.
    ///
    /// # Errors
    ///
    /// As [`LockRequest::run`].
    pub fn with_lock<T: Send + 'static>(
        &self,
        name: impl AsRef<str>,
        f: impl FnOnce() -> T,
    ) -> Result<T> {
        self.lock(name).run(f)
    }

    /// The backend's resource for `name`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidName`].
    pub fn resource(&self, name: &str) -> Result<String> {
        self.inner.resource(name)
    }

    /// See [`crate::Locker::status`].
    ///
    /// # Errors
    ///
    /// As [`crate::Locker::status`].
    pub fn status(&self, names: &[&str]) -> Result<Vec<LockStatus>> {
        block_on(self.inner.status(names))
    }

    /// See [`crate::Locker::status_resources`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidOption`], [`crate::Error::Backend`].
    pub fn status_resources(&self, resources: &[&str]) -> Result<Vec<LockStatus>> {
        block_on(self.inner.status_resources(resources))
    }

    /// See [`crate::Locker::cleanup`].
    ///
    /// # Errors
    ///
    /// As [`crate::Locker::cleanup`].
    pub fn cleanup(&self) -> Result<CleanupReport> {
        block_on(self.inner.cleanup())
    }
}

impl From<crate::Locker> for Locker {
    fn from(inner: crate::Locker) -> Self {
        Locker { inner }
    }
}

/// How to take one lock; see [`crate::LockRequest`].
#[must_use = "a lock request does nothing until acquired"]
#[derive(Debug)]
pub struct LockRequest(crate::LockRequest);

impl LockRequest {
    /// See [`crate::LockRequest::ttl`].
    pub fn ttl(self, ttl: Duration) -> Self {
        LockRequest(self.0.ttl(ttl))
    }
    /// See [`crate::LockRequest::retry`].
    pub fn retry(self, policy: RetryPolicy) -> Self {
        LockRequest(self.0.retry(policy))
    }
    /// See [`crate::LockRequest::max_hold`] (the timer runs on this module's runtime).
    pub fn max_hold(self, limit: Duration) -> Self {
        LockRequest(self.0.max_hold(limit))
    }
    /// See [`crate::LockRequest::steal_after`].
    pub fn steal_after(self, limit: Duration) -> Self {
        LockRequest(self.0.steal_after(limit))
    }
    /// See [`crate::LockRequest::no_wait`].
    pub fn no_wait(self) -> Self {
        LockRequest(self.0.no_wait())
    }
    /// See [`crate::LockRequest::wait_at_most`].
    pub fn wait_at_most(self, bound: Duration) -> Self {
        LockRequest(self.0.wait_at_most(bound))
    }
    /// See [`crate::LockRequest::shared`].
    pub fn shared(self) -> Self {
        LockRequest(self.0.shared())
    }
    /// See [`crate::LockRequest::fair`].
    pub fn fair(self) -> Self {
        LockRequest(self.0.fair())
    }
    /// See [`crate::LockRequest::no_fencing`].
    pub fn no_fencing(self) -> Self {
        LockRequest(self.0.no_fencing())
    }
    /// See [`crate::LockRequest::waiting`].
    pub fn waiting(self, wait: Wait) -> Self {
        LockRequest(self.0.waiting(wait))
    }

    acquire_methods!("LockRequest", LockGuard);

    /// Runs `f` while holding the lock, then releases it (also when `f` panics). When the lock
    /// is not acquired, `f` does not run.
    ///
    /// # Errors
    ///
    /// As [`crate::LockRequest::run`]: those of [`crate::LockRequest::acquire`] (then `f` did
    /// not run), and [`crate::Error::LostWhileHeld`] with `f`'s value when the lock was lost
    /// while `f` ran or its release failed.
    pub fn run<T: Send + 'static>(self, f: impl FnOnce() -> T) -> Result<T> {
        self.acquire()?.run(f)
    }
}

/// A held lock; see [`crate::LockGuard`]. Released by [`LockGuard::release`] or on Drop.
#[derive(Debug)]
pub struct LockGuard(crate::LockGuard);

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &LockName {
        self.0.name()
    }
    /// The backend's own name for the lock.
    pub fn resource(&self) -> &str {
        self.0.resource()
    }
    /// The fencing token; see [`crate::LockGuard::fencing_token`].
    pub fn fencing_token(&self) -> Option<u64> {
        self.0.fencing_token()
    }
    /// How the acquire went.
    pub fn stats(&self) -> AcquireStats {
        self.0.stats()
    }
    /// True once the backend has reported the lock lost.
    pub fn is_lost(&self) -> bool {
        self.0.is_lost()
    }
    /// Waits at most `bound` for the lock to be reported lost; `Some(reason)` if it was.
    pub fn wait_lost(&self, bound: Duration) -> Option<String> {
        block_on(async { tokio::time::timeout(bound, self.0.lost()).await.ok() })
    }
    /// Releases the lock; see [`crate::LockGuard::release`].
    ///
    /// # Errors
    ///
    /// As [`crate::LockGuard::release`].
    pub fn release(self) -> Result<bool> {
        block_on(self.0.release())
    }
    /// The async guard inside.
    pub fn into_async(self) -> crate::LockGuard {
        self.0
    }

    /// Runs `f`, then releases: `f`'s value, or [`crate::Error::LostWhileHeld`] with it when
    /// the lock was lost meanwhile or its release failed. A panic in `f` drops the guard,
    /// which releases.
    fn run<T: Send + 'static>(self, f: impl FnOnce() -> T) -> Result<T> {
        let out = f();
        block_on(self.0.release_after(out))
    }
}
