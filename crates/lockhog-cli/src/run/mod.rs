//! `lockhog run [-b URL] [-n | -w SECS] [--ttl SECS] [--permits N] [-E CODE] [--on-lost
//! POLICY] [--grace SECS] NAME… -- COMMAND [ARGS…]`
//!
//! Acquires the lock (or every lock named, all or none: see `Locker::lock_all`), runs COMMAND
//! with it held, releases it once COMMAND has exited, and exits with COMMAND's status. COMMAND runs only while the lock is held: a lost lock stops it (see
//! [`supervise`]), and so does the death of this process (see [`spawn`]). SIGINT and SIGTERM
//! are forwarded to COMMAND; the lock is released only after COMMAND exits, never while it may
//! still be writing.

mod spawn;
mod supervise;

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use lockhog::LockAllGuard;
use tokio::time::Instant;

use crate::cli::{OnLost, RunArgs};
use crate::exit::{self, Failure, Outcome};
use crate::lock::{self, millis, Signals, Target};
use supervise::Policy;

pub async fn run(args: RunArgs) -> Outcome {
    let targets = Target::all(&args.names, &args.resources);
    lock::check_targets(&args.backend, &targets)?;
    let mut signals = Signals::install()?;
    let locker = lock::connect(&args.backend).await?;
    let deadline = lock::deadline(&args.acquire);
    let guard = tokio::select! {
        acquired = lock::acquire_all(&locker, &targets, &args.acquire, deadline) => match acquired {
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

    let child = match spawn::spawn(&args.command, &guard, targets[0].text(), args.on_lost) {
        Ok(child) => child,
        Err(failure) => {
            release(guard, held_since).await;
            return Err(failure);
        }
    };
    let policy = Policy {
        on_lost: args.on_lost,
        grace: args.grace,
    };
    let waited = supervise::supervise(child, &guard, &mut signals, policy).await;
    let which = which(&targets);
    let still_ours = release(guard, held_since).await;
    let (status, lost) = waited.map_err(|e| {
        Failure::new(
            exit::UNAVAILABLE,
            format!("cannot wait for {}: {e}", spawn::show(&args.command[0])),
        )
    })?;
    if args.on_lost == OnLost::Warn {
        if !still_ours && !lost {
            exit::warn(format_args!(
                "{which} had been lost before it was released; exiting with the \
                 command's status (--on-lost warn)"
            ));
        }
        return Ok(status_code(status));
    }
    if lost || !still_ours {
        // Never the command's status: a 0 would tell the caller the work was done under the
        // lock when part of it, at least, was not.
        return Err(Failure::new(
            exit::LOCK_LOST,
            format!(
                "{which} was lost while the command ran (the command ended with {})",
                describe(status)
            ),
        ));
    }
    Ok(status_code(status))
}

/// `lock "a"`, or `one of the locks "a", "b"`: the subject of the messages about lost locks.
pub(crate) fn which(targets: &[Target<'_>]) -> String {
    match targets {
        [one] => format!("lock {:?}", one.text()),
        _ => {
            let quoted: Vec<String> = targets.iter().map(|t| format!("{:?}", t.text())).collect();
            format!("one of the locks {}", quoted.join(", "))
        }
    }
}

/// Releases the locks after the command, warning when one cannot be released (the backend
/// then frees it by its own means: closed descriptor, connection, lease expiry). False when a
/// lock had been lost before.
async fn release(all: LockAllGuard, held_since: Instant) -> bool {
    let names: Vec<String> = all.guards().iter().map(|g| g.name().to_string()).collect();
    let ours = match all.release().await {
        Ok(ours) => ours,
        Err(e) => {
            exit::warn(format_args!("cannot release lock {names:?}: {e}"));
            true
        }
    };
    tracing::info!(
        ?names,
        ours,
        held_ms = millis(held_since.elapsed()),
        "released"
    );
    ours
}

/// The child's status as ours: its code, or 128+N when signal N killed it.
fn status_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        // Exit statuses are 0..=255 on Unix; the low byte is what a shell would see.
        return (code & 0xff) as u8;
    }
    status.signal().map_or(exit::UNAVAILABLE, exit::from_signal)
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => status.to_string(),
    }
}
