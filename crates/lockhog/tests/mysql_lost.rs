//! A connection that dies marks its guards lost: the server ends it with `KILL`, the guard's
//! `lost()` completes (the connection is pinged every `lost_check`), `release` says
//! `Ok(false)`, and the locker goes on working on new connections.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::Locker;
use mysql_async::prelude::Queryable;
use mysql_support::{
    bounded, get_lock, holder, raw, release_lock, unique, until_someone_waits, with_option,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_marks_its_guards_lost() {
    let url = server_url!();
    // One session connection, so both guards are on it.
    let locker = Locker::connect(&with_option(&url, "connections=1&lost_check=200ms"))
        .await
        .unwrap();
    assert!(locker.capabilities().lost_notice);
    let mut admin = raw(&url).await;
    let (one, two) = (unique("lost-1"), unique("lost-2"));
    let g1 = locker.lock(&one).try_acquire().await.unwrap();
    let g2 = locker.lock(&two).try_acquire().await.unwrap();
    let id = holder(&mut admin, g1.resource()).await.expect("held");
    assert_eq!(holder(&mut admin, g2.resource()).await, Some(id));
    assert!(!g1.is_lost());

    admin
        .query_drop(format!("KILL CONNECTION {id}"))
        .await
        .unwrap();
    let reason = bounded("the lost notice", g1.lost()).await;
    assert!(reason.contains("connection"), "{reason}");
    bounded("the second lost notice", g2.lost()).await;
    assert!(
        !g1.release().await.unwrap(),
        "release of a lost lock said it was ours"
    );
    assert!(!g2.release().await.unwrap());

    // The server frees a killed session's locks: a raw wait gets it.
    let resource = locker.resource(&one).unwrap();
    assert_eq!(get_lock(&mut admin, &resource, 30.0).await, Some(true));
    assert_eq!(release_lock(&mut admin, &resource).await, Some(true));
    // And the locker works on a new connection.
    let again = locker.lock(&one).try_acquire().await.unwrap();
    assert!(!again.is_lost());
    assert_ne!(holder(&mut admin, again.resource()).await, Some(id));
    assert!(again.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_by_a_waiter_is_lost_with_its_connection() {
    let url = server_url!();
    let locker = Locker::connect(&with_option(&url, "lost_check=200ms"))
        .await
        .unwrap();
    let mut admin = raw(&url).await;
    let name = unique("lost-waiter");
    let resource = locker.resource(&name).unwrap();
    assert_eq!(get_lock(&mut admin, &resource, 0.0).await, Some(true));
    let l2 = locker.clone();
    let n2 = name.clone();
    let waiter = tokio::spawn(async move { l2.lock(&n2).wait_for(Duration::from_secs(30)).await });
    until_someone_waits(&mut admin).await;
    release_lock(&mut admin, &resource).await;
    let guard = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(guard.stats().attempts >= 2, "{:?}", guard.stats());
    let id = holder(&mut admin, &resource).await.expect("held");
    // Another lock on a session connection stays untouched.
    let other = locker
        .lock(unique("lost-bystander"))
        .try_acquire()
        .await
        .unwrap();
    assert_ne!(holder(&mut admin, other.resource()).await, Some(id));

    admin
        .query_drop(format!("KILL CONNECTION {id}"))
        .await
        .unwrap();
    bounded("the lost notice", guard.lost()).await;
    assert!(!guard.release().await.unwrap());
    assert!(!other.is_lost());
    assert!(other.release().await.unwrap());
}
