//! `file:///abs/dir` — `flock(2)` on `<dir>/<name>.lock`, the default backend.
//!
//! - **Resource**: the lock file's absolute path. Name bytes outside `[A-Za-z0-9._-]` are
//!   percent-encoded (`a b` → `a%20b.lock`), so any name is a safe single path component and
//!   `flock(1)` on the same path takes the same lock. Namespaces other than the default live in
//!   a subdirectory named after the encoded namespace (see `names.rs`).
//! - **The directory is held open** and checked once (see `dir.rs` for the rules): lockhog's
//!   default directory must be private to the effective uid; a directory named in a URL may be
//!   shared (a setgid group directory, or a sticky one) but never writable by everyone without
//!   the sticky bit. Lock files are opened relative to it, never through a symlink, and must be
//!   regular files; one we create gets the directory's read and write bits, so every user who
//!   may create files there can lock and count. Fencing in a shared directory is only as
//!   trustworthy as the users who may write in it: they can delete or rewrite lock files.
//!   Each acquire checks (one `lstat`) that the path still names the directory held open; one
//!   removed or replaced meanwhile is opened (and checked) again, so a long-lived process
//!   locks where everyone arriving later does (see `tree.rs`). Its counters go with it: a
//!   removed directory starts its tokens over.
//! - **Kept descriptors**: in flock mode the descriptor of a released lock stays open
//!   (unlocked) for the next acquire of the same name by this locker, which then locks it and
//!   checks its path, without an open or a close (see `cache.rs`); from then on it bumps the
//!   fencing counter through a shared mapping of the file, when only this user can write the
//!   file (see `counter_map.rs`).
//! - **Waiting** happens in the kernel on a helper thread (see `wait.rs`): a waiter wakes the
//!   moment the holder's descriptor closes.
//! - **Fencing tokens** come from a counter inside each lock file, bumped by the holder right
//!   after it locks the file; `cleanup` keeps a floor per directory so tokens keep growing when
//!   it removes a lock file (see `fencing.rs`). Writing the counter needs a lock file we can
//!   write to; a file holding anything but a counter is refused, never overwritten.
//! - **Foreign resources**: any absolute path, locked where it is and never written to, so
//!   `flock(1)`, `fcntl.flock` and `fcntl.lockf` users of a pid file conflict with lockhog (see
//!   `foreign.rs`); such a lock has no fencing token.
//! - **Semaphores**: one lock file per permit, and the count in one more (see
//!   `semaphore.rs`).
//! - **Shared locks** ([`LockRequest::shared`](crate::LockRequest::shared)): `flock(LOCK_SH)`,
//!   or in `?mode=fcntl` an `F_RDLCK` record lock (an open-file-description lock, so that each
//!   reader's lock is its own; other processes see an ordinary POSIX read lock). They
//!   conflict with `flock -x`/`fcntl.lockf(LOCK_EX)` users of the same file and coexist with
//!   `flock -s`/`LOCK_SH` ones. Readers get fencing tokens too, bumped one at a time under a
//!   latch (see `fencing.rs`), so every token of a name — a reader's or a writer's — is
//!   greater than all earlier ones. **No writer priority**: the kernel grants a reader while
//!   a writer waits (Linux queues neither `flock` nor record-lock waiters ahead of new
//!   readers), so a steady stream of overlapping readers can keep a writer waiting for as
//!   long as it lasts. Within one process in `?mode=fcntl`, readers and writers pass an
//!   in-process FIFO table first, so there a waiting writer does hold back the readers of the
//!   same process that come after it; in flock mode there is no such table.
//! - **Crash release**: the kernel drops a `flock` when the last descriptor closes, so a killed
//!   holder frees its locks at once.
//! - **Cleanup** removes only lockhog's own lock files (a regular file with a name of our
//!   encoding, holding nothing or a counter) that nobody holds, by `flock` or by a POSIX record
//!   lock (read from `/proc/locks`), and only inside the lock directory. It removes a file only
//!   while holding its lock, and an acquirer that locked a file which was removed meanwhile
//!   (its descriptor no longer matches the name) starts over. `flock(1)` does not do that
//!   check, so do not run `cleanup` while shell scripts wait on the same files.

