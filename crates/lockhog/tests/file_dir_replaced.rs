//! A lock directory removed while a long-lived process holds it open (`rm -r`, a cleaner of old
//! files in `/tmp`, the end of the login session that owned `$XDG_RUNTIME_DIR`): the process
//! opens it again by its path, so it goes on taking locks, and takes the same ones as everyone
//! who comes after the removal.

use lockhog::{Error, Locker};

fn url(dir: &std::path::Path, query: &str) -> String {
    format!("file://{}{query}", dir.display())
}

/// `a` (connected before the removal) and `b` (connected after it) exclude each other, both
/// ways, on lock `name`.
async fn exclude_each_other(a: &Locker, b: &Locker, name: &str) {
    let held = b
        .lock(name)
        .try_acquire()
        .await
        .expect("the newcomer locks");
    match a.lock(name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("the old locker must see the newcomer's lock, got {other:?}"),
    }
    assert!(held.release().await.unwrap());
    let held = a
        .lock(name)
        .try_acquire()
        .await
        .expect("the old locker locks again");
    match b.lock(name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("the newcomer must see the old locker's lock, got {other:?}"),
    }
    assert!(held.release().await.unwrap());
}

#[tokio::test]
async fn a_removed_lock_directory_is_opened_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    let old = Locker::connect(&url(&dir, "")).await.unwrap();
    let first = old.lock("report").try_acquire().await.unwrap();
    assert!(first.release().await.unwrap());

    std::fs::remove_dir_all(&dir).unwrap();
    let new = Locker::connect(&url(&dir, "")).await.unwrap();
    exclude_each_other(&old, &new, "report").await;
}

#[tokio::test]
async fn a_removed_namespace_directory_is_opened_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    let old = Locker::connect(&url(&dir, "?namespace=jobs"))
        .await
        .unwrap();
    let held = old.lock("nightly").try_acquire().await.unwrap();
    assert!(held.release().await.unwrap());

    std::fs::remove_dir_all(dir.join("jobs")).unwrap();
    let new = Locker::connect(&url(&dir, "?namespace=jobs"))
        .await
        .unwrap();
    exclude_each_other(&old, &new, "nightly").await;
}

#[tokio::test]
async fn a_lock_directory_replaced_by_another_is_followed() {
    // The path now names a different directory (moved aside, a new one made in its place):
    // locks go where the path leads, as they would for any newcomer.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    let old = Locker::connect(&url(&dir, "")).await.unwrap();
    let held = old.lock("report").try_acquire().await.unwrap();
    assert!(held.release().await.unwrap());

    std::fs::rename(&dir, tmp.path().join("aside")).unwrap();
    let new = Locker::connect(&url(&dir, "")).await.unwrap();
    exclude_each_other(&old, &new, "report").await;
}
