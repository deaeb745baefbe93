//! Starting `run`'s command so that it cannot outlive the lock unnoticed: it inherits the
//! lock's descriptor where one carries the lock, it is tied to our life by a parent-death
//! signal, and its environment names the lock and its fencing token.
//!
//! What each backend guarantees when `lockhog run` itself is killed (SIGKILL, OOM killer):
//! - `file:` in `flock` mode: the command holds a copy of the locked descriptor (as with
//!   `flock(1)`), so the lock lives until the command and every process it handed the
//!   descriptor to have exited. It gets SIGTERM, and may clean up under the lock.
//! - every other backend (connection-, session- or lease-bound, and `file:` in `fcntl` mode,
//!   whose record locks belong to the process): the lock goes with our connection, at once or
//!   when its lease runs out, so the command gets SIGKILL as we die.
//! - `--on-lost warn`: no signal; the command is left to finish, lock or not.
//!
//! With several locks, the command inherits every descriptor that carries one, and gets
//! SIGTERM only when all of them do; its environment names the first lock of the command line.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Stdio;

use lockhog::LockAllGuard;
use tokio::process::{Child, Command};

use crate::cli::OnLost;
use crate::exit::{self, Failure};

/// The variables the command finds in its environment.
pub const NAME_ENV: &str = "LOCKHOG_NAME";
pub const RESOURCE_ENV: &str = "LOCKHOG_RESOURCE";
pub const TOKEN_ENV: &str = "LOCKHOG_FENCING_TOKEN";

/// Starts COMMAND with our stdin, stdout and stderr and the variables of the lock `first` (the
/// first name on the command line) added to our environment.
pub fn spawn(
    command: &[OsString],
    all: &LockAllGuard,
    first: &str,
    on_lost: OnLost,
) -> Result<Child, Failure> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| Failure::usage("no command given after --"))?;
    let guards = all.guards();
    let guard = guards
        .iter()
        .find(|g| g.name().as_str() == first)
        .unwrap_or(&guards[0]);
    let inherit: Vec<RawFd> = guards
        .iter()
        .filter_map(|g| g.inheritable_fd().map(|fd| fd.as_raw_fd()))
        .collect();
    // SIGTERM (time to clean up) only when every lock lives on in the command's descriptors.
    let parent_death = match on_lost {
        OnLost::Warn => None,
        _ if inherit.len() == guards.len() => Some(libc::SIGTERM),
        _ => Some(libc::SIGKILL),
    };
    let mut cmd = Command::new(program);
    // A lock without a fencing token (a foreign resource) leaves the variable unset, also when
    // our own environment had it: a stale token would fence with someone else's number.
    match guard.fencing_token() {
        Some(token) => cmd.env(TOKEN_ENV, token.to_string()),
        None => cmd.env_remove(TOKEN_ENV),
    };
    cmd.args(rest)
        .env(NAME_ENV, guard.name().as_str())
        .env(RESOURCE_ENV, guard.resource())
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (fcntl, signal, prctl, getppid, raise, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || in_child(&inherit, parent_death, parent));
    }
    // PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process.
    // `main` runs a current-thread runtime, so this runs, and forks, on the main thread, which
    // lives as long as the process.
    #[cfg(target_os = "linux")]
    // SAFETY: getpid and gettid have no preconditions.
    debug_assert_eq!(unsafe { libc::getpid() }, unsafe { libc::gettid() });
    cmd.spawn().map_err(|e| {
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

/// The child's side, before exec: keep the lock's descriptor across exec, and ask for
/// `parent_death` when our parent's thread ends.
fn in_child(inherit: &[RawFd], parent_death: Option<i32>, parent: libc::pid_t) -> io::Result<()> {
    for &fd in inherit {
        // Clears FD_CLOEXEC on the child's copy only: our own descriptor stays close-on-exec,
        // so no other child of ours gets the lock.
        // SAFETY: fcntl on a descriptor number; no memory is passed.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(target_os = "linux")]
    if let Some(sig) = parent_death {
        // Until exec our signal handlers are still installed (tokio's, for SIGTERM): a
        // parent-death SIGTERM arriving now would run it instead of ending us.
        // SAFETY: plain libc calls with valid arguments, async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // We may have died between the fork and the prctl: then nobody will signal.
            if libc::getppid() != parent {
                libc::raise(sig);
                libc::_exit(exit::from_signal(sig).into());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (parent_death, parent);
    Ok(())
}

pub fn show(program: &OsStr) -> String {
    program.to_string_lossy().into_owned()
}