mod acquire;
mod cache;
mod counter_map;
mod dir;
mod fencing;
mod foreign;
mod held;
mod mode;
mod names;
mod proc_locks;
mod semaphore;
mod sweep;
mod tree;
mod wait;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, RwLock};

use tokio::time::Instant;

use self::cache::FdCache;
use self::dir::{Dir, Moved, Trust};
pub use self::held::FileHeld;
use self::mode::LockMode;
use self::names::{file_name, is_lock_file_name, name_of};
use self::tree::Tree;
use super::named_semaphores::{NamedPermit, NamedSemaphores};
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::error::{Error, Result};
use crate::name::{percent_decode, LockKey};
use crate::url::BackendUrl;

const SCHEME: &str = "file";
/// How many times an acquire whose lock directory was removed or replaced under it opens the
/// directory again and starts over (more means someone keeps replacing it: an error then).
const MOVED_RETRIES: u32 = 3;

/// The `file:` row of the backend registry.
pub(crate) const ROW: super::row::BackendRow =
    super::row::BackendRow::of::<FileBackend>(&["file"], None, |url| {
        let dir = FileBackend::parse(url)?;
        Ok(super::row::connecting(async { FileBackend::open(dir) }))
    });

/// In-process arbitration for POSIX record locks, which the kernel grants to the process as a
/// whole: one exclusive holder per lock file path in this process at a time, or any number of
/// shared ones (each takes one of its many permits), in FIFO order; and nobody in this process
/// opens (and so, on close, unlocks) a file another exclusive guard of it holds.
static RECORD_LOCK_HOLDERS: LazyLock<NamedSemaphores<PathBuf>> =
    LazyLock::new(|| NamedSemaphores::with_capacity(READER_PERMITS));

/// Permits per record-lock path: a shared holder takes one, an exclusive one all.
const READER_PERMITS: u32 = 1 << 20;

/// This process's claim on a record-lock path (`None` in flock mode, which needs none).
type Permit = Option<NamedPermit<PathBuf>>;

/// The file-lock backend.
#[derive(Debug)]
pub struct FileBackend {
    /// The lock directory as the URL names it, to open again should it be replaced.
    path: PathBuf,
    trust: Trust,
    /// The directory as opened: replaced whole when its path names another directory.
    tree: RwLock<Arc<Tree>>,
    mode: LockMode,
    /// Descriptors of released locks kept for the next acquire of the same name (flock mode
    /// only; see `cache.rs`).
    cache: Option<Arc<FdCache>>,
}

/// A lock file to open: its directory and its name there.
struct Target {
    dir: Arc<Dir>,
    name: String,
}

impl Target {
    fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }
}

/// True when the URL's path is lockhog's default directory ([`crate::default_url`]), which
/// gets the checks of a private directory.
fn is_default(path: &Path) -> bool {
    let default = crate::url::default_url();
    default
        .strip_prefix("file://")
        .and_then(percent_decode)
        .is_some_and(|d| Path::new(&d) == path)
}

