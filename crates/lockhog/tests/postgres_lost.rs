//! A session that dies marks its guards lost: the server ends it with
//! `pg_terminate_backend`, the guard's `lost()` completes, and `release` says `Ok(false)`.

#![cfg(feature = "postgres")]

mod postgres_support;

use lockhog::backend::postgres::advisory_key;
use lockhog::Locker;
use postgres_support::{bounded, holders, raw, unique, unique_app, with_option};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_session_marks_its_guards_lost() {
    let url = server_url!();
    let app = unique_app("lost");
    let locker = Locker::connect(&with_option(&url, &format!("application_name={app}")))
        .await
        .unwrap();
    assert!(locker.capabilities().lost_notice);
    let admin = raw(&url, "lost-admin").await;
    let (one, two) = (unique("lost-1"), unique("lost-2"));
    let g1 = locker.lock(&one).try_acquire().await.unwrap();
    let g2 = locker.lock(&two).try_acquire().await.unwrap();
    let key = advisory_key("lockhog", &one).unwrap();
    let pids = holders(&admin, key).await;
    assert_eq!(pids.len(), 1);
    let pid = pids[0].0;
    assert!(!g1.is_lost());

    let done: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(done);
    let reason = bounded("the lost notice", g1.lost()).await;
    assert!(reason.contains("connection"), "{reason}");
    assert!(g1.is_lost());
    assert!(
        !g1.release().await.unwrap(),
        "a lost lock was not ours at release"
    );
    // The client can see the session end a moment before the server has freed its locks:
    // wait (bounded, on the server) until a plain client gets the lock.
    admin
        .batch_execute(&format!(
            "SET lock_timeout = '30s'; SELECT pg_advisory_lock({key}); \
             SELECT pg_advisory_unlock({key}); RESET lock_timeout"
        ))
        .await
        .expect("the terminated session's lock is freed");

    // The other lock lived on the same session only if both went to it; either way its
    // notice and release agree.
    let lost2 = g2.is_lost();
    assert_eq!(g2.release().await.unwrap(), !lost2);

    // The locker goes on with fresh sessions.
    let again = locker.lock(&one).try_acquire().await.unwrap();
    assert!(!again.is_lost());
    assert!(again.release().await.unwrap());
}

/// A lock taken by a waiter (on its own connection) is lost the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_connection_that_dies_marks_its_guard_lost() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let admin = raw(&url, "lost-admin-2").await;
    let name = unique("lost-waited");
    let key = advisory_key("lockhog", &name).unwrap();
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let waiter = {
        let (locker, name) = (locker.clone(), name.clone());
        tokio::spawn(async move { locker.lock(&name).wait().await })
    };
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    let guard = bounded("the waiter", waiter).await.unwrap().unwrap();
    let pid = holders(&admin, key).await[0].0;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    bounded("the lost notice", guard.lost()).await;
    assert!(!guard.release().await.unwrap());
}
