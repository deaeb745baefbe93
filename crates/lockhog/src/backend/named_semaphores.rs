//! A process-wide table of semaphores by name: the in-process arbitration under the `mem:`
//! backend, under POSIX record locks, which the kernel does not arbitrate between threads of
//! one process, and under Postgres advisory locks, which a session holds re-entrantly.
//!
//! A table made with [`NamedSemaphores::new`] has one permit per name (a mutex); one made
//! with [`NamedSemaphores::with_capacity`] has many, so that shared holders take one permit
//! each and an exclusive holder takes them all (a FIFO reader-writer lock).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Names to FIFO one-permit semaphores. An entry exists only while someone holds or waits for
/// its name, so the table does not grow with every name ever used.
#[derive(Debug)]
pub(crate) struct NamedSemaphores<K> {
    table: Mutex<HashMap<K, Arc<Semaphore>>>,
    capacity: u32,
}

/// A held name; dropping it lets the next waiter in.
#[derive(Debug)]
pub(crate) struct NamedPermit<K: Eq + Hash + Clone + 'static> {
    permit: Option<OwnedSemaphorePermit>,
    key: K,
    table: &'static NamedSemaphores<K>,
}

impl<K: Eq + Hash + Clone + 'static> Drop for NamedPermit<K> {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.table.forget_if_unused(&self.key);
    }
}

impl<K: Eq + Hash + Clone + 'static> NamedSemaphores<K> {
    pub(crate) fn new() -> Self {
        Self::with_capacity(1)
    }

    /// A table whose names have `capacity` permits each (at least 1).
    pub(crate) fn with_capacity(capacity: u32) -> Self {
        NamedSemaphores {
            table: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Every permit of a name: what an exclusive holder takes.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The permits an acquire takes: one when `shared`, all of them when exclusive.
    pub(crate) fn permits(&self, shared: bool) -> u32 {
        if shared {
            1
        } else {
            self.capacity
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<Semaphore>>> {
        // Nothing under this lock can panic half-way, so a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn semaphore(&self, key: &K) -> Arc<Semaphore> {
        self.lock()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.capacity as usize)))
            .clone()
    }

    /// Holders and waiters each keep a clone of the semaphore's `Arc`; the table's is the last.
    fn forget_if_unused(&self, key: &K) {
        let mut t = self.lock();
        if t.get(key).is_some_and(|s| Arc::strong_count(s) == 1) {
            t.remove(key);
        }
    }

    fn permit(&'static self, key: &K, permit: OwnedSemaphorePermit) -> NamedPermit<K> {
        NamedPermit {
            permit: Some(permit),
            key: key.clone(),
            table: self,
        }
    }

    /// Takes `key` if nobody in this process holds it.
    pub(crate) fn try_acquire(&'static self, key: &K) -> Option<NamedPermit<K>> {
        self.try_acquire_many(key, self.capacity)
    }

    /// Takes `n` of `key`'s permits if they are free (and nobody waits before us).
    pub(crate) fn try_acquire_many(&'static self, key: &K, n: u32) -> Option<NamedPermit<K>> {
        let outcome = self.semaphore(key).try_acquire_many_owned(n).ok();
        match outcome {
            Some(p) => Some(self.permit(key, p)),
            None => {
                self.forget_if_unused(key);
                None
            }
        }
    }

    /// Waits for `key` until `deadline`, in FIFO order; `None` when the deadline passed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped wait holds nothing and leaves no entry behind.
    pub(crate) async fn acquire(
        &'static self,
        key: &K,
        deadline: Option<Instant>,
    ) -> Option<NamedPermit<K>> {
        self.acquire_many(key, self.capacity, deadline).await
    }

    /// Waits for `n` of `key`'s permits until `deadline`, in FIFO order; `None` when the
    /// deadline passed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped wait holds nothing and leaves no entry behind.
    pub(crate) async fn acquire_many(
        &'static self,
        key: &K,
        n: u32,
        deadline: Option<Instant>,
    ) -> Option<NamedPermit<K>> {
        struct Forget<'a, K: Eq + Hash + Clone + 'static>(&'static NamedSemaphores<K>, &'a K);
        impl<K: Eq + Hash + Clone + 'static> Drop for Forget<'_, K> {
            fn drop(&mut self) {
                self.0.forget_if_unused(self.1);
            }
        }
        let sem = self.semaphore(key);
        let _forget = Forget(self, key);
        let permit = match deadline {
            None => sem.acquire_many_owned(n).await.ok(),
            Some(d) => tokio::time::timeout_at(d, sem.acquire_many_owned(n))
                .await
                .ok()
                .and_then(|p| p.ok()),
        };
        permit.map(|p| self.permit(key, p))
    }

    /// True when someone in this process holds `key`.
    pub(crate) fn is_held(&self, key: &K) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|s| s.available_permits() < self.capacity as usize)
    }

    /// Every name held in this process.
    pub(crate) fn held(&self) -> Vec<K> {
        self.lock()
            .iter()
            .filter(|(_, s)| s.available_permits() < self.capacity as usize)
            .map(|(k, _)| k.clone())
            .collect()
    }
}
