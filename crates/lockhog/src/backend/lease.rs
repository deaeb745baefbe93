//! Background renewal of a lease, for any backend whose locks expire unless renewed (Redis,
//! Redlock, memcached, a SQL lock table).
//!
//! A backend implements [`Lease`] for its per-acquisition state (an owner token and a
//! connection) and calls [`Renewal::spawn`] when the acquire succeeds. The renewal task:
//!
//! - renews every `ttl / 3`, counted from the last successful renewal;
//! - retries sooner after a failed renewal (an I/O error, no answer in time) and keeps
//!   trying while the lease is still valid: one lost packet does not lose the lock;
//! - reports the lock lost, through the guard's [`LostSender`], when a renewal finds the lease
//!   gone or taken over, or when the lease's validity ran out before any renewal succeeded;
//! - stops the moment the [`Renewal`] is stopped or dropped (the guard was released or
//!   dropped), and never touches the store after that: it owns only what `Lease` holds
//!   (cloned connection handles, the key and the token), never the guard.
//!
//! A renewal in flight when the task is stopped may still reach the store; that is harmless
//! because a renewal only ever extends a lease that still carries the owner's token (a
//! compare-and-extend), so it cannot recreate a released lock or extend somebody else's.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::backend::LostSender;
use crate::error::Result;

/// A lease that can be extended by its owner. See the [module docs](self).
pub trait Lease: Send + Sync + 'static {
    /// Extends the lease by its full ttl if it is still ours. `Ok(Some(until))`: renewed and
    /// valid until `until` (the backend subtracts what it must, e.g. clock drift);
    /// `Ok(None)`: the lease is gone or belongs to someone else now; `Err`: the store could
    /// not be asked (the task retries while the lease is still valid).
    fn renew(&self) -> impl Future<Output = Result<Option<Instant>>> + Send;
}

/// The handle of a running renewal task. Stopping or dropping it stops the task.
#[derive(Debug)]
pub struct Renewal {
    task: Option<JoinHandle<()>>,
}

impl Renewal {
    /// Starts renewing `lease` (of time to live `ttl`, valid until `valid_until`) on the
    /// current tokio runtime, reporting a loss on `lost`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn<L: Lease>(
        lease: L,
        ttl: Duration,
        valid_until: Instant,
        lost: LostSender,
    ) -> Self {
        let task = tokio::spawn(renew_loop(lease, ttl, valid_until, lost));
        Renewal { task: Some(task) }
    }

    /// Stops the task; no renewal starts after this returns.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What [`release_in_background`] logs when a lease's release on drop failed.
#[cfg_attr(not(any(feature = "redis", feature = "memcached")), allow(dead_code))]
pub(crate) const RELEASE_ON_DROP_FAILED: &str = "release on drop failed; the lease will expire";

/// Runs a dropped guard's `release` in a task on `runtime` (the one captured at acquire), as
/// `Drop` must not block; stop the guard's [`Renewal`] first. A failure is only logged, at
/// debug level with the message `failed`: the lease then runs out on its own.
#[cfg_attr(
    not(any(feature = "redis", feature = "memcached", feature = "etcd")),
    allow(dead_code)
)]
pub(crate) fn release_in_background<T, E>(
    runtime: &Handle,
    failed: &'static str,
    release: impl Future<Output = std::result::Result<T, E>> + Send + 'static,
) where
    T: Send + 'static,
    E: Display + Send + 'static,
{
    runtime.spawn(async move {
        if let Err(e) = release.await {
            tracing::debug!(error = %e, "{failed}");
        }
    });
}

/// The shortest pause between two renewal attempts, so a store that fails at once is not
/// hammered.
const MIN_RETRY: Duration = Duration::from_millis(10);

async fn renew_loop<L: Lease>(lease: L, ttl: Duration, mut valid_until: Instant, lost: LostSender) {
    let period = (ttl / 3).max(Duration::from_millis(1));
    let mut next = Instant::now() + period;
    loop {
        sleep_until(next.min(valid_until)).await;
        let started = Instant::now();
        if started >= valid_until {
            lost.mark_lost(format!(
                "the lease ran out ({ttl:?}) before a renewal succeeded"
            ));
            return;
        }
        match timeout_at(valid_until, lease.renew()).await {
            Ok(Ok(Some(until))) => {
                valid_until = until;
                next = started + period;
            }
            Ok(Ok(None)) => {
                lost.mark_lost("the lease was gone or held by someone else when renewing it");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "lease renewal failed; retrying while the lease is valid");
                // Retry well before the lease runs out: a quarter period, but not busily.
                next = Instant::now() + (period / 4).max(MIN_RETRY);
            }
            Err(_) => {
                lost.mark_lost(format!(
                    "no renewal was answered before the lease ran out ({ttl:?})"
                ));
                return;
            }
        }
    }
}

/// The request's `steal_after` for a lease of `ttl`, checked: refused on a `foreign` resource
/// (another program's key carries no acquisition time to compare with) and when shorter than
/// the ttl (a live holder's lock would be taken before a dead holder's lease could run out).
#[cfg_attr(not(any(feature = "redis", feature = "memcached")), allow(dead_code))]
pub(crate) fn steal_after_of(
    options: &crate::options::AcquireOptions,
    ttl: Duration,
    foreign: bool,
) -> Result<Option<Duration>> {
    let Some(limit) = options.steal_after else {
        return Ok(None);
    };
    if foreign {
        return Err(crate::Error::InvalidOption {
            reason: "steal_after needs the time the holder acquired, which another program's \
                     key (a foreign resource) does not carry"
                .into(),
        });
    }
    if limit < ttl {
        return Err(crate::Error::InvalidOption {
            reason: format!(
                "steal_after ({limit:?}) is shorter than the lease ttl ({ttl:?}): a live \
                 holder's lock would be taken before a dead holder's lease could run out; give \
                 a steal_after of at least the ttl, or a shorter ttl"
            ),
        });
    }
    Ok(Some(limit))
}
