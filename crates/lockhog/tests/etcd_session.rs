//! etcd's session lease: one lease per locker and ttl carries the keys of all its locks (one
//! put and one delete per lock), two guards of one name in one locker still exclude each
//! other, losing the lease tells every guard on it, and max_hold or a dropped guard gives back
//! one key without touching the lease, which goes when the locker does.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::time::Duration;

use etcd_client::{Client, PutOptions};
use etcd_support::{bounded, queue, raw, unique, wait_deleted, wait_queue_len, BOUND};
use lockhog::{Error, LockGuard, Locker};

/// The lease of the key a guard holds its lock with.
async fn lease_of(raw: &Client, guard: &LockGuard) -> i64 {
    let keys = queue(raw, guard.resource()).await;
    let ours = keys
        .iter()
        .find(|kv| kv.create_revision() as u64 == guard.fencing_token().unwrap())
        .expect("the guard's key");
    assert_ne!(ours.lease(), 0);
    ours.lease()
}

/// Seconds the server granted the lease, -1 once it is gone.
async fn granted(raw: &Client, lease: i64) -> i64 {
    let ttl = raw.clone().lease_time_to_live(lease, None).await.unwrap();
    if ttl.ttl() < 0 {
        -1
    } else {
        ttl.granted_ttl()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_for_all_locks_of_a_locker_and_ttl() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let (a, b) = (unique("session-a"), unique("session-b"));
    let ga = locker.lock(&a).try_acquire().await.unwrap();
    let gb = locker.lock(&b).try_acquire().await.unwrap();
    let lease = lease_of(&raw, &ga).await;
    assert_eq!(lease_of(&raw, &gb).await, lease, "one lease for both locks");
    assert_eq!(granted(&raw, lease).await, 30, "the default ttl");

    // The same name again from the same locker: a key of its own, queued behind ours.
    let again = locker.lock(&a).try_acquire().await;
    assert!(matches!(again, Err(Error::Contended { .. })), "{again:?}");
    let waiter = tokio::spawn(locker.lock(&a).wait_for(BOUND));
    wait_queue_len(&raw, ga.resource(), 2).await;
    assert!(ga.release().await.unwrap());
    let next = bounded("the same locker's waiter", waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        lease_of(&raw, &next).await,
        lease,
        "released, the lease stays"
    );

    // Another ttl is another session lease, of that ttl.
    let short = locker
        .lock(unique("session-c"))
        .ttl(Duration::from_secs(7))
        .try_acquire()
        .await
        .unwrap();
    let other = lease_of(&raw, &short).await;
    assert_ne!(other, lease);
    assert_eq!(granted(&raw, other).await, 7);
    for g in [next, gb, short] {
        assert!(g.release().await.unwrap());
    }
}

/// The key of a guard's lock, as etcd stores it.
async fn key_of(raw: &Client, guard: &LockGuard) -> Vec<u8> {
    let keys = queue(raw, guard.resource()).await;
    let token = guard.fencing_token().unwrap() as i64;
    let kv = keys.iter().find(|kv| kv.create_revision() == token);
    kv.expect("the guard's key").key().to_vec()
}

/// A lock taken again and again by one locker reuses one key (etcd keeps every deleted key in
/// its index until compaction, and each look at the queue walks them); two guards at once
/// have two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_locker_reuses_its_key() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let name = unique("reused");
    let first = locker.lock(&name).try_acquire().await.unwrap();
    let key = key_of(&raw, &first).await;
    assert!(first.release().await.unwrap());
    for _ in 0..3 {
        let again = locker.lock(&name).try_acquire().await.unwrap();
        assert_eq!(key_of(&raw, &again).await, key);
        let waiter = tokio::spawn(locker.lock(&name).wait_for(BOUND));
        wait_queue_len(&raw, again.resource(), 2).await;
        let keys = queue(&raw, again.resource()).await;
        assert_ne!(keys[0].key(), keys[1].key());
        assert!(again.release().await.unwrap());
        let next = bounded("the waiter", waiter).await.unwrap().unwrap();
        assert!(next.release().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_session_lease_tells_every_guard() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let g1 = locker
        .lock(unique("revoked-1"))
        .try_acquire()
        .await
        .unwrap();
    let g2 = locker
        .lock(unique("revoked-2"))
        .try_acquire()
        .await
        .unwrap();
    let lease = lease_of(&raw, &g1).await;
    raw.clone().lease_revoke(lease).await.unwrap();
    for g in [&g1, &g2] {
        let reason = bounded("the lost notice", g.lost()).await;
        assert!(reason.contains("session lease"), "{reason}");
    }
    assert!(!g1.release().await.unwrap());
    assert!(!g2.release().await.unwrap());
    // The next acquire gets a new session lease.
    let g3 = locker
        .lock(unique("revoked-3"))
        .try_acquire()
        .await
        .unwrap();
    let renewed = lease_of(&raw, &g3).await;
    assert_ne!(renewed, lease);
    assert!(!g3.is_lost());
    assert!(g3.release().await.unwrap());
}

/// max_hold gives back one guard's key; the other guard on the same lease keeps its lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_hold_releases_one_key_not_the_lease() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let kept = locker.lock(unique("kept")).try_acquire().await.unwrap();
    let timed = locker
        .lock(unique("timed"))
        .max_hold(Duration::from_millis(50))
        .try_acquire()
        .await
        .unwrap();
    let lease = lease_of(&raw, &kept).await;
    assert_eq!(lease_of(&raw, &timed).await, lease);
    let reason = bounded("max_hold", timed.lost()).await;
    assert!(reason.contains("max_hold"), "{reason}");
    wait_queue_len(&raw, timed.resource(), 0).await;
    assert!(granted(&raw, lease).await > 0, "the session lease lives on");
    assert!(!kept.is_lost());
    assert_eq!(queue(&raw, kept.resource()).await.len(), 1);
    assert!(kept.release().await.unwrap());
}

/// One locker twice on a foreign prefix: etcd's mutex layout allows one key per lease there,
/// so the second queues on a lease of its own, and the two exclude each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_locker_twice_on_a_foreign_prefix() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let prefix = unique("jobs/twice");
    let first = locker.lock_resource(&prefix).try_acquire().await.unwrap();
    let tried = locker.lock_resource(&prefix).try_acquire().await;
    assert!(matches!(tried, Err(Error::Contended { .. })), "{tried:?}");
    let waiter = tokio::spawn(locker.lock_resource(&prefix).wait_for(BOUND));
    wait_queue_len(&raw, &prefix, 2).await;
    for kv in queue(&raw, &prefix).await {
        let want = format!("{prefix}/{:x}", kv.lease());
        assert_eq!(kv.key_str().unwrap(), want, "etcd's mutex layout");
    }
    let first_token = first.fencing_token();
    assert!(first.release().await.unwrap());
    let second = bounded("the second entry", waiter).await.unwrap().unwrap();
    assert!(second.fencing_token() > first_token);
    assert!(second.release().await.unwrap());
    // Its claim given back, the shared session queues there again.
    let third = locker.lock_resource(&prefix).try_acquire().await.unwrap();
    assert!(third.release().await.unwrap());
}

/// The session lease is revoked once the locker and its guards are gone: a key put on it by
/// hand goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_locker_revokes_its_session_lease() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let guard = locker
        .lock(unique("dropped-locker"))
        .try_acquire()
        .await
        .unwrap();
    let lease = lease_of(&raw, &guard).await;
    let marker = unique("lockhog-test-marker");
    let put = raw
        .clone()
        .put(
            marker.as_str(),
            "",
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .unwrap();
    let rev = put.header().unwrap().revision();
    assert!(guard.release().await.unwrap());
    drop(locker);
    wait_deleted(&raw, marker.as_bytes(), rev).await;
    assert_eq!(granted(&raw, lease).await, -1);
}
