//! [`LockRequest`]: how to take one lock, from a [`Locker`](crate::Locker)'s backend and
//! namespace.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::{AcquireContext, DynBackend, LostSender};
use crate::error::{Error, Result};
use crate::guard::{AcquireStats, LockGuard};
use crate::name::{LockKey, LockName};
use crate::options::{validate_ttl, AcquireOptions, RetryPolicy, Wait};

/// How to take one lock: built by [`Locker::lock`](crate::Locker::lock), consumed by an acquire
/// method.
///
/// # Cancel safety
///
/// Every acquire method is cancel safe: dropping its future at any await point leaves the lock
/// not held.
#[must_use = "a lock request does nothing until acquired"]
pub struct LockRequest {
    backend: Arc<dyn DynBackend>,
    namespace: String,
    name: Result<LockName>,
    wait: Wait,
    ttl: Option<Duration>,
    retry: RetryPolicy,
    shared: bool,
    fair: bool,
    /// Set for a permit of a semaphore (see [`crate::SemaphoreRequest`]).
    pub(crate) permits: Option<u32>,
}

impl std::fmt::Debug for LockRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockRequest")
            .field("backend", &self.backend.scheme())
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("wait", &self.wait)
            .field("ttl", &self.ttl)
            .field("retry", &self.retry)
            .field("shared", &self.shared)
            .field("fair", &self.fair)
            .field("permits", &self.permits)
            .finish()
    }
}

impl LockRequest {
    /// A request for `name` in `namespace` that waits forever, with the locker's ttl and retry
    /// policy.
    pub(crate) fn new(
        backend: Arc<dyn DynBackend>,
        namespace: String,
        name: Result<LockName>,
        ttl: Option<Duration>,
        retry: RetryPolicy,
    ) -> Self {
        LockRequest {
            backend,
            namespace,
            name,
            wait: Wait::Forever,
            ttl,
            retry,
            shared: false,
            fair: false,
            permits: None,
        }
    }

    /// Asks for a shared (reader) lock: any number of shared holders at once, none while an
    /// exclusive holder has it. Acquiring fails with [`Error::InvalidOption`] on backends
    /// without shared locks (see [`Capabilities::shared`](crate::Capabilities::shared)).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Asks that waiters acquire in the order they started waiting. Acquiring fails with
    /// [`Error::InvalidOption`] on backends that cannot queue (see
    /// [`Capabilities::fair`](crate::Capabilities::fair)).
    pub fn fair(mut self) -> Self {
        self.fair = true;
        self
    }

    /// The lease's time to live on backends with leases (it is renewed while the guard lives).
    /// Backends whose locks live as long as their holder (file, mem) do not need one and
    /// ignore it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The backoff between attempts on backends that poll.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Makes [`LockRequest::acquire`] try once.
    pub fn no_wait(mut self) -> Self {
        self.wait = Wait::No;
        self
    }

    /// Makes [`LockRequest::acquire`] wait at most `bound`.
    pub fn wait_at_most(mut self, bound: Duration) -> Self {
        self.wait = Wait::For(bound);
        self
    }

    /// Sets how [`LockRequest::acquire`] waits.
    pub fn waiting(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// One attempt.
    ///
    /// # Errors
    ///
    /// [`Error::Contended`] when someone else holds the lock; [`Error::InvalidName`],
    /// [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn try_acquire(self) -> Result<LockGuard> {
        self.waiting(Wait::No).acquire().await
    }

    /// Waits at most `bound` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`] when the bound ran out; [`Error::InvalidName`],
    /// [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn wait_for(self, bound: Duration) -> Result<LockGuard> {
        self.waiting(Wait::For(bound)).acquire().await
    }

    /// Waits until the lock is acquired.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn wait(self) -> Result<LockGuard> {
        self.waiting(Wait::Forever).acquire().await
    }

    /// Acquires as configured (by default, waiting until acquired).
    ///
    /// # Errors
    ///
    /// [`Error::Contended`], [`Error::TimedOut`], [`Error::InvalidName`],
    /// [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn acquire(self) -> Result<LockGuard> {
        let name = self.name?;
        self.retry.validate()?;
        let ttl = self.ttl.map(validate_ttl).transpose()?;
        let backend = self.backend;
        let caps = backend.capabilities();
        let unsupported = |what: &str| {
            Err(Error::InvalidOption {
                reason: format!("the {} backend has no {what} locks", backend.scheme()),
            })
        };
        if self.shared && !caps.shared {
            return unsupported("shared");
        }
        if self.fair && !caps.fair {
            return unsupported("fair (FIFO)");
        }
        if let Some(permits) = self.permits {
            crate::backend::slots::validate(&name, permits)?;
            if !caps.semaphore {
                return Err(crate::backend::slots::unsupported(backend.scheme()));
            }
        }
        let key = LockKey::new(self.namespace, name.clone());
        let lost = LostSender::default();
        let ctx = AcquireContext::new(
            AcquireOptions {
                ttl,
                retry: self.retry,
                shared: self.shared,
                fair: self.fair,
            },
            lost.clone(),
        );
        let started = Instant::now();
        let deadline = match self.wait {
            Wait::No => None,
            Wait::For(bound) => Some(started + bound),
            Wait::Forever => None,
        };
        let acquired = match (self.permits, self.wait) {
            (None, Wait::No) => {
                ctx.note_attempt();
                backend.try_acquire(&key, &ctx).await?.map(|a| (a, None))
            }
            (None, _) => backend
                .wait_acquire(&key, &ctx, deadline)
                .await?
                .map(|a| (a, None)),
            (Some(permits), Wait::No) => {
                ctx.note_attempt();
                let permit = backend.try_acquire_permit(&key, permits, &ctx).await?;
                permit.map(|p| (p.acquired, Some(p.resource)))
            }
            (Some(permits), _) => {
                let permit = backend
                    .wait_acquire_permit(&key, permits, &ctx, deadline)
                    .await?;
                permit.map(|p| (p.acquired, Some(p.resource)))
            }
        };
        let waited = started.elapsed();
        let stats = AcquireStats {
            attempts: ctx.attempts(),
            waited,
        };
        let Some((acquired, resource)) = acquired else {
            tracing::debug!(name = %name, attempts = stats.attempts, ?waited, "not acquired");
            return Err(match self.wait {
                Wait::No => Error::Contended {
                    name: name.to_string(),
                },
                _ => Error::TimedOut {
                    name: name.to_string(),
                    waited,
                },
            });
        };
        tracing::debug!(name = %name, attempts = stats.attempts, ?waited, token = acquired.token, "acquired");
        let resource = resource.unwrap_or_else(|| backend.resource(&key));
        Ok(LockGuard::new(
            backend.clone(),
            acquired.held,
            name,
            resource,
            acquired.token,
            stats,
            lost,
        ))
    }

    /// Runs `f` while holding the lock, then releases it (also when `f` panics). See
    /// [`Locker::with_lock`](crate::Locker::with_lock).
    ///
    /// # Errors
    ///
    /// Those of [`LockRequest::acquire`].
    pub async fn run<F, Fut, T>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.acquire().await?;
        let out = f().await;
        guard.release().await?;
        Ok(out)
    }
}
