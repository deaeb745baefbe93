//! The descriptors of lock files this process took and released, kept open (and unlocked) per
//! locker, so that taking the same name again is one `flock` on the kept descriptor instead of
//! an open, a check and a close. Flock mode only: closing a descriptor of a file drops every
//! POSIX record lock the process holds on it, so fcntl mode keeps nothing.
//!
//! What a fresh open checks still holds for a kept descriptor: it was opened through the held
//! directory with `O_NOFOLLOW` and found a regular file with one link; and after every lock
//! taken on it, the path is looked up again (one `lstat`, as for a fresh open) and must still
//! name that very file. A kept descriptor whose file `cleanup` removed, or whose directory was
//! removed or replaced, fails that check: it is closed, and the acquire opens the file anew by
//! the usual path (which notices a moved directory).
//!
//! A descriptor whose open file description another process may share is never locked again:
//! a child forked (without exec) while it was open, or the command `run` handed it to, would
//! otherwise keep a later lock alive after this process died. Every fork in the process bumps
//! a counter (`pthread_atfork`); a descriptor opened before the last fork, or lent out through
//! [`inheritable_fd`](crate::backend::Backend::inheritable_fd), is closed on release.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use super::counter_map::CounterMap;
use super::dir::{linked_at, FileId};
use super::FileHeld;
use crate::name::LockKey;

/// Descriptors kept per locker, at most: enough for the names a process takes again and
/// again, few enough never to run a process out of descriptors.
pub(super) const CAPACITY: usize = 64;

/// An open lock file: its descriptor, (device, inode), full path, and the fork count when it
/// was opened.
#[derive(Debug)]
pub(super) struct LockFile {
    pub(super) file: File,
    pub(super) id: FileId,
    pub(super) path: CString,
    /// [`forks`] read before the open (`None`: never kept).
    pub(super) opened_at: Option<u64>,
    /// Taken from the kept descriptors at least once: its name is taken again and again.
    pub(super) reused: bool,
    /// Whether mapping its counter was tried (once is enough: a file's owner and mode stay).
    pub(super) map_tried: bool,
    /// The counter, mapped (see `counter_map.rs`).
    pub(super) counter: Option<CounterMap>,
}

impl LockFile {
    /// A lock file just opened (at `opened_at`, see [`forks`]).
    pub(super) fn new(file: File, id: FileId, path: CString, opened_at: Option<u64>) -> LockFile {
        LockFile {
            file,
            id,
            path,
            opened_at,
            reused: false,
            map_tried: false,
            counter: None,
        }
    }

    pub(super) fn path(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.path.as_bytes()))
    }

    /// True while no process can share the open file description: no fork since it was
    /// opened.
    fn unshared(&self) -> bool {
        self.opened_at.is_some() && self.opened_at == forks()
    }
}

/// The kept descriptors of one locker, by lock.
#[derive(Debug, Default)]
pub(super) struct FdCache {
    kept: Mutex<Slots>,
}

type Slots = HashMap<LockKey, LockFile, BuildHasherDefault<QuickHash>>;

/// A multiply-and-rotate hash of the key's bytes, far cheaper than the default (SipHash,
/// which resists collisions chosen by whoever picks the names). Collisions cost little here:
/// the map never holds more than [`CAPACITY`] entries.
#[derive(Default)]
struct QuickHash(u64);

impl Hasher for QuickHash {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FdCache {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the kept descriptor of `key` out (an acquire in flight has it to itself).
    fn take(&self, key: &LockKey) -> Option<(LockKey, LockFile)> {
        let (key, mut file) = self.slots().remove_entry(key)?;
        file.reused = true;
        file.unshared().then_some((key, file))
    }

    /// Keeps the (unlocked) descriptor of `key`, unless one is kept already, the cache is
    /// full, or a fork may share it: then it is closed.
    pub(super) fn put(&self, key: LockKey, file: LockFile) {
        if !file.unshared() {
            return;
        }
        let mut slots = self.slots();
        if slots.len() < CAPACITY && !slots.contains_key(&key) {
            slots.insert(key, file);
        }
    }

