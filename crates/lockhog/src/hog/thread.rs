//! Hogging from a thread: [`hog_lock`], [`HogOptions::hog_lock`] and the handle they return.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::error::panic_message;
use super::hogger::{HogContext, Hogger};
use super::process::ProcessHog;
use super::{HogError, HogOptions};
use crate::error::BoxError;
use crate::protocol::HeldLine;

/// Hogs a lock from another thread: acquires it there through `hogger` and returns once it is
/// held. The lock stays held until the returned [`HogHandle`] is released or dropped.
///
/// `hogger` is a closure returning a guard, a [`LockHogger`](super::LockHogger), a `&'static`
/// `std` lock, a lockhog lock request or a [`NamedLock`](super::NamedLock) (see
/// [`Hogger`] for the list). The hogger and its guard live on the hog's thread, so the guard
/// need not be `Send` (a `std::sync::MutexGuard` is not). To borrow a lock that is not
/// `'static`, use [`hog_scoped`](super::hog_scoped).
///
/// Uses the default [`HogOptions`]: 10 s to acquire, 1 s to release.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// static PAY_LOCK: Mutex<()> = Mutex::new(());
///
/// let hog = lockhog::hog::hog_lock(|| PAY_LOCK.lock().unwrap())?;
/// assert!(PAY_LOCK.try_lock().is_err(), "held by the hog");
/// hog.release()?;
/// assert!(PAY_LOCK.try_lock().is_ok());
/// # Ok::<(), lockhog::hog::HogError>(())
/// ```
///
/// # Errors
///
/// [`HogError::AcquireFailed`] or [`HogError::AcquirePanicked`] as soon as the hogger fails;
/// [`HogError::AcquireTimedOut`] when it has not acquired within the acquire timeout (it then
/// releases at once if it acquires later); [`HogError::Spawn`] when no thread can be started.
pub fn hog_lock<M, H>(hogger: H) -> Result<HogHandle, HogError>
where
    H: Hogger<M> + 'static,
{
    HogOptions::default().hog_lock(hogger)
}

impl HogOptions {
    /// [`hog_lock`] with these time limits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use std::time::Duration;
    /// use lockhog::hog::{HogError, HogOptions};
    ///
    /// static LOCK: Mutex<()> = Mutex::new(());
    /// let _mine = LOCK.lock().unwrap();
    ///
    /// // The hog cannot get a lock we hold: it says so after the acquire timeout.
    /// let opts = HogOptions::new().with_acquire_timeout(Duration::from_millis(50));
    /// let err = opts.hog_lock(|| LOCK.lock().unwrap()).unwrap_err();
    /// assert!(matches!(err, HogError::AcquireTimedOut { .. }));
    /// assert!(err.to_string().contains("50ms"));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`hog_lock`].
    pub fn hog_lock<M, H>(self, hogger: H) -> Result<HogHandle, HogError>
    where
        H: Hogger<M> + 'static,
    {
        start(hogger, &self, |work| {
            std::thread::Builder::new()
                .name("lockhog-hog".into())
                .spawn(work)
                .map(drop)
        })
    }
}

/// How an acquire or release on the hog's thread went.
pub(crate) enum Outcome {
    Done,
    Failed(BoxError),
    Panicked(String),
}

fn run<T>(f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, Outcome> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Outcome::Failed(e)),
        Err(payload) => Err(Outcome::Panicked(panic_message(&*payload))),
    }
}

/// Starts a hog whose thread is made by `spawn`, and waits until it holds the lock.
pub(crate) fn start<'a, M, H>(
    hogger: H,
    opts: &HogOptions,
    spawn: impl FnOnce(Box<dyn FnOnce() + Send + 'a>) -> std::io::Result<()>,
) -> Result<HogHandle, HogError>
where
    H: Hogger<M> + 'a,
{
    let (acquired_tx, acquired_rx) = mpsc::channel::<Outcome>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (released_tx, released_rx) = mpsc::channel::<Outcome>();
    let ctx = HogContext::new(opts.acquire_timeout());
    let caller_ctx = ctx;
    spawn(Box::new(move || {
        let held = match run(|| hogger.acquire(&ctx)) {
            Ok(held) => held,
            Err(outcome) => {
                let _ = acquired_tx.send(outcome);
                return;
            }
        };
        tracing::debug!("hog: acquired");
        let _ = acquired_tx.send(Outcome::Done);
        // A release request, or the handle gone (including a caller that stopped waiting for
        // the acquire): either way, give the lock back now.
        let _ = release_rx.recv();
        let outcome = match run(|| H::release(held)) {
            Ok(()) => Outcome::Done,
            Err(outcome) => outcome,
        };
        tracing::debug!("hog: released");
        let _ = released_tx.send(outcome);
    }))
    .map_err(HogError::Spawn)?;

    let timeout = opts.acquire_timeout();
    match acquired_rx.recv_timeout(timeout) {
        Ok(Outcome::Done) => Ok(HogHandle::thread(ThreadHog {
            release_tx: Some(release_tx),
            released_rx,
            release_timeout: opts.release_timeout(),
        })),
        Ok(Outcome::Failed(source)) => Err(caller_ctx.acquire_failed(source, timeout)),
        Ok(Outcome::Panicked(message)) => Err(HogError::AcquirePanicked { message }),
        Err(RecvTimeoutError::Timeout) => {
            tracing::warn!(?timeout, "hog: the hogger did not acquire in time");
            Err(HogError::AcquireTimedOut { timeout })
        }
        Err(RecvTimeoutError::Disconnected) => Err(HogError::Vanished {
            what: "thread",
            doing: "an acquire",
        }),
    }
}

