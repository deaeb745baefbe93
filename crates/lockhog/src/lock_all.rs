//! [`Locker::lock_all`]: several locks taken together, all or none, in one order that every
//! caller shares, so that two callers taking overlapping sets can never deadlock.

use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::BoxFuture;
use crate::error::{Error, Result};
use crate::guard::LockGuard;
use crate::locker::Locker;
use crate::name::LockName;
use crate::options::{RetryPolicy, Wait};

impl Locker {
    /// Starts a request for all the locks `names` at once: [`LockAllRequest::acquire`] holds
    /// every one of them or none.
    ///
    /// The locks are taken one after the other in the order of their backend resources
    /// ([`Locker::resource`]), whatever the order of `names`: every caller takes any two locks
    /// in the same order, so two callers with overlapping sets cannot each hold one lock the
    /// other waits for. A name given twice is taken once.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    ///
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let both = locker.lock_all(["from-account", "to-account"]).wait_for(Duration::from_secs(5)).await?;
    /// assert_eq!(both.guards().len(), 2);
    ///
    /// // Someone else asking for an overlapping set gets none of it.
    /// let other = locker.lock_all(["to-account", "audit-log"]).try_acquire().await;
    /// assert!(other.unwrap_err().is_not_acquired());
    /// assert!(locker.lock("audit-log").try_acquire().await.is_ok(), "audit-log was given back");
    ///
    /// assert!(both.release().await?);
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn lock_all<I, S>(&self, names: I) -> LockAllRequest
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        LockAllRequest {
            locker: self.clone(),
            items: names
                .into_iter()
                .map(|n| Item::Name(n.as_ref().to_string()))
                .collect(),
            wait: Wait::Forever,
            ttl: None,
            retry: None,
            shared: false,
        }
    }
}

/// How to take several locks at once: built by [`Locker::lock_all`].
///
/// # Cancel safety
///
/// Every acquire method is cancel safe: dropping its future releases the locks taken so far.
#[derive(Debug)]
#[must_use = "a lock request does nothing until acquired"]
pub struct LockAllRequest {
    locker: Locker,
    items: Vec<Item>,
    wait: Wait,
    ttl: Option<Duration>,
    retry: Option<RetryPolicy>,
    shared: bool,
}

/// One lock of a [`LockAllRequest`]: by name, or by the resource another program names.
#[derive(Debug)]
enum Item {
    Name(String),
    Resource(String),
}

impl LockAllRequest {
    /// Adds the locks of `resources`, resources other programs name (see
    /// [`Locker::lock_resource`]). They are taken in the same resource order as the named
    /// locks, so a name and the resource it prints are the same place in every caller's order.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let locker = lockhog::Locker::connect(&format!("file://{}/locks", dir.path().display())).await?;
    /// let pid_file = dir.path().join("app.pid");
    /// let both = locker
    ///     .lock_all(["report"])
    ///     .and_resources([pid_file.to_str().unwrap()])
    ///     .try_acquire()
    ///     .await?;
    /// assert_eq!(both.guards().len(), 2);
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn and_resources<I, S>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let more = resources
            .into_iter()
            .map(|r| Item::Resource(r.as_ref().to_string()));
        self.items.extend(more);
        self
    }

    /// The lease ttl of every lock (see [`LockRequest::ttl`](crate::LockRequest::ttl)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Takes every lock shared (see [`LockRequest::shared`](crate::LockRequest::shared)).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// The retry policy of every lock (see [`LockRequest::retry`](crate::LockRequest::retry)).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets how [`LockAllRequest::acquire`] waits: one bound for all the locks together.
    pub fn waiting(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// One attempt on each lock.
    ///
    /// # Errors
    ///
    /// As [`LockAllRequest::acquire`].
    pub async fn try_acquire(self) -> Result<LockAllGuard> {
        self.waiting(Wait::No).acquire().await
    }

    /// Waits at most `bound`, for all the locks together.
    ///
    /// # Errors
    ///
    /// As [`LockAllRequest::acquire`].
    pub async fn wait_for(self, bound: Duration) -> Result<LockAllGuard> {
        self.waiting(Wait::For(bound)).acquire().await
    }

    /// Waits until every lock is held.
    ///
    /// # Errors
    ///
    /// As [`LockAllRequest::acquire`].
    pub async fn wait(self) -> Result<LockAllGuard> {
        self.waiting(Wait::Forever).acquire().await
    }

    /// Takes every lock, in the order of their resources, within one wait bound; on any
    /// failure gives back those taken so far (in reverse order) and returns the failure.
    ///
    /// # Errors
    ///
    /// [`Error::Contended`] or [`Error::TimedOut`] naming the first lock not acquired (its
    /// `waited` is the wait of the whole request); [`Error::InvalidName`] for an invalid name or
    /// none at all, before any lock is taken; the other errors of
    /// [`LockRequest::acquire`](crate::LockRequest::acquire).
    pub async fn acquire(self) -> Result<LockAllGuard> {
        if self.items.is_empty() {
            return Err(Error::InvalidName {
                reason: "lock_all needs at least one name".into(),
            });
        }
        let mut order = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let resource = match item {
                Item::Name(name) => {
                    LockName::new(name)?;
                    self.locker.resource(name)?
                }
                Item::Resource(res) => self.locker.parse_resource(res)?,
            };
            order.push((resource, item));
        }
        order.sort_by(|a, b| a.0.cmp(&b.0));
        order.dedup_by(|a, b| a.0 == b.0);

        let started = Instant::now();
        let deadline = match self.wait {
            Wait::For(bound) => Some(started + bound),
            _ => None,
        };
        // Held in the guard from the first lock on, so a dropped future or a failure gives
        // back what was taken, last first.
        let mut all = LockAllGuard {
            guards: Vec::with_capacity(order.len()),
        };
        for (_, item) in order {
            let wait = match (self.wait, deadline) {
                (Wait::For(_), Some(d)) => Wait::For(d.saturating_duration_since(Instant::now())),
                (wait, _) => wait,
            };
            let request = match item {
                Item::Name(name) => self.locker.lock(name),
                Item::Resource(res) => self.locker.lock_resource(res),
            };
            let mut request = request.waiting(wait);
            if let Some(ttl) = self.ttl {
                request = request.ttl(ttl);
            }
            if let Some(retry) = self.retry {
                request = request.retry(retry);
            }
            if self.shared {
                request = request.shared();
            }
            match request.acquire().await {
                Ok(guard) => all.guards.push(guard),
                Err(e) => {
                    // Best effort: the failure to report is the acquire's, not the release's.
                    let _ = all.release().await;
                    return Err(match e {
                        Error::TimedOut { name, attempts, .. } => Error::TimedOut {
                            name,
                            waited: started.elapsed(),
                            attempts,
                        },
                        other => other,
                    });
                }
            }
        }
        Ok(all)
    }
}

