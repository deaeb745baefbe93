//! Dropping acquires at any point leaves nothing held: waits dropped while blocked in the
//! server (ended by `KILL`), tries dropped in flight (finished and released by the
//! connection's task), over and over; then the server says the lock is free and the
//! in-process arbitration lets the next acquire in.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::Locker;
use mysql_support::{bounded, get_lock, holder, raw, release_lock, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_waits_leave_nothing_held() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let mut admin = raw(&url).await;
    let name = unique("cancel-wait");
    let resource = locker.resource(&name).unwrap();
    for round in 0..30u64 {
        assert_eq!(get_lock(&mut admin, &resource, 0.0).await, Some(true));
        // The cut-off only decides where the waiting future is dropped; any point must do.
        let cut = Duration::from_micros(round * 700);
        let outcome = tokio::time::timeout(cut, locker.lock(&name).wait()).await;
        assert!(outcome.is_err(), "acquired a lock another client holds");
        assert_eq!(release_lock(&mut admin, &resource).await, Some(true));
        // A cancelled waiter must not take the lock once it is free: the server hands it
        // to whoever waits, so an abandoned wait would show up as a holder.
        let got = bounded(
            "the lock after a cancelled wait",
            locker.lock(&name).wait_for(Duration::from_secs(30)),
        )
        .await
        .expect("free after a cancelled wait");
        assert!(
            holder(&mut admin, &resource).await.is_some(),
            "held by the new guard"
        );
        assert!(got.release().await.unwrap());
    }
    // Nothing left: the server says free, and a raw client gets it at once.
    assert_eq!(holder(&mut admin, &resource).await, None);
    assert_eq!(get_lock(&mut admin, &resource, 0.0).await, Some(true));
    assert_eq!(release_lock(&mut admin, &resource).await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tries_leave_nothing_held() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let mut admin = raw(&url).await;
    let name = unique("cancel-try");
    let resource = locker.resource(&name).unwrap();
    for round in 0..50u64 {
        let cut = Duration::from_micros(round * 40);
        if let Ok(Ok(g)) = tokio::time::timeout(cut, locker.lock(&name).try_acquire()).await {
            assert!(g.release().await.unwrap());
        }
    }
    // Every dropped try is either not sent, or finished and released by its connection's
    // task before the in-process permit is given up: this wait gets the permit only then.
    let g = bounded("a wait after dropped tries", locker.lock(&name).wait())
        .await
        .unwrap();
    g.release().await.unwrap();
    assert_eq!(holder(&mut admin, &resource).await, None);
}
