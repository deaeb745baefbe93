//! [`LockRequest`]: how to take one lock, from a [`Locker`](crate::Locker)'s backend and
//! namespace.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::{poll, AcquireContext, DynBackend, LostSender};
use crate::error::{Error, Result};
use crate::guard::{AcquireStats, LockGuard};
use crate::max_hold::HeldSlot;
use crate::name::LockKey;
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
    key: Result<LockKey>,
    wait: Wait,
    ttl: Option<Duration>,
    retry: RetryPolicy,
    shared: bool,
    fair: bool,
    max_hold: Option<Duration>,
    steal_after: Option<Duration>,
    fencing: bool,
    /// Set for a permit of a semaphore (see [`crate::SemaphoreRequest`]).
    pub(crate) permits: Option<u32>,
}

impl std::fmt::Debug for LockRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockRequest")
            .field("backend", &self.backend.scheme())
            .field("key", &self.key)
            .field("wait", &self.wait)
            .field("ttl", &self.ttl)
            .field("retry", &self.retry)
            .field("shared", &self.shared)
            .field("fair", &self.fair)
            .field("max_hold", &self.max_hold)
            .field("steal_after", &self.steal_after)
            .field("fencing", &self.fencing)
            .field("permits", &self.permits)
            .finish()
    }
}

impl LockRequest {
    /// A request for `key` (a name in its namespace, or a foreign resource) that waits
    /// forever, with the locker's ttl, retry policy and fencing.
    pub(crate) fn new(
        backend: Arc<dyn DynBackend>,
        key: Result<LockKey>,
        ttl: Option<Duration>,
        retry: RetryPolicy,
        fencing: bool,
    ) -> Self {
        LockRequest {
            backend,
            key,
            wait: Wait::Forever,
            ttl,
            retry,
            shared: false,
            fair: false,
            max_hold: None,
            steal_after: None,
            fencing,
            permits: None,
        }
    }

