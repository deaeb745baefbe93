//! Hogging from a process: `NamedLock::hog_from(HogFrom::Process)` runs this crate's
//! `lockhog hold` as a child and drives it through stdin and stdout.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use lockhog::hog::{HogError, HogFrom, HogOptions, NamedLock, BIN_ENV};

/// Points process hogs at the binary cargo built for these tests, once, before any test
/// looks for it.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var(BIN_ENV, env!("CARGO_BIN_EXE_lockhog")));
}

fn file_url(dir: &Path, query: &str) -> String {
    format!("file://{}{query}", dir.display())
}

#[test]
fn a_process_hog_holds_until_released() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path(), "");
    let hog = NamedLock::new(&url, "pay day")
        .and("100%")
        .hog_from(HogFrom::Process)
        .hog()
        .unwrap();
    let held = hog.held();
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].name, "pay day");
    assert_eq!(held[1].name, "100%");
    assert_eq!(
        Path::new(&held[0].resource),
        dir.path().join("pay%20day.lock")
    );
    // Fencing tokens are promised per name; here only that each lock got one.
    assert!(held.iter().all(|h| h.token.is_some_and(|t| t > 0)));

    let locker = lockhog::blocking::Locker::connect(&url).unwrap();
    for name in ["pay day", "100%"] {
        let err = locker.lock(name).try_acquire().unwrap_err();
        assert!(
            matches!(err, lockhog::Error::Contended { .. }),
            "{name}: {err:?}"
        );
    }
    hog.release().unwrap();
    locker.lock("pay day").try_acquire().unwrap();
    locker.lock("100%").try_acquire().unwrap();
}

#[test]
fn dropping_a_process_hog_releases() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path(), "");
    drop(
        NamedLock::new(&url, "x")
            .hog_from(HogFrom::Process)
            .hog()
            .unwrap(),
    );
    let locker = lockhog::blocking::Locker::connect(&url).unwrap();
    locker.lock("x").try_acquire().unwrap();
}

#[test]
fn an_abandoned_flock_dies_with_the_process() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path(), "");
    let hog = NamedLock::new(&url, "crash")
        .hog_from(HogFrom::Process)
        .hog()
        .unwrap();
    hog.abandon().unwrap();
    let locker = lockhog::blocking::Locker::connect(&url).unwrap();
    locker.lock("crash").try_acquire().unwrap();
}

#[test]
fn a_lock_the_process_cannot_get_is_reported_after_the_acquire_timeout() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path(), "");
    let locker = lockhog::blocking::Locker::connect(&url).unwrap();
    let _mine = locker.lock("taken").try_acquire().unwrap();
    let err = NamedLock::new(&url, "taken")
        .hog_from(HogFrom::Process)
        .options(HogOptions::new().with_acquire_timeout(Duration::from_millis(100)))
        .hog()
        .unwrap_err();
    assert!(
        matches!(err, HogError::AcquireTimedOut { timeout } if timeout == Duration::from_millis(100)),
        "{err:?}"
    );
}

#[test]
fn a_backend_the_process_cannot_use_is_reported_with_its_stderr() {
    init();
    let err = NamedLock::new("file://relative/dir", "x")
        .hog_from(HogFrom::Process)
        .hog()
        .unwrap_err();
    match &err {
        HogError::HoldExited { status, stderr } => {
            assert_eq!(status, "exit status: 2", "a usage error");
            assert!(stderr.contains("absolute"), "{stderr}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_binary_is_a_clear_error() {
    let err = NamedLock::new("mem:", "x")
        .hog_from(HogFrom::Process)
        .binary("/nonexistent/lockhog")
        .hog()
        .unwrap_err();
    assert!(matches!(err, HogError::BinaryNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("LOCKHOG_BIN"), "{err}");
}

/// A stand-in for `lockhog` that says it holds, then ignores its stdin.
fn stuck_binary(dir: &Path, first_line: &str) -> PathBuf {
    let bin = dir.join("stuck-lockhog");
    std::fs::write(
        &bin,
        format!("#!/bin/sh\necho '{first_line}'\nexec tail -f /dev/null\n"),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_child_that_does_not_release_in_time_is_killed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stuck_binary(dir.path(), "held x /tmp/x.lock 1");
    let hog = NamedLock::new("mem:", "x")
        .hog_from(HogFrom::Process)
        .binary(&bin)
        .options(HogOptions::new().with_release_timeout(Duration::from_millis(100)))
        .hog()
        .unwrap();
    let err = hog.release().unwrap_err();
    assert!(matches!(err, HogError::StillHolding { .. }), "{err:?}");
    assert!(
        err.to_string().contains("release timeout of 100ms"),
        "{err}"
    );
}

#[test]
fn a_line_outside_the_contract_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stuck_binary(dir.path(), "holding x now");
    let err = NamedLock::new("mem:", "x")
        .hog_from(HogFrom::Process)
        .binary(&bin)
        .hog()
        .unwrap_err();
    assert!(matches!(err, HogError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn a_process_hog_from_async_code() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path(), "");
    let hog = NamedLock::new(&url, "async")
        .hog_from(HogFrom::Process)
        .hog_async()
        .await
        .unwrap();
    let locker = lockhog::Locker::connect(&url).await.unwrap();
    assert!(locker
        .lock("async")
        .try_acquire()
        .await
        .unwrap_err()
        .is_not_acquired());
    hog.release().await.unwrap();
    drop(locker.lock("async").try_acquire().await.unwrap());
}

/// The code under test's own POSIX record lock, as `fcntl.lockf` or `lockf(3)` take it:
/// `Ok(Some(file))` when taken (held while `file` is open), `Ok(None)` when another process
/// holds it.
fn posix_try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // SAFETY: an all-zero flock is valid; then fields are set as F_SETLK expects.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: a valid descriptor and a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
        return Ok(Some(file));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
        _ => Err(err),
    }
}

/// The point of process hogs: POSIX record locks belong to the process, so a thread of the
/// test's own process cannot take one from the code under test; a child process can.
#[test]
fn only_a_process_hog_blocks_an_fcntl_lock_taken_in_the_same_process() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path(), "?mode=fcntl");
    let path = dir.path().join("ledger.lock");

    let thread_hog = NamedLock::new(&url, "ledger").hog().unwrap();
    let mine = posix_try_lock(&path).unwrap();
    assert!(
        mine.is_some(),
        "a thread hog cannot block a record lock of its own process"
    );
    drop(mine);
    thread_hog.release().unwrap();

    let process_hog = NamedLock::new(&url, "ledger")
        .hog_from(HogFrom::Process)
        .hog()
        .unwrap();
    assert_eq!(Path::new(&process_hog.held()[0].resource), path);
    assert!(
        posix_try_lock(&path).unwrap().is_none(),
        "a process hog blocks it"
    );
    process_hog.release().unwrap();
    assert!(posix_try_lock(&path).unwrap().is_some());
}
