//! SQLite: a database file another user owns (uid 65534, `nobody`, so that no account needs
//! creating), one every user may write, a `-wal` log planted by another user, and a trigger
//! on the counter. Each is refused before anything is written to the file.

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{assert_refused, hold_once, token};

const OTHER_UID: u32 = 65534;

/// A database file made by lockhog itself in a fresh directory, with a token drawn.
fn database() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("locks.db");
    let url = format!("sqlite://{}", path.display());
    assert!(token(&hold_once(&url, "plant")) >= 1);
    (dir, path, url)
}

/// Asserts that the run on `url` is refused with `needles`, leaving `path` as it was.
fn refused_untouched(url: &str, path: &Path, needles: &[&str]) {
    let before = std::fs::read(path).expect("read the database");
    assert_refused(&hold_once(url, "plant"), needles);
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the database was written"
    );
}

/// Running as root (as the tests do) is needed to give files away.
fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: giving a file to another user needs root");
    }
    root
}

#[test]
fn database_of_another_user_is_refused() {
    if !is_root() {
        return;
    }
    let (_dir, path, url) = database();
    chown(&path, Some(OTHER_UID), None).unwrap();
    let shown = path.display().to_string();
    refused_untouched(&url, &path, &[&shown, "uid 65534"]);
    chown(&path, Some(0), None).unwrap();
    let first = token(&hold_once(&url, "plant"));
    // A -wal log another user planted would be replayed into the database.
    let wal = PathBuf::from(format!("{shown}-wal"));
    std::fs::write(&wal, b"").unwrap();
    chown(&wal, Some(OTHER_UID), None).unwrap();
    refused_untouched(&url, &path, &[&format!("{shown}-wal"), "uid 65534"]);
    std::fs::remove_file(&wal).unwrap();
    assert!(token(&hold_once(&url, "plant")) > first);
}

#[test]
fn database_every_user_may_write_is_refused() {
    let (_dir, path, url) = database();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    refused_untouched(
        &url,
        &path,
        &[&path.display().to_string(), "writable by every user"],
    );
    // Group write is a deliberate sharing setup: allowed.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
    token(&hold_once(&url, "plant"));
}

#[test]
fn trigger_on_the_counter_is_refused() {
    let (_dir, path, url) = database();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER lhp_reset AFTER UPDATE ON lockhog_fencing \
         BEGIN UPDATE lockhog_fencing SET value = 0; END",
    )
    .unwrap();
    drop(conn);
    refused_untouched(&url, &path, &["trigger lhp_reset", "lockhog_fencing"]);
}
