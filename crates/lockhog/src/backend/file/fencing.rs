//! Fencing tokens for file locks: a counter inside each lock file, bumped by its holder, and a
//! floor per directory that keeps tokens growing when `cleanup` removes a lock file.
//!
//! The counter lives in the lock file itself, so bumping it needs no lock beyond the one just
//! taken: one read and one write. A lock file that `cleanup` removes takes its counter with it;
//! so before removing one, `cleanup` (holding its lock) raises the directory's floor,
//! `<dir>/.lockhog-fencing`, to that counter, and a lock file found empty starts from the floor.
//! Since an acquirer that locked a removed file starts over on a new one, every token of a name
//! is greater than all earlier ones, across processes, restarts and cleanups.
//!
//! Readers (shared locks) hold the lock file together, so they also take the **readers'
//! latch** to bump the counter one at a time: an open-file-description write lock
//! (`F_OFD_SETLK`) on one byte far past the counter (`mode.rs`), which no reader's or
//! writer's lock covers except a writer's whole-file record lock — and a writer never holds
//! the file while a reader does. A writer needs no latch: while it holds the file exclusively
//! nobody else bumps. So readers' and writers' tokens alike are strictly greater than all
//! earlier ones of the name. (On NFS, where `flock` is emulated by whole-file record locks,
//! the latch can conflict with other readers' locks: a reader then fails after
//! [`LATCH_BOUND`] instead of getting a token.)
//!
//! A counter is exactly twenty digits and a newline. A file holding anything else is not
//! lockhog's, and is never written to.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use std::time::Duration;

use tokio::time::Instant;

use super::cache::LockFile;
use super::counter_map::CounterMap;
use super::dir::Dir;
use super::mode;

/// How long a reader tries for the counter's latch before giving up with an error.
const LATCH_BOUND: Duration = Duration::from_secs(5);

/// Longest pause between a reader's attempts at the latch.
const MAX_LATCH_PAUSE: Duration = Duration::from_millis(20);

/// The floor's file name in the lock directory (no `.lock` suffix, so no lock name maps to it).
pub(super) const FLOOR_FILE: &str = ".lockhog-fencing";

/// Digits of a counter.
pub(super) const WIDTH: usize = 20;

/// Reads a counter: `None` for an empty (new) file, an error for content that is not a
/// counter (the file is then someone else's, and must not be overwritten).
pub(super) fn read(file: &File) -> io::Result<Option<u64>> {
    let mut buf = [0u8; WIDTH + 2];
    let n = file.read_at(&mut buf, 0)?;
    parse(&buf[..n])
}

/// A counter from the first bytes of a lock file (one more than a counter line, when there
/// are): as [`read`].
pub(super) fn parse(text: &[u8]) -> io::Result<Option<u64>> {
    if text.is_empty() {
        return Ok(None);
    }
    let digits = text.strip_suffix(b"\n").filter(|d| d.len() == WIDTH);
    digits
        .and_then(|d| {
            d.iter().try_fold(0u64, |n, &c| {
                let digit = c.checked_sub(b'0').filter(|v| *v < 10)?;
                n.checked_mul(10)?.checked_add(u64::from(digit))
            })
        })
        .map(Some)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the file holds something other than a fencing counter (not lockhog's, or \
                 written to by something else): refusing to overwrite it",
            )
        })
}

/// The counter line of `value`: fixed width, so a shorter number never leaves digits of a
/// longer one behind.
pub(super) fn line(mut value: u64) -> [u8; WIDTH + 1] {
    let mut out = [b'0'; WIDTH + 1];
    out[WIDTH] = b'\n';
    for digit in out[..WIDTH].iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out
}

pub(super) fn write(file: &File, value: u64) -> io::Result<()> {
    file.write_all_at(&line(value), 0)
}

/// The directory's floor.
#[derive(Debug)]
pub(super) struct Floor {
    dir: Arc<Dir>,
}

impl Floor {
    pub(super) fn new(dir: Arc<Dir>) -> Floor {
        Floor { dir }
    }

    fn open(&self) -> io::Result<File> {
        self.dir.open_file(FLOOR_FILE, true).map(|(file, _)| file)
    }

    fn value(&self) -> io::Result<u64> {
        let file = self.open()?;
        file.lock_shared()?;
        read(&file).map(Option::unwrap_or_default)
    }

    /// Raises the floor to at least `to`.
    pub(super) fn raise(&self, to: u64) -> io::Result<()> {
        let file = self.open()?;
        file.lock()?;
        if read(&file)?.unwrap_or_default() < to {
            write(&file, to)?;
        }
        Ok(())
    }

    /// The lock file's current counter (the floor for a new file), for `cleanup` to keep.
    pub(super) fn counter_of(&self, lock_file: &File) -> io::Result<u64> {
        match read(lock_file)? {
            Some(c) => Ok(c),
            None => self.value(),
        }
    }

    /// Bumps the counter of a lock file we hold and returns the new token.
    pub(super) fn next_token(&self, lock_file: &File) -> io::Result<u64> {
        let next = self.counter_of(lock_file)? + 1;
        write(lock_file, next)?;
        Ok(next)
    }

    /// [`Floor::next_token`] for a lock file held exclusively: through its mapped counter once
    /// it has one (see `counter_map.rs`); a descriptor taken from the kept ones gets one the
    /// first time, since its name is being taken again.
    pub(super) fn next_token_held(&self, lock: &mut LockFile) -> io::Result<u64> {
        if let Some(map) = &lock.counter {
            return map.bump();
        }
        let next = self.next_token(&lock.file)?;
        if lock.reused && !lock.map_tried {
            lock.map_tried = true;
            lock.counter = CounterMap::of(&lock.file);
        }
        Ok(next)
    }

    /// Bumps the counter of a lock file we hold shared, under the readers' latch (see the
    /// module docs), and returns the new token.
    pub(super) async fn next_token_shared(&self, lock_file: &File) -> io::Result<u64> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        while !mode::try_latch(lock_file)? {
            if started.elapsed() >= LATCH_BOUND {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "another reader kept the fencing counter's latch for longer than \
                     expected (a process stopped half-way through taking a reader's token?)",
                ));
            }
            // Its holder keeps it for one read and one write.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_LATCH_PAUSE);
        }
        let next = self.next_token(lock_file);
        let unlatched = mode::unlatch(lock_file);
        let next = next?;
        unlatched?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(content: &[u8]) -> File {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(content, 0).unwrap();
        file
    }

    #[test]
    fn only_a_counter_line_is_a_counter() {
        assert_eq!(read(&file_with(b"")).unwrap(), None);
        assert_eq!(
            read(&file_with(b"00000000000000000042\n")).unwrap(),
            Some(42)
        );
        for foreign in [
            &b"42\n"[..],
            b"00000000000000000042",
            b"00000000000000000042\nmore",
            b"0000000000000000004x\n",
            b"+0000000000000000042\n",
            b"99999999999999999999\n",
            b"root:x:0:0:root:/root:/bin/bash\n",
        ] {
            let err = read(&file_with(foreign)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{foreign:?}");
        }
    }
}
