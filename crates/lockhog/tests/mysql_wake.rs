//! lockhog waits in the server for a lock another client holds, and wakes when that client
//! releases it. One test per file at a time waits here: `until_someone_waits` counts every
//! waiter on the server.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::{Error, LockState, Locker};
use mysql_support::{bounded, get_lock, raw, release_lock, unique, until_someone_waits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockhog_blocks_on_a_raw_clients_lock_and_wakes_on_its_release() {
    let url = server_url!();
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
