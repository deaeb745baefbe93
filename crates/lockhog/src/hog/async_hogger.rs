//! What a task hog can hold: the [`AsyncHogger`] trait, the [`AsyncLockHogger`] helper trait,
//! and their impls.

use std::future::Future;
use std::sync::Arc;

use super::hogger::{marker, HogContext};
use crate::error::BoxError;

/// Anything a task hog can acquire and later release: the async twin of
/// [`Hogger`](super::Hogger). `M` is a [marker](super::marker) type the compiler infers.
///
/// Implemented for:
/// - closures `FnOnce() -> impl Future<Output = G>` returning any `Send` guard `G`
///   (`|| LOCK.clone().lock_owned()`), released by dropping it;
/// - every [`AsyncLockHogger`];
/// - `Arc<tokio::sync::Mutex<T>>` (through `lock_owned`);
/// - [`crate::LockRequest`], acquired as configured;
/// - [`NamedLock`](super::NamedLock), a lockhog lock taken through a connection of its own.
///
/// For a guard that is not `Send`, see [`async_hog_lock_local`](super::async_hog_lock_local).
pub trait AsyncHogger<M>: Send + 'static {
    /// What the hog's task keeps while the lock is held.
    type Held: Send + 'static;

    /// Takes the lock, waiting as long as needed; `ctx` says when the caller stops waiting.
    ///
    /// # Errors
    ///
    /// Whatever kept the lock from being taken.
    fn acquire(self, ctx: &HogContext)
        -> impl Future<Output = Result<Self::Held, BoxError>> + Send;

    /// Gives the lock back.
    ///
    /// # Errors
    ///
    /// Whatever kept the lock from being given back.
    fn release(held: Self::Held) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// An async lock that a task hog knows how to acquire and release: the Python original's
/// `AsyncLockHogger`, with fallible methods and a guard handed from one to the other.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use tokio::sync::{Mutex, OwnedMutexGuard};
/// use lockhog::hog::{async_hog_lock, AsyncLockHogger};
/// use lockhog::BoxError;
///
/// struct PayLockHogger(Arc<Mutex<()>>);
///
/// impl AsyncLockHogger for PayLockHogger {
///     type Guard = OwnedMutexGuard<()>;
///     async fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
///         Ok(self.0.clone().lock_owned().await)
///     }
///     async fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
///         drop(guard);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), lockhog::hog::HogError> {
/// let lock = Arc::new(Mutex::new(()));
/// let hog = async_hog_lock(PayLockHogger(lock.clone())).await?;
/// assert!(lock.try_lock().is_err());
/// hog.release().await?;
/// assert!(lock.try_lock().is_ok());
/// # Ok(())
/// # }
/// ```
pub trait AsyncLockHogger: Send + 'static {
    /// What `acquire_lock` returns and `release_lock` takes back.
    type Guard: Send + 'static;

    /// Takes the lock, waiting as long as needed.
    ///
    /// # Errors
    ///
    /// Reported as [`HogError::AcquireFailed`](super::HogError::AcquireFailed).
    fn acquire_lock(&mut self) -> impl Future<Output = Result<Self::Guard, BoxError>> + Send;

    /// Gives the lock back.
    ///
    /// # Errors
    ///
    /// Reported as [`HogError::ReleaseFailed`](super::HogError::ReleaseFailed).
    fn release_lock(
        &mut self,
        guard: Self::Guard,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

impl<F, Fut, G> AsyncHogger<marker::Closure> for F
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = G> + Send,
    G: Send + 'static,
{
    type Held = G;
    async fn acquire(self, _: &HogContext) -> Result<G, BoxError> {
        Ok(self().await)
    }
    async fn release(held: G) -> Result<(), BoxError> {
        drop(held);
        Ok(())
    }
}

impl<L: AsyncLockHogger> AsyncHogger<marker::ViaLockHogger> for L {
    type Held = (L, L::Guard);
    async fn acquire(mut self, _: &HogContext) -> Result<Self::Held, BoxError> {
        let guard = self.acquire_lock().await?;
        Ok((self, guard))
    }
    async fn release((mut hogger, guard): Self::Held) -> Result<(), BoxError> {
        hogger.release_lock(guard).await
    }
}

impl<T: Send + 'static> AsyncHogger<marker::Direct> for Arc<tokio::sync::Mutex<T>> {
    type Held = tokio::sync::OwnedMutexGuard<T>;
    async fn acquire(self, _: &HogContext) -> Result<Self::Held, BoxError> {
        Ok(self.lock_owned().await)
    }
    async fn release(held: Self::Held) -> Result<(), BoxError> {
        drop(held);
        Ok(())
    }
}

impl AsyncHogger<marker::Direct> for crate::LockRequest {
    type Held = crate::LockGuard;
    async fn acquire(self, _: &HogContext) -> Result<Self::Held, BoxError> {
        Ok(crate::LockRequest::acquire(self).await?)
    }
    async fn release(held: Self::Held) -> Result<(), BoxError> {
        super::hogger::lost_is_error(held.release().await?)
    }
}
