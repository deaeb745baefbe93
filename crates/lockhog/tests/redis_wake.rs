//! Waiters are woken through pub/sub: a waiter subscribes to the lock's channel while it
//! waits (and only then), a release publishes on it, and the waiter takes the lock.

#![cfg(feature = "redis")]

mod redis_support;

use futures_util::StreamExt;
use lockhog::Locker;
use redis_support::{bounded, listen, raw, subscribers, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_subscribes_and_is_woken_by_the_release() {
    let url = redis_url!();
    let (a, b) = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    assert!(a.capabilities().native_wait);
    let name = unique("wake");
    let held = a.lock(&name).try_acquire().await.unwrap();
    let channel = held.resource().replacen(":lock:", ":released:", 1);
    let mut conn = raw(&url).await;
    assert_eq!(subscribers(&mut conn, &channel).await, 0);

    let waiter = tokio::spawn({
        let name = name.clone();
        async move { b.lock(&name).wait().await }
    });
    // The waiter's subscription is the event to wait for (checked, bounded).
    bounded("the waiter's subscription", async {
        while subscribers(&mut conn, &channel).await == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;

    // Someone else listening on the channel sees the release published.
    let mut listener = listen(&url, &channel).await;
    assert!(held.release().await.unwrap());
    bounded("the release message", listener.on_message().next())
        .await
        .expect("a message");

    let got = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(got.stats().attempts >= 2);
    // The waiter withdrew from the channel once it held the lock.
    drop(listener);
    bounded("the unsubscribe", async {
        while subscribers(&mut conn, &channel).await != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(got.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_share_one_subscription_and_all_get_the_lock() {
    let url = redis_url!();
    let holder = Locker::connect(&url).await.unwrap();
    let waiters = Locker::connect(&url).await.unwrap();
    let name = unique("wake-many");
    let held = holder.lock(&name).try_acquire().await.unwrap();
    let channel = held.resource().replacen(":lock:", ":released:", 1);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (w, name) = (waiters.clone(), name.clone());
            tokio::spawn(async move {
                let g = w.lock(&name).wait().await.unwrap();
                assert!(g.release().await.unwrap());
            })
        })
        .collect();
    let mut conn = raw(&url).await;
    bounded("the subscription", async {
        while subscribers(&mut conn, &channel).await == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // One locker, one pub/sub connection: one subscriber however many wait.
    assert_eq!(subscribers(&mut conn, &channel).await, 1);
    held.release().await.unwrap();
    for t in tasks {
        bounded("a waiter", t).await.unwrap();
    }
}
