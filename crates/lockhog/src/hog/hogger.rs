//! What a hog can hold: the [`Hogger`] trait, the [`LockHogger`] helper trait, and the impls
//! that let `hog_lock` take a closure, a `LockHogger`, a `std` lock or a lockhog lock.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::HogError;
use crate::error::BoxError;

/// Marker types that tell the blanket impls of [`Hogger`] apart. You never name them: the
/// compiler infers the one that fits what you pass to [`hog_lock`](super::hog_lock).
pub mod marker {
    /// A closure that returns a guard.
    #[derive(Debug)]
    pub enum Closure {}
    /// A [`LockHogger`](super::LockHogger).
    #[derive(Debug)]
    pub enum ViaLockHogger {}
    /// A type with its own impl: [`TryFn`](super::TryFn), a `std` lock, a lockhog request.
    #[derive(Debug)]
    pub enum Direct {}
}

/// What a hogger is told when it starts: the deadline of the acquire timeout, for hoggers that
/// can bound their own wait.
#[derive(Clone, Copy, Debug)]
pub struct HogContext {
    deadline: Instant,
}

impl HogContext {
    pub(crate) fn new(acquire_timeout: Duration) -> Self {
        let now = Instant::now();
        HogContext {
            deadline: now.checked_add(acquire_timeout).unwrap_or(now),
        }
    }

    /// When the caller stops waiting for the acquire.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The time left until [`HogContext::deadline`] (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The error for a hogger that failed to acquire with `source`. A hogger that bounds its
    /// wait by this context's deadline (a [`NamedLock`](super::NamedLock) does) gives up at the
    /// very moment the caller stops waiting, and either may notice first: a lockhog
    /// [`Error::TimedOut`](crate::Error::TimedOut) once the deadline has passed is that same
    /// timeout, so it is reported as [`HogError::AcquireTimedOut`] like the caller's own.
    pub(crate) fn acquire_failed(&self, source: BoxError, timeout: Duration) -> HogError {
        let timed_out = matches!(
            source.downcast_ref::<crate::Error>(),
            Some(crate::Error::TimedOut { .. })
        );
        if timed_out && Instant::now() >= self.deadline {
            tracing::warn!(?timeout, "hog: the hogger did not acquire in time");
            return HogError::AcquireTimedOut { timeout };
        }
        HogError::AcquireFailed { source }
    }
}

/// Anything a hog can acquire and later release. `M` is a [marker] type the compiler infers;
/// you implement [`LockHogger`] (or pass a closure) rather than this trait.
///
/// Implemented for:
/// - closures `FnOnce() -> G` returning any guard `G` (released by dropping it; `G` need not
///   be `Send`: it never leaves the hog's thread);
/// - every [`LockHogger`];
/// - [`TryFn`] (a closure returning `Result`, see [`try_fn`]);
/// - `&Mutex<T>` and `&RwLock<T>` (a poisoned lock is taken all the same);
/// - [`crate::LockRequest`] and [`crate::blocking::LockRequest`], acquired as configured,
///   through the request's own locker (lockers exclude each other within a process; for a
///   connection of the hog's own, use a [`NamedLock`](super::NamedLock));
/// - [`NamedLock`](super::NamedLock), a lockhog lock taken through a connection of its own.
pub trait Hogger<M>: Send {
    /// What stays on the hog's thread while the lock is held.
    type Held;

    /// Takes the lock, waiting as long as needed; `ctx` says when the caller stops waiting.
    ///
    /// # Errors
    ///
    /// Whatever kept the lock from being taken.
    fn acquire(self, ctx: &HogContext) -> Result<Self::Held, BoxError>;

    /// Gives the lock back.
    ///
    /// # Errors
    ///
    /// Whatever kept the lock from being given back.
    fn release(held: Self::Held) -> Result<(), BoxError>;
}

/// A lock that a hog knows how to acquire and release: the Python original's `LockHogger`,
/// with fallible methods, and a guard (the per-acquisition state) that `acquire_lock` hands to
/// `release_lock`. The guard need not be `Send`: both calls run on the hog's thread.
///
/// # Examples
///
/// ```
/// use std::sync::{Mutex, MutexGuard};
/// use lockhog::hog::{hog_lock, LockHogger};
/// use lockhog::BoxError;
///
/// static PAY_LOCK: Mutex<()> = Mutex::new(());
///
/// struct PayLockHogger;
///
/// impl LockHogger for PayLockHogger {
///     type Guard = MutexGuard<'static, ()>;
///
///     fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
///         // A poisoned lock is an error here (its `PoisonError` is not `Send`: keep the text).
///         Ok(PAY_LOCK.lock().map_err(|e| e.to_string())?)
///     }
///
///     fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
///         drop(guard);
///         Ok(())
///     }
/// }
///
/// let hog = hog_lock(PayLockHogger)?;
/// assert!(PAY_LOCK.try_lock().is_err());
/// hog.release()?;
/// assert!(PAY_LOCK.try_lock().is_ok());
/// # Ok::<(), lockhog::hog::HogError>(())
/// ```
pub trait LockHogger: Send {
    /// What `acquire_lock` returns and `release_lock` takes back.
    type Guard;

