//! A lock directory held open: whether it can be trusted, and opening, checking and removing
//! its entries relative to its descriptor, so no path is walked twice and no symlink followed.
//!
//! Trust is checked once, when the directory is opened (see [`Dir::open_root`] and
//! [`Dir::open_sub`]); the hot path is then one `openat` and one `fstat` per lock file.
//!
//! The rules:
//! - lockhog's **default** directory must be a real directory (not a symlink), owned by the
//!   effective uid, with no group or other write bit; it is created with mode 0700.
//! - An **explicit** directory (the path of a `file://` URL) may be reached through symlinks,
//!   but must be owned by the effective uid or root, or have a group the effective uid is in,
//!   and must not be writable by others unless the sticky bit is set.
//! - A **namespace** subdirectory is never a symlink; under a private directory it must be
//!   owned by the effective uid with no group or other write bit; under a shared one it may
//!   not be more writable than its parent, and if others may write in it, it must be sticky.
//!   It is created with its parent's mode.
//! - A **lock file** (or the fencing floor) is opened with `O_NOFOLLOW`, must be a regular
//!   file with one link, and gets, when we create it, the directory's read and write bits
//!   (0700 → 0600, 2775 → 0664, 1777 → 0666) so every user who may create files there can
//!   lock and count.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// How much a directory named in a URL is trusted (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trust {
    /// lockhog's default directory: private to the effective uid.
    Private,
    /// A directory the user named: may be shared, within limits.
    Explicit,
}

/// (device, inode) of an open file: what "still the same file" compares.
pub(super) type FileId = (u64, u64);

/// An open lock directory.
#[derive(Debug)]
pub(super) struct Dir {
    fd: OwnedFd,
    /// Where it is, for messages, resources and the in-process table of record locks.
    path: PathBuf,
    /// Its mode bits (with setgid and sticky), given to namespace directories made in it.
    mode: u32,
    /// Its (device, inode), to tell whether `path` still names it.
    id: FileId,
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed is a valid `stat`; fstat fills it from a descriptor we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: as in `fstat`, with a NUL-terminated name.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; the descriptor returned is ours to own.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// True when the effective uid is in group `gid` (effective or supplementary).
fn in_group(gid: u32) -> bool {
    // SAFETY: no preconditions; getgroups fills at most `n` entries.
    if unsafe { libc::getegid() } == gid {
        return true;
    }
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0 as libc::gid_t; n.max(0) as usize];
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    groups.contains(&gid)
}

/// What a directory's mode and owner look like, for a message.
fn describe(st: &libc::stat) -> String {
    format!(
        "owned by uid {} gid {}, mode {:04o}",
        st.st_uid,
        st.st_gid,
        st.st_mode & 0o7777
    )
}

/// Why a directory cannot be trusted under `trust`, if it cannot.
fn distrust(st: &libc::stat, trust: Trust) -> Option<String> {
    let mode = st.st_mode & 0o7777;
    match trust {
        Trust::Private if st.st_uid != euid() => Some(format!(
            "is not yours (uid {}): another user may have made it to read or take over your locks",
            euid()
        )),
        Trust::Private if mode & 0o022 != 0 => {
            Some("is writable by other users, who could take over your locks".into())
        }
        Trust::Explicit if mode & 0o002 != 0 && mode & libc::S_ISVTX == 0 => Some(
            "is writable by every user without the sticky bit, so anyone could delete held locks"
                .into(),
        ),
        Trust::Explicit if st.st_uid != euid() && st.st_uid != 0 && !in_group(st.st_gid) => {
            Some(format!(
                "belongs to another user and to a group you (uid {}) are not in",
                euid()
            ))
        }
        _ => None,
    }
}

/// How to fix a distrusted directory, for a message.
fn advice(path: &Path, trust: Trust) -> String {
    match trust {
        Trust::Private => format!(
            "remove it (rm -r {0}) if you did not make it, or point LOCKHOG_URL or \
             XDG_RUNTIME_DIR at a directory of your own",
            path.display()
        ),
        Trust::Explicit => format!(
            "make it yours or a group directory you are in (install -d -m 2775 -g GROUP {}), \
             or use another directory",
            path.display()
        ),
    }
}

