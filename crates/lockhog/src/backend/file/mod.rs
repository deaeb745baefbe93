//! `file:///abs/dir` — `flock(2)` on `<dir>/<name>.lock`, the default backend.
//!
//! - **Resource**: the lock file's absolute path. Name bytes outside `[A-Za-z0-9._-]` are
//!   percent-encoded (`a b` → `a%20b.lock`), so any name is a safe single path component and
//!   `flock(1)` on the same path takes the same lock. A name whose encoding would pass the
//!   255-byte file-name limit is shortened to a readable prefix, `~` and the SHA-256 of the
//!   name (`~` never occurs in an encoded name). Namespaces other than the default live in a
//!   subdirectory named after the encoded namespace.
//! - **Waiting** happens in the kernel on a helper thread (see `wait.rs`): a waiter wakes the
//!   moment the holder's descriptor closes.
//! - **Fencing tokens** come from a counter inside each lock file, bumped by the holder right
//!   after it locks the file; `cleanup` keeps a floor per directory so tokens keep growing when
//!   it removes a lock file (see `fencing.rs`). Writing the counter needs a lock file we can
//!   write to.
//! - **Crash release**: the kernel drops a `flock` when the last descriptor closes, so a killed
//!   holder frees its locks at once.
//! - **Cleanup** removes lock files nobody holds, safely: it removes a file only while holding
//!   its lock, and an acquirer that locked a file which was removed meanwhile (its descriptor
//!   no longer matches the path) starts over. `flock(1)` does not do that check, so do not run
//!   `cleanup` while shell scripts wait on the same files.

mod fencing;
mod mode;
mod proc_locks;
mod wait;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use self::mode::LockMode;
use super::named_semaphores::{NamedPermit, NamedSemaphores};
use super::{
    AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockState, LockStatus,
};
use crate::error::{Error, Result};
use crate::name::{hex, percent_decode, percent_encode, LockKey, DEFAULT_NAMESPACE};
use crate::url::BackendUrl;

const SCHEME: &str = "file";

/// The `file:` row of the backend registry.
pub(crate) const ROW: super::row::BackendRow = super::row::BackendRow {
    schemes: &["file"],
    feature: None,
    connect: Some(|url| {
        let dir = FileBackend::parse(url)?;
        Ok(super::row::connecting(async { FileBackend::open(dir) }))
    }),
};
const SUFFIX: &str = ".lock";
/// Longest file name most file systems accept.
const NAME_MAX: usize = 255;
/// Bytes of the encoded name kept in front of the digest when a name is too long.
const LONG_NAME_PREFIX: usize = 120;

/// In-process arbitration for POSIX record locks, which the kernel grants to the process as a
/// whole: one holder per lock file path in this process at a time, and nobody in this
/// process opens (and so, on close, unlocks) a file another guard of it holds.
static RECORD_LOCK_HOLDERS: LazyLock<NamedSemaphores<PathBuf>> =
    LazyLock::new(NamedSemaphores::new);

/// This process's claim on a record-lock path (`None` in flock mode, which needs none).
type Permit = Option<NamedPermit<PathBuf>>;

/// The file-lock backend.
#[derive(Debug)]
pub struct FileBackend {
    root: PathBuf,
    mode: LockMode,
    /// The fencing floor for lock files `cleanup` removed.
    floor: fencing::Floor,
}

/// A held file lock: the open, locked file. Closing it releases the lock.
#[derive(Debug)]
pub struct FileHeld {
    // Field order matters: the file closes (unlocking) before the in-process permit goes.
    file: File,
    path: PathBuf,
    _permit: Permit,
}

impl Drop for FileHeld {
    fn drop(&mut self) {
        // A process forked by any thread of ours shares this open file description until it
        // execs (or for its whole life if it never does), and with it the flock: closing our
        // descriptor alone would leave the lock held by that copy. Unlocking the description
        // frees it at once. (A no-op in fcntl mode, whose locks a child does not inherit.)
        let _ = self.file.unlock();
    }
}

fn keep_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// The lock file's name for lock `name`.
fn file_name(name: &str) -> String {
    let encoded = percent_encode(name, keep_byte);
    if encoded.len() + SUFFIX.len() <= NAME_MAX {
        return format!("{encoded}{SUFFIX}");
    }
    // Cut on a byte that starts no escape, so the prefix stays readable and decodable.
    let mut cut = LONG_NAME_PREFIX;
    while cut > 0 && encoded[..cut].rfind('%').is_some_and(|p| p + 3 > cut) {
        cut -= 1;
    }
    let digest = hex(&Sha256::digest(name.as_bytes()));
    format!("{}~{digest}{SUFFIX}", &encoded[..cut])
}

