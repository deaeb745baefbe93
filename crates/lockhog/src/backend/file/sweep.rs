//! What `status` and `cleanup` learn about the lock files of a directory: whether a lock file
//! is held (by the kernel's table of locks), which names in a directory are lock files, and
//! the removal of one that nobody holds.

use std::io;
use std::sync::Arc;

use super::dir::Dir;
use super::names::SUFFIX;
use super::tree::Tree;
use super::{proc_locks, FileBackend, Target};
use crate::backend::LockState;
use crate::error::Result;

impl FileBackend {
    pub(super) fn state_of(
        &self,
        dir: Option<&Dir>,
        name: &str,
        held: &proc_locks::HeldFiles,
    ) -> (LockState, Option<String>) {
        let Some(id) = dir.and_then(|d| d.regular_file(name)) else {
            return (LockState::Free, None);
        };
        match held.holders(id) {
            Some(holders) => (LockState::Held, holders),
            None if held.is_complete() => (LockState::Free, None),
            None => (LockState::Unknown, None),
        }
    }

    /// The names in `dir` that look like lock files.
    pub(super) fn lock_files(&self, dir: &Dir) -> Result<Vec<String>> {
        let entries = dir
            .entries()
            .map_err(|e| self.io_error("cannot list", dir.path(), e))?;
        Ok(entries
            .into_iter()
            .filter(|n| n.ends_with(SUFFIX) && dir.regular_file(n).is_some())
            .collect())
    }

    /// Removes the lock file `name` of `dir` if it is lockhog's and nobody holds it by any
    /// kind of lock; true when it was removed.
    pub(super) fn remove_if_unused(&self, tree: &Tree, dir: &Arc<Dir>, name: &str) -> Result<bool> {
        let target = Target {
            dir: dir.clone(),
            name: name.to_string(),
        };
        let path = target.path();
        let held = match self.try_lock_target(&target, false, None, false) {
            Ok(Some((held, id))) => (held, id),
            Ok(None) => return Ok(false),
            Err(e) => {
                tracing::warn!(error = %e, "cleanup: keeping a file that is not a lock file");
                return Ok(false);
            }
        };
        let (held, id) = held;
        // A lock file holds nothing or a counter; anything else is not ours to remove.
        let counter = match tree.floor.counter_of(held.file()) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(path = %path.display(), "cleanup: keeping a file that is not a lock file");
                return Ok(false);
            }
            Err(e) => return Err(self.io_error("cannot read", &path, e)),
        };
        // Programs that take POSIX record locks (lockf, fcntl) are invisible to flock: read
        // the kernel's table, with our lock taken so no lockhog holder can come meanwhile.
        if proc_locks::HeldFiles::read().locked_by_others(id, self.mode) {
            return Ok(false);
        }
        // Removing while holding the lock: anyone who opened the old file will find it
        // unlinked after locking it and start over on a new one, whose counter starts from the
        // floor raised here.
        tree.floor
            .raise(counter)
            .map_err(|e| self.io_error("cannot keep the fencing counter of", &path, e))?;
        let removed = match dir.unlink(name) {
            Ok(()) => true,
            // Another user's file in a sticky directory: not ours to remove.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                false
            }
            Err(e) => return Err(self.io_error("cannot remove", &path, e)),
        };
        drop(held);
        Ok(removed)
    }
}
