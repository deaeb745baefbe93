//! A kept lock file's fencing counter mapped into memory, so that taking the same name again
//! bumps it with a memory write under the lock instead of a `pread` and a `pwrite`.
//!
//! The mapping is `MAP_SHARED` over the file's page in the page cache, the very page other
//! processes' `read` and `write` go through, so a bump is visible to the next holder at once,
//! as a `pwrite` would be (the `flock` calls around it order the accesses). The counter is
//! checked on every bump exactly as a read checks it: twenty digits and a newline, and nothing
//! after them.
//!
//! Touching a mapped page that a truncation took away kills the process (`SIGBUS`), so only a
//! file nobody but this user (and root) can write is mapped: owned by the effective uid, with
//! no group or other write bit, the case of lockhog's private default directory. A file that
//! others may write, as in a shared group directory, keeps the `pread`/`pwrite` path; there a
//! truncation by another user is at worst an error.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use super::fencing::{parse, WIDTH};

/// What is mapped: the counter line, and the byte after it (zero while the file ends there:
/// the rest of a file's last page reads as zeros).
const MAPPED: usize = WIDTH + 2;

/// The first bytes of a lock file, mapped shared.
#[derive(Debug)]
pub(super) struct CounterMap {
    at: NonNull<u8>,
}

// SAFETY: the mapping is plain shared memory, valid until dropped; it is only read and written
// by the holder of the file's lock, through `&self` methods that copy bytes in and out.
unsafe impl Send for CounterMap {}
unsafe impl Sync for CounterMap {}

impl CounterMap {
    /// Maps the counter of `file` (locked by us) when only this user can write the file and it
    /// holds exactly one counter line; `None` otherwise (the caller goes on reading and
    /// writing it).
    pub(super) fn of(file: &File) -> Option<CounterMap> {
        let fd = file.as_raw_fd();
        // SAFETY: zeroed is a valid `stat`, filled from a descriptor we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return None;
        }
        // SAFETY: no preconditions.
        let private = st.st_uid == unsafe { libc::geteuid() } && st.st_mode & 0o022 == 0;
        if !private || st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size != WIDTH as i64 + 1
        {
            return None;
        }
        // SAFETY: a shared read-write mapping of a descriptor opened for reading and writing
        // (a read-only one fails with EACCES), unmapped on drop.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAPPED,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(at.cast()).map(|at| CounterMap { at })
    }

    /// Bumps the counter (its holder's lock taken) and returns the new value; an error, and
    /// nothing written, when the file holds anything but a counter.
    pub(super) fn bump(&self) -> io::Result<u64> {
        // SAFETY: the mapping holds `MAPPED` bytes (any alignment suits a byte array);
        // volatile, as other processes write it between our holds.
        let bytes = unsafe { self.at.as_ptr().cast::<[u8; MAPPED]>().read_volatile() };
        let len = if bytes[WIDTH + 1] == 0 {
            WIDTH + 1
        } else {
            MAPPED
        };
        let Some(current) = parse(&bytes[..len])? else {
            return Err(io::Error::from(io::ErrorKind::InvalidData));
        };
        let next = current + 1;
        // SAFETY: as above, the counter line being one byte shorter than the mapping.
        unsafe {
            self.at
                .as_ptr()
                .cast::<[u8; WIDTH + 1]>()
                .write_volatile(super::fencing::line(next))
        };
        Ok(next)
    }
}

impl Drop for CounterMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of`, unmapped once.
        unsafe { libc::munmap(self.at.as_ptr().cast(), MAPPED) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, PermissionsExt};

    fn counter_file(content: &[u8], mode: u32) -> File {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(content, 0).unwrap();
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .unwrap();
        file
    }

    #[test]
    fn a_bump_is_what_a_read_of_the_file_sees() {
        let file = counter_file(b"00000000000000000041\n", 0o600);
        let map = CounterMap::of(&file).expect("a private counter file is mapped");
        assert_eq!(map.bump().unwrap(), 42);
        assert_eq!(super::super::fencing::read(&file).unwrap(), Some(42));
        // Another process's write (the next holder's pwrite) is what the next bump starts
        // from.
        file.write_all_at(b"00000000000000000099\n", 0).unwrap();
        assert_eq!(map.bump().unwrap(), 100);
    }

    #[test]
    fn only_a_private_counter_file_is_mapped() {
        assert!(CounterMap::of(&counter_file(b"00000000000000000041\n", 0o620)).is_none());
        assert!(CounterMap::of(&counter_file(b"00000000000000000041\n", 0o602)).is_none());
        assert!(CounterMap::of(&counter_file(b"", 0o600)).is_none());
        assert!(CounterMap::of(&counter_file(b"00000000000000000041\nx", 0o600)).is_none());
    }

    #[test]
    fn what_is_not_a_counter_is_refused_and_left_alone() {
        let file = counter_file(b"00000000000000000041\n", 0o600);
        let map = CounterMap::of(&file).unwrap();
        for foreign in [
            &b"0000000000000000004x\n"[..],
            b"00000000000000000041\nmore",
        ] {
            file.write_all_at(foreign, 0).unwrap();
            let err = map.bump().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{foreign:?}");
            let mut now = vec![0u8; foreign.len()];
            file.read_exact_at(&mut now, 0).unwrap();
            assert_eq!(now, foreign, "refused content was overwritten");
        }
    }
}
