//! `lockhog run [-b URL] [-n | -w SECS] [--ttl SECS] [-E CODE] NAME -- COMMAND [ARGS…]`
//!
//! Acquires the lock, runs COMMAND with it held, releases it once COMMAND has exited, and exits
//! with COMMAND's status. SIGINT and SIGTERM are forwarded to COMMAND; the lock is released only
//! after COMMAND exits, never while it may still be writing.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use lockhog::LockGuard;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::cli::RunArgs;
use crate::exit::{self, Failure, Outcome};
use crate::lock::{self, millis, Signals};

pub async fn run(args: RunArgs) -> Outcome {
    lock::check_names(&[&args.name])?;
    let mut signals = Signals::install()?;
    let locker = lock::connect(&args.backend).await?;
    let deadline = lock::deadline(&args.acquire);
    let guard = tokio::select! {
        acquired = lock::acquire(&locker, &args.name, &args.acquire, deadline) => match acquired {
            Ok(guard) => guard,
            Err(e) if e.is_not_acquired() => {
                return Err(Failure::new(args.conflict_exit_code, e.to_string()))
            }
            Err(e) => return Err(e.into()),
        },
        // Interrupted while waiting: nothing was started and nothing is held.
        sig = signals.recv() => return Err(Failure::silent(exit::from_signal(sig))),
    };
    let held_since = Instant::now();

    let child = match spawn(&args.command) {
        Ok(child) => child,
        Err(failure) => {
            release(guard, held_since).await;
            return Err(failure);
        }
    };
    let status = supervise(child, &guard, &mut signals).await;
    release(guard, held_since).await;
    match status {
        Ok(status) => Ok(status_code(status)),
        Err(e) => Err(Failure::new(
            exit::UNAVAILABLE,
            format!("cannot wait for {}: {e}", show(&args.command[0])),
        )),
    }
}

/// Starts COMMAND with our stdin, stdout and stderr. The lock's own descriptors (a lock file,
/// a connection) are opened close-on-exec, so COMMAND never inherits the lock: it cannot keep
/// it alive after we release it.
fn spawn(command: &[OsString]) -> Result<Child, Failure> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| Failure::usage("no command given after --"))?;
    Command::new(program)
        .args(rest)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            let program = show(program);
            match e.kind() {
                io::ErrorKind::NotFound => Failure::new(
                    exit::COMMAND_NOT_FOUND,
                    format!("{program}: command not found"),
                ),
                io::ErrorKind::PermissionDenied => Failure::new(
                    exit::CANNOT_EXECUTE,
                    format!("{program}: permission denied"),
                ),
                _ => Failure::new(exit::CANNOT_EXECUTE, format!("cannot run {program}: {e}")),
            }
        })
}

/// Waits for the child, forwarding SIGINT and SIGTERM to it and warning (once) if the backend
/// reports the lock lost meanwhile.
///
/// A Ctrl-C at a terminal reaches the child twice (from the terminal's process group, then
/// from us): the contract is to forward every signal we receive, and we cannot tell who sent
/// it.
async fn supervise(
    mut child: Child,
    guard: &LockGuard,
    signals: &mut Signals,
) -> io::Result<ExitStatus> {
    let mut lost_reported = false;
    loop {
        tokio::select! {
            status = child.wait() => return status,
            sig = signals.recv() => forward(&child, sig),
            reason = guard.lost(), if !lost_reported => {
                lost_reported = true;
                exit::warn(format_args!(
                    "lock {:?} was lost while the command ran: {reason}",
                    guard.name().as_str()
                ));
            }
        }
    }
}

fn forward(child: &Child, sig: i32) {
    // `id()` is None once the child has been reaped: then there is nobody to tell. Until then
    // the pid cannot be reused, as the unreaped child still owns it.
    if let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
        tracing::info!(pid, sig, "forwarding signal to the command");
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(pid, sig) } != 0 {
            tracing::debug!(pid, sig, err = %io::Error::last_os_error(), "kill failed");
        }
    }
}

/// Releases the lock after the command, warning when it had been lost or cannot be released
/// (the backend then frees it by its own means: closed descriptor, connection, lease expiry).
async fn release(guard: LockGuard, held_since: Instant) {
    let name = guard.name().as_str().to_string();
    match guard.release().await {
        Ok(true) => {}
        Ok(false) => exit::warn(format_args!(
            "lock {name:?} had been lost before it was released"
        )),
        Err(e) => exit::warn(format_args!("cannot release lock {name:?}: {e}")),
    }
    tracing::info!(name, held_ms = millis(held_since.elapsed()), "released");
}

/// The child's status as ours: its code, or 128+N when signal N killed it.
fn status_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        // Exit statuses are 0..=255 on Unix; the low byte is what a shell would see.
        return (code & 0xff) as u8;
    }
    status.signal().map_or(exit::UNAVAILABLE, exit::from_signal)
}

fn show(program: &std::ffi::OsStr) -> String {
    program.to_string_lossy().into_owned()
}
