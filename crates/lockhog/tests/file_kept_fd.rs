//! The file backend keeps the descriptor of a released lock for the next acquire of the same
//! name (flock mode): one descriptor stays open per name, none in fcntl mode, none after
//! `cleanup` or once the locker is gone, none for a descriptor lent to another process; and a
//! kept descriptor whose file was removed is never taken for the lock.

use std::path::{Path, PathBuf};

use lockhog::{Error, Locker};

fn url(dir: &Path, query: &str) -> String {
    format!("file://{}{query}", dir.display())
}

/// How many descriptors of this process are open on `path`, or on a file removed from it.
fn fds_on(path: &Path) -> usize {
    let removed = PathBuf::from(format!("{} (deleted)", path.display()));
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path || *target == removed)
        .count()
}

/// Takes and releases `name` once; returns its lock file's path and token.
async fn cycle(locker: &Locker, name: &str) -> (PathBuf, Option<u64>) {
    let guard = locker.lock(name).try_acquire().await.expect("free");
    let out = (PathBuf::from(guard.resource()), guard.fencing_token());
    assert!(guard.release().await.unwrap());
    out
}

#[tokio::test]
async fn a_released_lock_keeps_one_descriptor_until_cleanup_or_drop() {
    let dir = tempfile::tempdir().unwrap();
    let locker = Locker::connect(&url(dir.path(), "")).await.unwrap();
    let (path, first) = cycle(&locker, "kept").await;
    assert_eq!(fds_on(&path), 1, "the descriptor is kept after release");
    let (_, second) = cycle(&locker, "kept").await;
    assert_eq!(fds_on(&path), 1, "the kept descriptor was used again");
    assert!(second > first, "{second:?} after {first:?}");

    // cleanup closes it (and so can remove the file, which nobody holds).
    locker.cleanup().await.unwrap();
    assert_eq!(fds_on(&path), 0, "cleanup closes kept descriptors");
    assert!(!path.exists(), "cleanup removed the unheld lock file");
    let (_, third) = cycle(&locker, "kept").await;
    assert!(third > second, "{third:?} after {second:?} across cleanup");
    assert_eq!(fds_on(&path), 1);
    drop(locker);
    assert_eq!(
        fds_on(&path),
        0,
        "dropping the locker closes kept descriptors"
    );

    // fcntl mode keeps nothing: closing any descriptor of a file drops every record lock the
    // process holds on it.
    let fcntl = Locker::connect(&url(dir.path(), "?mode=fcntl"))
        .await
        .unwrap();
    let (path, _) = cycle(&fcntl, "record").await;
    assert_eq!(fds_on(&path), 0, "fcntl mode keeps no descriptor");
}

#[tokio::test]
async fn a_lent_descriptor_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let locker = Locker::connect(&url(dir.path(), "")).await.unwrap();
    let guard = locker.lock("lent").try_acquire().await.unwrap();
    let path = PathBuf::from(guard.resource());
    // What `run` hands to its command: that process shares the open file description.
    assert!(guard.inheritable_fd().is_some());
    assert!(guard.release().await.unwrap());
    assert_eq!(
        fds_on(&path),
        0,
        "a descriptor another process may share is closed"
    );
}

/// `cleanup` elsewhere removes the file of a kept descriptor, and someone locks the new file at
/// that path: the kept descriptor (on the removed file, which nobody holds) must not pass for
/// the lock.
#[tokio::test]
async fn a_kept_descriptor_of_a_removed_file_is_not_taken_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Locker::connect(&url(dir.path(), "")).await.unwrap();
    let (path, token) = cycle(&ours, "moved").await;
    assert_eq!(fds_on(&path), 1);

    let other = Locker::connect(&url(dir.path(), "")).await.unwrap();
    other.cleanup().await.unwrap();
    assert!(
        !path.exists(),
        "the other locker's cleanup removed the lock file"
    );
    let holder = other.lock("moved").try_acquire().await.unwrap();

    match ours.lock("moved").try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("the lock is held on the new file, got {other:?}"),
    }
    assert_eq!(
        fds_on(&path),
        1,
        "the descriptor of the removed file was closed"
    );
    assert!(holder.release().await.unwrap());
    let (_, again) = cycle(&ours, "moved").await;
    assert!(again > token, "{again:?} after {token:?}");
}