impl FileBackend {
    /// Takes `file:///abs/dir` and its one option, `mode=flock|fcntl`, off `url`, for
    /// [`FileBackend::open`]: an [`Error::InvalidUrl`] for a relative or remote path.
    fn parse(url: &mut BackendUrl) -> Result<(PathBuf, LockMode)> {
        let path = url
            .body()
            .strip_prefix("//")
            .and_then(|rest| rest.strip_prefix("localhost").or(Some(rest)))
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| url.invalid("expected an absolute directory: file:///abs/dir"))?;
        let path =
            percent_decode(path).ok_or_else(|| url.invalid("bad percent-encoding in the path"))?;
        if path.contains('\0') {
            return Err(url.invalid("the path contains NUL"));
        }
        let mode = match url.take_option("mode") {
            None => LockMode::Flock,
            Some(m) => LockMode::parse(&m).ok_or_else(|| url.invalid("mode is flock or fcntl"))?,
        };
        Ok((PathBuf::from(path), mode))
    }

    /// Opens the directory `parse` found, creating it when it is missing.
    ///
    /// lockhog's default directory must be private to the effective uid; a directory named
    /// explicitly may be shared within limits (see the backend's docs). An [`Error::Backend`]
    /// when the directory cannot be created, is not a writable directory, or cannot be trusted.
    fn open((path, mode): (PathBuf, LockMode)) -> Result<Self> {
        let trust = if is_default(&path) {
            Trust::Private
        } else {
            Trust::Explicit
        };
        let tree = Tree::open(&path, trust)?;
        Ok(FileBackend {
            path,
            trust,
            tree: RwLock::new(Arc::new(tree)),
            mode,
            cache: (mode == LockMode::Flock).then(Arc::default),
        })
    }

    /// The lock file of `key` in `tree`, or the foreign file `key` names.
    fn target(&self, tree: &Tree, key: &LockKey) -> Result<Target> {
        if let Some(path) = key.foreign_resource() {
            return foreign::target(path);
        }
        let dir = self
            .dir(tree, key.namespace(), true)?
            .expect("created when missing");
        Ok(Target {
            dir,
            name: file_name(key.name().as_str()),
        })
    }

    fn io_error(&self, doing: &str, path: &Path, e: io::Error) -> Error {
        Error::backend_io(SCHEME, format!("{doing} {}", path.display()), e)
    }

    /// The lock of `key` just taken (`shared` or not) in `tree` (`None`: the directory as
    /// last opened, for a kept descriptor), with its next fencing token; none for a foreign
    /// file, whose content is never touched, nor for a request that opted out of fencing.
    async fn granted(
        &self,
        tree: Option<&Tree>,
        key: &LockKey,
        ctx: &AcquireContext,
        held: FileHeld,
    ) -> Result<Acquired<FileHeld>> {
        if !ctx.options.shared || key.foreign_resource().is_some() || !ctx.options.fencing {
            return self.granted_exclusive(tree, key, ctx, held);
        }
        let token = tree
            .unwrap_or(&self.tree())
            .floor
            .next_token_shared(held.file())
            .await;
        self.with_token(held, token)
    }

    /// [`FileBackend::granted`] for an exclusive lock, which takes its token at once.
    fn granted_exclusive(
        &self,
        tree: Option<&Tree>,
        key: &LockKey,
        ctx: &AcquireContext,
        mut held: FileHeld,
    ) -> Result<Acquired<FileHeld>> {
        if key.foreign_resource().is_some() || !ctx.options.fencing {
            return Ok(Acquired { held, token: None });
        }
        let lock = held.lock_file_mut();
        // A mapped counter needs neither the directory nor its floor.
        let token = match (&lock.counter, tree) {
            (Some(map), _) => map.bump(),
            (None, Some(tree)) => tree.floor.next_token_held(lock),
            (None, None) => self.tree().floor.next_token_held(lock),
        };
        self.with_token(held, token)
    }

    fn with_token(&self, held: FileHeld, token: io::Result<u64>) -> Result<Acquired<FileHeld>> {
        Ok(Acquired {
            token: Some(token.map_err(|e| {
                self.io_error(
                    "cannot update the fencing counter of",
                    held.lock_file().path(),
                    e,
                )
            })?),
            held,
        })
    }

    /// Takes the lock file of `key` if it is free, without its token: the kept descriptor, or
    /// the file opened (in the directory opened again, should it have moved). With the tree
    /// it was taken in (`None` for the kept descriptor).
    fn try_take(
        &self,
        key: &LockKey,
        shared: bool,
    ) -> Result<Option<(FileHeld, Option<Arc<Tree>>)>> {
        // Kept descriptors are exclusive locks' only.
        if !shared {
            if let Some(kept) = self.try_kept(key) {
                return Ok(kept.map(|held| (held, None)));
            }
        }
        let mut tries = 0;
        loop {
            let tree = self.tree();
            let target = self.target(&tree, key)?;
            match self.try_lock_target(&target, true, Some(key), shared) {
                Err(e) if Moved::is(&e) && tries < MOVED_RETRIES => {
                    tries += 1;
                    self.refresh(&tree)?;
                }
                other => return other.map(|taken| taken.map(|(held, _)| (held, Some(tree)))),
            }
        }
    }
}

