//! Fencing tokens strictly increase across holders, lockers and names, from the counter in
//! the URL's database: a MariaDB sequence by default, a one-row table with `?fencing_counter=table`
//! (what MySQL gets). A counter that exists is used whatever the URL prefers.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::Locker;
use mysql_async::prelude::Queryable;
use mysql_support::{bounded, get_lock, raw, release_lock, unique, until_someone_waits};

/// `url` pointing at database `db`, with `query`.
fn in_database(url: &str, db: &str, query: &str) -> String {
    let base = url.split('?').next().unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{db}{query}")
}

async fn counter_kind(admin: &mut mysql_async::Conn, db: &str) -> Option<String> {
    admin
        .exec_first(
            "SELECT TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'lockhog_fencing'",
            (db,),
        )
        .await
        .unwrap()
}

/// Takes `name` ten times over the lockers in turn, once through a wait on the server, and
/// checks the tokens strictly increase.
async fn tokens_increase(lockers: &[Locker], admin: &mut mysql_async::Conn, name: &str) {
    let mut last = 0;
    for round in 0..10 {
        let g = lockers[round % lockers.len()]
            .lock(name)
            .wait_for(Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            g.fencing_token().unwrap() > last,
            "{} after {last}",
            g.fencing_token().unwrap()
        );
        last = g.fencing_token().unwrap();
        g.release().await.unwrap();
    }
    // A waiter draws its token once it holds the lock: after the holder's.
    let resource = lockers[0].resource(name).unwrap();
    assert_eq!(get_lock(admin, &resource, 0.0).await, Some(true));
    let l = lockers[0].clone();
    let n = name.to_string();
    let waiter = tokio::spawn(async move { l.lock(&n).wait_for(Duration::from_secs(30)).await });
    until_someone_waits(admin).await;
    assert_eq!(release_lock(admin, &resource).await, Some(true));
    let g = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(g.fencing_token().unwrap() > last);
    g.release().await.unwrap();
}

/// One test, so that `until_someone_waits` sees only its own waiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_strictly_increase() {
    let url = server_url!();
    the_default_counter_is_a_sequence_on_mariadb(&url).await;
    a_table_counter_and_then_a_sequence_preference_share_it(&url).await;
}

async fn a_table_counter_and_then_a_sequence_preference_share_it(url: &str) {
    let mut admin = raw(url).await;
    let db = format!("lockhog_fencing_table_{}", std::process::id());
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    admin
        .query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();

    let table_url = in_database(url, &db, "?fencing_counter=table");
    let lockers = [
        Locker::connect(&table_url).await.unwrap(),
        Locker::connect(&table_url).await.unwrap(),
        // Prefers a sequence, finds the table and uses it.
        Locker::connect(&in_database(url, &db, "")).await.unwrap(),
    ];
    assert_eq!(
        counter_kind(&mut admin, &db).await.as_deref(),
        Some("BASE TABLE")
    );
    let name = unique("fencing-table");
    tokens_increase(&lockers, &mut admin, &name).await;
    // Across names too: the counter is one per database.
    let a = lockers[0]
        .lock(unique("fencing-a"))
        .try_acquire()
        .await
        .unwrap();
    let b = lockers[2]
        .lock(unique("fencing-b"))
        .try_acquire()
        .await
        .unwrap();
    assert!(b.fencing_token().unwrap() > a.fencing_token().unwrap());
    drop((a, b));
    admin
        .query_drop(format!("DROP DATABASE {db}"))
        .await
        .unwrap();
}

async fn the_default_counter_is_a_sequence_on_mariadb(url: &str) {
    let mut admin = raw(url).await;
    let lockers = [
        Locker::connect(url).await.unwrap(),
        Locker::connect(url).await.unwrap(),
    ];
    let version: Option<String> = admin.query_first("SELECT VERSION()").await.unwrap();
    let db: Option<String> = admin.query_first("SELECT DATABASE()").await.unwrap();
    let kind = counter_kind(&mut admin, &db.unwrap()).await;
    if version.unwrap_or_default().contains("MariaDB") {
        assert_eq!(kind.as_deref(), Some("SEQUENCE"));
    } else {
        assert_eq!(kind.as_deref(), Some("BASE TABLE"));
    }
    tokens_increase(&lockers, &mut admin, &unique("fencing-default")).await;
}
