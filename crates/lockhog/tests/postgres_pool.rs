//! Many held locks share a few connections; waiter connections go back clean.

#![cfg(feature = "postgres")]

mod postgres_support;

use lockhog::backend::postgres::advisory_key;
use postgres_support::{
    advisory_locks_of, bounded, holders, locker_as, raw, sessions, unique, unique_app, BOUND,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_locks_on_a_few_connections() {
    let url = server_url!();
    let app = unique_app("pool200");
    let locker = locker_as(&url, &app).await;
    let admin = raw(&url, "pool-admin").await;
    let base = unique("pool200");
    // Acquired 20 at a time, so more than one session connection gets used.
    let mut guards = Vec::new();
    for batch in 0..10 {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (locker, name) = (locker.clone(), format!("{base}-{batch}-{i}"));
                tokio::spawn(async move { locker.lock(&name).try_acquire().await })
            })
            .collect();
        for t in tasks {
            guards.push(t.await.unwrap().expect("a free lock"));
        }
    }
    assert_eq!(guards.len(), 200);
    let held = advisory_locks_of(&admin, &app, true).await;
    assert_eq!(held, 200);
    let conns = sessions(&admin, &app).await;
    eprintln!("200 locks held on {conns} connections");
    assert!(
        (1..=4).contains(&conns),
        "{conns} connections for 200 locks"
    );
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    let left = advisory_locks_of(&admin, &app, false).await;
    assert_eq!(left, 0);
}

/// A lock taken after waiting lives on a waiter connection; once released, that connection
/// holds nothing, even after many rounds, timeouts and shared locks on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiter_connections_hold_nothing_once_returned() {
    let url = server_url!();
    let app = unique_app("poolw");
    let locker = locker_as(&url, &app).await;
    let admin = raw(&url, "pool-admin-2").await;
    let name = unique("pool-waited");
    let key = advisory_key("lockhog", &name).unwrap();
    for round in 0..10 {
        admin
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
        if round % 3 == 2 {
            // A wait that runs out (lock_timeout) must also leave its connection clean.
            let r = locker
                .lock(&name)
                .wait_for(std::time::Duration::from_millis(20))
                .await;
            assert!(matches!(r, Err(lockhog::Error::TimedOut { .. })), "{r:?}");
        }
        let waiter = {
            let (locker, name) = (locker.clone(), name.clone());
            let shared = round % 2 == 1;
            tokio::spawn(async move {
                let req = locker.lock(&name);
                let req = if shared { req.shared() } else { req };
                req.wait_for(BOUND).await
            })
        };
        admin
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .unwrap();
        let g = bounded("the waiter", waiter).await.unwrap().unwrap();
        assert!(g.stats().attempts >= 1);
        assert!(g.release().await.unwrap());
    }
    // Every release ran pg_advisory_unlock_all before its connection went back; a timed-out
    // wait's cleanup runs before the next acquire of the key in this process can start, and
    // this acquire waits for it.
    let g = locker.lock(&name).wait_for(BOUND).await.unwrap();
    g.release().await.unwrap();
    let left = advisory_locks_of(&admin, &app, false).await;
    assert_eq!(left, 0, "a returned connection still holds advisory locks");
    assert!(holders(&admin, key).await.is_empty());
}
