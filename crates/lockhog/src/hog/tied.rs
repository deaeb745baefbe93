//! Child processes tied to this process's life: `lockhog hold` children of process hogs and
//! of the testkit must not hold locks after the test process that started them died.
//!
//! Linux's parent-death signal (`PR_SET_PDEATHSIG`) does that, with a catch: it fires when the
//! *thread* that forked the child ends, not the process. A hog is often started on a test's
//! short-lived thread and used after it ended, so every such child is forked on one spawner
//! thread that lives as long as the process.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::LazyLock;

type Job = Box<dyn FnOnce() + Send>;

/// The spawner thread's queue. The sender lives in a static and is never dropped, so the
/// thread never ends.
static SPAWNER: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("lockhog-spawner".into())
        .spawn(move || {
            for job in rx {
                // A job that panics must not take the thread, and every later spawn, with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })
        .expect("cannot start the lockhog-spawner thread");
    tx
});

/// Has `cmd`'s child SIGKILLed when this process dies (Linux only; elsewhere nothing).
pub(crate) fn die_with_us(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl, getppid and _exit are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) == -1
                {
                    return Err(io::Error::last_os_error());
                }
                // We died between the fork and the prctl: nobody will send the signal.
                if libc::getppid() != parent {
                    libc::_exit(137);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Runs `spawn` (which forks) on the spawner thread and returns what it returned.
pub(crate) fn on_spawner_thread(
    spawn: impl FnOnce() -> io::Result<Child> + Send + 'static,
) -> io::Result<Child> {
    let (tx, rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(spawn());
    });
    SPAWNER
        .send(job)
        .map_err(|_| io::Error::other("the lockhog-spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the lockhog-spawner thread dropped a spawn"))?
}
