//! The Redis lease: renewal keeps a lock past many ttls, stops the moment the guard is
//! released, reports a deleted key as lost, and never touches another owner's key.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

use futures_util::StreamExt;
use lockhog::{Error, Locker};
use redis::AsyncCommands;
use redis_support::{bounded, raw, unique};

const TTL: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_the_lock_past_several_ttls() {
    let url = redis_url!();
    let (a, b) = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    let name = unique("renewed");
    let guard = a.lock(&name).ttl(TTL).try_acquire().await.unwrap();
    let mut conn = raw(&url).await;
    let owner: Vec<u8> = conn.get(guard.resource()).await.unwrap();
    // Five ttls pass: without renewal the key would be gone four times over.
    tokio::time::sleep(TTL * 5).await;
    let still: Option<Vec<u8>> = conn.get(guard.resource()).await.unwrap();
    assert_eq!(still.as_ref(), Some(&owner), "the key was not kept");
    assert!(!guard.is_lost());
    assert!(matches!(
        b.lock(&name).try_acquire().await,
        Err(Error::Contended { .. })
    ));
    assert!(guard.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_stops_when_the_guard_is_released_or_dropped() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let ttl = Duration::from_millis(150);
    for drop_it in [false, true] {
        let name = unique("stopped");
        let guard = locker.lock(&name).ttl(ttl).try_acquire().await.unwrap();
        let key = guard.resource().to_string();
        // Watch every command the server runs on that key from here on.
        let mut seen = monitor(&url).await;
        if drop_it {
            drop(guard);
        } else {
            assert!(guard.release().await.unwrap());
        }
        // A renewal may still run before the release does: read up to the release's own
        // DEL, run inside its compare-and-delete script.
        bounded("the release", until_deleted(&mut seen, &key)).await;
        // Several renewal periods later, nothing has touched the key again.
        let later = tokio::time::timeout(ttl * 4, next_naming(&mut seen, &key)).await;
        assert!(later.is_err(), "touched after release: {later:?}");
        let mut conn = raw(&url).await;
        let exists: bool = conn.exists(&key).await.unwrap();
        assert!(!exists, "the key came back after release");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_deleted_behind_our_back_is_reported_lost() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    assert!(locker.capabilities().lost_notice);
    let guard = locker
        .lock(unique("deleted"))
        .ttl(TTL)
        .try_acquire()
        .await
        .unwrap();
    let mut conn = raw(&url).await;
    let deleted: i64 = conn.del(guard.resource()).await.unwrap();
    assert_eq!(deleted, 1);
    let reason = bounded("the lost notice", guard.lost()).await;
    assert!(reason.contains("gone"), "{reason}");
    assert!(guard.is_lost());
    assert!(
        !guard.release().await.unwrap(),
        "release claimed a lost lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_never_deletes_another_owners_key() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let guard = locker.lock(unique("taken")).try_acquire().await.unwrap();
    let key = guard.resource().to_string();
    let mut conn = raw(&url).await;
    // As if our lease had run out and someone else had taken the lock.
    let _: () = conn.set(&key, "someone-else").await.unwrap();
    assert!(!guard.release().await.unwrap());
    let value: Option<String> = conn.get(&key).await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some("someone-else"),
        "our release touched it"
    );
    let _: () = conn.del(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_never_deletes_another_owners_key() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let guard = locker
        .lock(unique("taken-drop"))
        .try_acquire()
        .await
        .unwrap();
    let key = guard.resource().to_string();
    let mut conn = raw(&url).await;
    let _: () = conn.set(&key, "someone-else").await.unwrap();
    let mut seen = monitor(&url).await;
    drop(guard);
    // The release on drop runs in the background: wait until the server has run it.
    let release = bounded("the release on drop", next_on(&mut seen, &key)).await;
    assert!(release.to_lowercase().contains("evalsha"), "{release}");
    let value: Option<String> = conn.get(&key).await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some("someone-else"),
        "the drop deleted it"
    );
    let _: () = conn.del(&key).await.unwrap();
}

type Monitor = std::pin::Pin<Box<dyn futures_util::Stream<Item = String> + Send>>;

/// A MONITOR stream, returned once the server has started it.
async fn monitor(url: &str) -> Monitor {
    let m = redis::Client::open(url)
        .unwrap()
        .get_async_monitor()
        .await
        .unwrap();
    let mut stream: Monitor = Box::pin(m.into_on_message::<String>());
    // The first item is MONITOR's own "OK" (or a command already seen): it is running.
    bounded("MONITOR", stream.next())
        .await
        .expect("monitor ended");
    stream
}

/// Reads commands until the one a script ran to delete `key`.
async fn until_deleted(stream: &mut Monitor, key: &str) {
    loop {
        let line = stream.next().await.expect("monitor ended");
        if line.contains(key) && line.contains(" lua]") && line.to_lowercase().contains("\"del\"") {
            return;
        }
    }
}

/// The next command, sent by a client or run by a script, that names `key`.
async fn next_naming(stream: &mut Monitor, key: &str) -> String {
    loop {
        let line = stream.next().await.expect("monitor ended");
        if line.contains(key) {
            return line;
        }
    }
}

/// The next command a client sent that names `key` (commands run inside a script, shown as
/// `[0 lua]`, are part of the script's own line).
async fn next_on(stream: &mut Monitor, key: &str) -> String {
    loop {
        let line = stream.next().await.expect("monitor ended");
        if line.contains(key) && !line.contains(" lua]") {
            return line;
        }
    }
}
