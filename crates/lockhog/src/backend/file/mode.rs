//! The two kinds of file lock: `flock(2)` (the default) and POSIX record locks (`fcntl`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Which kernel lock the file backend takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LockMode {
    /// `flock(LOCK_EX)`, or `LOCK_SH` shared: owned by the open file description, so two
    /// opens of one file exclude each other even within one process. What `flock(1)` takes.
    Flock,
    /// `fcntl(F_SETLK)` `F_WRLCK` on the whole file: owned by the process, so the kernel does
    /// not exclude two threads of one process, and closing any descriptor of the file drops
    /// the process's lock on it. What `fcntl.lockf` and `lockf(3)` take. Shared, an
    /// `F_RDLCK` taken as an open-file-description lock (`F_OFD_SETLK`), which other
    /// processes see as a POSIX read lock but which belongs to its own descriptor: one
    /// reader's release does not drop another reader's lock of the same process.
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

    /// One attempt, exclusive or `shared`: `Ok(false)` when someone else holds the lock.
    pub(super) fn try_lock(self, file: &File, shared: bool) -> io::Result<bool> {
        let outcome = match (self, shared) {
            (LockMode::Flock, false) => flock(file, libc::LOCK_EX | libc::LOCK_NB),
            (LockMode::Flock, true) => flock(file, libc::LOCK_SH | libc::LOCK_NB),
            (LockMode::Fcntl, false) => record_lock(file, libc::F_SETLK, Range::WRITER),
            (LockMode::Fcntl, true) => record_lock(file, libc::F_OFD_SETLK, Range::READER),
        };
        match outcome {
            Ok(()) => Ok(true),
            // POSIX allows either errno for "held by another process".
            // EWOULDBLOCK (flock) is EAGAIN on Linux.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Blocks until the lock is taken, exclusive or `shared`; gives up with `Interrupted` once
    /// `cancelled` says so (the caller interrupts the call with a signal).
    pub(super) fn lock_blocking(
        self,
        file: &File,
        shared: bool,
        cancelled: &dyn Fn() -> bool,
    ) -> io::Result<()> {
        loop {
            if cancelled() {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            // Not std's File::lock, which may retry on EINTR and so could not be called off.
            let outcome = match (self, shared) {
                (LockMode::Flock, false) => flock(file, libc::LOCK_EX),
                (LockMode::Flock, true) => flock(file, libc::LOCK_SH),
                (LockMode::Fcntl, false) => record_lock(file, libc::F_SETLKW, Range::WRITER),
                (LockMode::Fcntl, true) => record_lock(file, libc::F_OFD_SETLKW, Range::READER),
            };
            match outcome {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid open descriptor owned by `file`.
    match unsafe { libc::flock(file.as_raw_fd(), op) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A byte range of a lock file, and the kind of record lock taken on it.
#[derive(Clone, Copy)]
struct Range {
    kind: libc::c_int,
    start: i64,
    /// 0: to the end of the file, however it grows.
    len: i64,
}

/// Where the readers' counter latch sits: far past any counter, so that it overlaps neither
/// the counter nor (in fcntl mode) the range readers lock.
const LATCH_AT: i64 = 1 << 62;

impl Range {
    /// A writer locks the whole file, as `lockf(3)` and `fcntl.lockf` do.
    const WRITER: Range = Range {
        kind: libc::F_WRLCK,
        start: 0,
        len: 0,
    };
    /// A reader locks everything below the latch: it still conflicts with every writer (whose
    /// range covers it), and readers can take the latch beside each other's read locks.
    const READER: Range = Range {
        kind: libc::F_RDLCK,
        start: 0,
        len: LATCH_AT,
    };
    const LATCH: Range = Range {
        kind: libc::F_WRLCK,
        start: LATCH_AT,
        len: 1,
    };
}

/// A record lock on `range` of the file: classic (`F_SETLK*`, owned by the process) or open
/// file description (`F_OFD_SETLK*`, owned by this descriptor's open file, so that closing
/// another descriptor of the file does not drop it).
fn record_lock(file: &File, cmd: libc::c_int, range: Range) -> io::Result<()> {
    // SAFETY: zeroed is a valid `flock` struct (l_pid must be 0 for OFD locks); the fields
    // that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = range.kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = range.start;
    lock.l_len = range.len;
    // SAFETY: a valid descriptor and a pointer to a live, initialised struct.
    match unsafe { libc::fcntl(file.as_raw_fd(), cmd, &lock) } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Gives up a reader's open-file-description lock at once (a copy of the descriptor in a
/// child forked meanwhile would otherwise keep it until that child closes it).
pub(super) fn unlock_reader(file: &File) {
    let unlock = Range {
        kind: libc::F_UNLCK,
        ..Range::READER
    };
    let _ = record_lock(file, libc::F_OFD_SETLK, unlock);
}

/// The readers' counter latch on a lock file held shared: one open-file-description write
/// lock on a byte no other lock covers, so that readers — of other processes and of this
/// one alike — bump the counter one at a time. `Ok(false)` while another reader has it.
pub(super) fn try_latch(file: &File) -> io::Result<bool> {
    match record_lock(file, libc::F_OFD_SETLK, Range::LATCH) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the latch back.
pub(super) fn unlatch(file: &File) -> io::Result<()> {
    let unlock = Range {
        kind: libc::F_UNLCK,
        ..Range::LATCH
    };
    record_lock(file, libc::F_OFD_SETLK, unlock)
}
