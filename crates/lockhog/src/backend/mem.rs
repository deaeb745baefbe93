//! `mem:` — named locks inside one process.
//!
//! Every `mem:` locker of a process shares one table of names, so two lockers exclude each
//! other as two connections to a server would. Waiters queue in FIFO order and are woken by
//! the release itself. Fencing tokens come from one process-wide counter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{
    AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockState, LockStatus,
};
use crate::error::Result;
use crate::name::LockKey;
use crate::url::BackendUrl;

type Table = HashMap<LockKey, Arc<Semaphore>>;

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(Default::default);
static TOKENS: AtomicU64 = AtomicU64::new(0);

fn table() -> MutexGuard<'static, Table> {
    // Nothing under this lock can panic half-way, so a poisoned table is still consistent.
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The in-process backend.
#[derive(Debug, Default)]
pub struct MemBackend(());

impl MemBackend {
    /// Opens `mem:`; the URL takes no path and no options of its own.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidUrl`] when anything follows `mem:`.
    pub fn open(url: &mut BackendUrl) -> Result<Self> {
        if !url.body().is_empty() {
            return Err(url.invalid("mem: takes no path"));
        }
        url.finish()?;
        Ok(MemBackend(()))
    }

    fn semaphore(key: &LockKey) -> Arc<Semaphore> {
        table()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }

    fn granted(key: &LockKey, permit: OwnedSemaphorePermit) -> Acquired<MemHeld> {
        Acquired {
            held: MemHeld {
                permit: Some(permit),
                key: key.clone(),
            },
            token: TOKENS.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// A held `mem:` lock; dropping it releases.
#[derive(Debug)]
pub struct MemHeld {
    permit: Option<OwnedSemaphorePermit>,
    key: LockKey,
}

impl Drop for MemHeld {
    fn drop(&mut self) {
        drop(self.permit.take());
        forget_if_unused(&self.key);
    }
}

/// Drops a name's entry once nobody holds or waits for it, so the table does not grow with
/// every name ever used. Holders and waiters each keep a clone of the semaphore's `Arc`.
fn forget_if_unused(key: &LockKey) {
    let mut t = table();
    if t.get(key).is_some_and(|s| Arc::strong_count(s) == 1) {
        t.remove(key);
    }
}

impl Backend for MemBackend {
    type Held = MemHeld;

    fn scheme(&self) -> &'static str {
        "mem"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fair: true,
            native_wait: true,
            ..Capabilities::default()
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        format!("mem:{}/{}", key.namespace(), key.name())
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        _: &AcquireContext,
    ) -> Result<Option<Acquired<MemHeld>>> {
        let sem = Self::semaphore(key);
        let outcome = sem.try_acquire_owned().ok();
        match outcome {
            Some(permit) => Ok(Some(Self::granted(key, permit))),
            None => {
                forget_if_unused(key);
                Ok(None)
            }
        }
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<MemHeld>>> {
        ctx.note_attempt();
        let sem = Self::semaphore(key);
        // Removes the entry if this waiter was its last user and gave up (timeout or a dropped
        // future), whatever the exit path.
        struct Forget<'a>(&'a LockKey);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                forget_if_unused(self.0);
            }
        }
        let _forget = Forget(key);
        let permit = match deadline {
            None => sem.acquire_owned().await.ok(),
            Some(d) => tokio::time::timeout_at(d, sem.acquire_owned())
                .await
                .ok()
                .and_then(|p| p.ok()),
        };
        Ok(permit.map(|p| Self::granted(key, p)))
    }

    async fn release(&self, held: MemHeld) -> Result<bool> {
        drop(held);
        Ok(true)
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let t = table();
        let state = |sem: Option<&Arc<Semaphore>>| match sem {
            Some(s) if s.available_permits() == 0 => LockState::Held,
            _ => LockState::Free,
        };
        let listed: Vec<LockStatus> = if keys.is_empty() {
            let mut held: Vec<&LockKey> = t
                .iter()
                .filter(|(k, s)| k.namespace() == namespace && s.available_permits() == 0)
                .map(|(k, _)| k)
                .collect();
            held.sort_by(|a, b| a.name().as_str().cmp(b.name().as_str()));
            held.into_iter()
                .map(|k| {
                    LockStatus::new(
                        Some(k.name().to_string()),
                        self.resource(k),
                        LockState::Held,
                        None,
                    )
                })
                .collect()
        } else {
            keys.iter()
                .map(|k| {
                    LockStatus::new(
                        Some(k.name().to_string()),
                        self.resource(k),
                        state(t.get(k)),
                        None,
                    )
                })
                .collect()
        };
        Ok(listed)
    }

    async fn cleanup(&self, _namespace: &str) -> Result<CleanupReport> {
        Ok(CleanupReport::default())
    }
}
