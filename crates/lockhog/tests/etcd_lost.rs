//! etcd lost notice and release safety: a guard learns when its key is deleted or its lease
//! revoked behind its back, and a release never deletes a later holder's key.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::time::Duration;

use etcd_support::{bounded, lockers, queue, raw, unique, wait_queue_len, BOUND};
use lockhog::{Error, Locker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_when_our_key_is_deleted_behind_our_back() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let guard = locker.lock(unique("lost-del")).try_acquire().await.unwrap();
    let keys = queue(&raw, guard.resource()).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0].create_revision() as u64,
        guard.fencing_token().unwrap()
    );
    raw.clone().delete(keys[0].key(), None).await.unwrap();
    let reason = bounded("the lost notice", guard.lost()).await;
    assert!(reason.contains("deleted"), "{reason}");
    assert!(guard.is_lost());
    assert!(
        !guard.release().await.unwrap(),
        "a deleted key is not ours to release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_when_our_lease_is_revoked() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let guard = locker
        .lock(unique("lost-revoke"))
        .try_acquire()
        .await
        .unwrap();
    let lease = queue(&raw, guard.resource()).await[0].lease();
    assert_ne!(lease, 0, "the key is attached to a lease");
    raw.clone().lease_revoke(lease).await.unwrap();
    bounded("the lost notice", guard.lost()).await;
    assert!(!guard.release().await.unwrap());
}

/// A guard that no one touches is not reported lost while its lease is renewed: a waiter that
/// waits three ttls (etcd's minimum, 2 s) times out, and the holder still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_the_lock_past_its_ttl() {
    let url = etcd_url!();
    let [a, b] = lockers(&url).await;
    let name = unique("renewed");
    let guard = a
        .lock(&name)
        .ttl(Duration::from_secs(1))
        .try_acquire()
        .await
        .unwrap();
    let waited = b.lock(&name).wait_for(Duration::from_secs(6)).await;
    assert!(matches!(waited, Err(Error::TimedOut { .. })), "{waited:?}");
    assert!(!guard.is_lost());
    assert!(guard.release().await.unwrap());
}

/// Our key deleted behind our back (as an expired lease would), a later holder takes the lock;
/// our release then reports `false` and leaves the later holder's key alone — the release is a
/// delete guarded by our key's create revision, never a delete by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_never_deletes_a_later_holders_key() {
    let url = etcd_url!();
    let [a, b, c] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("later-holder");
    let first = a.lock(&name).try_acquire().await.unwrap();
    let resource = first.resource().to_string();
    let waiter = tokio::spawn(b.lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 2).await;
    let ours = queue(&raw, &resource).await.remove(0);
    raw.clone().delete(ours.key(), None).await.unwrap();
    let second = bounded("the next holder", waiter).await.unwrap().unwrap();
    assert!(second.fencing_token().unwrap() > first.fencing_token().unwrap());
    let theirs = queue(&raw, &resource).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        theirs[0].create_revision() as u64,
        second.fencing_token().unwrap()
    );

    assert!(!first.release().await.unwrap());
    let after = queue(&raw, &resource).await;
    assert_eq!(after.len(), 1, "the later holder's key must survive");
    assert_eq!(after[0].key(), theirs[0].key());
    let tried = c.lock(&name).try_acquire().await;
    assert!(matches!(tried, Err(Error::Contended { .. })), "{tried:?}");
    assert!(!second.is_lost());
    assert!(second.release().await.unwrap());
}

/// A dropped guard's key is deleted in the background, and the next waiter gets the lock;
/// the locker's session lease, which other locks may use, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_deletes_the_key() {
    let url = etcd_url!();
    let [a, b] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("dropped");
    let guard = a.lock(&name).try_acquire().await.unwrap();
    let resource = guard.resource().to_string();
    let lease = queue(&raw, &resource).await[0].lease();
    drop(guard);
    let next = b.lock(&name).wait_for(BOUND).await.unwrap();
    let ttl = raw.clone().lease_time_to_live(lease, None).await.unwrap();
    assert!(ttl.ttl() > 0, "the session lease lives on");
    next.release().await.unwrap();
    wait_queue_len(&raw, &resource, 0).await;
}
