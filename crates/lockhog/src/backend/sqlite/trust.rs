//! Whether a database file can be trusted with the fencing counter: whoever can write the file
//! (or the `-wal` log SQLite will replay into it) can set the counter back, and tokens repeat.
//!
//! The file and its `-wal`, `-shm` and `-journal` companions, where they exist (symbolic links
//! followed, as SQLite follows them), must be owned by the running user or by root, and must
//! not be writable by every user. Group write is allowed: a group of users sharing one lock
//! database is a deliberate setup, like a database role its members share. The directory is
//! not checked: in a shared directory such as `/tmp`, the sticky bit keeps others from
//! replacing the file, and elsewhere the directory is the user's choice.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::db::SCHEME;
use crate::error::{Error, Result};

/// The files SQLite reads besides the database itself.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Refuses `path` (an opened database) when it or one of its companions is owned by another
/// user or writable by all.
pub(super) fn check_files(path: &Path) -> Result<()> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let us = unsafe { libc::geteuid() };
    let mut files = vec![path.to_path_buf()];
    files.extend(COMPANIONS.iter().map(|c| {
        let mut p = path.as_os_str().to_owned();
        p.push(c);
        p.into()
    }));
    for file in files {
        let meta = match std::fs::metadata(&file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                let doing = format!("cannot check the owner of {}", file.display());
                return Err(Error::backend_io(SCHEME, doing, e));
            }
        };
        let shown = file.display();
        if meta.uid() != us && meta.uid() != 0 {
            return Err(Error::backend(
                SCHEME,
                format!(
                    "{shown} is owned by uid {}, not by this user (uid {us}) or root: its owner \
                     could set the fencing counter back and tokens would repeat; use a database \
                     file of your own",
                    meta.uid()
                ),
            ));
        }
        if meta.mode() & 0o002 != 0 {
            return Err(Error::backend(
                SCHEME,
                format!(
                    "{shown} is writable by every user (mode {:o}): anyone could set the fencing \
                     counter back and tokens would repeat; chmod o-w it",
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}