impl Dir {
    /// Opens (creating when missing) the directory a URL names, and checks it under `trust`.
    pub(super) fn open_root(path: &Path, trust: Trust) -> Result<Dir, String> {
        let shown = path.display();
        let err = |doing: &str, e: io::Error| format!("{doing} {shown}: {e}");
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| err("cannot create lock directory", e))?;
        }
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("the path {shown} contains NUL"))?;
        // SAFETY: a NUL-terminated path.
        match cvt(unsafe { libc::mkdir(c_path.as_ptr(), 0o700) }) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(err("cannot create lock directory", e))
            }
            _ => {}
        }
        let dir = Dir::open_existing(path, trust)?;
        // SAFETY: a valid descriptor and a NUL-terminated name.
        if unsafe {
            libc::faccessat(
                dir.fd.as_raw_fd(),
                c".".as_ptr(),
                libc::W_OK | libc::X_OK,
                libc::AT_EACCESS,
            )
        } != 0
        {
            return Err(err(
                "cannot write to lock directory",
                io::Error::last_os_error(),
            ));
        }
        Ok(dir)
    }

    /// Opens the existing directory `path`, never creating it, and checks it under `trust`.
    pub(super) fn open_existing(path: &Path, trust: Trust) -> Result<Dir, String> {
        let shown = path.display();
        let err = |doing: &str, e: io::Error| format!("{doing} {shown}: {e}");
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("the path {shown} contains NUL"))?;
        let mut flags = libc::O_RDONLY | libc::O_DIRECTORY;
        if trust == Trust::Private {
            flags |= libc::O_NOFOLLOW;
        }
        let fd = match open_at(libc::AT_FDCWD, &c_path, flags, 0) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return Err(format!(
                    "lock directory {shown} is not a directory (a symlink or a file): refusing \
                     to use it; {}",
                    advice(path, trust)
                ))
            }
            Err(e) => return Err(err("cannot open lock directory", e)),
        };
        let st = fstat(fd.as_raw_fd()).map_err(|e| err("cannot read lock directory", e))?;
        if let Some(why) = distrust(&st, trust) {
            return Err(format!(
                "lock directory {shown} ({}) {why}; {}",
                describe(&st),
                advice(path, trust)
            ));
        }
        // One spelling per directory, so the in-process table of record locks sees one path
        // per file.
        let path = path
            .canonicalize()
            .map_err(|e| err("cannot resolve lock directory", e))?;
        Ok(Dir {
            fd,
            path,
            mode: st.st_mode & 0o7777,
            id: (st.st_dev, st.st_ino),
        })
    }

    /// Opens the subdirectory `name` (a namespace), creating it with this directory's mode
    /// when `create` says so. `Ok(None)` when it is missing and not to be created.
    pub(super) fn open_sub(&self, name: &str, create: bool) -> Result<Option<Dir>, String> {
        let path = self.path.join(name);
        let shown = path.display();
        let err = |doing: &str, e: io::Error| format!("{doing} {shown}: {e}");
        let c = c_name(name).map_err(|e| err("cannot open", e))?;
        let fd = self.fd.as_raw_fd();
        if create {
            // SAFETY: a valid descriptor and a NUL-terminated name.
            match cvt(unsafe { libc::mkdirat(fd, c.as_ptr(), 0o700) }) {
                Ok(_) => {
                    let sub = open_at(fd, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                        .map_err(|e| err("cannot open", e))?;
                    // The parent's mode, umask notwithstanding (setgid stays: the kernel gave
                    // the new directory the parent's group).
                    // SAFETY: a descriptor we own.
                    cvt(unsafe { libc::fchmod(sub.as_raw_fd(), self.mode) })
                        .map_err(|e| err("cannot set the mode of", e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err("cannot create", e)),
            }
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let sub = match open_at(fd, &c, flags, 0) {
            Ok(sub) => sub,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return Err(format!(
                    "namespace directory {shown} is not a directory (a symlink or a file): \
                     refusing to use it; remove it if you did not make it"
                ))
            }
            Err(e) => return Err(err("cannot open", e)),
        };
        let st = fstat(sub.as_raw_fd()).map_err(|e| err("cannot read", e))?;
        let mode = st.st_mode & 0o7777;
        let why = if self.mode & 0o022 == 0 {
            distrust(&st, Trust::Private)
        } else if mode & 0o022 & !self.mode != 0 {
            Some("is writable by more users than its parent".to_string())
        } else if mode & 0o002 != 0 && mode & libc::S_ISVTX == 0 {
            Some("is writable by every user without the sticky bit".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!(
                "namespace directory {shown} ({}) {why}; remove it if you did not make it",
                describe(&st)
            ));
        }
        Ok(Some(Dir {
            fd: sub,
            path,
            mode,
            id: (st.st_dev, st.st_ino),
        }))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// True while the path we opened still names this directory. A directory removed while we
    /// hold it open (`rm -r`, a cleaner of old files in `/tmp`, the end of a login session for
    /// `$XDG_RUNTIME_DIR`) would otherwise keep taking our locks while everyone else, going by
    /// the path, locks in a new one: two holders at once.
    pub(super) fn still_at_path(&self) -> bool {
        let Ok(c_path) = CString::new(self.path.as_os_str().as_bytes()) else {
            return false;
        };
        lstat_at(libc::AT_FDCWD, &c_path).is_ok_and(|st| (st.st_dev, st.st_ino) == self.id)
    }

    /// Opens the lock file `name` for reading and writing, creating it when missing (read
    /// only when it is another user's and not writable to us: flock needs no write access).
    /// Never follows a symlink, never blocks on a FIFO, and refuses anything but a regular file
    /// with one link.
    pub(super) fn open_file(&self, name: &str, create: bool) -> io::Result<(File, FileId)> {
        let c = c_name(name)?;
        let fd = self.fd.as_raw_fd();
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let file = loop {
            match open_at(fd, &c, flags | libc::O_RDWR, 0) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    break open_at(fd, &c, flags | libc::O_RDONLY, 0)?
                }
                Err(e) => return Err(refusal(e)),
            }
            let new = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
            match open_at(fd, &c, flags | new, 0o600) {
                Ok(f) => {
                    // The directory's read and write bits, umask notwithstanding.
                    let mode = (self.mode & 0o666) | 0o600;
                    // SAFETY: a descriptor we own.
                    cvt(unsafe { libc::fchmod(f.as_raw_fd(), mode) })?;
                    break f;
                }
                // Someone made it between our two opens: open theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(refusal(e)),
            }
        };
        let st = fstat(file.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file: refusing to use it as a lock file",
            ));
        }
        if st.st_nlink != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a file with other hard links: refusing to use it as a lock file",
            ));
        }
        Ok((File::from(file), (st.st_dev, st.st_ino)))
    }

    /// True when `id` is still the file linked at `name`, looked up by its full path: false
    /// when cleanup removed it, and also when this directory is no longer at its path (then
    /// [`Dir::still_at_path`] says so, and the caller opens the directory again). One path
    /// lookup per acquire covers both, as a lock file opened by path always did.
    pub(super) fn still_linked(&self, name: &str, id: FileId) -> io::Result<bool> {
        let full = CString::new(self.path.join(name).as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?;
        linked_at(&full, id)
    }

    /// (device, inode) of the regular file at `name`, `None` when there is none.
    pub(super) fn regular_file(&self, name: &str) -> Option<FileId> {
        let st = lstat_at(self.fd.as_raw_fd(), &c_name(name).ok()?).ok()?;
        (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((st.st_dev, st.st_ino))
    }

    /// Removes the entry `name` (never anything outside this directory).
    pub(super) fn unlink(&self, name: &str) -> io::Result<()> {
        // SAFETY: a valid descriptor and a NUL-terminated name.
        cvt(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c_name(name)?.as_ptr(), 0) }).map(drop)
    }

    /// The names of the entries, sorted (`.` and `..` left out).
    pub(super) fn entries(&self) -> io::Result<Vec<String>> {
        // A description of our own, so the listing has its own offset.
        let own = open_at(
            self.fd.as_raw_fd(),
            c".",
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )?;
        let raw = own.as_raw_fd();
        // SAFETY: on success the stream owns the descriptor (closed by closedir).
        let stream = unsafe { libc::fdopendir(raw) };
        if stream.is_null() {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(own);
        let mut names = Vec::new();
        loop {
            // SAFETY: a live stream; the entry is valid until the next readdir.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                break;
            }
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Ok(name) = name.to_str() {
                if name != "." && name != ".." {
                    names.push(name.to_string());
                }
            }
        }
        // SAFETY: the stream opened above, closed once.
        unsafe { libc::closedir(stream) };
        names.sort();
        Ok(names)
    }
}

/// True when `id` is the file linked at the full path `full` (never following a symlink):
/// [`Dir::still_linked`] for a path already made.
pub(super) fn linked_at(full: &CStr, id: FileId) -> io::Result<bool> {
    match lstat_at(libc::AT_FDCWD, full) {
        Ok(now) => Ok((now.st_dev, now.st_ino) == id),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The error of a lock attempt made in a directory that is no longer at its path: the caller
/// opens the directory again and starts over.
#[derive(Debug)]
pub(super) struct Moved;

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the lock directory was removed or replaced while in use")
    }
}

impl std::error::Error for Moved {}

impl Moved {
    pub(super) fn error() -> io::Error {
        io::Error::other(Moved)
    }

    /// True when `e` (a lockhog error of this backend) came from [`Moved::error`].
    pub(super) fn is(e: &crate::error::Error) -> bool {
        let crate::error::Error::Backend {
            source: Some(source),
            ..
        } = e
        else {
            return false;
        };
        source
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<Moved>())
    }
}

/// An `openat` failure, saying so plainly when it was a symlink we refused to follow.
fn refusal(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a symbolic link: refusing to follow it",
        )
    } else {
        e
    }
}
