//! Hogging from a tokio task: [`async_hog_lock`], [`AsyncLockHogger`], [`AsyncHogHandle`].

use std::future::Future;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::async_hogger::AsyncHogger;
use super::error::panic_message;
use super::hogger::HogContext;
use super::{HogError, HogHandle, HogOptions};
use crate::error::BoxError;

/// Hogs a lock from a tokio task of the current runtime and returns once it is held. Works on
/// the current-thread runtime of `#[tokio::test]` (the task runs while the test awaits) and on
/// the multi-thread one.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use tokio::sync::Mutex;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), lockhog::hog::HogError> {
/// let pay_lock = Arc::new(Mutex::new(()));
/// let lock = pay_lock.clone();
/// let hog = lockhog::hog::async_hog_lock(move || lock.lock_owned()).await?;
/// assert!(pay_lock.try_lock().is_err());
/// hog.release().await?;
/// assert!(pay_lock.try_lock().is_ok());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`hog_lock`](super::hog_lock).
///
/// # Panics
///
/// When called outside a tokio runtime.
pub async fn async_hog_lock<M: 'static, H: AsyncHogger<M>>(
    hogger: H,
) -> Result<AsyncHogHandle, HogError> {
    HogOptions::default().async_hog_lock(hogger).await
}

impl HogOptions {
    /// [`async_hog_lock`] with these time limits.
    ///
    /// # Errors
    ///
    /// As [`hog_lock`](super::hog_lock).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn async_hog_lock<M: 'static, H: AsyncHogger<M>>(
        self,
        hogger: H,
    ) -> Result<AsyncHogHandle, HogError> {
        let ctx = HogContext::new(self.acquire_timeout());
        let chans = Channels::new();
        let task = tokio::spawn(hog_task(
            async move { hogger.acquire(&ctx).await },
            H::release,
            chans.task,
        ));
        chans.caller.wait_acquired(task, &self, ctx).await
    }
}