/// Several held locks, taken by [`Locker::lock_all`]. Released together by
/// [`LockAllGuard::release`] or, when dropped, in the reverse order of acquisition.
#[derive(Debug)]
pub struct LockAllGuard {
    /// In the order they were taken.
    guards: Vec<LockGuard>,
}

/// One held lock (or semaphore permit) as a set of one, for code that handles sets.
impl From<LockGuard> for LockAllGuard {
    fn from(guard: LockGuard) -> Self {
        LockAllGuard {
            guards: vec![guard],
        }
    }
}

impl LockAllGuard {
    /// The guards, in the order the locks were taken (that of their resources).
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// True once any of the locks was reported lost.
    pub fn is_lost(&self) -> bool {
        self.guards.iter().any(LockGuard::is_lost)
    }

    /// Completes when any of the locks is reported lost, with its guard and the reason; never
    /// completes on backends that cannot lose a lock while the holder lives.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: drop it and call again at any time.
    pub async fn lost(&self) -> (&LockGuard, String) {
        let mut waits: Vec<BoxFuture<'_, (&LockGuard, String)>> = self
            .guards
            .iter()
            .map(|g| Box::pin(async move { (g, g.lost().await) }) as BoxFuture<'_, _>)
            .collect();
        std::future::poll_fn(|cx| {
            for wait in &mut waits {
                if let Poll::Ready(out) = wait.as_mut().poll(cx) {
                    return Poll::Ready(out);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// The guards themselves, in the order the locks were taken, for a caller that keeps them
    /// apart (each is then released on its own; give them back last first to keep the
    /// reverse order).
    pub fn into_guards(mut self) -> Vec<LockGuard> {
        std::mem::take(&mut self.guards)
    }

    /// Releases every lock, in the reverse order of acquisition. `Ok(true)` when every one was
    /// still ours; `Ok(false)` when any had been lost.
    ///
    /// # Errors
    ///
    /// The first [`Error::Backend`] of the releases; every lock is released (or left to the
    /// store's own means) all the same.
    pub async fn release(mut self) -> Result<bool> {
        let mut ours = true;
        let mut failed = None;
        while let Some(guard) = self.guards.pop() {
            match guard.release().await {
                Ok(mine) => ours &= mine,
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(ours),
        }
    }
}

impl Drop for LockAllGuard {
    fn drop(&mut self) {
        // Last taken, first given back.
        while let Some(guard) = self.guards.pop() {
            drop(guard);
        }
    }
}
