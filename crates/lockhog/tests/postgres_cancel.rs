//! Cancel safety against a real server: acquire futures dropped at any point — while waiting
//! in the process, while blocked in `pg_advisory_lock` on the server, or while a try is in
//! flight — leave nothing held.

#![cfg(feature = "postgres")]

mod postgres_support;

use std::time::Duration;

use lockhog::backend::postgres::advisory_key;
use lockhog::Locker;
use postgres_support::{advisory_locks_of, holders, locker_as, raw, unique, unique_app, BOUND};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_server_waits_leave_nothing_held() {
    let url = server_url!();
    let app = unique_app("cancel");
    let locker = locker_as(&url, &app).await;
    let admin = raw(&url, "cancel-admin").await;
    let name = unique("cancel-server");
    let key = advisory_key("lockhog", &name).unwrap();
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    for round in 0..40u64 {
        // The cut-off only decides at which point the wait is dropped: before connecting,
        // while connecting, while blocked on the server.
        let cut = Duration::from_micros(round * round * 25);
        let shared = round % 4 == 3;
        let req = locker.lock(&name);
        let req = if shared { req.shared() } else { req };
        let outcome = tokio::time::timeout(cut, req.wait()).await;
        assert!(outcome.is_err(), "acquired a lock psql holds");
    }
    // Let the holder go: a dropped waiter that had been granted the lock would hold it now.
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    // Every dropped wait gives up its in-process permit only after its cleanup, so once this
    // acquire succeeds all cleanups are done.
    let g = locker.lock(&name).wait_for(BOUND).await.unwrap();
    assert_eq!(holders(&admin, key).await.len(), 1);
    assert!(g.release().await.unwrap());
    assert!(holders(&admin, key).await.is_empty());
    assert_eq!(advisory_locks_of(&admin, &app, false).await, 0);
    // A plain client gets it at once.
    let got: bool = admin
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(got);
    admin
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tries_leave_nothing_held() {
    let url = server_url!();
    let app = unique_app("cancel-try");
    let locker = locker_as(&url, &app).await;
    let admin = raw(&url, "cancel-admin-2").await;
    let name = unique("cancel-try");
    let key = advisory_key("lockhog", &name).unwrap();
    for round in 0..60u64 {
        let cut = Duration::from_micros(round * 10);
        let shared = round % 3 == 0;
        let req = locker.lock(&name);
        let req = if shared { req.shared() } else { req };
        match tokio::time::timeout(cut, req.try_acquire()).await {
            Ok(Ok(g)) => assert!(g.release().await.unwrap()),
            // The cleanup of a try dropped just before runs on the runtime and holds the key
            // in this process until it is done.
            Ok(Err(e)) => assert!(e.is_not_acquired(), "{e}"),
            Err(_) => {}
        }
    }
    let g = locker.lock(&name).wait_for(BOUND).await.unwrap();
    assert_eq!(holders(&admin, key).await.len(), 1);
    g.release().await.unwrap();
    assert!(holders(&admin, key).await.is_empty());
    assert_eq!(advisory_locks_of(&admin, &app, false).await, 0);
}

/// A guard dropped (not released) frees its lock without blocking, through the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_guards_release() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let admin = raw(&url, "cancel-admin-3").await;
    let name = unique("cancel-drop");
    let key = advisory_key("lockhog", &name).unwrap();
    for _ in 0..20 {
        // The release runs on the runtime after the drop, so the next acquire may wait.
        drop(locker.lock(&name).wait_for(BOUND).await.unwrap());
    }
    let other = Locker::connect(&url).await.unwrap();
    let g = other.lock(&name).wait_for(BOUND).await.unwrap();
    assert_eq!(holders(&admin, key).await.len(), 1);
    g.release().await.unwrap();
    assert!(holders(&admin, key).await.is_empty());
}
