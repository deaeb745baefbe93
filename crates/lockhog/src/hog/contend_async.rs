//! The deterministic race on tokio tasks: [`contend_async`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::contend::ContendOptions;
use super::error::panic_message;
use super::hogged::CatchUnwind;
use super::ContendError;

/// What each attempt of [`contend_async`] gets; see [`Contender`](super::Contender).
#[derive(Debug)]
pub struct AsyncContender {
    index: usize,
    n: usize,
    deadline: tokio::time::Instant,
    settled: Arc<tokio::sync::watch::Sender<usize>>,
    held: Arc<AtomicBool>,
    gave_up: Arc<AtomicBool>,
}

impl AsyncContender {
    /// This attempt's index, 0 to n − 1.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many attempts run.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Called by the attempt that acquired: completes when every other attempt has returned
    /// (or is holding too); `false` when the timeout ran out first.
    pub async fn hold_until_others_done(&self) -> bool {
        if !self.held.swap(true, Ordering::SeqCst) {
            self.settled.send_modify(|s| *s += 1);
        }
        let mut rx = self.settled.subscribe();
        let n = self.n;
        let done = tokio::time::timeout_at(self.deadline, rx.wait_for(|s| *s >= n))
            .await
            .is_ok();
        if !done {
            tracing::warn!(index = self.index, "contend: holder gave up at the timeout");
            self.gave_up.store(true, Ordering::SeqCst);
        }
        done
    }
}

/// [`contend`](super::contend) on tokio tasks of the current runtime: n tasks start together (a
/// [`tokio::sync::Barrier`]) and the winner awaits
/// [`AsyncContender::hold_until_others_done`]. Works on the current-thread runtime too.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use tokio::sync::Mutex;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), lockhog::hog::ContendError> {
/// let lock = Arc::new(Mutex::new(()));
/// let outcomes = lockhog::hog::contend_async(4, move |ctx| {
///     let lock = lock.clone();
///     async move {
///         match lock.try_lock() {
///             Ok(_guard) => ctx.hold_until_others_done().await,
///             Err(_) => false,
///         }
///     }
/// })
/// .await?;
/// assert_eq!(outcomes.iter().filter(|won| **won).count(), 1);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`contend`](super::contend).
///
/// # Panics
///
/// Outside a tokio runtime.
pub async fn contend_async<T, F, Fut>(n: usize, attempt: F) -> Result<Vec<T>, ContendError>
where
    F: Fn(AsyncContender) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    ContendOptions::default().contend_async(n, attempt).await
}

impl ContendOptions {
    /// [`contend_async`] with this timeout.
    ///
    /// # Errors
    ///
    /// As [`contend`](super::contend).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn contend_async<T, F, Fut>(
        self,
        n: usize,
        attempt: F,
    ) -> Result<Vec<T>, ContendError>
    where
        F: Fn(AsyncContender) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        if n == 0 {
            return Err(ContendError::NoAttempts);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let settled = Arc::new(tokio::sync::watch::Sender::new(0usize));
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let gave_up = Arc::new(AtomicBool::new(false));
        let mut tasks: Vec<_> = (0..n)
            .map(|index| {
                let held = Arc::new(AtomicBool::new(false));
                let fut = attempt(AsyncContender {
                    index,
                    n,
                    deadline,
                    settled: settled.clone(),
                    held: held.clone(),
                    gave_up: gave_up.clone(),
                });
                let (barrier, settled) = (barrier.clone(), settled.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let outcome = CatchUnwind(Box::pin(fut)).await;
                    if !held.load(Ordering::SeqCst) {
                        settled.send_modify(|s| *s += 1);
                    }
                    outcome
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(n);
        for index in 0..n {
            match tokio::time::timeout_at(deadline, &mut tasks[index]).await {
                Ok(Ok(Ok(value))) => outcomes.push(value),
                Ok(Ok(Err(payload))) => {
                    return Err(ContendError::AttemptPanicked {
                        index,
                        message: panic_message(&*payload),
                    })
                }
                Ok(Err(join)) => {
                    return Err(ContendError::AttemptPanicked {
                        index,
                        message: join.to_string(),
                    })
                }
                Err(_) => {
                    return Err(ContendError::TimedOut {
                        timeout: self.timeout,
                        n,
                        pending: (index..n).filter(|i| !tasks[*i].is_finished()).collect(),
                    })
                }
            }
        }
        if gave_up.load(Ordering::SeqCst) {
            return Err(ContendError::TimedOut {
                timeout: self.timeout,
                n,
                pending: Vec::new(),
            });
        }
        Ok(outcomes)
    }
}