/// The thread side of a [`HogHandle`].
#[derive(Debug)]
pub(crate) struct ThreadHog {
    release_tx: Option<mpsc::Sender<()>>,
    released_rx: mpsc::Receiver<Outcome>,
    release_timeout: Duration,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Done => f.write_str("Done"),
            Outcome::Failed(e) => write!(f, "Failed({e})"),
            Outcome::Panicked(m) => write!(f, "Panicked({m})"),
        }
    }
}

impl ThreadHog {
    fn release(&mut self) -> Result<(), HogError> {
        let Some(tx) = self.release_tx.take() else {
            return Ok(());
        };
        let _ = tx.send(());
        let timeout = self.release_timeout;
        match self.released_rx.recv_timeout(timeout) {
            Ok(Outcome::Done) => Ok(()),
            Ok(Outcome::Failed(source)) => Err(HogError::ReleaseFailed { source }),
            Ok(Outcome::Panicked(message)) => Err(HogError::ReleasePanicked { message }),
            Err(RecvTimeoutError::Timeout) => Err(HogError::StillHolding { timeout }),
            Err(RecvTimeoutError::Disconnected) => Err(HogError::Vanished {
                what: "thread",
                doing: "a release",
            }),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Thread(ThreadHog),
    Process(ProcessHog),
    Finished,
}

/// A hogged lock. Release it with [`HogHandle::release`], which tells how the release went, or
/// by dropping the handle.
///
/// # Panics
///
/// Dropping a handle that was not released releases the lock, and panics when that release
/// fails or does not finish within the release timeout (unless the thread is already
/// panicking), so that a stuck hogger fails the test instead of going unnoticed. Call
/// [`HogHandle::release`] to handle those errors yourself.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the hog handle is dropped"]
pub struct HogHandle {
    inner: Inner,
}

impl HogHandle {
    pub(crate) fn thread(hog: ThreadHog) -> Self {
        HogHandle {
            inner: Inner::Thread(hog),
        }
    }

    pub(crate) fn process(hog: ProcessHog) -> Self {
        HogHandle {
            inner: Inner::Process(hog),
        }
    }

    /// The locks held, as `lockhog hold` reported them: only a process hog knows them; empty
    /// for a thread hog.
    pub fn held(&self) -> &[HeldLine] {
        match &self.inner {
            Inner::Process(p) => p.held(),
            _ => &[],
        }
    }

    /// Releases the lock and waits, at most the release timeout, for the hogger to finish.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    /// static LOCK: Mutex<()> = Mutex::new(());
    ///
    /// let hog = lockhog::hog::hog_lock(&LOCK)?;
    /// hog.release()?;
    /// assert!(LOCK.try_lock().is_ok());
    /// # Ok::<(), lockhog::hog::HogError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`HogError::ReleaseFailed`] or [`HogError::ReleasePanicked`] when the hogger failed;
    /// [`HogError::StillHolding`] when it did not finish within the release timeout (a process
    /// hog is then killed).
    pub fn release(mut self) -> Result<(), HogError> {
        self.release_inner()
    }

    /// Ends a process hog without releasing (`abandon` on its stdin): the crash case, where
    /// the lock goes with the process (fd- and connection-bound locks) or stays until its
    /// lease runs out.
    ///
    /// # Errors
    ///
    /// [`HogError::Unsupported`] for a thread hog (a thread cannot die without unwinding its
    /// guard); [`HogError::StillHolding`] when the child had not exited within the release
    /// timeout (it is then killed); [`HogError::Process`] when its stdin could not be written.
    pub fn abandon(mut self) -> Result<(), HogError> {
        match std::mem::replace(&mut self.inner, Inner::Finished) {
            Inner::Process(mut p) => p.abandon(),
            other => {
                self.inner = other;
                Err(HogError::Unsupported(
                    "only a process hog (HogFrom::Process) can abandon its lock".into(),
                ))
            }
        }
    }

    fn release_inner(&mut self) -> Result<(), HogError> {
        match std::mem::replace(&mut self.inner, Inner::Finished) {
            Inner::Thread(mut t) => t.release(),
            Inner::Process(mut p) => p.release(),
            Inner::Finished => Ok(()),
        }
    }
}

impl Drop for HogHandle {
    fn drop(&mut self) {
        if let Err(e) = self.release_inner() {
            tracing::error!(error = %e, "hog: release on drop failed");
            if !std::thread::panicking() {
                panic!("lockhog: releasing a hogged lock on drop failed: {e}");
            }
        }
    }
}
