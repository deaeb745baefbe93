//! What can go wrong while hogging a lock, and while racing attempts with `contend`.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::BoxError;

/// Everything that can go wrong while hogging a lock.
///
/// Every variant that comes from a time limit names that limit, so a failing test says which
/// knob of [`HogOptions`](super::HogOptions) to look at.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lockhog::hog::{HogError, HogOptions};
///
/// // A hogger that cannot get its lock is reported, not waited for forever.
/// let err = HogOptions::new()
///     .with_acquire_timeout(Duration::from_secs(5))
///     .hog_lock(lockhog::hog::try_fn(|| Err::<(), _>("the database is down")))
///     .unwrap_err();
/// assert!(matches!(err, HogError::AcquireFailed { .. }));
/// assert!(err.to_string().contains("the database is down"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HogError {
    /// The hogger returned an error instead of acquiring the lock.
    #[error("the hogger failed to acquire the lock: {source}")]
    AcquireFailed {
        /// The hogger's error.
        #[source]
        source: BoxError,
    },
    /// The hogger panicked while acquiring the lock.
    #[error("the hogger panicked while acquiring the lock: {message}")]
    AcquirePanicked {
        /// The panic's message.
        message: String,
    },
    /// The hogger had not acquired the lock when the acquire timeout ran out. If it acquires
    /// the lock later, it releases it at once.
    #[error(
        "the hogger did not acquire the lock within the acquire timeout of {timeout:?} \
         (if it acquires it later, it releases it at once)"
    )]
    AcquireTimedOut {
        /// The acquire timeout that ran out.
        timeout: Duration,
    },
    /// The hogger returned an error while releasing the lock.
    #[error("the hogger failed to release the lock: {source}")]
    ReleaseFailed {
        /// The hogger's error.
        #[source]
        source: BoxError,
    },
    /// The hogger panicked while releasing the lock.
    #[error("the hogger panicked while releasing the lock: {message}")]
    ReleasePanicked {
        /// The panic's message.
        message: String,
    },
    /// The hogger did not finish releasing within the release timeout: it may still hold the
    /// lock (the Python original's `HoggerStillAlive`).
    #[error(
        "the hogger is still holding the lock: it did not finish releasing within the release \
         timeout of {timeout:?}"
    )]
    StillHolding {
        /// The release timeout that ran out.
        timeout: Duration,
    },
    /// The hogger's thread or task ended without saying how its acquire or release went.
    #[error("the hogger's {what} ended without reporting {doing}")]
    Vanished {
        /// `thread`, `task` or `process`.
        what: &'static str,
        /// What it was doing: `an acquire` or `a release`.
        doing: &'static str,
    },
    /// No `lockhog` binary was found for a process hog.
    #[error(
        "cannot find the lockhog binary for a process hog: set LOCKHOG_BIN to its path \
         (looked in: {})",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    BinaryNotFound {
        /// Every place looked at.
        searched: Vec<PathBuf>,
    },
    /// The `lockhog hold` child could not be started or talked to.
    #[error("process hog: cannot {doing} {program}: {source}")]
    Process {
        /// What was being done: `start`, `write to`, `read from`.
        doing: &'static str,
        /// The binary.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `lockhog hold` exited before printing its `held` lines (e.g. exit status 1: the lock was
    /// not acquired; 69: the backend was unreachable).
    #[error("`lockhog hold` exited with {status} before holding the lock: {stderr}")]
    HoldExited {
        /// The exit status, as the OS reports it.
        status: String,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// `lockhog hold` printed a line outside its contract.
    #[error("`lockhog hold` printed an unexpected line {line:?}: {reason}")]
    Protocol {
        /// The line.
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The hogger's thread could not be started.
    #[error("cannot start the hogger's thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The operation does not apply to this kind of hog (e.g. `abandon` on a thread hog, or
    /// a task hog started from synchronous code).
    #[error("{0}")]
    Unsupported(String),
}

/// What can go wrong in [`contend`](super::contend).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContendError {
    /// Not every attempt returned within the timeout. The holder (if any) stopped holding at
    /// the deadline; attempts still running are left to finish on their own.
    #[error(
        "contend: attempts {pending:?} of {n} had not returned within the timeout of {timeout:?} \
         (an attempt that waits for the lock without a bound waits for the holder, who holds \
         until every other attempt has returned: try once or wait with a bound instead)"
    )]
    TimedOut {
        /// The timeout that ran out.
        timeout: Duration,
        /// How many attempts were started.
        n: usize,
        /// The indices of the attempts that had not returned.
        pending: Vec<usize>,
    },
    /// An attempt panicked.
    #[error("contend: attempt {index} panicked: {message}")]
    AttemptPanicked {
        /// The attempt's index.
        index: usize,
        /// The panic's message.
        message: String,
    },
    /// `n` was zero.
    #[error("contend: needs at least one attempt")]
    NoAttempts,
    /// An attempt's thread could not be started.
    #[error("contend: cannot start a thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_string()
    }
}
