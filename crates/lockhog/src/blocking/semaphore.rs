//! [`SemaphoreRequest`]: one permit of a counting semaphore, for synchronous code.

use std::time::Duration;

use super::{block_on, LockGuard, Locker};
use crate::error::Result;
use crate::options::{RetryPolicy, Wait};

impl Locker {
    /// Starts a request for one of the `permits` permits of the semaphore `name`; see
    /// [`crate::Locker::semaphore`]. At most `permits` callers hold a permit at once, across
    /// processes; a caller asking another count for the same name is refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let locker = lockhog::blocking::Locker::connect("mem:")?;
    /// let first = locker.semaphore("encoders", 2).try_acquire()?;
    /// let second = locker.semaphore("encoders", 2).wait_for(Duration::from_secs(5))?;
    /// assert_ne!(first.resource(), second.resource(), "two different permits");
    ///
    /// // Both permits are out: a third caller is turned away.
    /// let third = locker.semaphore("encoders", 2).try_acquire();
    /// assert!(third.unwrap_err().is_not_acquired());
    ///
    /// // Another count under the same name is an error, not a bigger semaphore.
    /// let other = locker.semaphore("encoders", 3).try_acquire();
    /// assert!(matches!(other, Err(lockhog::Error::InvalidOption { .. })));
    ///
    /// assert!(first.release()?);
    /// let n = locker.semaphore("encoders", 2).run(|| 7)?;
    /// assert_eq!(n, 7);
    /// # drop(second);
    /// # Ok::<(), lockhog::Error>(())
    /// ```
    pub fn semaphore(&self, name: impl AsRef<str>, permits: u32) -> SemaphoreRequest {
        SemaphoreRequest(self.inner.semaphore(name, permits))
    }
}

/// How to take one permit of a counting semaphore; see [`crate::SemaphoreRequest`].
#[must_use = "a semaphore request does nothing until acquired"]
#[derive(Debug)]
pub struct SemaphoreRequest(crate::SemaphoreRequest);

impl SemaphoreRequest {
    /// See [`crate::SemaphoreRequest::ttl`].
    pub fn ttl(self, ttl: Duration) -> Self {
        SemaphoreRequest(self.0.ttl(ttl))
    }
    /// See [`crate::SemaphoreRequest::retry`].
    pub fn retry(self, policy: RetryPolicy) -> Self {
        SemaphoreRequest(self.0.retry(policy))
    }
    /// See [`crate::SemaphoreRequest::waiting`].
    pub fn waiting(self, wait: Wait) -> Self {
        SemaphoreRequest(self.0.waiting(wait))
    }

    acquire_methods!("SemaphoreRequest", LockGuard);

    /// Runs `f` while holding a permit, then releases it (also when `f` panics); when no
    /// permit is acquired, `f` does not run.
    ///
    /// # Errors
    ///
    /// As [`super::LockRequest::run`].
    pub fn run<T: Send + 'static>(self, f: impl FnOnce() -> T) -> Result<T> {
        self.acquire()?.run(f)
    }
}