/// The lock name a lock file stands for, when it can be recovered (not for shortened names).
fn name_of(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(SUFFIX)?;
    if stem.contains('~') {
        return None;
    }
    percent_decode(stem)
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // Never truncate: the counter file's content is the fencing state.
        .truncate(false)
        .mode(0o666)
        .open(path)
    {
        // A file made by another user may be read-only to us; flock needs no write access.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
}

/// True when `file` is still the file at `path` (cleanup may have removed it meanwhile).
fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl FileBackend {
    /// Takes `file:///abs/dir` and its `mode` option off `url`, for [`FileBackend::open`]: an
    /// [`Error::InvalidUrl`] for a relative or remote path.
    fn parse(url: &mut BackendUrl) -> Result<(String, LockMode, Error)> {
        let path = url
            .body()
            .strip_prefix("//")
            .and_then(|rest| rest.strip_prefix("localhost").or(Some(rest)))
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| url.invalid("expected an absolute directory: file:///abs/dir"))?;
        let path =
            percent_decode(path).ok_or_else(|| url.invalid("bad percent-encoding in the path"))?;
        let mode = match url.take_option("mode") {
            None => LockMode::Flock,
            Some(m) => LockMode::parse(&m).ok_or_else(|| url.invalid("mode is flock or fcntl"))?,
        };
        Ok((path, mode, url.invalid("the path contains NUL")))
    }

    /// Opens the directory `parse` found, creating it when it is missing: an
    /// [`Error::Backend`] when it cannot be created or is not a writable directory.
    fn open((path, mode, nul): (String, LockMode, Error)) -> Result<Self> {
        let root = PathBuf::from(path);
        let io_err =
            |doing: &str, e| Error::backend_io(SCHEME, format!("{doing} {}", root.display()), e);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| io_err("cannot create lock directory", e))?;
        let meta = std::fs::metadata(&root).map_err(|e| io_err("cannot read lock directory", e))?;
        if !meta.is_dir() {
            return Err(Error::backend(
                SCHEME,
                format!("{} is not a directory", root.display()),
            ));
        }
        let c_path =
            std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).map_err(|_| nul)?;
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
            return Err(io_err(
                "cannot write to lock directory",
                io::Error::last_os_error(),
            ));
        }
        // One spelling per directory, so the in-process table of record locks sees one path
        // per file.
        let root = root
            .canonicalize()
            .map_err(|e| io_err("cannot resolve lock directory", e))?;
        Ok(FileBackend {
            floor: fencing::Floor::new(&root),
            root,
            mode,
        })
    }

    fn dir(&self, namespace: &str) -> PathBuf {
        if namespace == DEFAULT_NAMESPACE {
            self.root.clone()
        } else {
            self.root.join(percent_encode(namespace, keep_byte))
        }
    }

    fn path(&self, key: &LockKey) -> io::Result<PathBuf> {
        let dir = self.dir(key.namespace());
        if key.namespace() != DEFAULT_NAMESPACE {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
        }
        Ok(dir.join(file_name(key.name().as_str())))
    }

    fn io_error(&self, doing: &str, path: &Path, e: io::Error) -> Error {
        Error::backend_io(SCHEME, format!("{doing} {}", path.display()), e)
    }

    fn granted(&self, held: FileHeld) -> Result<Acquired<FileHeld>> {
        Ok(Acquired {
            token: self.floor.next_token(&held.file).map_err(|e| {
                self.io_error("cannot update the fencing counter of", &held.path, e)
            })?,
            held,
        })
    }

    /// Takes the lock at `path` if it is free: `None` when someone holds it.
    fn try_lock_path(&self, path: &Path) -> Result<Option<FileHeld>> {
        let permit = match self.mode {
            LockMode::Flock => None,
            LockMode::Fcntl => match RECORD_LOCK_HOLDERS.try_acquire(&path.to_path_buf()) {
                Some(p) => Some(p),
                None => return Ok(None),
            },
        };
        Ok(self.try_lock_file(path, permit)?.ok())
    }

    /// One attempt with the in-process permit (if any) already held: the permit comes back
    /// when someone else holds the lock, for a wait to go on with.
    fn try_lock_file(
        &self,
        path: &Path,
        permit: Permit,
    ) -> Result<std::result::Result<FileHeld, Permit>> {
        loop {
            let file = open_lock_file(path)
                .map_err(|e| self.io_error("cannot open lock file", path, e))?;
            if !self
                .mode
                .try_lock(&file)
                .map_err(|e| self.io_error("cannot lock", path, e))?
            {
                return Ok(Err(permit));
            }
            if still_linked(&file, path)
                .map_err(|e| self.io_error("cannot check lock file", path, e))?
            {
                return Ok(Ok(FileHeld {
                    file,
                    path: path.to_path_buf(),
                    _permit: permit,
                }));
            }
        }
    }

    fn state_of(&self, path: &Path, held: &proc_locks::HeldFiles) -> (LockState, Option<String>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return (LockState::Free, None);
        };
        match held.holder(&meta) {
            Some(Some(pid)) => (LockState::Held, Some(format!("pid {pid}"))),
            Some(None) => (LockState::Held, None),
            None if held.is_complete() => (LockState::Free, None),
            None => (LockState::Unknown, None),
        }
    }

    fn lock_files(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error("cannot list", dir, e)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SUFFIX))
            })
            .collect();
        files.sort();
        Ok(files)
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
            ..Capabilities::default()
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        self.dir(key.namespace())
            .join(file_name(key.name().as_str()))
            .display()
            .to_string()
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        _: &AcquireContext,
    ) -> Result<Option<Acquired<FileHeld>>> {
        let path = self
            .path(key)
            .map_err(|e| self.io_error("cannot create", &self.dir(key.namespace()), e))?;
        match self.try_lock_path(&path)? {
            Some(held) => self.granted(held).map(Some),
            None => Ok(None),
        }
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<FileHeld>>> {
        let path = self
            .path(key)
            .map_err(|e| self.io_error("cannot create", &self.dir(key.namespace()), e))?;
        ctx.note_attempt();
        let permit = match self.mode {
            LockMode::Flock => None,
            LockMode::Fcntl => match RECORD_LOCK_HOLDERS.acquire(&path, deadline).await {
                Some(p) => Some(p),
                None => return Ok(None),
            },
        };
        let permit = match self.try_lock_file(&path, permit)? {
            Ok(held) => return self.granted(held).map(Some),
            Err(permit) => permit,
        };
        let (mode, thread_path) = (self.mode, path.clone());
        let waited = wait::wait_on_thread(
            move |cancelled| {
                let mut attempts = 0;
                loop {
                    let file = open_lock_file(&thread_path)?;
                    attempts += 1;
                    mode.lock_blocking(&file, cancelled)?;
                    if still_linked(&file, &thread_path)? {
                        // The permit moves into the guard; on any early return it is dropped
                        // after `file`, so no other holder in this process is unlocked by
                        // this descriptor's close.
                        let held = FileHeld {
                            file,
                            path: thread_path,
                            _permit: permit,
                        };
                        return Ok((held, attempts));
                    }
                }
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
                self.granted(held).map(Some)
            }
            None => Ok(None),
        }
    }

    fn inheritable_fd<'h>(&self, held: &'h FileHeld) -> Option<BorrowedFd<'h>> {
        // A record lock belongs to the process and is never inherited: only a flock travels
        // with a copy of its descriptor.
        (self.mode == LockMode::Flock).then(|| held.file.as_fd())
    }

    async fn release(&self, held: FileHeld) -> Result<bool> {
        // Closing the descriptor drops the flock; the file stays for the next holder.
        drop(held);
        Ok(true)
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let held = proc_locks::HeldFiles::read();
        let paths: Vec<(Option<String>, PathBuf)> = if keys.is_empty() {
            self.lock_files(&self.dir(namespace))?
                .into_iter()
                .map(|p| (p.file_name().and_then(|n| n.to_str()).and_then(name_of), p))
                .collect()
        } else {
            keys.iter()
                .map(|k| (Some(k.name().to_string()), PathBuf::from(self.resource(k))))
                .collect()
        };
        Ok(paths
            .into_iter()
            .map(|(name, path)| {
                let (state, holder) = self.state_of(&path, &held);
                LockStatus::new(name, path.display().to_string(), state, holder)
            })
            .collect())
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        for path in self.lock_files(&self.dir(namespace))? {
            match self.try_lock_path(&path) {
                Ok(Some(held)) => {
                    // Removing while holding the lock: anyone who opened the old file will find
                    // it unlinked after locking it and start over on a new one, whose counter
                    // starts from the floor raised here.
                    let counter = self.floor.counter_of(&held.file);
                    counter.and_then(|c| self.floor.raise(c)).map_err(|e| {
                        self.io_error("cannot keep the fencing counter of", &path, e)
                    })?;
                    match std::fs::remove_file(&path) {
                        Ok(()) => report.removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(self.io_error("cannot remove", &path, e)),
                    }
                    drop(held);
                }
                Ok(None) => report.kept += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_single_safe_components() {
        assert_eq!(file_name("nightly-report"), "nightly-report.lock");
        assert_eq!(file_name("a b/../c"), "a%20b%2F..%2Fc.lock");
        assert_eq!(file_name("50%"), "50%25.lock");
        assert_eq!(file_name("é"), "%C3%A9.lock");
        assert_eq!(name_of("a%20b%2F..%2Fc.lock").as_deref(), Some("a b/../c"));
        assert_ne!(file_name("a b"), file_name("a%20b"));
    }

    #[test]
    fn long_names_keep_a_prefix_and_a_digest() {
        for name in [
            "x".repeat(1024),
            "é".repeat(512),
            format!("{}{}", "y".repeat(119), "é".repeat(300)),
        ] {
            let f = file_name(&name);
            assert!(f.len() <= NAME_MAX, "{} bytes", f.len());
            assert!(f.contains('~'));
            assert_eq!(name_of(&f), None);
            let stem = f.split('~').next().unwrap();
            assert!(
                percent_decode(stem).is_some(),
                "prefix {stem:?} cut inside an escape"
            );
        }
        assert_ne!(file_name(&"x".repeat(1024)), file_name(&"x".repeat(1023)));
    }
}
