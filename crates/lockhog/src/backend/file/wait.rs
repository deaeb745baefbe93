//! Waiting for a file lock in the kernel, on a helper thread that can be called off.
//!
//! A blocking `flock(LOCK_EX)` wakes the moment the holder's descriptor is closed, which no
//! polling loop can match. The price is a thread parked in the kernel; to call it off (a
//! timeout, a dropped future) we set a flag and send the thread a signal whose handler does
//! nothing and is installed without `SA_RESTART`, so the call returns `EINTR` and the thread
//! sees the flag.
//!
//! A signal that arrives after the thread checked the flag but before it entered `flock` would
//! be lost, so a called-off helper is signalled again until it has gone. Calling a wait off
//! waits (briefly, bounded) for the helper to go: a helper the kernel granted the lock just as
//! the wait was called off must not hold it a moment later, when the caller may already have
//! seen a timeout and another holder may look at the lock.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

#[derive(Default)]
struct Shared {
    cancelled: AtomicBool,
    /// The helper thread while it may still be in a blocking call or hold the lock; `None`
    /// once it is done, so no signal is ever sent to a thread id the system may have reused.
    thread: Mutex<Option<libc::pthread_t>>,
    /// Notified when `thread` becomes `None`.
    gone: Condvar,
}

/// Calls the helper thread off when the waiting future goes away before its answer came.
/// `None` once the answer came: the helper is then done with the lock (it handed it over, or
/// never got it), and nothing is left to call off.
struct CancelOnDrop(Option<Arc<Shared>>);

/// How long a called-off helper is signalled again, in case a signal fell into the window
/// between its check of the flag and its entry into the blocking call.
const RESIGNAL_FOR: Duration = Duration::from_secs(5);
/// How long calling a wait off may block its caller while the helper goes (it takes
/// microseconds: one signal, one `EINTR`, a close); past that, a background thread goes on
/// signalling, and the helper lets go of the lock whenever it gets to run.
const GONE_WITHIN: Duration = Duration::from_millis(20);
/// The pause between signals while the caller waits: short, because the only signal that
/// can be lost is one sent just before the helper enters the blocking call.
const RESIGNAL_EVERY: Duration = Duration::from_micros(50);

impl Shared {
    /// Signals the helper until it has gone or `within` has passed; true once it has gone.
    fn interrupt_until_gone(&self, within: Duration, every: Duration) -> bool {
        let until = std::time::Instant::now() + within;
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (Some(tid), Some(sig)) = (*thread, interrupt_signal()) else {
                return thread.is_none();
            };
            // SAFETY: `tid` is a live thread: it clears `thread` under this mutex before exit.
            unsafe { libc::pthread_kill(tid, sig) };
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            thread = self
                .gone
                .wait_timeout(thread, every.min(left))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else {
            return;
        };
        shared.cancelled.store(true, Ordering::SeqCst);
        if shared.interrupt_until_gone(GONE_WITHIN, RESIGNAL_EVERY) {
            return;
        }
        // A helper that did not get to run in time (a loaded machine, or the signal is someone
        // else's): a short-lived thread keeps signalling it, as Drop must not block for long.
        let _ = std::thread::Builder::new()
            .name("lockhog-file-cancel".into())
            .spawn(move || {
                shared.interrupt_until_gone(RESIGNAL_FOR, Duration::from_millis(1));
            });
    }
}

extern "C" fn do_nothing(_: libc::c_int) {}

/// The signal used to interrupt a helper, installed once. `None` when the signal already has
/// a handler someone else installed; helpers are then left to finish on their own.
fn interrupt_signal() -> Option<libc::c_int> {
    static SIGNAL: OnceLock<Option<libc::c_int>> = OnceLock::new();
    *SIGNAL.get_or_init(|| {
        let sig = libc::SIGRTMAX() - 2;
        // SAFETY: plain sigaction calls with zeroed, then filled, structs.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                tracing::debug!(
                    sig,
                    "interrupt signal taken; file-lock waits cannot be interrupted"
                );
                return None;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = do_nothing as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0; // no SA_RESTART: the blocked call must return EINTR
            (libc::sigaction(sig, &action, std::ptr::null_mut()) == 0).then_some(sig)
        }
    })
}

