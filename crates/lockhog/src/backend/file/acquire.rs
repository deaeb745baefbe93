//! Taking one lock file: a single attempt, and a wait in the kernel on a helper thread, each
//! checking after locking that the file is still the one at its path.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio::time::Instant;

use super::cache::{self, FdCache, LockFile};
use super::dir::{FileId, Moved};
use super::mode::LockMode;
use super::tree::Tree;
use super::{wait, FileBackend, FileHeld, Permit, Target, RECORD_LOCK_HOLDERS};
use crate::backend::{AcquireContext, Acquired};
use crate::error::Result;
use crate::name::LockKey;

/// The held lock of a file just locked (opened when [`cache::forks`] said `opened_at`); its
/// descriptor goes to `cache` on release when `keep` names the lock it was taken for.
fn held(
    (file, id): (File, FileId),
    path: &Path,
    opened_at: Option<u64>,
    cache: Option<&Arc<FdCache>>,
    keep: Option<&LockKey>,
    permit: Permit,
) -> io::Result<FileHeld> {
    let lock = LockFile::new(file, id, cache::c_path(path)?, opened_at);
    let back = match (cache, keep) {
        (Some(cache), Some(key)) if key.foreign_resource().is_none() => {
            Some((cache.clone(), key.clone()))
        }
        _ => None,
    };
    Ok(FileHeld::new(lock, back, permit))
}

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
    /// One attempt on the descriptor this locker kept for `key` (see `cache.rs`): `None` when
    /// there is none to use (the caller opens the file), `Some(None)` when someone holds it.
    pub(super) fn try_kept(&self, key: &LockKey) -> Option<Option<FileHeld>> {
        if key.foreign_resource().is_some() {
            return None;
        }
        let mode = self.mode;
        cache::try_kept(self.cache.as_ref()?, key, |f| mode.try_lock(f, false))
    }

    /// Takes the lock of `target` (`shared` or not) if it is free: `None` when someone holds it (or, unless
    /// `create`, when there is no lock file). The descriptor is kept on release when `keep`
    /// names the lock being acquired (never for a shared lock).
    pub(super) fn try_lock_target(
        &self,
        target: &Target,
        create: bool,
        keep: Option<&LockKey>,
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
        let opened_at = cache::forks();
        let keep = keep.filter(|_| !shared);
        let locked = lock_file(target, create, |f| mode.try_lock(f, shared))
            .and_then(|locked| {
                locked
                    .map(|(file, id)| {
                        let cache = self.cache.as_ref();
                        let held = held((file, id), &path, opened_at, cache, keep, permit)?;
                        Ok((held.reader(shared && mode == LockMode::Fcntl), id))
                    })
                    .transpose()
            })
            .map_err(|e| self.io_error("cannot lock", &path, e))?;
        Ok(locked)
    }

    /// One wait for `key` in the lock directory `tree`.
    pub(super) async fn wait_in(
        &self,
        tree: &Arc<Tree>,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<FileHeld>>> {
        ctx.note_attempt();
        // The kept descriptor if it is free; held or not, the wait below is on a new one.
        if !ctx.options.shared {
            if let Some(Some(held)) = self.try_kept(key) {
                return self.granted(None, key, ctx, held).await.map(Some);
            }
        }
        let target = self.target(tree, key)?;
        let path = target.path();
        let shared = ctx.options.shared;
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
        let opened_at = cache::forks();
        let first = lock_file(&target, true, |f| mode.try_lock(f, shared))
            .map_err(|e| self.io_error("cannot lock", &path, e))?;
        let reader_record = shared && mode == LockMode::Fcntl;
        // A shared lock's descriptor is never kept: the cache holds exclusive ones.
        let keep = (!shared).then(|| key.clone());
        if let Some(locked) = first {
            let held = held(
                locked,
                &path,
                opened_at,
                self.cache.as_ref(),
                keep.as_ref(),
                permit,
            )
            .map_err(|e| self.io_error("cannot lock", &path, e))?;
            return self
                .granted(Some(tree), key, ctx, held.reader(reader_record))
                .await
                .map(Some);
        }
        let thread_path = path.clone();
        let cache = self.cache.clone();
        let waited = wait::wait_on_thread(
            move |cancelled| {
                let attempts = std::cell::Cell::new(0);
                let opened_at = cache::forks();
                let locked = lock_file(&target, true, |f| {
                    attempts.set(attempts.get() + 1);
                    mode.lock_blocking(f, shared, cancelled).map(|()| true)
                })?;
                let locked = locked.expect("a blocking lock is always taken");
                // The permit moves into the guard; on any early return it is dropped after
                // the file, so no other holder in this process is unlocked by this
                // descriptor's close.
                let held = held(
                    locked,
                    &thread_path,
                    opened_at,
                    cache.as_ref(),
                    keep.as_ref(),
                    permit,
                )?
                .reader(reader_record);
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
                self.granted(Some(tree), key, ctx, held).await.map(Some)
            }
            None => Ok(None),
        }
    }
}
