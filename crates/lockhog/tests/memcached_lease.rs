//! memcached, the weak lock: owner checks by CAS (a release or renewal never touches another
//! owner's item), lost notice when the item disappears (as on eviction), renewal past the ttl.

#![cfg(feature = "memcached")]

mod memcached_support;

use std::time::Duration;

use lockhog::{Error, Locker};
use memcached_support::{bounded, lockers, raw, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_never_deletes_another_owners_item() {
    let url = memcached_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let guard = locker.lock(unique("mc-taken")).try_acquire().await.unwrap();
    let key = guard.resource().to_string();
    assert!(key.len() <= 250 && !key.contains(' '));
    // As if our item had expired or been evicted and someone else had taken the lock.
    assert_eq!(
        raw(&url, &format!("set {key} 0 60 12\r\nsomeone-else\r\n")),
        "STORED"
    );
    assert!(!guard.release().await.unwrap());
    assert_eq!(
        raw(&url, &format!("get {key}\r\n")),
        format!("VALUE {key} 0 12")
    );
    raw(&url, &format!("delete {key}\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_that_disappears_is_reported_lost() {
    let url = memcached_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let guard = locker
        .lock(unique("mc-evicted"))
        .ttl(Duration::from_millis(300))
        .try_acquire()
        .await
        .unwrap();
    // What an eviction or a restart does.
    assert_eq!(
        raw(&url, &format!("delete {}\r\n", guard.resource())),
        "DELETED"
    );
    let reason = bounded("the lost notice", guard.lost()).await;
    assert!(reason.contains("gone"), "{reason}");
    assert!(!guard.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_the_lock_past_its_ttl() {
    let url = memcached_url!();
    let [a, b] = lockers(&url).await;
    let name = unique("mc-renewed");
    let guard = a
        .lock(&name)
        .ttl(Duration::from_secs(1))
        .try_acquire()
        .await
        .unwrap();
    // A deliberate pause: unrenewed, the item (1 s, stored for 2 s) would be gone after 3 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!guard.is_lost());
    assert!(matches!(
        b.lock(&name).try_acquire().await,
        Err(Error::Contended { .. })
    ));
    let status = b.status(&[&name]).await.unwrap();
    assert!(
        status[0]
            .holder
            .as_deref()
            .unwrap()
            .contains(&format!("pid {}", std::process::id())),
        "{status:?}"
    );
    assert!(guard.release().await.unwrap());
}
