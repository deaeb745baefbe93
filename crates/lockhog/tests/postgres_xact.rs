//! Transaction-level helpers on the caller's own connection conflict with lockhog's session
//! locks of the same name, end with the transaction, and leave a timed-out transaction
//! usable.

#![cfg(feature = "postgres")]

mod postgres_support;

use std::time::Duration;

use lockhog::backend::postgres::{self as pg, advisory_key};
use lockhog::{Error, Locker};
use postgres_support::{bounded, holders, raw, unique, BOUND};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_locks_and_session_locks_exclude_each_other() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let mut client = raw(&url, "xact-app").await;
    let admin = raw(&url, "xact-admin").await;
    let name = unique("xact");
    let key = advisory_key("lockhog", &name).unwrap();

    // lockhog holds it: the transaction cannot have it.
    let guard = locker.lock(&name).try_acquire().await.unwrap();
    {
        let tx = client.transaction().await.unwrap();
        match pg::try_xact_lock(&tx, "lockhog", &name).await {
            Err(Error::Contended { name: n }) => assert_eq!(n, name),
            other => panic!("expected Contended, got {other:?}"),
        }
        match pg::xact_lock_timeout(&tx, "lockhog", &name, Duration::from_millis(50)).await {
            Err(Error::TimedOut { .. }) => {}
            other => panic!("expected TimedOut, got {other:?}"),
        }
        // The transaction is still usable and its lock_timeout is what it was.
        let lt: String = tx
            .query_one("SHOW lock_timeout", &[])
            .await
            .expect("the transaction survived the timeout")
            .get(0);
        assert_eq!(lt, "0");
        tx.commit().await.unwrap();
    }

    // The transaction holds it: lockhog is turned away, and a waiter gets in at commit.
    guard.release().await.unwrap();
    let tx = client.transaction().await.unwrap();
    pg::xact_lock_timeout(&tx, "lockhog", &name, BOUND)
        .await
        .unwrap();
    assert_eq!(holders(&admin, key).await.len(), 1);
    match locker.lock(&name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while the transaction holds it, got {other:?}"),
    }
    let waiter = {
        let (locker, name) = (locker.clone(), name.clone());
        tokio::spawn(async move { locker.lock(&name).wait_for(BOUND).await })
    };
    tx.commit().await.unwrap();
    let g = bounded("the lockhog waiter", waiter)
        .await
        .unwrap()
        .unwrap();

    let tx = client.transaction().await.unwrap();
    match pg::try_xact_lock(&tx, "lockhog", &name).await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while lockhog holds it, got {other:?}"),
    }
    tx.rollback().await.unwrap();
    g.release().await.unwrap();

    let tx = client.transaction().await.unwrap();
    pg::xact_lock(&tx, "lockhog", &name).await.unwrap();
    match locker.lock(&name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while the transaction holds it, got {other:?}"),
    }
    tx.rollback().await.unwrap();
    locker
        .lock(&name)
        .try_acquire()
        .await
        .expect("free once the transaction ended")
        .release()
        .await
        .unwrap();
    assert!(holders(&admin, key).await.is_empty());
}

/// The same helpers for the synchronous `postgres` crate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_helpers_for_postgres_transactions() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("xact-sync");
    let guard = locker.lock(&name).try_acquire().await.unwrap();
    let (sync_url, sync_name) = (url.clone(), name.clone());
    let check = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&sync_url, postgres::NoTls).unwrap();
        let mut tx = client.transaction().unwrap();
        let r = pg::blocking::try_xact_lock(&mut tx, "lockhog", &sync_name);
        assert!(matches!(r, Err(Error::Contended { .. })), "{r:?}");
        let r = pg::blocking::xact_lock_timeout(
            &mut tx,
            "lockhog",
            &sync_name,
            Duration::from_millis(20),
        );
        assert!(matches!(r, Err(Error::TimedOut { .. })), "{r:?}");
        tx.query_one("SELECT 1", &[]).expect("still usable");
        tx.rollback().unwrap();
        client
    });
    let mut client = bounded("the sync client", check).await.unwrap();
    guard.release().await.unwrap();
    let sync_name = name.clone();
    let tx_held = tokio::task::spawn_blocking(move || {
        let mut tx = client.transaction().unwrap();
        pg::blocking::xact_lock(&mut tx, "lockhog", &sync_name).unwrap();
        tx.commit().unwrap();
    });
    bounded("the sync lock", tx_held).await.unwrap();
    locker
        .lock(&name)
        .try_acquire()
        .await
        .expect("free after the commit")
        .release()
        .await
        .unwrap();
}

/// Names are bound, never spliced: quotes and SQL in a name are just a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_only_names() {
    let url = server_url!();
    let mut client = raw(&url, "xact-hostile").await;
    let name = r#"x'); SELECT pg_sleep(100); --"#;
    let tx = client.transaction().await.unwrap();
    pg::try_xact_lock(&tx, "lockhog", name).await.unwrap();
    pg::xact_lock_timeout(&tx, "lockhog", name, Duration::from_secs(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