/// Waits for `lock` (a blocking function returning what holds the lock) on a helper thread,
/// until `deadline`. `Ok(None)` when the deadline passed. Whatever `lock` returns after the
/// waiter gave up is dropped on the helper thread, which must release the lock.
///
/// `lock` gets a closure to call between attempts that says whether the wait was called off.
pub(super) async fn wait_on_thread<T, F>(
    lock: F,
    deadline: Option<Instant>,
) -> io::Result<Option<T>>
where
    T: Send + 'static,
    F: FnOnce(&dyn Fn() -> bool) -> io::Result<T> + Send + 'static,
{
    let shared = Arc::new(Shared::default());
    interrupt_signal();
    let (tx, rx) = oneshot::channel::<io::Result<T>>();
    let for_thread = shared.clone();
    std::thread::Builder::new()
        .name("lockhog-file-wait".into())
        .spawn(move || {
            #[cfg(test)]
            let _live = tests::Live::enter();
            // SAFETY: pthread_self has no preconditions.
            *for_thread.thread.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(unsafe { libc::pthread_self() });
            let cancelled = || for_thread.cancelled.load(Ordering::SeqCst);
            let outcome = lock(&cancelled);
            // A send fails when the waiter is gone; dropping what it returns releases the lock,
            // before the helper says it has gone (a waiter called off waits for that).
            drop(tx.send(outcome));
            *for_thread.thread.lock().unwrap_or_else(|p| p.into_inner()) = None;
            for_thread.gone.notify_all();
        })?;
    let mut cancel = CancelOnDrop(Some(shared));
    let outcome = match deadline {
        None => rx.await,
        Some(d) => match tokio::time::timeout_at(d, rx).await {
            Ok(received) => received,
            Err(_) => return Ok(None),
        },
    };
    // Answered: the helper no longer waits and holds nothing it has not handed over, so the
    // waiter need not wait for it to go (which would cost a handoff tens of microseconds).
    cancel.0 = None;
    match outcome {
        Ok(Ok(held)) => Ok(Some(held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other(
            "the file-lock helper thread ended without an answer",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use crate::Locker;

    /// Helper threads alive right now, so a test can wait for them to end.
    pub(super) static LIVE: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

    pub(super) struct Live;

    impl Live {
        pub(super) fn enter() -> Live {
            *LIVE.0.lock().unwrap() += 1;
            Live
        }
    }

    impl Drop for Live {
        fn drop(&mut self) {
            *LIVE.0.lock().unwrap() -= 1;
            LIVE.1.notify_all();
        }
    }

    fn helpers_end_within(bound: Duration) -> bool {
        let guard = LIVE.0.lock().unwrap();
        let (count, _) = LIVE.1.wait_timeout_while(guard, bound, |n| *n > 0).unwrap();
        *count == 0
    }

    /// The point of the signal: a waiter that gives up leaves no thread parked in the kernel
    /// while the lock is still held, for both kinds of lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_that_gives_up_leaves_no_thread_behind() {
        for query in ["", "?mode=fcntl"] {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("file://{}{query}", dir.path().display());
            let (a, b) = (
                Locker::connect(&url).await.unwrap(),
                Locker::connect(&url).await.unwrap(),
            );
            let held = a.lock("parked").try_acquire().await.unwrap();
            for _ in 0..5 {
                let outcome = b.lock("parked").wait_for(Duration::from_millis(20)).await;
                assert!(
                    matches!(outcome, Err(crate::Error::TimedOut { .. })),
                    "{outcome:?}"
                );
            }
            let ended = tokio::task::spawn_blocking(|| helpers_end_within(Duration::from_secs(30)))
                .await
                .unwrap();
            assert!(
                ended,
                "a helper thread is still waiting for a lock nobody wants ({query})"
            );
            held.release().await.unwrap();
        }
    }
}
