//! Shared and exclusive advisory locks against a real server, inside one process and across
//! sessions.

#![cfg(feature = "postgres")]

mod postgres_support;

use lockhog::backend::postgres::advisory_key;
use lockhog::{Error, Locker};
use postgres_support::{bounded, holders, raw, unique, BOUND};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_holders_coexist_and_an_exclusive_one_waits() {
    let url = server_url!();
    let (a, b) = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    assert!(a.capabilities().shared);
    let name = unique("modes-shared");
    let key = advisory_key("lockhog", &name).unwrap();
    let s1 = a.lock(&name).shared().try_acquire().await.unwrap();
    let s2 = b.lock(&name).shared().try_acquire().await.unwrap();
    let s3 = a.lock(&name).shared().try_acquire().await.unwrap();
    assert!(s2.fencing_token() > s1.fencing_token() && s3.fencing_token() > s2.fencing_token());

    let psql = raw(&url, "modes-psql").await;
    let seen = holders(&psql, key).await;
    assert!(
        !seen.is_empty() && seen.iter().all(|(_, m)| m == "ShareLock"),
        "{seen:?}"
    );
    let psql_shared: bool = psql
        .query_one("SELECT pg_try_advisory_lock_shared($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(
        psql_shared,
        "a shared lock must admit another shared holder"
    );
    let psql_exclusive: bool = psql
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(!psql_exclusive);
    psql.execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .unwrap();

    for locker in [&a, &b] {
        match locker.lock(&name).try_acquire().await {
            Err(Error::Contended { .. }) => {}
            other => panic!("exclusive while shared held: {other:?}"),
        }
    }
    let exclusive = {
        let (b, name) = (b.clone(), name.clone());
        tokio::spawn(async move { b.lock(&name).wait_for(BOUND).await })
    };
    assert!(s1.release().await.unwrap());
    assert!(s2.release().await.unwrap());
    assert!(
        !exclusive.is_finished() || s3.is_lost(),
        "acquired while s3 is held"
    );
    assert!(s3.release().await.unwrap());
    let x = bounded("the exclusive waiter", exclusive)
        .await
        .unwrap()
        .expect("exclusive after every shared holder left");
    let seen = holders(&psql, key).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1, "ExclusiveLock");

    match a.lock(&name).shared().try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("shared while exclusive held: {other:?}"),
    }
    x.release().await.unwrap();
    assert!(holders(&psql, key).await.is_empty());
}

/// An exclusive holder elsewhere keeps shared requests waiting on the server; they all get in
/// together when it leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_waiters_wake_together() {
    let url = server_url!();
    let a = Locker::connect(&url).await.unwrap();
    let name = unique("modes-shared-wait");
    let key = advisory_key("lockhog", &name).unwrap();
    let psql = raw(&url, "modes-psql-x").await;
    psql.execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (a, name) = (a.clone(), name.clone());
            tokio::spawn(async move { a.lock(&name).shared().wait_for(BOUND).await })
        })
        .collect();
    psql.execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    let mut guards = Vec::new();
    for w in waiters {
        guards.push(
            bounded("a shared waiter", w)
                .await
                .unwrap()
                .expect("shared"),
        );
    }
    // All three at once.
    assert!(guards.iter().all(|g| !g.is_lost()));
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    assert!(holders(&psql, key).await.is_empty());
}
