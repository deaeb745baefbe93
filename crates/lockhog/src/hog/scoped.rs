//! The scoped form: hog a lock that is not `'static` (a local `Mutex`, a borrowed connection)
//! from a thread of a [`std::thread::scope`].
//!
//! The price of borrowing: the scope waits for every thread it started, so a hogger that never
//! finishes acquiring or releasing keeps the scope from ending (the error is still reported to
//! the caller first). Prefer [`hog_lock`](super::hog_lock) with a `'static` lock where you can:
//! its thread is never waited for.

use std::marker::PhantomData;
use std::thread::Scope;

use super::hogged::finish;
use super::thread::start;
use super::{HogError, HogHandle, HogOptions, Hogger};

/// A lock hogged by [`hog_scoped`]; it cannot outlive its scope. See [`HogHandle`] for what
/// release and Drop do.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the hog handle is dropped"]
pub struct ScopedHogHandle<'scope> {
    handle: HogHandle,
    _scope: PhantomData<&'scope ()>,
}

impl ScopedHogHandle<'_> {
    /// Releases the lock; see [`HogHandle::release`].
    ///
    /// # Errors
    ///
    /// As [`HogHandle::release`].
    pub fn release(self) -> Result<(), HogError> {
        self.handle.release()
    }
}

/// Hogs a lock that may borrow from the caller, from a thread of `scope`.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
///
/// let ledger = Mutex::new(vec![1, 2, 3]); // a local: not 'static
/// std::thread::scope(|s| {
///     let hog = lockhog::hog::hog_scoped(s, &ledger)?;
///     assert!(ledger.try_lock().is_err());
///     hog.release()
/// })?;
/// assert!(ledger.try_lock().is_ok());
/// # Ok::<(), lockhog::hog::HogError>(())
/// ```
///
/// # Errors
///
/// As [`hog_lock`](super::hog_lock).
pub fn hog_scoped<'scope, 'env, M, H>(
    scope: &'scope Scope<'scope, 'env>,
    hogger: H,
) -> Result<ScopedHogHandle<'scope>, HogError>
where
    H: Hogger<M> + 'scope,
{
    HogOptions::default().hog_scoped(scope, hogger)
}

impl HogOptions {
    /// [`hog_scoped`] with these time limits.
    ///
    /// # Errors
    ///
    /// As [`hog_lock`](super::hog_lock).
    pub fn hog_scoped<'scope, 'env, M, H>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        hogger: H,
    ) -> Result<ScopedHogHandle<'scope>, HogError>
    where
        H: Hogger<M> + 'scope,
    {
        let handle = start(hogger, &self, |work| {
            std::thread::Builder::new()
                .name("lockhog-hog".into())
                .spawn_scoped(scope, work)
                .map(drop)
        })?;
        Ok(ScopedHogHandle {
            handle,
            _scope: PhantomData,
        })
    }
}

/// [`hogged`](super::hogged) for a lock that may borrow from the caller: runs `body` while the
/// lock is hogged from a scoped thread, releases it, returns the body's value (after a panic
/// of the body, releases and goes on panicking).
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
///
/// let pay_lock = Mutex::new(());
/// let failed = lockhog::hog::with_hogged(&pay_lock, || pay_lock.try_lock().is_err())?;
/// assert!(failed);
/// # Ok::<(), lockhog::hog::HogError>(())
/// ```
///
/// # Errors
///
/// As [`hogged`](super::hogged).
///
/// # Panics
///
/// When the body panics, after releasing.
pub fn with_hogged<M, H, T>(hogger: H, body: impl FnOnce() -> T) -> Result<T, HogError>
where
    H: Hogger<M>,
{
    std::thread::scope(|s| {
        let hog = hog_scoped(s, hogger)?;
        finish(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)),
            || hog.release(),
        )
    })
}
