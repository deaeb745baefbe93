//! A name the file backend takes again and again gets its fencing counter mapped into memory
//! (a private lock file only): tokens stay strictly increasing between lockers that bump the
//! counter through a mapping and through reads and writes, across `cleanup` and across a lock
//! directory replaced between two cycles, and a lock file others may write is never mapped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lockhog::{Error, Locker};

fn url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// Mappings of this process whose file is `path` (or the file removed from it).
fn maps_of(path: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let shown = path.display().to_string();
    maps.lines()
        .filter(|l| {
            let file = l.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
            file == shown || file == format!("{shown} (deleted)")
        })
        .count()
}

/// Takes and releases `name` `times` times; returns the lock file's path and the tokens.
async fn cycles(locker: &Locker, name: &str, times: usize) -> (PathBuf, Vec<u64>) {
    let mut tokens = Vec::new();
    let mut path = PathBuf::new();
    for _ in 0..times {
        let guard = locker.lock(name).try_acquire().await.expect("free");
        tokens.push(guard.fencing_token().expect("a token"));
        path = PathBuf::from(guard.resource());
        assert!(guard.release().await.unwrap());
    }
    (path, tokens)
}

fn assert_increasing(tokens: &[u64]) {
    assert!(
        tokens.windows(2).all(|w| w[1] > w[0]),
        "tokens not strictly increasing: {tokens:?}"
    );
}

#[tokio::test]
async fn a_name_taken_again_maps_its_counter_and_its_tokens_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Locker::connect(&url(dir.path())).await.unwrap(),
        Locker::connect(&url(dir.path())).await.unwrap(),
    );
    let (path, mut tokens) = cycles(&a, "mapped", 3).await;
    assert_eq!(
        maps_of(&path),
        1,
        "the counter of a name taken again is mapped"
    );
    // `b` reads and writes the counter until it maps its own; `a` bumps it in memory: each
    // sees the other's tokens at once.
    for _ in 0..5 {
        tokens.extend(cycles(&b, "mapped", 1).await.1);
        tokens.extend(cycles(&a, "mapped", 2).await.1);
    }
    assert_increasing(&tokens);
    let content = std::fs::read_to_string(&path).unwrap();
    assert_eq!(content, format!("{:020}\n", tokens.last().unwrap()));
    drop((a, b));
    assert_eq!(maps_of(&path), 0, "a locker's mappings go with it");
}

#[tokio::test]
async fn a_lock_file_others_may_write_is_not_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let locker = Locker::connect(&url(dir.path())).await.unwrap();
    let (path, mut tokens) = cycles(&locker, "shared-file", 1).await;
    // Another user could truncate a group-writable file under a mapping, and a process
    // touching a truncated mapping is killed: such a file keeps being read and written.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
    tokens.extend(cycles(&locker, "shared-file", 3).await.1);
    assert_eq!(maps_of(&path), 0, "a group-writable lock file was mapped");
    assert_increasing(&tokens);
}

#[tokio::test]
async fn cleanup_between_two_cycles_of_a_mapped_counter() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Locker::connect(&url(dir.path())).await.unwrap();
    let (path, mut tokens) = cycles(&ours, "cleaned", 3).await;
    assert_eq!(maps_of(&path), 1);

    let other = Locker::connect(&url(dir.path())).await.unwrap();
    other.cleanup().await.unwrap();
    assert!(
        !path.exists(),
        "the other locker's cleanup removed the lock file"
    );
    let holder = other.lock("cleaned").try_acquire().await.unwrap();
    tokens.push(holder.fencing_token().unwrap());
    match ours.lock("cleaned").try_acquire().await {
        Err(Error::Contended { .. }) => {}
        got => panic!("the lock is held on the new file, got {got:?}"),
    }
    assert!(holder.release().await.unwrap());
    tokens.extend(cycles(&ours, "cleaned", 3).await.1);
    assert_increasing(&tokens);
}

#[tokio::test]
async fn a_lock_directory_replaced_between_two_cycles_of_a_mapped_counter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    let old = Locker::connect(&url(&dir)).await.unwrap();
    let (path, _) = cycles(&old, "report", 3).await;
    assert_eq!(maps_of(&path), 1);

    std::fs::rename(&dir, tmp.path().join("aside")).unwrap();
    let new = Locker::connect(&url(&dir)).await.unwrap();
    let held = new.lock("report").try_acquire().await.unwrap();
    match old.lock("report").try_acquire().await {
        Err(Error::Contended { .. }) => {}
        got => panic!("the old locker must see the newcomer's lock, got {got:?}"),
    }
    let newcomer = held.fencing_token().unwrap();
    assert!(held.release().await.unwrap());
    let (_, after) = cycles(&old, "report", 3).await;
    assert!(after[0] > newcomer, "{after:?} after {newcomer}");
    let (_, last) = cycles(&new, "report", 1).await;
    assert_increasing(&[&after[..], &last[..]].concat());
}