impl Backend for FileBackend {
    type Held = FileHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_fencing: true,
            crash_release: true,
            native_wait: true,
            cross_process: true,
            semaphore: true,
            shared: true,
            // Neither flock nor POSIX record locks queue a waiting writer ahead of new readers
            // ("Shared locks" in the module docs).
            shared_writer_priority: false,
            ..Capabilities::default()
        }
    }

    fn parse_resource(resource: &str) -> Result<String> {
        foreign::parse(resource)
    }

    fn resource(&self, key: &LockKey) -> String {
        self.dir_path(&self.tree(), key.namespace())
            .join(file_name(key.name().as_str()))
            .display()
            .to_string()
    }

    fn try_acquire_now(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Option<Result<Option<Acquired<FileHeld>>>> {
        // A reader may wait a moment for the counter's latch.
        if ctx.options.shared {
            return None;
        }
        Some(self.try_take(key, false).and_then(|taken| {
            taken
                .map(|(held, tree)| self.granted_exclusive(tree.as_deref(), key, ctx, held))
                .transpose()
        }))
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<FileHeld>>> {
        let Some((held, tree)) = self.try_take(key, ctx.options.shared)? else {
            return Ok(None);
        };
        self.granted(tree.as_deref(), key, ctx, held)
            .await
            .map(Some)
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<FileHeld>>> {
        let mut tries = 0;
        loop {
            let tree = self.tree();
            match self.wait_in(&tree, key, ctx, deadline).await {
                Err(e) if Moved::is(&e) && tries < MOVED_RETRIES => {
                    tries += 1;
                    self.refresh(&tree)?;
                }
                other => return other,
            }
        }
    }
    async fn record_permits(&self, key: &LockKey, permits: u32) -> Result<()> {
        self.record_permits_in_file(key, permits).await
    }

    fn inheritable_fd<'h>(&self, held: &'h FileHeld) -> Option<BorrowedFd<'h>> {
        // A record lock belongs to the process and is never inherited: only a flock travels
        // with a copy of its descriptor, which another process then shares: not to be kept.
        held.inherited.store(true, Ordering::Relaxed);
        (self.mode == LockMode::Flock).then(|| held.file().as_fd())
    }

    async fn release(&self, held: FileHeld) -> Result<bool> {
        self.release_now(held).unwrap_or(Ok(true))
    }

    fn release_now(&self, held: FileHeld) -> std::result::Result<Result<bool>, FileHeld> {
        // Unlocking (and closing or keeping) the descriptor drops the lock; the file stays for
        // the next holder.
        drop(held);
        Ok(Ok(true))
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let held = proc_locks::HeldFiles::read();
        let (foreign, named): (Vec<&LockKey>, Vec<&LockKey>) =
            keys.iter().partition(|k| k.foreign_resource().is_some());
        let mut statuses = Vec::with_capacity(keys.len());
        for path in foreign.iter().filter_map(|k| k.foreign_resource()) {
            let (dir, file) = foreign::dir_of(path)?;
            let (state, holder) = self.state_of(dir.as_ref(), &file, &held);
            statuses.push(LockStatus::new(
                Some(path.to_string()),
                path.to_string(),
                state,
                holder,
            ));
        }
        if named.is_empty() && !keys.is_empty() {
            return Ok(statuses);
        }
        let tree = self.fresh_tree()?;
        let dir = self.dir(&tree, namespace, false)?;
        let files: Vec<(Option<String>, String)> = if keys.is_empty() {
            match &dir {
                Some(d) => self
                    .lock_files(d)?
                    .into_iter()
                    .map(|f| (name_of(&f), f))
                    .collect(),
                None => Vec::new(),
            }
        } else {
            named
                .iter()
                .map(|k| (Some(k.name().to_string()), file_name(k.name().as_str())))
                .collect()
        };
        let base = self.dir_path(&tree, namespace);
        statuses.extend(files.into_iter().map(|(name, file)| {
            let (state, holder) = self.state_of(dir.as_deref(), &file, &held);
            let path = base.join(&file).display().to_string();
            LockStatus::new(name, path, state, holder)
        }));
        Ok(statuses)
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        // Our own kept descriptors go first: cleanup may remove their files.
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        let mut report = CleanupReport::default();
        let tree = self.fresh_tree()?;
        let Some(dir) = self.dir(&tree, namespace, false)? else {
            return Ok(report);
        };
        for name in self.lock_files(&dir)? {
            if is_lock_file_name(&name) && self.remove_if_unused(&tree, &dir, &name)? {
                report.removed += 1;
            } else {
                report.kept += 1;
            }
        }
        Ok(report)
    }
}
