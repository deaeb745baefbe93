//! The hog toolkit: take a lock from another thread, task or process and keep it until told to
//! release, so a test can check that the code under test fails fast (or waits) while the lock
//! is taken. The names follow the Python `lock-hog` tool: [`hog_lock`], [`LockHogger`],
//! [`async_hog_lock`], [`AsyncLockHogger`], [`HogFrom`], [`hogged`], and [`contend`] for the
//! deterministic race.
//!
//! # The simplest case
//!
//! `pay_individual` must refuse to run while another thread is paying. The test hogs the lock
//! from another thread and checks that the call fails:
//!
//! ```
//! use std::sync::Mutex;
//!
//! static PAY_LOCK: Mutex<()> = Mutex::new(());
//!
//! #[derive(Debug, PartialEq)]
//! struct AlreadyPaying;
//!
//! fn pay_individual() -> Result<(), AlreadyPaying> {
//!     let _guard = PAY_LOCK.try_lock().map_err(|_| AlreadyPaying)?;
//!     // ... pay ...
//!     Ok(())
//! }
//!
//! let hog = lockhog::hog::hog_lock(|| PAY_LOCK.lock().unwrap())?;
//! assert_eq!(pay_individual(), Err(AlreadyPaying));
//! hog.release()?;
//! assert_eq!(pay_individual(), Ok(()));
//! # Ok::<(), lockhog::hog::HogError>(())
//! ```
//!
//! [`hog_lock`] returns only once the lock is held, so there is nothing to wait for and
//! nothing to sleep on. The guard (`MutexGuard` is not `Send`) is made and dropped on the hog's
//! thread.
//!
//! # What can be hogged
//!
//! Anything a [`Hogger`] knows how to acquire and release: a closure returning a guard, a
//! [`LockHogger`] (fallible `acquire_lock` / `release_lock`), a `&'static` `std` lock, a
//! lockhog [`LockRequest`](crate::LockRequest), or a [`NamedLock`] (URL and name), which a hog
//! takes through a connection of its own so that it truly conflicts with the test's.
//!
//! # The forms
//!
//! | form | hog lives in | release |
//! |---|---|---|
//! | [`hog_lock`] / [`HogOptions::hog_lock`] | a thread | [`HogHandle::release`] or Drop |
//! | [`hog_scoped`] / [`with_hogged`] | a scoped thread: the lock may be borrowed | as above |
//! | [`hogged`] / [`#[lockhog::hogged(..)]`](macro@crate::hogged) | a thread, around a body | after the body, even if it panics |
//! | [`async_hog_lock`] / [`async_hogged`] | a tokio task | [`AsyncHogHandle::release`] or Drop |
//! | [`async_hog_lock_local`] | a local task (guards that are not `Send`) | as above |
//! | [`NamedLock::hog`] with [`HogFrom::Process`] | a `lockhog hold` child | as above, or [`HogHandle::abandon`] |
//!
//! # Nothing hangs
//!
//! Every wait is bounded ([`HogOptions`]): a hogger that fails or panics while acquiring is
//! reported at once; one that has not acquired within the acquire timeout (10 s) is reported,
//! and releases at once if it acquires later; one that has not finished releasing within the
//! release timeout (1 s) is reported as [`HogError::StillHolding`] (a process hog is killed).
//! The one exception is the scoped form, whose scope must wait for its threads.
//!
//! # Examples of the Python guide
//!
//! The tests `tests/hog_examples.rs` play each scenario of the original guide in Rust: the
//! debounced function with a `std` mutex, as a decorator and as an attribute, an async lock,
//! and a file lock. The database scenarios (a Postgres transaction-level advisory lock held
//! from another transaction, a Redis lock) come with those backends.

mod async_hogger;
mod contend;
mod contend_async;
mod error;
mod hogged;
mod hogger;
mod named;
mod options;
mod process;
mod scoped;
mod task;
mod thread;
pub(crate) mod tied;

pub use async_hogger::{AsyncHogger, AsyncLockHogger};
pub use contend::{contend, ContendOptions, Contender, DEFAULT_CONTEND_TIMEOUT};
pub use contend_async::{contend_async, AsyncContender};
pub use error::{ContendError, HogError};
pub use hogged::{async_hogged, hogged};
pub use hogger::{marker, try_fn, HogContext, Hogger, LockHogger, TryFn};
pub use named::{HogFrom, NamedHeld, NamedLock};
pub use options::{HogOptions, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_RELEASE_TIMEOUT};
pub use process::{find_binary, BIN_ENV};
pub use scoped::{hog_scoped, with_hogged, ScopedHogHandle};
pub use task::{async_hog_lock, async_hog_lock_local, AsyncHogHandle};
pub use thread::{hog_lock, HogHandle};
