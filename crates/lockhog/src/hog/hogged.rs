//! The decorator form: run a body while a lock is hogged, release afterwards (also when the
//! body panics). The attribute [`#[lockhog::hogged(...)]`](macro@crate::hogged) expands to these.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{AsyncHogger, HogError, HogOptions, Hogger};

/// Runs `body` while `hogger`'s lock is hogged from another thread, then releases it, and
/// returns the body's value. When the body panics, the lock is released first and the panic
/// then goes on.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// static PAY_LOCK: Mutex<()> = Mutex::new(());
///
/// let busy = lockhog::hog::hogged(|| PAY_LOCK.lock().unwrap(), || PAY_LOCK.try_lock().is_err())?;
/// assert!(busy);
/// assert!(PAY_LOCK.try_lock().is_ok(), "released afterwards");
/// # Ok::<(), lockhog::hog::HogError>(())
/// ```
///
/// # Errors
///
/// Those of [`hog_lock`](super::hog_lock) (the body then does not run) and of
/// [`HogHandle::release`](super::HogHandle::release).
///
/// # Panics
///
/// When the body panics, after releasing.
pub fn hogged<M, H, T>(hogger: H, body: impl FnOnce() -> T) -> Result<T, HogError>
where
    H: Hogger<M> + 'static,
{
    HogOptions::default().hogged(hogger, body)
}

impl HogOptions {
    /// [`hogged`] with these time limits.
    ///
    /// # Errors
    ///
    /// As [`hogged`].
    ///
    /// # Panics
    ///
    /// When the body panics, after releasing.
    pub fn hogged<M, H, T>(self, hogger: H, body: impl FnOnce() -> T) -> Result<T, HogError>
    where
        H: Hogger<M> + 'static,
    {
        let hog = self.hog_lock(hogger)?;
        finish(catch_unwind(AssertUnwindSafe(body)), || hog.release())
    }
}

/// Returns the body's value once released; resumes its panic after releasing.
pub(crate) fn finish<T>(
    outcome: std::thread::Result<T>,
    release: impl FnOnce() -> Result<(), HogError>,
) -> Result<T, HogError> {
    let released = release();
    match outcome {
        Ok(value) => released.map(|()| value),
        Err(payload) => {
            if let Err(e) = released {
                tracing::error!(error = %e, "hog: release after a panicking body failed");
            }
            resume_unwind(payload)
        }
    }
}

/// Awaits `body` while `hogger`'s lock is hogged from a task, then releases it, and returns the
/// body's output; when the body panics, the lock is released and the panic goes on.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use tokio::sync::Mutex;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), lockhog::hog::HogError> {
/// let lock = Arc::new(Mutex::new(()));
/// let busy = lockhog::hog::async_hogged(lock.clone(), async { lock.try_lock().is_err() }).await?;
/// assert!(busy);
/// assert!(lock.try_lock().is_ok());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// Those of [`async_hog_lock`](super::async_hog_lock) and of
/// [`AsyncHogHandle::release`](super::AsyncHogHandle::release).
///
/// # Panics
///
/// When the body panics, after releasing; outside a tokio runtime.
pub async fn async_hogged<M, H, F>(hogger: H, body: F) -> Result<F::Output, HogError>
where
    M: 'static,
    H: AsyncHogger<M>,
    F: Future,
{
    HogOptions::default().async_hogged(hogger, body).await
}

impl HogOptions {
    /// [`async_hogged`] with these time limits.
    ///
    /// # Errors
    ///
    /// As [`async_hogged`].
    ///
    /// # Panics
    ///
    /// As [`async_hogged`].
    pub async fn async_hogged<M, H, F>(self, hogger: H, body: F) -> Result<F::Output, HogError>
    where
        M: 'static,
        H: AsyncHogger<M>,
        F: Future,
    {
        let hog = self.async_hog_lock(hogger).await?;
        let outcome = CatchUnwind(Box::pin(body)).await;
        let released = hog.release().await;
        finish(outcome, || released)
    }
}

/// Polls a future, turning a panic into an `Err` (as `catch_unwind` does for a closure).
pub(crate) struct CatchUnwind<F>(pub(crate) Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
