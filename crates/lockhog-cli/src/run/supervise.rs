//! Waiting for `run`'s command: forwarding signals to it, and stopping it when the backend
//! reports the lock lost (`--on-lost`).

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use lockhog::LockAllGuard;
use tokio::process::Child;
use tokio::time::Instant;

use crate::cli::OnLost;
use crate::exit;
use crate::lock::Signals;

/// What a lost lock means for the command.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub on_lost: OnLost,
    /// From SIGTERM to SIGKILL under `term`.
    pub grace: Duration,
}

/// Waits for the child, forwarding SIGINT and SIGTERM to it and acting on a lost lock as
/// `policy` says. Returns the child's status and whether the lock was reported lost.
///
/// A Ctrl-C at a terminal reaches the child twice (from the terminal's process group, then
/// from us): the contract is to forward every signal we receive, and we cannot tell who sent
/// it.
pub async fn supervise(
    mut child: Child,
    all: &LockAllGuard,
    signals: &mut Signals,
    policy: Policy,
) -> io::Result<(ExitStatus, bool)> {
    let mut lost = false;
    let mut kill_at: Option<Instant> = None;
    loop {
        tokio::select! {
            status = child.wait() => return Ok((status?, lost)),
            sig = signals.recv() => send(&child, sig),
            (guard, reason) = all.lost(), if !lost => {
                lost = true;
                let name = guard.name().as_str();
                match policy.on_lost {
                    OnLost::Term => {
                        exit::warn(format_args!(
                            "lock {name:?} was lost while the command ran ({reason}): sending it \
                             SIGTERM, SIGKILL in {} s",
                            policy.grace.as_secs_f64()
                        ));
                        send(&child, libc::SIGTERM);
                        kill_at = Some(Instant::now() + policy.grace);
                    }
                    OnLost::Kill => {
                        exit::warn(format_args!(
                            "lock {name:?} was lost while the command ran ({reason}): killing it"
                        ));
                        send(&child, libc::SIGKILL);
                    }
                    OnLost::Warn => exit::warn(format_args!(
                        "lock {name:?} was lost while the command ran ({reason}); it goes on \
                         without the lock (--on-lost warn)"
                    )),
                }
            }
            () = sleep_until(kill_at), if kill_at.is_some() => {
                kill_at = None;
                exit::warn("the command outlived --grace after SIGTERM: killing it");
                send(&child, libc::SIGKILL);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn send(child: &Child, sig: i32) {
    // `id()` is None once the child has been reaped: then there is nobody to tell. Until then
    // the pid cannot be reused, as the unreaped child still owns it.
    if let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
        tracing::info!(pid, sig, "signalling the command");
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(pid, sig) } != 0 {
            tracing::debug!(pid, sig, err = %io::Error::last_os_error(), "kill failed");
        }
    }
}
