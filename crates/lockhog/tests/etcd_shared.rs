//! Shared (reader) locks on etcd: readers' keys under `<resource>/read/`, queued FIFO with the
//! writers (a reader that comes after a waiting writer waits behind it), status naming every
//! shared holder, and the refusals (foreign prefix, steal_after).

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::time::Duration;

use etcd_support::{bounded, lockers, queue, raw, unique, wait_queue_len, BOUND};
use lockhog::{Error, LockState, Locker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_writers_are_served_in_order() {
    let url = etcd_url!();
    let [a, b, c] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("rw-order");
    let r1 = a.lock(&name).shared().try_acquire().await.unwrap();
    let resource = r1.resource().to_string();
    let r1_key = queue(&raw, &resource).await.remove(0);
    let want = format!("{resource}/read/{:016x}-", r1_key.lease());
    assert!(r1_key.key_str().unwrap().starts_with(&want), "{r1_key:?}");
    let r2 = b.lock(&name).shared().try_acquire().await.unwrap();
    assert!(r2.fencing_token() > r1.fencing_token());

    let writer = tokio::spawn(c.lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 3).await;
    // Behind the waiting writer, a new reader waits too.
    let tried = a.lock(&name).shared().try_acquire().await;
    assert!(matches!(tried, Err(Error::Contended { .. })), "{tried:?}");
    let reader = tokio::spawn(b.lock(&name).shared().wait_for(BOUND));
    wait_queue_len(&raw, &resource, 4).await;

    let status = a.status(&[name.as_str()]).await.unwrap();
    assert_eq!(status[0].state, LockState::Held);
    let holder = status[0].holder.clone().unwrap();
    assert!(holder.starts_with("shared by 2: "), "{holder}");
    for g in [&r1, &r2] {
        let token = format!("token {}", g.fencing_token().unwrap());
        assert!(holder.contains(&token), "{holder}");
    }
    assert!(holder.ends_with(", 2 waiting"), "{holder}");

    let top = r2.fencing_token();
    assert!(r1.release().await.unwrap());
    assert!(r2.release().await.unwrap());
    let w = bounded("the writer", writer).await.unwrap().unwrap();
    assert!(w.fencing_token() > top);
    assert!(!reader.is_finished(), "a reader got in beside the writer");
    let w_token = w.fencing_token();
    assert!(w.release().await.unwrap());
    let r3 = bounded("the reader behind the writer", reader)
        .await
        .unwrap()
        .unwrap();
    assert!(r3.fencing_token() > w_token);
    assert!(r3.release().await.unwrap());
    wait_queue_len(&raw, &resource, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_is_refused_where_etcd_cannot_keep_it() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let raw = raw(&url).await;
    let prefix = unique("jobs/shared");
    let refused = |r: Result<lockhog::LockGuard, Error>, word: &str| match r {
        Err(Error::InvalidOption { reason }) => assert!(reason.contains(word), "{reason}"),
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    refused(
        locker.lock_resource(&prefix).shared().try_acquire().await,
        "shared",
    );
    assert!(queue(&raw, &prefix).await.is_empty(), "nothing written");
    let name = unique("shared-steal");
    refused(
        locker
            .lock(&name)
            .shared()
            .steal_after(Duration::from_secs(60))
            .try_acquire()
            .await,
        "steal_after",
    );
    let resource = locker.resource(&name).unwrap();
    assert!(queue(&raw, &resource).await.is_empty(), "nothing written");
}
