//! `mem:` — named locks inside one process.
//!
//! Every `mem:` locker of a process shares one table of names, so two lockers exclude each
//! other as two connections to a server would. Waiters queue in FIFO order and are woken by
//! the release itself. Fencing tokens come from one process-wide counter. A semaphore's
//! permits are slot locks (see [`super::slots`]); its count is kept in a process-wide table
//! for the life of the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use tokio::time::Instant;

use super::named_semaphores::{NamedPermit, NamedSemaphores};
use super::row::{connecting, BackendRow};
use super::{
    AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockState, LockStatus,
};
use crate::error::Result;
use crate::name::LockKey;
use crate::url::BackendUrl;

/// The `mem:` row of the backend registry.
pub(crate) const ROW: BackendRow = BackendRow::of::<MemBackend>(&["mem"], None, |url| {
    let backend = MemBackend::open(url)?;
    Ok(connecting(async { Ok(backend) }))
});

static TABLE: LazyLock<NamedSemaphores<LockKey>> = LazyLock::new(NamedSemaphores::new);
static TOKENS: AtomicU64 = AtomicU64::new(0);
static PERMIT_COUNTS: LazyLock<Mutex<HashMap<LockKey, u32>>> = LazyLock::new(Mutex::default);

/// The in-process backend.
#[derive(Debug, Default)]
pub struct MemBackend(());

/// A held `mem:` lock; dropping it releases.
#[derive(Debug)]
pub struct MemHeld {
    _permit: NamedPermit<LockKey>,
}

impl MemBackend {
    /// Opens `mem:`; the URL takes no path and no options of its own.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidUrl`] when anything follows `mem:`.
    fn open(url: &mut BackendUrl) -> Result<Self> {
        if !url.body().is_empty() {
            return Err(url.invalid("mem: takes no path"));
        }
        Ok(MemBackend(()))
    }

    fn granted(permit: NamedPermit<LockKey>, fencing: bool) -> Acquired<MemHeld> {
        Acquired {
            held: MemHeld { _permit: permit },
            token: fencing.then(|| TOKENS.fetch_add(1, Ordering::Relaxed) + 1),
        }
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
            semaphore: true,
            ..Capabilities::default()
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        format!("mem:{}/{}", key.namespace(), key.name())
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<MemHeld>>> {
        let fencing = ctx.options.fencing;
        Ok(TABLE.try_acquire(key).map(|p| Self::granted(p, fencing)))
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<MemHeld>>> {
        ctx.note_attempt();
        let fencing = ctx.options.fencing;
        Ok(TABLE
            .acquire(key, deadline)
            .await
            .map(|p| Self::granted(p, fencing)))
    }

    async fn record_permits(&self, key: &LockKey, permits: u32) -> Result<()> {
        let mut counts = PERMIT_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = *counts.entry(key.clone()).or_insert(permits);
        if recorded != permits {
            return Err(super::slots::count_mismatch(key, recorded, permits));
        }
        Ok(())
    }

    async fn release(&self, held: MemHeld) -> Result<bool> {
        drop(held);
        Ok(true)
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let line = |k: &LockKey, state| {
            LockStatus::new(Some(k.name().to_string()), self.resource(k), state, None)
        };
        if !keys.is_empty() {
            return Ok(keys
                .iter()
                .map(|k| {
                    line(
                        k,
                        if TABLE.is_held(k) {
                            LockState::Held
                        } else {
                            LockState::Free
                        },
                    )
                })
                .collect());
        }
        let mut held: Vec<LockKey> = TABLE
            .held()
            .into_iter()
            .filter(|k| k.namespace() == namespace)
            .collect();
        held.sort_by(|a, b| a.name().as_str().cmp(b.name().as_str()));
        Ok(held.iter().map(|k| line(k, LockState::Held)).collect())
    }

    async fn cleanup(&self, _namespace: &str) -> Result<CleanupReport> {
        Ok(CleanupReport::default())
    }
}
