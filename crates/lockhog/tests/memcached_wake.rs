//! A waiter in the holder's process is woken by the release, not by its next poll: with a
//! poll interval far longer than the hang guard, it gets the lock on its second attempt.

#![cfg(feature = "memcached")]

mod memcached_support;

use lockhog::{Locker, RetryPolicy};
use memcached_support::{bounded, raw, unique, BOUND};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_in_the_same_process_is_woken_by_the_release() {
    let server = memcached_url!();
    // The fencing counter numbers every attempt (a failed `add` draws a token too): how the
    // test sees the waiter's first attempt, in a namespace of its own.
    let namespace = unique("wake-ns");
    let url = format!("{server}?namespace={namespace}");
    let (holder, waiter) = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    let name = unique("wake");
    let held = holder.lock(&name).try_acquire().await.unwrap();
    let token = held.fencing_token().unwrap();

    // Polls so rare that only a wake-up can hand the lock over within the hang guard.
    let never = BOUND * 10;
    let policy = RetryPolicy::default().initial(never).max(never).jitter(0.0);
    let waiting = tokio::spawn({
        let name = name.clone();
        async move { waiter.lock(&name).retry(policy).wait().await }
    });
    // `incr … 0` answers the counter's value and changes nothing.
    let counter = |url: &str| {
        raw(url, &format!("incr {namespace}:fence 0\r\n"))
            .parse::<u64>()
            .unwrap_or(0)
    };
    bounded("the waiter's first attempt", async {
        while counter(&server) <= token {
            tokio::task::yield_now().await;
        }
    })
    .await;

    assert!(held.release().await.unwrap());
    let got = tokio::time::timeout(BOUND, waiting)
        .await
        .unwrap_or_else(|_| panic!("the waiter was not woken by the release within {BOUND:?}"))
        .unwrap()
        .unwrap();
    assert_eq!(got.stats().attempts, 2, "woken once, by the release");
    assert!(got.fencing_token().unwrap() > token);
    assert!(got.release().await.unwrap());
}
