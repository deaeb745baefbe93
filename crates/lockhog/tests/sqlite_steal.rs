//! `steal_after`: a lock older than that counts as free even while
//! its holder renews it; the old holder is told it lost the lock. A `steal_after` shorter than
//! the lease's ttl is refused.

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::time::Duration;

use lockhog::{Error, Locker};
use sqlite_support::{bounded, cycle, TempDb, BOUND};

/// The holder renews every ttl/3: its lease never runs out on its own, even on a loaded
/// machine, so only steal_after can free the lock.
const TTL: Duration = Duration::from_secs(1);
const STEAL_AFTER_MS: i64 = 2000;

fn acquired_at(db: &TempDb, name: &str) -> i64 {
    db.raw()
        .query_row(
            "SELECT acquired_at FROM lockhog_locks WHERE name = ?1",
            [name.as_bytes()],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_older_than_steal_after_is_taken_from_a_live_holder() {
    let db = TempDb::new();
    let query = format!("?steal_after={STEAL_AFTER_MS}ms");
    let (a, b) = (db.locker(&query).await, db.locker(&query).await);
    let old = a.lock("stolen").ttl(TTL).try_acquire().await.unwrap();
    let old_at = acquired_at(&db, "stolen");
    assert!(matches!(
        b.lock("stolen").ttl(TTL).try_acquire().await,
        Err(Error::Contended { .. })
    ));
    // The old holder keeps renewing all along; only its age frees the lock.
    let new = b.lock("stolen").ttl(TTL).wait_for(BOUND).await.unwrap();
    let new_at = acquired_at(&db, "stolen");
    assert!(
        new_at - old_at >= STEAL_AFTER_MS,
        "stolen after {}ms, before steal_after",
        new_at - old_at
    );
    assert!(new.fencing_token() > old.fencing_token());
    // The old holder learns it at its next renewal.
    let reason = bounded("the lost notice", old.lost()).await;
    assert!(reason.contains("someone else"), "{reason}");
    assert!(
        !old.release().await.unwrap(),
        "the old holder's release said it was ours"
    );
    assert!(!new.is_lost());
    assert!(
        new.release().await.unwrap(),
        "the old holder's release took the new lock"
    );
}

#[tokio::test]
async fn steal_after_shorter_than_the_ttl_is_refused() {
    let db = TempDb::new();
    let locker = db.locker("?steal_after=1s").await;
    // The default lease (30 s) is longer than steal_after.
    for request in [
        locker.lock("short"),
        locker.lock("short").ttl(Duration::from_secs(5)),
    ] {
        match request.try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("steal_after"), "{reason}")
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
    // A ttl up to steal_after is fine, from the request or from the URL.
    let g = locker
        .lock("short")
        .ttl(Duration::from_secs(1))
        .try_acquire()
        .await
        .unwrap();
    g.release().await.unwrap();
    let l = db.locker("?steal_after=1s&ttl=0.5").await;
    cycle(&l, "short").await;
    // Nothing was written by the refused attempts.
    let rows: i64 = db
        .raw()
        .query_row("SELECT count(*) FROM lockhog_locks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn steal_after_must_be_a_positive_duration() {
    let db = TempDb::new();
    for bad in ["0", "-1s", "soon"] {
        match Locker::connect(&db.url(&format!("?steal_after={bad}"))).await {
            Err(Error::InvalidOption { reason }) => assert!(!reason.is_empty()),
            other => panic!("steal_after={bad}: expected InvalidOption, got {other:?}"),
        }
    }
}
