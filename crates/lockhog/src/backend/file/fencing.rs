//! Fencing tokens for file locks: a counter inside each lock file, bumped by its holder, and a
//! floor per directory that keeps tokens growing when `cleanup` removes a lock file.
//!
//! The counter lives in the lock file itself, so bumping it needs no lock beyond the one just
//! taken: one read and one write. A lock file that `cleanup` removes takes its counter with it;
//! so before removing one, `cleanup` (holding its lock) raises the directory's floor,
//! `<dir>/.lockhog-fencing`, to that counter, and a lock file found empty starts from the floor.
//! Since an acquirer that locked a removed file starts over on a new one, every token of a name
//! is greater than all earlier ones, across processes, restarts and cleanups.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The floor's file name in the lock directory (no `.lock` suffix, so no lock name maps to it).
pub(super) const FLOOR_FILE: &str = ".lockhog-fencing";

/// Reads a counter: `None` for an empty (new) file.
fn read(file: &File) -> io::Result<Option<u64>> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0)?;
    let text = std::str::from_utf8(&buf[..n]).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the fencing counter is not a number (was the lock file written to by something else?)",
        )
    })
}

fn write(file: &File, value: u64) -> io::Result<()> {
    // Fixed width, so a shorter number never leaves digits of a longer one behind.
    file.write_all_at(format!("{value:020}\n").as_bytes(), 0)
}

/// The directory's floor.
#[derive(Debug)]
pub(super) struct Floor {
    path: PathBuf,
}

impl Floor {
    pub(super) fn new(dir: &Path) -> Floor {
        Floor {
            path: dir.join(FLOOR_FILE),
        }
    }

    fn open(&self) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            // Never truncate: the content is the fencing state.
            .truncate(false)
            .mode(0o666)
            .open(&self.path)
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
}
