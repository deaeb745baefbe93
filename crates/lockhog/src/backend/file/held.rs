//! A held file lock, and what its release does with the descriptor: unlock the open file
//! description (so a forked copy does not keep the lock), then keep it for the next acquire
//! of the same name or close it.

use std::fs::File;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::cache::{FdCache, LockFile};
use super::{mode, Permit};
use crate::name::LockKey;

/// A held file lock: the open, locked file. Unlocking (and closing) it releases the lock.
#[derive(Debug)]
pub struct FileHeld {
    /// `Some` until dropped.
    lock: Option<LockFile>,
    /// Where the descriptor goes once unlocked, to be locked again by the next acquire of
    /// the same name; `None`: closed.
    back: Option<(Arc<FdCache>, LockKey)>,
    /// Lent to another process (`run`'s command): never kept.
    pub(super) inherited: AtomicBool,
    /// A shared record lock (fcntl mode), which belongs to the open file description.
    reader_record: bool,
    // Dropped after `drop` closed the file: no other holder in this process is unlocked by
    // this descriptor's close.
    _permit: Permit,
}

impl FileHeld {
    pub(super) fn new(
        lock: LockFile,
        back: Option<(Arc<FdCache>, LockKey)>,
        permit: Permit,
    ) -> FileHeld {
        FileHeld {
            lock: Some(lock),
            back,
            inherited: AtomicBool::new(false),
            reader_record: false,
            _permit: permit,
        }
    }

    /// Marks a shared record lock (fcntl mode), which is unlocked as a reader's.
    pub(super) fn reader(mut self, reader_record: bool) -> FileHeld {
        self.reader_record = reader_record;
        self
    }

    pub(super) fn lock_file(&self) -> &LockFile {
        self.lock.as_ref().expect("held until dropped")
    }

    pub(super) fn lock_file_mut(&mut self) -> &mut LockFile {
        self.lock.as_mut().expect("held until dropped")
    }

    pub(super) fn file(&self) -> &File {
        &self.lock_file().file
    }
}

impl Drop for FileHeld {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        // A process forked by any thread of ours shares this open file description until it
        // execs (or for its whole life if it never does), and with it the flock or the
        // reader's open-file-description lock: closing our descriptor alone would leave the
        // lock held by that copy. Unlocking the description frees it at once. (Exclusive
        // record locks belong to the process, and a child does not inherit them.)
        let unlocked = if self.reader_record {
            mode::unlock_reader(&lock.file);
            false
        } else {
            lock.file.unlock().is_ok()
        };
        if let Some((cache, key)) = self.back.take() {
            if unlocked && !*self.inherited.get_mut() {
                cache.put(key, lock);
            }
        }
    }
}
