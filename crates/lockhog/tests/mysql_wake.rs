//! lockhog waits in the server for a lock another client holds, and wakes when that client
//! releases it. One test per file at a time waits here: `until_someone_waits` counts every
//! waiter on the server.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::{Error, LockState, Locker};
use mysql_support::{bounded, get_lock, raw, release_lock, unique, until_someone_waits};

/// One test, so that `until_someone_waits` sees only its own waiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits() {
    let url = server_url!();
    lockhog_blocks_on_a_raw_clients_lock_and_wakes_on_its_release(&url).await;
    past_max_waiters_waits_poll_and_still_acquire(&url).await;
    a_wait_runs_out_at_its_bound_and_the_waiter_connection_is_reused(&url).await;
}

async fn lockhog_blocks_on_a_raw_clients_lock_and_wakes_on_its_release(url: &str) {
    let url = url.to_string();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("interop-lockhog-waits");
    let resource = locker.resource(&name).unwrap();
    let mut other = raw(&url).await;
    let mut other_admin = raw(&url).await;
    assert_eq!(get_lock(&mut other, &resource, 0.0).await, Some(true));

    match locker.lock(&name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended, got {other:?}"),
    }
    let seen = locker.status(&[&name]).await.unwrap();
    assert_eq!(seen[0].state, LockState::Held);
    let id = other.id();
    let who = seen[0].holder.as_deref().unwrap_or_default();
    assert!(
        who.starts_with(&format!("connection {id} lockhog@")),
        "{who}"
    );

    let l2 = locker.clone();
    let n2 = name.clone();
    let waiter = tokio::spawn(async move { l2.lock(&n2).wait_for(Duration::from_secs(30)).await });
    until_someone_waits(&mut other_admin).await;
    assert!(!waiter.is_finished());
    assert_eq!(release_lock(&mut other, &resource).await, Some(true));
    let guard = bounded("the lockhog waiter", waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(guard.stats().attempts >= 2, "{:?}", guard.stats());
    // Now the raw client is the one kept out.
    assert_eq!(get_lock(&mut other, &resource, 0.0).await, Some(false));
    assert!(guard.release().await.unwrap());
    assert_eq!(get_lock(&mut other, &resource, 0.0).await, Some(true));
    // A lock someone else holds is not ours to release: lockhog never tries, but the
    // server says so too.
    assert_eq!(release_lock(&mut other, &resource).await, Some(true));
}

async fn past_max_waiters_waits_poll_and_still_acquire(url: &str) {
    let locker = Locker::connect(&format!("{url}?max_waiters=1"))
        .await
        .unwrap();
    let mut other = raw(url).await;
    let mut admin = raw(url).await;
    let names = [unique("max-waiters-1"), unique("max-waiters-2")];
    let resources: Vec<String> = names.iter().map(|n| locker.resource(n).unwrap()).collect();
    for r in &resources {
        assert_eq!(get_lock(&mut other, r, 0.0).await, Some(true));
    }
    let waiters: Vec<_> = names
        .iter()
        .map(|n| {
            let (l, n) = (locker.clone(), n.clone());
            tokio::spawn(async move { l.lock(&n).wait_for(Duration::from_secs(30)).await })
        })
        .collect();
    // One waits in the server, the other polls with the retry policy.
    until_someone_waits(&mut admin).await;
    for r in &resources {
        assert_eq!(release_lock(&mut other, r).await, Some(true));
    }
    for w in waiters {
        let g = bounded("a waiter", w).await.unwrap().unwrap();
        assert!(g.release().await.unwrap());
    }
}

async fn a_wait_runs_out_at_its_bound_and_the_waiter_connection_is_reused(url: &str) {
    let locker = Locker::connect(url).await.unwrap();
    let mut other = raw(url).await;
    let name = unique("wait-runs-out");
    let resource = locker.resource(&name).unwrap();
    assert_eq!(get_lock(&mut other, &resource, 0.0).await, Some(true));
    for _ in 0..3 {
        match locker.lock(&name).wait_for(Duration::from_millis(50)).await {
            Err(Error::TimedOut { waited, .. }) => assert!(waited >= Duration::from_millis(50)),
            other => panic!("expected TimedOut, got {other:?}"),
        }
    }
    assert_eq!(release_lock(&mut other, &resource).await, Some(true));
    let g = locker.lock(&name).try_acquire().await.unwrap();
    assert!(g.release().await.unwrap());
}