    /// Takes the lock, waiting as long as needed.
    ///
    /// # Errors
    ///
    /// Whatever kept the lock from being taken; reported as
    /// [`HogError::AcquireFailed`](super::HogError::AcquireFailed).
    fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError>;

    /// Gives the lock back.
    ///
    /// # Errors
    ///
    /// Whatever kept the lock from being given back; reported as
    /// [`HogError::ReleaseFailed`](super::HogError::ReleaseFailed).
    fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError>;
}

impl<F, G> Hogger<marker::Closure> for F
where
    F: FnOnce() -> G + Send,
{
    type Held = G;
    fn acquire(self, _: &HogContext) -> Result<G, BoxError> {
        Ok(self())
    }
    fn release(held: G) -> Result<(), BoxError> {
        drop(held);
        Ok(())
    }
}

impl<L: LockHogger> Hogger<marker::ViaLockHogger> for L {
    type Held = (L, L::Guard);
    fn acquire(mut self, _: &HogContext) -> Result<Self::Held, BoxError> {
        let guard = self.acquire_lock()?;
        Ok((self, guard))
    }
    fn release((mut hogger, guard): Self::Held) -> Result<(), BoxError> {
        hogger.release_lock(guard)
    }
}

/// A closure that may fail to acquire: see [`try_fn`].
#[derive(Debug)]
pub struct TryFn<F>(pub F);

/// Wraps a closure returning `Result<guard, error>`, so that an `Err` is reported as
/// [`HogError::AcquireFailed`](super::HogError::AcquireFailed) instead of being held.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use lockhog::hog::{hog_lock, try_fn, HogError};
/// static LOCK: Mutex<u32> = Mutex::new(0);
///
/// let hog = hog_lock(try_fn(|| LOCK.lock().map_err(|e| e.to_string())))?;
/// assert!(LOCK.try_lock().is_err());
/// hog.release()?;
///
/// let err = hog_lock(try_fn(|| Err::<(), _>("the lock server is down"))).unwrap_err();
/// assert!(matches!(err, HogError::AcquireFailed { .. }));
/// # Ok::<(), lockhog::hog::HogError>(())
/// ```
pub fn try_fn<F, G, E>(f: F) -> TryFn<F>
where
    F: FnOnce() -> Result<G, E> + Send,
    E: Into<BoxError>,
{
    TryFn(f)
}

impl<F, G, E> Hogger<marker::Direct> for TryFn<F>
where
    F: FnOnce() -> Result<G, E> + Send,
    E: Into<BoxError>,
{
    type Held = G;
    fn acquire(self, _: &HogContext) -> Result<G, BoxError> {
        (self.0)().map_err(Into::into)
    }
    fn release(held: G) -> Result<(), BoxError> {
        drop(held);
        Ok(())
    }
}

impl<'a, T: ?Sized + Send> Hogger<marker::Direct> for &'a Mutex<T> {
    type Held = MutexGuard<'a, T>;
    fn acquire(self, _: &HogContext) -> Result<Self::Held, BoxError> {
        Ok(self.lock().unwrap_or_else(PoisonError::into_inner))
    }
    fn release(held: Self::Held) -> Result<(), BoxError> {
        drop(held);
        Ok(())
    }
}

impl<'a, T: ?Sized + Send + Sync> Hogger<marker::Direct> for &'a RwLock<T> {
    type Held = RwLockWriteGuard<'a, T>;
    fn acquire(self, _: &HogContext) -> Result<Self::Held, BoxError> {
        Ok(self.write().unwrap_or_else(PoisonError::into_inner))
    }
    fn release(held: Self::Held) -> Result<(), BoxError> {
        drop(held);
        Ok(())
    }
}

impl Hogger<marker::Direct> for crate::blocking::LockRequest {
    type Held = crate::blocking::LockGuard;
    fn acquire(self, _: &HogContext) -> Result<Self::Held, BoxError> {
        Ok(crate::blocking::LockRequest::acquire(self)?)
    }
    fn release(held: Self::Held) -> Result<(), BoxError> {
        lost_is_error(held.release()?)
    }
}

/// An async lock request held from a thread: the thread runs a runtime of its own (one worker,
/// which also carries the guard's background work, such as lease renewal).
impl Hogger<marker::Direct> for crate::LockRequest {
    type Held = (tokio::runtime::Runtime, crate::LockGuard);
    fn acquire(self, _: &HogContext) -> Result<Self::Held, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lockhog-hog")
            .enable_all()
            .build()?;
        let guard = rt.block_on(crate::LockRequest::acquire(self))?;
        Ok((rt, guard))
    }
    fn release((rt, guard): Self::Held) -> Result<(), BoxError> {
        lost_is_error(rt.block_on(guard.release())?)
    }
}

/// A release that found the lock already lost is a failure of the hog.
pub(crate) fn lost_is_error(still_ours: bool) -> Result<(), BoxError> {
    if still_ours {
        Ok(())
    } else {
        Err("the lock had been lost before it was released".into())
    }
}
