//! Locks that hold across threads, processes and machines — one API over many backends — and
//! tools to hog them in tests.
//!
//! # Hog a lock in a test
//!
//! `pay_individual` must refuse to run while someone else is paying. The test takes the lock
//! from another thread and keeps it, so the call must fail; [`hog::hog_lock`] returns only once
//! the lock is held, so nothing sleeps:
//!
//! ```
//! use std::sync::Mutex;
//!
//! static PAY_LOCK: Mutex<()> = Mutex::new(());
//!
//! fn pay_individual() -> Result<(), &'static str> {
//!     let _paying = PAY_LOCK.try_lock().map_err(|_| "already paying")?;
//!     Ok(())
//! }
//!
//! let hog = lockhog::hog::hog_lock(|| PAY_LOCK.lock().unwrap())?;
//! assert_eq!(pay_individual(), Err("already paying"));
//! hog.release()?;
//! assert_eq!(pay_individual(), Ok(()));
//! # Ok::<(), lockhog::hog::HogError>(())
//! ```
//!
//! The same works for any lock: a tokio mutex ([`hog::async_hog_lock`]), a lockhog lock on any
//! backend, a lock only another process can block ([`hog::HogFrom::Process`] runs
//! `lockhog hold`). See [`hog`].
//!
//! # Take a lock
//!
//! Connect a [`Locker`] to a backend by URL, ask it for a lock by name, and hold the
//! [`LockGuard`] for as long as the critical section runs:
//!
//! ```
//! use std::time::Duration;
//! use lockhog::{Error, Locker};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # let url = format!("file://{}", dir.path().display());
//! let locker = Locker::connect(&url).await?; // or Locker::from_env()
//!
//! // Wait at most five seconds for the lock.
//! let guard = locker.lock("nightly-report").wait_for(Duration::from_secs(5)).await?;
//! let token = guard.fencing_token(); // hand it to the resource you protect
//!
//! // Anyone else who asks not to wait is turned away, and can tell that from a failure.
//! match locker.lock("nightly-report").try_acquire().await {
//!     Err(Error::Contended { .. }) => {}
//!     other => panic!("{other:?}"),
//! }
//!
//! assert!(guard.release().await?); // true: the lock was still ours
//! # let _ = token;
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! Synchronous code uses the same API from [`blocking`].
//!
//! # Hog the lock your code already takes
//!
//! [`Locker::lock_resource`] takes a lock by the name another program gives it in the store
//! (`advisory:42` for `pg_advisory_lock(42)`, a `GET_LOCK` name, a pid file's path): the
//! RESOURCE that `lockhog hold` and `status` print. Such a lock has no fencing token unless the
//! store numbers its holders ([`Capabilities::resource_fencing`]).
//!
//! # Backends
//!
//! | URL | backend | cargo feature |
//! |---|---|---|
//! | `file:///abs/dir` | `flock(2)` on `<dir>/<name>.lock` (the default: see [`default_url`]); `?mode=fcntl` for POSIX record locks | always |
//! | `mem:` | in-process named locks | always |
//! | `postgres://…` | session-level advisory locks; transaction-level helpers for your own connection | `postgres` |
//! | `mysql://…` | `GET_LOCK` / `RELEASE_LOCK` named locks | `mysql` |
//! | `redis://…`, `rediss://…` | `SET NX PX` leases with compare-and-delete, renewed while held | `redis` |
//! | `redlock://h1:p1,h2:p2,h3:p3` | the Redlock quorum over independent Redis nodes | `redis` |
//! | `memcached://host:port` | `add` with expiry: a weak lock that eviction can lose | `memcached` |
//! | `sqlite:///abs/path.db` | a lock table with leases in an embedded database | `sqlite` |
//! | `etcd://h1:p1[,h2:p2…]`, `etcds://…` | lease + key ordered by create revision (FIFO); `etcds://` over TLS (`?ca=`, `cert=`/`key=`) | `etcd` |
//!
//! Query options `namespace=`, `ttl=` and `fencing=on|off` apply to every backend
//! (`fencing=off` takes every lock without a fencing token, as [`LockRequest::no_fencing`]
//! does, saving the store's counter on each acquire). Each backend's module says
//! how it maps names to its resources, how it wakes waiters and where its fencing tokens come
//! from; [`Locker::capabilities`] says what it guarantees.
//!
//! # Errors
//!
//! One [`Error`] enum: not acquired ([`Error::Contended`], [`Error::TimedOut`]) is kept apart
//! from bad input and from backend failures.

#![warn(missing_docs)]

pub mod backend;
pub mod blocking;
pub mod compute_once;
mod error;
mod guard;
pub mod hog;
mod lock_all;
mod locker;
mod max_hold;
mod name;
mod options;
pub mod protocol;
mod request;
mod secret;
mod semaphore;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod url;

pub use backend::{Capabilities, CleanupReport, LockState, LockStatus};
pub use compute_once::{compute_once, ComputeOnce};
pub use error::{BodyValue, BoxError, Error, Result};
pub use guard::{AcquireStats, LockGuard};
pub use lock_all::{LockAllGuard, LockAllRequest};
pub use locker::{IntoLockRequest, Locker, URL_ENV};
/// `#[lockhog::hogged(<hogger>)]`: hogs a lock around a `#[test]` or `#[tokio::test]` function
/// (see [`hog::hogged`] and [`hog::async_hogged`]).
pub use lockhog_macros::hogged;
pub use name::{LockName, DEFAULT_NAMESPACE, MAX_NAME_BYTES};
pub use options::{RetryPolicy, Wait};
pub use request::LockRequest;
pub use semaphore::SemaphoreRequest;
pub use url::default_url;
