//! The held lock: fencing token, lost-lock notice, statistics, release and release on Drop.

use std::future::Future;
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::backend::{BoxFuture, DynBackend, LostSender};
use crate::error::{BodyValue, Error, Result};
use crate::max_hold::HeldSlot;
use crate::name::{LockKey, LockName};

/// How an acquire went: PALs' `return_retries`, and more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcquireStats {
    /// Attempts made on the store (1 when the lock was free at once).
    pub attempts: u32,
    /// Time from the start of the acquire to holding the lock.
    pub waited: Duration,
}

/// A held lock. Released by [`LockGuard::release`] or, best effort and without blocking, when
/// dropped.
///
/// The guard owns everything it needs (`'static + Send`), so it can move into another task or
/// thread, as the hog toolkit does.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let locker = lockhog::Locker::connect("mem:").await?;
/// let guard = locker.lock("refresh-token").try_acquire().await?;
/// assert!(guard.fencing_token().is_some_and(|t| t > 0));
/// assert_eq!(guard.stats().attempts, 1);
/// assert!(guard.release().await?, "the lock was still ours");
/// # Ok::<(), lockhog::Error>(())
/// # }).unwrap();
/// ```
pub struct LockGuard {
    backend: Arc<dyn DynBackend>,
    held: HeldSlot,
    key: LockKey,
    /// The backend's name for the lock: a semaphore's permit gives it, a lock works it out
    /// the first time it is asked for (most holders never ask).
    resource: OnceLock<String>,
    token: Option<u64>,
    stats: AcquireStats,
    lost: LostSender,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("backend", &self.backend.scheme())
            .field("name", self.name())
            .field("resource", &self.resource())
            .field("token", &self.token)
            .field("stats", &self.stats)
            .field("lost", &self.lost.reason())
            .finish()
    }
}

impl LockGuard {
    pub(crate) fn new(
        backend: Arc<dyn DynBackend>,
        held: HeldSlot,
        key: LockKey,
        resource: Option<String>,
        token: Option<u64>,
        stats: AcquireStats,
        lost: LostSender,
    ) -> Self {
        LockGuard {
            backend,
            held,
            key,
            resource: resource.map(OnceLock::from).unwrap_or_default(),
            token,
            stats,
            lost,
        }
    }

    /// The lock's name; for a lock taken by its resource
    /// ([`Locker::lock_resource`](crate::Locker::lock_resource)), the resource.
    pub fn name(&self) -> &LockName {
        self.key.name()
    }

    /// The backend's own name for the lock (a file path, `advisory:<key>`, a Redis key).
    pub fn resource(&self) -> &str {
        self.resource
            .get_or_init(|| self.backend.resource(&self.key))
    }

    /// The fencing token: strictly greater than that of every earlier holder of this lock on
    /// this backend. Pass it to the resource the lock protects, and have that resource refuse
    /// writes carrying a smaller token than the largest it has seen: that is what keeps a
    /// paused holder whose lease ran out from doing harm.
    ///
    /// Always `Some` for a lock taken by name. For a lock taken by its foreign resource
    /// ([`Locker::lock_resource`](crate::Locker::lock_resource)), `Some` only when the store
    /// numbers its holders itself
    /// ([`Capabilities::resource_fencing`](crate::Capabilities::resource_fencing)); otherwise
    /// `None`, as the other programs taking that lock keep no counter lockhog could honestly
    /// extend.
    pub fn fencing_token(&self) -> Option<u64> {
        self.token
    }

    /// The descriptor that carries the lock, where one does (the `file:` backend in its
    /// default `flock` mode): a child process that inherits a copy keeps the lock held as long
    /// as it keeps the copy open, even if this process is killed, as `flock(1)`'s command
    /// does. `lockhog run` hands it to its command. Releasing the guard frees the lock for
    /// every copy. `None` on backends whose lock lives in a session or a lease, and for a lock
    /// taken with a [`max_hold`](crate::LockRequest::max_hold), which a child must not keep.
    pub fn inheritable_fd(&self) -> Option<BorrowedFd<'_>> {
        self.backend.inheritable_fd(self.held.as_owned()?)
    }

    /// How the acquire went.
    pub fn stats(&self) -> AcquireStats {
        self.stats
    }

    /// True once the backend has reported the lock lost (see
    /// [`Capabilities::lost_notice`](crate::Capabilities::lost_notice)).
    pub fn is_lost(&self) -> bool {
        self.lost.reason().is_some()
    }

    /// Completes, with the reason, when the backend reports the lock lost; never completes on
    /// backends that cannot lose a lock while the holder lives.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: drop it and call again at any time.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let guard = locker.lock("job").try_acquire().await?;
    /// tokio::select! {
    ///     reason = guard.lost() => panic!("lost: {reason}"),
    ///     _ = async { /* the critical section */ } => {}
    /// }
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn lost(&self) -> String {
        self.lost.lost().await
    }

    /// Releases the lock. `Ok(true)` when it was still ours up to the release; `Ok(false)` when
    /// it had been lost before (a lease that ran out, a connection that died, a
    /// [`max_hold`](crate::LockRequest::max_hold) that ran out).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) when the store could not be told; the lock is
    /// then freed by the store's own means (connection close, lease expiry).
    pub async fn release(mut self) -> Result<bool> {
        let Some(held) = self.held.take() else {
            // The max_hold timer gave it back already, and marked it lost.
            return Ok(false);
        };
        let ours = match self.backend.release_now(held) {
            Ok(released) => released?,
            Err(held) => {
                let backend = self.backend.clone();
                FinishOnDrop(Some(Box::pin(async move { backend.release(held).await }))).await?
            }
        };
        tracing::debug!(name = %self.name(), ours, "released");
        Ok(ours && !self.is_lost())
    }
}

impl LockGuard {
    /// Releases the lock after a body that returned `out` ran under it: `out` when the lock was
    /// ours throughout, else [`Error::LostWhileHeld`] with `out` in it. What `run` and
    /// `with_lock` end with.
    pub(crate) async fn release_after<T: Send + 'static>(self, out: T) -> Result<T> {
        let name = self.name().to_string();
        let lost = self.lost.reason();
        let (reason, source) = match self.release().await {
            Ok(true) => return Ok(out),
            Ok(false) => (
                lost.unwrap_or_else(|| "another holder had it when it was released".into()),
                None,
            ),
            Err(e) => (
                format!("its release failed ({e})"),
                Some(Box::new(e) as crate::BoxError),
            ),
        };
        tracing::warn!(%name, %reason, "the lock was lost while the body ran");
        Err(Error::LostWhileHeld {
            name,
            reason,
            value: BodyValue::new(out),
            source,
        })
    }
}

/// Runs a release in place, and when dropped before it finished (a timeout, a `select!`),
/// hands the rest to a task of its own, so it cannot stop half-way and leave the lock held
/// until its lease runs out (found by testkit's `cancel_at_random_points`). Unlike running
/// every release as a task, the usual release pays no task and no hop between threads.
struct FinishOnDrop(Option<BoxFuture<'static, Result<bool>>>);

impl Future for FinishOnDrop {
    type Output = Result<bool>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        let fut = self.0.as_mut().expect("polled after it finished");
        let out = std::task::ready!(fut.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(out)
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let (Some(rest), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            drop(rt.spawn(rest));
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            tracing::debug!(name = %self.name(), "released on drop");
            self.backend.release_on_drop(held);
        }
    }
}
