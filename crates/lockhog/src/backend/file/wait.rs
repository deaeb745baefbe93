//! Waiting for a file lock in the kernel, on a helper thread that can be called off.
//!
//! A blocking `flock(LOCK_EX)` wakes the moment the holder's descriptor is closed, which no
//! polling loop can match. The price is a thread parked in the kernel; to call it off (a
//! timeout, a dropped future) we set a flag and send the thread a signal whose handler does
//! nothing and is installed without `SA_RESTART`, so the call returns `EINTR` and the thread
//! sees the flag.
//!
//! One race is left open: a signal that arrives after the thread checked the flag but before
//! it entered `flock` is lost, and the thread then waits until the lock comes free, takes it
//! and gives it straight back. It never hands a lock to nobody for longer than that, and the
//! window is a few instructions wide.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;
use tokio::time::Instant;

/// What the helper thread reports back.
pub(super) type Outcome = io::Result<(File, u32)>;

#[derive(Default)]
struct Shared {
    cancelled: AtomicBool,
    /// The helper thread while it may still be in a blocking call; `None` once it is done, so
    /// no signal is ever sent to a thread id the system may have reused.
    thread: Mutex<Option<libc::pthread_t>>,
}

/// Calls the helper thread off when the waiting future goes away.
struct CancelOnDrop(Arc<Shared>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let thread = self.0.thread.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(tid), Some(sig)) = (*thread, interrupt_signal()) {
            // SAFETY: `tid` is a live thread: it clears `thread` under this mutex before exit.
            unsafe { libc::pthread_kill(tid, sig) };
        }
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

/// Waits for `lock` (a blocking function returning the locked file and the attempts it took)
/// on a helper thread, until `deadline`. `Ok(None)` when the deadline passed.
///
/// `lock` gets a closure to call between attempts that says whether the wait was called off.
pub(super) async fn wait_on_thread<F>(
    lock: F,
    deadline: Option<Instant>,
) -> io::Result<Option<(File, u32)>>
where
    F: FnOnce(&dyn Fn() -> bool) -> Outcome + Send + 'static,
{
    let shared = Arc::new(Shared::default());
    interrupt_signal();
    let (tx, rx) = oneshot::channel::<Outcome>();
    let for_thread = shared.clone();
    std::thread::Builder::new()
        .name("lockhog-file-wait".into())
        .spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            *for_thread.thread.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(unsafe { libc::pthread_self() });
            let cancelled = || for_thread.cancelled.load(Ordering::SeqCst);
            let outcome = lock(&cancelled);
            *for_thread.thread.lock().unwrap_or_else(|p| p.into_inner()) = None;
            // A send fails when the waiter is gone; dropping the file then releases the lock.
            let _ = tx.send(outcome);
        })?;
    let _cancel = CancelOnDrop(shared);
    let outcome = match deadline {
        None => rx.await,
        Some(d) => match tokio::time::timeout_at(d, rx).await {
            Ok(received) => received,
            Err(_) => return Ok(None),
        },
    };
    match outcome {
        Ok(Ok((file, attempts))) => Ok(Some((file, attempts))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other(
            "the file-lock helper thread ended without an answer",
        )),
    }
}

/// A blocking `flock(LOCK_EX)` that gives up with `Interrupted` when `cancelled` says so.
pub(super) fn flock_exclusive(file: &File, cancelled: &dyn Fn() -> bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        if cancelled() {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        // SAFETY: a valid open descriptor owned by `file`.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
