//! Locking a file another program names (a pid file, the path given to `flock(1)`): any
//! absolute path, locked where it is, with the URL's mode (`flock`, or `fcntl`), and never
//! written to.
//!
//! - A file that exists keeps its content byte for byte: no fencing counter goes into it, so
//!   its lock has no fencing token.
//! - A file that does not exist is created empty, as a lock file is: `O_NOFOLLOW`, `O_EXCL`,
//!   with its directory's read and write bits; and an existing one must be a regular file
//!   with one link (see `dir.rs`).
//! - Its directory must exist (it is never created) and is held to the rules of a directory
//!   named in a URL: reached through symlinks if need be, but owned by the effective uid or
//!   root or a group of ours, and not writable by everyone unless sticky.

use std::path::Path;
use std::sync::Arc;

use super::dir::{Dir, Trust};
use super::{Target, SCHEME};
use crate::backend::bad_resource;
use crate::error::{Error, Result};

/// What a `file:` resource is, for refusals.
const EXPECTED: &str = "an absolute path to a file, such as /run/app.pid";

/// Checks that `resource` is an absolute path whose last component names a file.
pub(super) fn parse(resource: &str) -> Result<String> {
    let last = resource.rsplit('/').next().unwrap_or_default();
    if !resource.starts_with('/') || resource.contains('\0') || matches!(last, "" | "." | "..") {
        return Err(bad_resource(resource, EXPECTED));
    }
    Ok(resource.to_string())
}

/// The directory and the last component of a path `parse` accepted.
fn split(path: &str) -> (&Path, &str) {
    let (dir, name) = path
        .rsplit_once('/')
        .expect("parse checked the path is absolute");
    (Path::new(if dir.is_empty() { "/" } else { dir }), name)
}

fn open_dir(dir: &Path) -> Result<Dir> {
    Dir::open_existing(dir, Trust::Explicit).map_err(|m| Error::backend(SCHEME, m))
}

/// The file `path` in its directory, opened and checked.
pub(super) fn target(path: &str) -> Result<Target> {
    let (dir, name) = split(path);
    Ok(Target {
        dir: Arc::new(open_dir(dir)?),
        name: name.to_string(),
    })
}

/// The directory of `path` when it exists (for `status`, which reports a file in a missing
/// directory as free), and the file's name there.
pub(super) fn dir_of(path: &str) -> Result<(Option<Dir>, String)> {
    let (dir, name) = split(path);
    let dir = if dir.is_dir() {
        Some(open_dir(dir)?)
    } else {
        None
    };
    Ok((dir, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_paths_to_a_file() {
        for good in ["/run/app.pid", "/a", "/tmp/x y/%z"] {
            assert_eq!(parse(good).unwrap(), good);
        }
        for bad in [
            "run/app.pid",
            "",
            "/",
            "/tmp/",
            "/tmp/.",
            "/tmp/..",
            "/a\0b",
            "~/x",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidOption { reason } if reason.contains(EXPECTED)),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(split("/a"), (Path::new("/"), "a"));
        assert_eq!(split("/run/app.pid"), (Path::new("/run"), "app.pid"));
    }
}
