//! [`SemaphoreRequest`]: how to take one permit of a counting semaphore.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;
use crate::guard::LockGuard;
use crate::options::{RetryPolicy, Wait};
use crate::request::LockRequest;

/// How to take one of the permits of a counting semaphore: built by
/// [`Locker::semaphore`](crate::Locker::semaphore), consumed by an acquire method.
///
/// At most `permits` callers hold a permit of one semaphore at once, across every process and
/// machine that reaches the store. Each permit is a [`LockGuard`]: its own fencing token
/// (strictly greater than every earlier holder's of the same permit, which
/// [`LockGuard::resource`] names), its own lost notice on backends with leases, release by
/// [`LockGuard::release`] or by Drop, and release by the store when the holder dies on backends
/// with [`crash_release`](crate::Capabilities::crash_release).
///
/// The count is kept in the store: a caller who asks for a different count under the same
/// name is refused with [`Error::InvalidOption`](crate::Error::InvalidOption), never admitted
/// beside the others. Backends without semaphores
/// (see [`Capabilities::semaphore`](crate::Capabilities::semaphore)) refuse every request with
/// the same error.
///
/// # Cancel safety
///
/// Every acquire method is cancel safe: dropping its future leaves no permit held.
///
/// # Examples
///
/// ```
/// use lockhog::Error;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let locker = lockhog::Locker::connect("mem:").await?;
/// let first = locker.semaphore("encoders", 2).try_acquire().await?;
/// let second = locker.semaphore("encoders", 2).try_acquire().await?;
/// assert_ne!(first.resource(), second.resource(), "two different permits");
///
/// // Both permits are out: a third caller is turned away.
/// let third = locker.semaphore("encoders", 2).try_acquire().await;
/// assert!(matches!(third, Err(Error::Contended { .. })));
///
/// // Asking for another count under the same name is an error, not a bigger semaphore.
/// let other = locker.semaphore("encoders", 3).try_acquire().await;
/// assert!(matches!(other, Err(Error::InvalidOption { .. })));
///
/// assert!(first.release().await?);
/// let again = locker.semaphore("encoders", 2).try_acquire().await?;
/// # drop((second, again));
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[must_use = "a semaphore request does nothing until acquired"]
#[derive(Debug)]
pub struct SemaphoreRequest(LockRequest);

impl SemaphoreRequest {
    pub(crate) fn new(mut request: LockRequest, permits: u32) -> Self {
        request.permits = Some(permits);
        SemaphoreRequest(request)
    }

    /// The lease's time to live on backends with leases (renewed while the guard lives), as
    /// [`LockRequest::ttl`].
    pub fn ttl(self, ttl: Duration) -> Self {
        SemaphoreRequest(self.0.ttl(ttl))
    }

    /// The backoff between attempts, as [`LockRequest::retry`].
    pub fn retry(self, policy: RetryPolicy) -> Self {
        SemaphoreRequest(self.0.retry(policy))
    }

    /// Sets how [`SemaphoreRequest::acquire`] waits.
    pub fn waiting(self, wait: Wait) -> Self {
        SemaphoreRequest(self.0.waiting(wait))
    }

    /// One attempt.
    ///
    /// # Errors
    ///
    /// [`Error::Contended`](crate::Error::Contended) when every permit is held;
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for a count of 0 or over
    /// [`MAX_PERMITS`](crate::backend::slots::MAX_PERMITS), a count that differs from the
    /// stored one, or a backend without semaphores; [`Error::InvalidName`](crate::Error::InvalidName),
    /// [`Error::Backend`](crate::Error::Backend).
    pub async fn try_acquire(self) -> Result<LockGuard> {
        self.0.try_acquire().await
    }

    /// Waits at most `bound` for a permit.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`](crate::Error::TimedOut) when the bound ran out; otherwise as
    /// [`SemaphoreRequest::try_acquire`].
    pub async fn wait_for(self, bound: Duration) -> Result<LockGuard> {
        self.0.wait_for(bound).await
    }

    /// Waits until a permit is acquired.
    ///
    /// # Errors
    ///
    /// As [`SemaphoreRequest::try_acquire`], but never `Contended`.
    pub async fn wait(self) -> Result<LockGuard> {
        self.0.wait().await
    }

    /// Acquires as configured (by default, waiting until acquired).
    ///
    /// # Errors
    ///
    /// As [`SemaphoreRequest::try_acquire`] and [`SemaphoreRequest::wait_for`].
    pub async fn acquire(self) -> Result<LockGuard> {
        self.0.acquire().await
    }

    /// Runs `f` while holding a permit, then releases it, as [`LockRequest::run`].
    ///
    /// # Errors
    ///
    /// Those of [`SemaphoreRequest::acquire`] (then `f` did not run);
    /// [`Error::LostWhileHeld`](crate::Error::LostWhileHeld), with `f`'s value, when the
    /// permit was lost while `f` ran or its release failed.
    pub async fn run<F, Fut, T>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        self.0.run(f).await
    }
}
