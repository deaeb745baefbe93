//! What a backend guarantees: the flags callers, the CLI and the conformance suite read.

/// What a backend guarantees, so callers and the conformance suite can ask instead of guess.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let locker = lockhog::Locker::connect("mem:").await.unwrap();
/// let caps = locker.capabilities();
/// assert!(!caps.lease && caps.fair && !caps.cross_process);
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Locks are leases with a ttl, renewed while the guard lives, and expire when not renewed.
    pub lease: bool,
    /// Fencing tokens come from the store itself (a counter or revision), not from the client.
    pub native_fencing: bool,
    /// The guard can learn that the lock was lost while it lived (lease expired, connection
    /// died) and says so through [`LockGuard::lost`](crate::LockGuard::lost).
    pub lost_notice: bool,
    /// Waiters acquire in the order they started waiting (and so
    /// [`LockRequest::fair`](crate::LockRequest::fair) is accepted).
    pub fair: bool,
    /// Shared (reader) locks are supported ([`LockRequest::shared`](crate::LockRequest::shared)).
    pub shared: bool,
    /// A writer waiting for a lock held shared blocks the readers that come after it, so a
    /// stream of readers cannot starve it. Only meaningful with [`shared`](Self::shared).
    pub shared_writer_priority: bool,
    /// A holder that dies (SIGKILL, crash) loses its locks without anyone cleaning up.
    pub crash_release: bool,
    /// A waiter is woken by the release itself rather than by polling.
    pub native_wait: bool,
    /// The lock excludes other processes (and, for network stores, other machines).
    pub cross_process: bool,
    /// Counting semaphores ([`Locker::semaphore`](crate::Locker::semaphore)) are supported,
    /// and a semaphore's permit count is kept in the store, so that two callers asking for
    /// different counts under one name are refused rather than both admitted.
    pub semaphore: bool,
    /// [`LockRequest::steal_after`](crate::LockRequest::steal_after) is honoured: the store
    /// keeps when each lock was acquired, so a waiter can take over one held longer than it
    /// allows.
    pub steal_after: bool,
    /// A lock taken by its foreign resource
    /// ([`Locker::lock_resource`](crate::Locker::lock_resource)) gets a fencing token from
    /// the store. When false, [`LockGuard::fencing_token`](crate::LockGuard::fencing_token) is
    /// `None` for such locks: lockhog never makes one up.
    pub resource_fencing: bool,
    /// The fencing token comes with the lock itself at no extra cost (etcd's revision of the
    /// waiter's key), so a request made with
    /// [`LockRequest::no_fencing`](crate::LockRequest::no_fencing) still gets one. When false,
    /// such a request skips the store's counter and gets no token.
    pub free_fencing: bool,
}
