//! steal_after on etcd: a waiter takes over a lock whose holder has held it longer than it
//! allows (the holder's key says since when), one of two racing stealers wins, a young holder
//! is left alone, and a foreign prefix refuses it.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::time::Duration;

use etcd_client::{Client, PutOptions};
use etcd_support::{bounded, lockers, queue, raw, unique, wait_queue_len, BOUND};
use lockhog::{Error, LockGuard, Locker};

const LONG: Duration = Duration::from_secs(3600);

/// Makes the guard's key say it has held since 1970, as a holder that held for ages would.
async fn age(raw: &Client, guard: &LockGuard) {
    let keys = queue(raw, guard.resource()).await;
    let kv = &keys[0];
    assert_eq!(kv.create_revision() as u64, guard.fencing_token().unwrap());
    let value = kv.value_str().unwrap();
    let (owner, _since) = value.rsplit_once('/').unwrap();
    raw.clone()
        .put(
            kv.key(),
            format!("{owner}/1000"),
            Some(PutOptions::new().with_ignore_lease()),
        )
        .await
        .unwrap();
}

/// A holder with a 3 s lease: told of a loss within a second.
async fn hold(locker: &Locker, name: &str) -> LockGuard {
    locker
        .lock(name)
        .ttl(Duration::from_secs(3))
        .try_acquire()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_takes_over_an_old_holder_who_is_told() {
    let url = etcd_url!();
    let [a, b] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("steal-try");
    let old = hold(&a, &name).await;
    // Young: left alone.
    let tried = b.lock(&name).steal_after(LONG).try_acquire().await;
    assert!(matches!(tried, Err(Error::Contended { .. })), "{tried:?}");
    assert_eq!(queue(&raw, old.resource()).await.len(), 1, "the try left");
    age(&raw, &old).await;
    let new = b.lock(&name).steal_after(LONG).try_acquire().await.unwrap();
    assert!(new.fencing_token() > old.fencing_token());
    let reason = bounded("the old holder's lost notice", old.lost()).await;
    assert!(reason.contains("deleted"), "{reason}");
    assert!(!old.release().await.unwrap());
    assert!(!new.is_lost());
    assert!(new.release().await.unwrap());
}

/// Two waiters steal at once: one deletes the old holder's key and holds; the other finds it
/// gone, queues behind the winner (who is young) and gets the lock only at its release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_racing_stealers_one_wins() {
    let url = etcd_url!();
    let [a, b, c] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("steal-race");
    let old = hold(&a, &name).await;
    let resource = old.resource().to_string();
    age(&raw, &old).await;
    let mut tb = tokio::spawn(b.lock(&name).steal_after(LONG).wait_for(BOUND));
    let mut tc = tokio::spawn(c.lock(&name).steal_after(LONG).wait_for(BOUND));
    let (won, mut other) = bounded("a stealer", async {
        tokio::select! {
            r = &mut tb => (r, tc),
            r = &mut tc => (r, tb),
        }
    })
    .await;
    let won = won.unwrap().unwrap();
    assert!(won.fencing_token() > old.fencing_token());
    bounded("the old holder's lost notice", old.lost()).await;
    wait_queue_len(&raw, &resource, 2).await;
    let keys = queue(&raw, &resource).await;
    assert_eq!(
        keys[0].create_revision() as u64,
        won.fencing_token().unwrap()
    );
    assert!(!won.is_lost());
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut other)
            .await
            .is_err(),
        "the other stealer waits"
    );
    let won_token = won.fencing_token();
    assert!(won.release().await.unwrap(), "the winner kept its lock");
    let next = bounded("the other stealer", other).await.unwrap().unwrap();
    assert!(next.fencing_token() > won_token);
    assert!(!old.release().await.unwrap());
    assert!(next.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steal_after_is_refused_on_a_foreign_prefix() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let prefix = unique("jobs/steal");
    match locker
        .lock_resource(&prefix)
        .steal_after(LONG)
        .try_acquire()
        .await
    {
        Err(Error::InvalidOption { reason }) => {
            assert!(reason.contains("steal_after"), "{reason}")
        }
        other => panic!("expected InvalidOption, got {other:?}"),
    }
    assert!(queue(&raw, &prefix).await.is_empty(), "nothing written");
}
