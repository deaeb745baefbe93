//! A future run in the caller's own task that still runs to its end when the caller drops it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// Runs `F` where it is awaited (no task of its own, so no wake-up of another thread on the
/// way); dropped before `F` finished, it hands what is left of `F` to a task on `runtime`,
/// which runs it to the end. For work that must not stop halfway, such as a release whose
/// caller gave up waiting for the answer.
pub(crate) struct Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    work: Option<Pin<Box<F>>>,
    runtime: Handle,
}

impl<F> Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// `work`, to be finished on `runtime` if this is dropped first.
    pub(crate) fn new(work: F, runtime: Handle) -> Self {
        Finish {
            work: Some(Box::pin(work)),
            runtime,
        }
    }
}

impl<F> Future for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let work = self
            .work
            .as_mut()
            .expect("a Finish is not polled after it finished");
        let out = std::task::ready!(work.as_mut().poll(cx));
        self.work = None;
        Poll::Ready(out)
    }
}

impl<F> Drop for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            self.runtime.spawn(work);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::sync::{oneshot, Notify};

    #[tokio::test]
    async fn runs_in_the_callers_task() {
        tokio::spawn(async {
            let caller = tokio::task::id();
            let ran_in = Finish::new(async { tokio::task::id() }, Handle::current()).await;
            assert_eq!(ran_in, caller, "the work ran in a task of its own");
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn dropped_halfway_it_still_finishes() {
        let (gate, finished) = (Arc::new(Notify::new()), Arc::new(AtomicBool::new(false)));
        let (done_tx, done_rx) = oneshot::channel();
        let (g, f) = (gate.clone(), finished.clone());
        let mut work = Finish::new(
            async move {
                g.notified().await;
                f.store(true, Ordering::SeqCst);
                let _ = done_tx.send(());
            },
            Handle::current(),
        );
        // One poll: the work waits on the gate, halfway.
        std::future::poll_fn(|cx| {
            assert!(Pin::new(&mut work).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        drop(work);
        gate.notify_one();
        tokio::time::timeout(std::time::Duration::from_secs(10), done_rx)
            .await
            .expect("the dropped work did not finish within 10 s")
            .expect("the dropped work was abandoned");
        assert!(finished.load(Ordering::SeqCst));
    }
}
