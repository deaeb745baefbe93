//! The two kinds of file lock: `flock(2)` (the default) and POSIX record locks (`fcntl`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Which kernel lock the file backend takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LockMode {
    /// `flock(LOCK_EX)`: owned by the open file description, so two opens of one file exclude
    /// each other even within one process. What `flock(1)` takes.
    Flock,
    /// `fcntl(F_SETLK)` on the whole file: owned by the process, so the kernel does not
    /// exclude two threads of one process, and closing any descriptor of the file drops the
    /// process's lock on it. What `fcntl.lockf` and `lockf(3)` take.
    Fcntl,
}

impl LockMode {
    pub(super) fn parse(text: &str) -> Option<LockMode> {
        match text {
            "flock" => Some(LockMode::Flock),
            "fcntl" => Some(LockMode::Fcntl),
            _ => None,
        }
    }

    /// One attempt: `Ok(false)` when someone else holds the lock.
    pub(super) fn try_lock(self, file: &File) -> io::Result<bool> {
        match self {
            LockMode::Flock => match file.try_lock() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            },
            LockMode::Fcntl => match set_record_lock(file, libc::F_SETLK) {
                Ok(()) => Ok(true),
                // POSIX allows either errno for "held by another process".
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Blocks until the lock is taken; gives up with `Interrupted` once `cancelled` says so
    /// (the caller interrupts the call with a signal).
    pub(super) fn lock_blocking(self, file: &File, cancelled: &dyn Fn() -> bool) -> io::Result<()> {
        loop {
            if cancelled() {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let outcome = match self {
                // Not std's File::lock, which may retry on EINTR and so could not be called off.
                // SAFETY: a valid open descriptor owned by `file`.
                LockMode::Flock => match unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } {
                    0 => Ok(()),
                    _ => Err(io::Error::last_os_error()),
                },
                LockMode::Fcntl => set_record_lock(file, libc::F_SETLKW),
            };
            match outcome {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// A write lock on the whole file (start 0, length 0 = to the end, however it grows).
fn set_record_lock(file: &File, cmd: libc::c_int) -> io::Result<()> {
    // SAFETY: zeroed is a valid `flock` struct; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    // SAFETY: a valid descriptor and a pointer to a live, initialised struct.
    match unsafe { libc::fcntl(file.as_raw_fd(), cmd, &lock) } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}