/// Hogs a lock whose guard is not `Send` from a local task: call it inside a
/// [`tokio::task::LocalSet`] (it uses [`tokio::task::spawn_local`]). The guard is released by
/// dropping it. Uses the default [`HogOptions`].
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// static PAY_LOCK: Mutex<()> = Mutex::new(());
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), lockhog::hog::HogError> {
/// let local = tokio::task::LocalSet::new();
/// local.run_until(async {
///     // A std `MutexGuard` is not `Send`: it stays on the local task.
///     let hog = lockhog::hog::async_hog_lock_local(|| async { PAY_LOCK.lock().unwrap() }).await?;
///     assert!(PAY_LOCK.try_lock().is_err());
///     hog.release().await?;
///     assert!(PAY_LOCK.try_lock().is_ok());
///     Ok(())
/// }).await
/// # }
/// ```
///
/// # Errors
///
/// As [`hog_lock`](super::hog_lock).
///
/// # Panics
///
/// When called outside a `LocalSet`.
pub async fn async_hog_lock_local<F, Fut, G>(hogger: F) -> Result<AsyncHogHandle, HogError>
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = G> + 'static,
    G: 'static,
{
    HogOptions::default().async_hog_lock_local(hogger).await
}

impl HogOptions {
    /// [`async_hog_lock_local`] with these time limits.
    ///
    /// # Errors
    ///
    /// As [`hog_lock`](super::hog_lock).
    ///
    /// # Panics
    ///
    /// When called outside a `LocalSet`.
    pub async fn async_hog_lock_local<F, Fut, G>(
        self,
        hogger: F,
    ) -> Result<AsyncHogHandle, HogError>
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = G> + 'static,
        G: 'static,
    {
        let chans = Channels::new();
        let task = tokio::task::spawn_local(hog_task(
            async move { Ok(hogger().await) },
            |held: G| async move {
                drop(held);
                Ok(())
            },
            chans.task,
        ));
        let ctx = HogContext::new(self.acquire_timeout());
        chans.caller.wait_acquired(task, &self, ctx).await
    }
}

type Reply = Result<(), BoxError>;

struct TaskEnds {
    acquired: oneshot::Sender<Reply>,
    release: oneshot::Receiver<()>,
    released: oneshot::Sender<Reply>,
}

struct CallerEnds {
    acquired: oneshot::Receiver<Reply>,
    release: oneshot::Sender<()>,
    released: oneshot::Receiver<Reply>,
}

struct Channels {
    task: TaskEnds,
    caller: CallerEnds,
}

impl Channels {
    fn new() -> Self {
        let (acq_tx, acq_rx) = oneshot::channel();
        let (rel_tx, rel_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        Channels {
            task: TaskEnds {
                acquired: acq_tx,
                release: rel_rx,
                released: done_tx,
            },
            caller: CallerEnds {
                acquired: acq_rx,
                release: rel_tx,
                released: done_rx,
            },
        }
    }
}

/// The hog's task: acquire, report, wait for the release request (or the handle's drop),
/// release, report. `Send` exactly when its parts are.
async fn hog_task<Held, A, R, RF>(acquire: A, release: R, ends: TaskEnds)
where
    A: Future<Output = Result<Held, BoxError>>,
    R: FnOnce(Held) -> RF,
    RF: Future<Output = Reply>,
{
    let held = match acquire.await {
        Ok(held) => held,
        Err(e) => {
            let _ = ends.acquired.send(Err(e));
            return;
        }
    };
    tracing::debug!("hog task: acquired");
    if ends.acquired.send(Ok(())).is_ok() {
        let _ = ends.release.await;
    }
    // Else the caller stopped waiting: give the lock back at once.
    let outcome = release(held).await;
    tracing::debug!("hog task: released");
    let _ = ends.released.send(outcome);
}

async fn panic_of(task: JoinHandle<()>, doing: &'static str) -> Option<String> {
    match task.await {
        Err(e) if e.is_panic() => Some(panic_message(&*e.into_panic())),
        _ => {
            tracing::warn!("hog task ended without reporting {doing}");
            None
        }
    }
}

impl CallerEnds {
    async fn wait_acquired(
        self,
        task: JoinHandle<()>,
        opts: &HogOptions,
        ctx: HogContext,
    ) -> Result<AsyncHogHandle, HogError> {
        let timeout = opts.acquire_timeout();
        match tokio::time::timeout(timeout, self.acquired).await {
            Ok(Ok(Ok(()))) => Ok(AsyncHogHandle {
                inner: Inner::Task(TaskHog {
                    release: Some(self.release),
                    released: self.released,
                    task,
                    release_timeout: opts.release_timeout(),
                }),
            }),
            Ok(Ok(Err(source))) => Err(ctx.acquire_failed(source, timeout)),
            Ok(Err(_)) => Err(match panic_of(task, "an acquire").await {
                Some(message) => HogError::AcquirePanicked { message },
                None => HogError::Vanished {
                    what: "task",
                    doing: "an acquire",
                },
            }),
            Err(_) => {
                tracing::warn!(?timeout, "hog task: the hogger did not acquire in time");
                Err(HogError::AcquireTimedOut { timeout })
            }
        }
    }
}

#[derive(Debug)]
struct TaskHog {
    release: Option<oneshot::Sender<()>>,
    released: oneshot::Receiver<Reply>,
    task: JoinHandle<()>,
    release_timeout: std::time::Duration,
}

#[derive(Debug)]
enum Inner {
    Task(TaskHog),
    Blocking(HogHandle),
    Finished,
}

/// A lock hogged by [`async_hog_lock`] (or by [`NamedLock::hog_async`](super::NamedLock)).
/// Release it with [`AsyncHogHandle::release`], which tells how the release went.
///
/// Dropping it asks the hog to release without waiting (an async runtime must not block):
/// on a current-thread runtime the task releases at the test's next `.await`. Errors of such a
/// release are only logged; `release().await` reports them.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the hog handle is dropped"]
pub struct AsyncHogHandle {
    inner: Inner,
}

impl AsyncHogHandle {
    pub(crate) fn blocking(handle: HogHandle) -> Self {
        AsyncHogHandle {
            inner: Inner::Blocking(handle),
        }
    }

    /// The locks held, for a process hog (see [`HogHandle::held`]).
    pub fn held(&self) -> &[crate::protocol::HeldLine] {
        match &self.inner {
            Inner::Blocking(h) => h.held(),
            _ => &[],
        }
    }

    /// Releases the lock and waits, at most the release timeout, for the hogger to finish.
    ///
    /// # Errors
    ///
    /// [`HogError::ReleaseFailed`], [`HogError::ReleasePanicked`]; [`HogError::StillHolding`]
    /// when the hogger did not finish in time (its task is then aborted, which drops what it
    /// held).
    pub async fn release(mut self) -> Result<(), HogError> {
        match std::mem::replace(&mut self.inner, Inner::Finished) {
            Inner::Task(mut t) => {
                if let Some(tx) = t.release.take() {
                    let _ = tx.send(());
                }
                let timeout = t.release_timeout;
                match tokio::time::timeout(timeout, &mut t.released).await {
                    Ok(Ok(Ok(()))) => Ok(()),
                    Ok(Ok(Err(source))) => Err(HogError::ReleaseFailed { source }),
                    Ok(Err(_)) => Err(match panic_of(t.task, "a release").await {
                        Some(message) => HogError::ReleasePanicked { message },
                        None => HogError::Vanished {
                            what: "task",
                            doing: "a release",
                        },
                    }),
                    Err(_) => {
                        t.task.abort();
                        Err(HogError::StillHolding { timeout })
                    }
                }
            }
            Inner::Blocking(h) => join_blocking(move || h.release()).await,
            Inner::Finished => Ok(()),
        }
    }

    /// Ends a process hog without releasing; see [`HogHandle::abandon`].
    ///
    /// # Errors
    ///
    /// As [`HogHandle::abandon`].
    pub async fn abandon(mut self) -> Result<(), HogError> {
        match std::mem::replace(&mut self.inner, Inner::Finished) {
            Inner::Blocking(h) => join_blocking(move || h.abandon()).await,
            other => {
                self.inner = other;
                Err(HogError::Unsupported(
                    "only a process hog (HogFrom::Process) can abandon its lock".into(),
                ))
            }
        }
    }
}

async fn join_blocking(
    f: impl FnOnce() -> Result<(), HogError> + Send + 'static,
) -> Result<(), HogError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(HogError::ReleasePanicked {
            message: e.to_string(),
        })
    })
}

impl Drop for AsyncHogHandle {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.inner, Inner::Finished) {
            Inner::Task(mut t) => {
                if let Some(tx) = t.release.take() {
                    let _ = tx.send(());
                }
            }
            Inner::Blocking(h) => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(move || {
                        if let Err(e) = h.release() {
                            tracing::error!(error = %e, "hog: release on drop failed");
                        }
                    });
                }
                Err(_) => drop(h),
            },
            Inner::Finished => {}
        }
    }
}