    /// Takes the lock without a fencing token: the backend skips its counter (a `nextval`, a
    /// sequence, an `INCR`, a write to the lock file), which saves a round trip or a write on
    /// every acquire, and [`LockGuard::fencing_token`] is `None`. What is lost: with no token
    /// to pass on, a holder that stalled past its lease (or whose lock was taken over) cannot
    /// be turned away by what the lock protects; use it where the lock only avoids duplicate
    /// work. Tokens given to fenced acquires of the same name stay strictly increasing. On
    /// backends whose token comes free with the lock (etcd's revision, see
    /// [`Capabilities::free_fencing`](crate::Capabilities::free_fencing)) the token is kept.
    /// A locker made from a URL with `?fencing=off` opts every request out.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let guard = locker.lock("cache-warmup").no_fencing().try_acquire().await?;
    /// assert_eq!(guard.fencing_token(), None);
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn no_fencing(mut self) -> Self {
        self.fencing = false;
        self
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

    /// Gives the lock back after `limit` even while the guard lives: the guard's
    /// [`lost`](LockGuard::lost) then completes, [`LockGuard::is_lost`] turns true and
    /// [`LockGuard::release`] returns `Ok(false)`. Works on every backend (a timer of the
    /// library's own, on the tokio runtime of the acquire); for work that must never keep a
    /// lock longer, whatever happens to it.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    ///
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let guard = locker.lock("report").max_hold(Duration::from_millis(10)).wait().await?;
    /// let reason = guard.lost().await; // the work should stop here
    /// assert!(reason.contains("max_hold"));
    /// assert!(!guard.release().await?);
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn max_hold(mut self, limit: Duration) -> Self {
        self.max_hold = Some(limit);
        self
    }

    /// Takes the lock over from a holder that has held it longer than `limit`, **even while
    /// that holder lives**: it then learns the loss through its guard's
    /// [`lost`](LockGuard::lost) and its release returns `Ok(false)`. For work that must never
    /// wait longer than that; pass the fencing token on to what the lock protects. Acquiring
    /// fails with [`Error::InvalidOption`] on backends that do not keep when a lock was
    /// acquired (see [`Capabilities::steal_after`](crate::Capabilities::steal_after)), and
    /// when `limit` is shorter than the lease's ttl (a live holder's lock would be taken
    /// before a dead holder's lease could run out).
    pub fn steal_after(mut self, limit: Duration) -> Self {
        self.steal_after = Some(limit);
        self
    }

    /// The backoff between attempts on backends that poll, and the cap on attempts
    /// ([`RetryPolicy::max_attempts`]).
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
    /// [`Error::TimedOut`] only when the retry policy caps the attempts
    /// ([`RetryPolicy::max_attempts`]); [`Error::InvalidName`], [`Error::InvalidOption`], [`Error::Backend`].
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
        let key = self.key?;
        let name = key.name();
        self.retry.validate()?;
        let ttl = self.ttl.map(validate_ttl).transpose()?;
        if self.max_hold.is_some_and(|m| m.is_zero()) {
            return Err(Error::InvalidOption {
                reason: "max_hold must be above zero".into(),
            });
        }
        let backend = self.backend;
        let caps = backend.capabilities();
        let unsupported = |what: &str| {
            Err(Error::InvalidOption {
                reason: format!("the {} backend has no {what} locks", backend.scheme()),
            })
        };
        if self.shared && !caps.shared {
            return Err(Error::InvalidOption {
                reason: format!(
                    "the {} backend has no shared locks{}",
                    backend.scheme(),
                    why_no_shared(backend.scheme())
                ),
            });
        }
        if self.fair && !caps.fair {
            return unsupported("fair (FIFO)");
        }
        if let Some(permits) = self.permits {
            crate::backend::slots::validate(name, permits)?;
            if !caps.semaphore {
                return Err(crate::backend::slots::unsupported(backend.scheme()));
            }
        }
        if self.steal_after.is_some() && !caps.steal_after {
            return Err(Error::InvalidOption {
                reason: format!(
                    "the {} backend does not keep when a lock was acquired: it cannot take over \
                     one held too long (steal_after)",
                    backend.scheme()
                ),
            });
        }
        if self.steal_after.is_some_and(|s| s.is_zero()) {
            return Err(Error::InvalidOption {
                reason: "steal_after must be above zero".into(),
            });
        }
        if self.fair && self.retry.attempt_limit().is_some() {
            return Err(Error::InvalidOption {
                reason: "a fair wait keeps its place in the queue: it cannot also be capped \
                         to a number of attempts"
                    .into(),
            });
        }
        let lost = LostSender::default();
        let ctx = AcquireContext::new(
            AcquireOptions {
                ttl,
                retry: self.retry,
                shared: self.shared,
                fair: self.fair,
                steal_after: self.steal_after,
                fencing: self.fencing,
            },
            lost.clone(),
        );
        let started = Instant::now();
        let deadline = match self.wait {
            Wait::No => None,
            Wait::For(bound) => Some(started + bound),
            Wait::Forever => None,
        };
        let capped = self.retry.attempt_limit().is_some();
        let acquired = match (self.permits, self.wait) {
            (None, Wait::No) => {
                ctx.note_attempt();
                let acquired = match backend.try_acquire_now(&key, &ctx) {
                    Some(decided) => decided?,
                    None => backend.try_acquire(&key, &ctx).await?,
                };
                acquired.map(|a| (a, None))
            }
            // A capped wait is a spin of at most that many tries, on every backend.
            (None, _) if capped => poll(&ctx, deadline, || backend.try_acquire(&key, &ctx))
                .await?
                .map(|a| (a, None)),
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
                let permit = if capped {
                    poll(&ctx, deadline, || {
                        backend.try_acquire_permit(&key, permits, &ctx)
                    })
                    .await?
                } else {
                    backend
                        .wait_acquire_permit(&key, permits, &ctx, deadline)
                        .await?
                };
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
                    attempts: stats.attempts,
                },
            });
        };
        if acquired.token.is_none() && key.foreign_resource().is_none() && self.fencing {
            // The contract every backend keeps for its own names unless the caller opted
            // out; a guard without a token would silently unfence the caller.
            drop(backend.clone().release(acquired.held).await);
            return Err(Error::backend(
                backend.scheme(),
                "the backend acquired a named lock without a fencing token",
            ));
        }
        tracing::debug!(name = %name, attempts = stats.attempts, ?waited, token = ?acquired.token, "acquired");
        let held = HeldSlot::new(acquired.held, self.max_hold, &backend, &lost, name.as_str());
        Ok(LockGuard::new(
            backend.clone(),
            held,
            key,
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
    /// Those of [`LockRequest::acquire`] (then `f` did not run);
    /// [`Error::LostWhileHeld`], with `f`'s value, when the lock was lost while `f` ran or its
    /// release failed.
    pub async fn run<F, Fut, T>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let guard = self.acquire().await?;
        let out = f().await;
        guard.release_after(out).await
    }
}

/// Why a built-in backend has no shared locks, where the store itself is the reason, for the
/// refusal of [`LockRequest::shared`].
fn why_no_shared(scheme: &str) -> &'static str {
    match scheme {
        "mysql" => ": MySQL's named locks (GET_LOCK) are exclusive only",
        _ => "",
    }
}
