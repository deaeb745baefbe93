//! Taking one lock file: a single attempt, and a wait in the kernel on a helper thread, each
//! checking after locking that the file is still the one at its path.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::time::Instant;

use super::dir::{FileId, Moved};
use super::mode::LockMode;
use super::tree::Tree;
use super::{wait, FileBackend, FileHeld, Permit, Target, RECORD_LOCK_HOLDERS};
use crate::backend::{AcquireContext, Acquired};
use crate::error::Result;
use crate::name::LockKey;

/// Opens, locks and checks the lock file: `Ok(None)` when someone else holds it. An acquirer
/// that locked a file `cleanup` removed meanwhile starts over on a new one; one whose
/// directory is no longer at its path gets [`Moved`], to open it again.
pub(super) fn lock_file(
    target: &Target,
    create: bool,
    lock: impl Fn(&File) -> io::Result<bool>,
) -> io::Result<Option<(File, FileId)>> {
    loop {
        let (file, id) = match target.dir.open_file(&target.name, create) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            // Nothing can be created in a removed directory.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !target.dir.still_at_path() => {
                return Err(Moved::error())
            }
            other => other?,
        };
        if !lock(&file)? {
            return Ok(None);
        }
        if target.dir.still_linked(&target.name, id)? {
            return Ok(Some((file, id)));
        }
        if !target.dir.still_at_path() {
            return Err(Moved::error());
        }
        if !create {
            return Ok(None);
        }
    }
}

impl FileBackend {
    /// Takes the lock of `target` (`shared` or not) if it is free: `None` when someone holds
    /// it (or, unless `create`, when there is no lock file).
    pub(super) fn try_lock_target(
        &self,
        target: &Target,
        create: bool,
        shared: bool,
    ) -> Result<Option<(FileHeld, FileId)>> {
        let path = target.path();
        let permit = match self.mode {
            LockMode::Flock => None,
            LockMode::Fcntl => {
                let permits = RECORD_LOCK_HOLDERS.permits(shared);
                match RECORD_LOCK_HOLDERS.try_acquire_many(&path, permits) {
                    Some(p) => Some(p),
                    None => return Ok(None),
                }
            }
        };
        let mode = self.mode;
        let locked = lock_file(target, create, |f| mode.try_lock(f, shared))
            .map_err(|e| self.io_error("cannot lock", &path, e))?;
        Ok(locked.map(|(file, id)| (self.held(file, path, shared, permit), id)))
    }

    fn held(&self, file: File, path: PathBuf, shared: bool, permit: Permit) -> FileHeld {
        FileHeld {
            file,
            path,
            reader_record: shared && self.mode == LockMode::Fcntl,
            _permit: permit,
        }
    }

    /// One wait for `key` in the lock directory `tree`.
    pub(super) async fn wait_in(
        &self,
        tree: &Arc<Tree>,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<FileHeld>>> {
        let target = self.target(tree, key)?;
        let path = target.path();
        let shared = ctx.options.shared;
        ctx.note_attempt();
        let permit = match self.mode {
            LockMode::Flock => None,
            LockMode::Fcntl => {
                let permits = RECORD_LOCK_HOLDERS.permits(shared);
                match RECORD_LOCK_HOLDERS
                    .acquire_many(&path, permits, deadline)
                    .await
                {
                    Some(p) => Some(p),
                    None => return Ok(None),
                }
            }
        };
        let mode = self.mode;
        let first = lock_file(&target, true, |f| mode.try_lock(f, shared))
            .map_err(|e| self.io_error("cannot lock", &path, e))?;
        if let Some((file, _)) = first {
            let held = self.held(file, path, shared, permit);
            return self.granted(tree, key, held, shared).await.map(Some);
        }
        let (thread_path, reader_record) = (path.clone(), shared && mode == LockMode::Fcntl);
        let waited = wait::wait_on_thread(
            move |cancelled| {
                let attempts = std::cell::Cell::new(0);
                let locked = lock_file(&target, true, |f| {
                    attempts.set(attempts.get() + 1);
                    mode.lock_blocking(f, shared, cancelled).map(|()| true)
                })?;
                let (file, _) = locked.expect("a blocking lock is always taken");
                // The permit moves into the guard; on any early return it is dropped after
                // `file`, so no other holder in this process is unlocked by this descriptor's
                // close.
                let held = FileHeld {
                    file,
                    path: thread_path,
                    reader_record,
                    _permit: permit,
                };
                Ok((held, attempts.get()))
            },
            deadline,
        )
        .await
        .map_err(|e| self.io_error("cannot wait for", &path, e))?;
        match waited {
            Some((held, attempts)) => {
                for _ in 0..attempts {
                    ctx.note_attempt();
                }
                self.granted(tree, key, held, shared).await.map(Some)
            }
            None => Ok(None),
        }
    }
}