    /// Closes every kept descriptor (before `cleanup`, which may remove their files).
    pub(super) fn clear(&self) {
        let dropped = std::mem::take(&mut *self.slots());
        drop(dropped);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots().len()
    }
}

/// One attempt on the descriptor kept for `key`, with `try_lock`: `None` when there is none,
/// when it no longer names the lock file, or on an error (it is then closed, and the caller
/// opens the file as usual, which reports errors with their path); `Some(None)` when the lock
/// file is held by someone else.
pub(super) fn try_kept(
    cache: &Arc<FdCache>,
    key: &LockKey,
    try_lock: impl Fn(&File) -> io::Result<bool>,
) -> Option<Option<FileHeld>> {
    let (key, kept) = cache.take(key)?;
    match try_lock(&kept.file) {
        Err(_) => None,
        Ok(true) => match linked_at(&kept.path, kept.id) {
            Ok(true) => Some(Some(FileHeld::new(kept, Some((cache.clone(), key)), None))),
            // Removed or replaced: unlock what nobody else will lock, and open anew.
            _ => {
                let _ = kept.file.unlock();
                None
            }
        },
        // Held: by the lock's holder only if this is still the file at the path.
        Ok(false) => match linked_at(&kept.path, kept.id) {
            Ok(true) => {
                cache.put(key, kept);
                Some(None)
            }
            _ => None,
        },
    }
}

/// How many times this process forked since lockhog first looked; `None` when forks cannot
/// be counted (the handler could not be registered), and then nothing is kept.
pub(super) fn forks() -> Option<u64> {
    static HOOKED: Once = Once::new();
    static ARMED: AtomicBool = AtomicBool::new(false);
    static FORKS: AtomicU64 = AtomicU64::new(0);
    extern "C" fn forked() {
        FORKS.fetch_add(1, Ordering::SeqCst);
    }
    HOOKED.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic, in parent and child.
        if unsafe { libc::pthread_atfork(None, Some(forked), Some(forked)) } == 0 {
            ARMED.store(true, Ordering::SeqCst);
        }
    });
    ARMED
        .load(Ordering::SeqCst)
        .then(|| FORKS.load(Ordering::SeqCst))
}

/// The full path of a lock file, for [`LockFile::path`].
pub(super) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::LockName;
    use std::os::unix::fs::MetadataExt;

    fn lock_file(dir: &Path, name: &str) -> LockFile {
        let path = dir.join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let meta = file.metadata().unwrap();
        LockFile::new(
            file,
            (meta.dev(), meta.ino()),
            c_path(&path).unwrap(),
            forks(),
        )
    }

    fn key(name: &str) -> LockKey {
        LockKey::new("ns", LockName::new(name).unwrap())
    }

    /// Runs `check` until no fork happened while it ran (other tests of this process start
    /// children, and a fork rightly empties the cache).
    fn without_forks(check: impl Fn() -> bool) {
        for _ in 0..100 {
            let before = forks();
            let passed = check();
            if forks() == before {
                assert!(passed);
                return;
            }
        }
        panic!("a fork in every one of 100 runs");
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_one_per_lock() {
        let dir = tempfile::tempdir().unwrap();
        without_forks(|| {
            let cache = FdCache::default();
            for i in 0..CAPACITY + 10 {
                cache.put(key(&i.to_string()), lock_file(dir.path(), &i.to_string()));
            }
            let full = cache.len() == CAPACITY;
            cache.put(key("0"), lock_file(dir.path(), "0"));
            let still = cache.len() == CAPACITY;
            let once = cache.take(&key("0")).is_some() && cache.take(&key("0")).is_none();
            cache.clear();
            full && still && once && cache.len() == 0
        });
    }

    #[test]
    fn a_descriptor_opened_before_a_fork_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FdCache::default();
        let before = lock_file(dir.path(), "a");
        let kept = lock_file(dir.path(), "b");
        cache.put(key("b"), kept);
        // SAFETY: the child exits at once, touching nothing.
        match unsafe { libc::fork() } {
            0 => unsafe { libc::_exit(0) },
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            child => {
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            }
        }
        cache.put(key("a"), before);
        assert!(cache.take(&key("a")).is_none(), "kept after a fork");
        assert!(cache.take(&key("b")).is_none(), "taken out after a fork");
    }
}
