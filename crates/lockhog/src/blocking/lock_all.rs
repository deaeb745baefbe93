//! [`LockAllRequest`]: several locks at once, all or none, for synchronous code.

use std::time::Duration;

use super::{block_on, Locker};
use crate::error::Result;
use crate::guard::LockGuard;
use crate::options::{RetryPolicy, Wait};

impl Locker {
    /// Starts a request for all the locks `names` at once, all or none, in the order every
    /// caller shares; see [`crate::Locker::lock_all`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let locker = lockhog::blocking::Locker::connect("mem:")?;
    /// let both = locker
    ///     .lock_all(["from-account", "to-account"])
    ///     .wait_for(Duration::from_secs(5))?;
    /// assert_eq!(both.guards().len(), 2);
    ///
    /// // Someone else asking for an overlapping set gets none of it.
    /// let other = locker.lock_all(["to-account", "audit-log"]).try_acquire();
    /// assert!(other.unwrap_err().is_not_acquired());
    /// assert!(locker.lock("audit-log").try_acquire().is_ok(), "audit-log was given back");
    ///
    /// assert!(both.release()?);
    /// # Ok::<(), lockhog::Error>(())
    /// ```
    pub fn lock_all<I, S>(&self, names: I) -> LockAllRequest
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        LockAllRequest(self.inner.lock_all(names))
    }
}

/// How to take several locks at once; see [`crate::LockAllRequest`].
#[must_use = "a lock request does nothing until acquired"]
#[derive(Debug)]
pub struct LockAllRequest(crate::LockAllRequest);

impl LockAllRequest {
    /// See [`crate::LockAllRequest::and_resources`].
    pub fn and_resources<I, S>(self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        LockAllRequest(self.0.and_resources(resources))
    }
    /// See [`crate::LockAllRequest::ttl`].
    pub fn ttl(self, ttl: Duration) -> Self {
        LockAllRequest(self.0.ttl(ttl))
    }
    /// See [`crate::LockAllRequest::retry`].
    pub fn retry(self, policy: RetryPolicy) -> Self {
        LockAllRequest(self.0.retry(policy))
    }
    /// See [`crate::LockAllRequest::waiting`]: one bound for all the locks together.
    pub fn waiting(self, wait: Wait) -> Self {
        LockAllRequest(self.0.waiting(wait))
    }

    acquire_methods!("LockAllRequest", LockAllGuard);
}

/// Several held locks; see [`crate::LockAllGuard`]. Released together by
/// [`LockAllGuard::release`] or, on Drop, in the reverse order of acquisition.
#[derive(Debug)]
pub struct LockAllGuard(crate::LockAllGuard);

impl LockAllGuard {
    /// The guards, in the order the locks were taken: their names, resources and tokens.
    pub fn guards(&self) -> &[LockGuard] {
        self.0.guards()
    }
    /// True once any of the locks was reported lost.
    pub fn is_lost(&self) -> bool {
        self.0.is_lost()
    }
    /// Waits at most `bound` for any of the locks to be reported lost: `Some((name, reason))`
    /// if one was.
    pub fn wait_lost(&self, bound: Duration) -> Option<(String, String)> {
        block_on(async {
            let (guard, why) = tokio::time::timeout(bound, self.0.lost()).await.ok()?;
            Some((guard.name().to_string(), why))
        })
    }
    /// Releases every lock, last taken first; see [`crate::LockAllGuard::release`].
    ///
    /// # Errors
    ///
    /// As [`crate::LockAllGuard::release`].
    pub fn release(self) -> Result<bool> {
        block_on(self.0.release())
    }
    /// The async guard inside.
    pub fn into_async(self) -> crate::LockAllGuard {
        self.0
    }
}
