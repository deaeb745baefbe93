//! Cancelled waits do not leak connections: each one has the server end its waiter
//! connection (`KILL`), so 20 of them leave the server with about as many connections as
//! before. Alone in its file: it counts every connection on the server.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::Locker;
use mysql_async::prelude::Queryable;
use mysql_support::{bounded, get_lock, raw, release_lock, unique};

async fn connections(admin: &mut mysql_async::Conn) -> u64 {
    let n: Option<u64> = admin
        .query_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST")
        .await
        .unwrap();
    n.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waits_do_not_leak_connections() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let mut admin = raw(&url).await;
    let name = unique("cancel-leak");
    let resource = locker.resource(&name).unwrap();
    assert_eq!(get_lock(&mut admin, &resource, 0.0).await, Some(true));
    let before = connections(&mut admin).await;
    for _ in 0..20 {
        let outcome = tokio::time::timeout(
            Duration::from_millis(20),
            locker.lock(&name).wait_for(Duration::from_secs(30)),
        )
        .await;
        assert!(outcome.is_err());
    }
    // Each cancelled wait killed its connection; the server has ended them by the time a
    // new wait from this locker gets the permit they held.
    assert_eq!(release_lock(&mut admin, &resource).await, Some(true));
    let g = bounded("the lock", locker.lock(&name).wait())
        .await
        .unwrap();
    g.release().await.unwrap();
    let after = connections(&mut admin).await;
    assert!(
        after <= before + 6,
        "{before} connections before 20 cancelled waits, {after} after"
    );
}
