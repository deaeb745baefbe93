//! SQLite shared (reader) locks: a reader's row is renewed while its guard lives and reported
//! lost when it is deleted behind its back; a reader that stops renewing (a crashed process)
//! frees the lock when its lease runs out; a writer with `steal_after` takes over from a live
//! reader, who is told; `cleanup` removes expired readers; fair shared requests are refused.

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::time::Duration;

use lockhog::testkit::HoldProcess;
use lockhog::{Error, LockState};
use sqlite_support::{bounded, now_ms, TempDb};

/// Long enough that a loaded machine still renews in time (every ttl/3).
const TTL: Duration = Duration::from_millis(800);

fn readers(db: &TempDb, name: &str) -> i64 {
    db.raw()
        .query_row(
            "SELECT count(*) FROM lockhog_readers WHERE name = CAST(?1 AS BLOB)",
            [name],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readers_row_deleted_behind_its_back_is_reported_lost() {
    let db = TempDb::new();
    let locker = db.locker("").await;
    let guard = locker
        .lock("r")
        .shared()
        .ttl(TTL)
        .try_acquire()
        .await
        .unwrap();
    assert_eq!(readers(&db, "r"), 1);
    db.raw()
        .execute(
            "DELETE FROM lockhog_readers WHERE name = CAST('r' AS BLOB)",
            [],
        )
        .unwrap();
    let reason = bounded("the lost notice", guard.lost()).await;
    assert!(reason.contains("gone"), "{reason}");
    assert!(!guard.release().await.unwrap());
}

/// A reader in a process killed with SIGKILL (`lockhog hold --shared --ttl 1`) keeps a writer
/// out until its lease runs out, and no longer; the writer deletes its row. Another killed
/// reader's expired row is what `cleanup` removes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_readers_lease_runs_out_and_cleanup_removes_it() {
    let db = TempDb::new();
    let url = db.url("");
    let a = db.locker("").await;
    let args = ["--ttl", "1", "--shared"];
    let reader = HoldProcess::start(&sqlite_support::bin(), &url, &args, &["dead"]);
    let token = reader.held[0].token.unwrap();
    reader.kill();
    assert!(matches!(
        a.lock("dead").try_acquire().await,
        Err(Error::Contended { .. })
    ));
    let writer = a
        .lock("dead")
        .wait_for(sqlite_support::BOUND)
        .await
        .unwrap();
    assert!(writer.fencing_token().unwrap() > token);
    assert_eq!(
        readers(&db, "dead"),
        0,
        "the writer left the dead reader's row"
    );
    assert!(writer.release().await.unwrap());

    HoldProcess::start(&sqlite_support::bin(), &url, &args, &["expired"]).kill();
    // A lease runs out by the clock alone: nothing announces it.
    let raw = db.raw();
    sqlite_support::poll_until("the reader's lease to run out", || {
        let live: i64 = raw
            .query_row(
                "SELECT count(*) FROM lockhog_readers WHERE expires_at > ?1",
                [now_ms()],
                |r| r.get(0),
            )
            .unwrap();
        (live == 0).then_some(())
    })
    .await;
    assert_eq!(
        a.status(&["expired"]).await.unwrap()[0].state,
        LockState::Free
    );
    let report = a.cleanup().await.unwrap();
    assert_eq!(report.removed, 1, "{report:?}");
    assert_eq!(readers(&db, "expired"), 0);
}

/// A writer with `steal_after` takes the lock from a live, renewing reader, who is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steal_after_takes_over_from_a_live_reader() {
    let db = TempDb::new();
    let (a, b) = (db.locker("").await, db.locker("").await);
    let limit = Duration::from_secs(1);
    let reader = a
        .lock("stolen")
        .shared()
        .ttl(limit)
        .try_acquire()
        .await
        .unwrap();
    let writer = b
        .lock("stolen")
        .ttl(limit)
        .steal_after(limit)
        .wait_for(sqlite_support::BOUND)
        .await
        .unwrap();
    assert!(writer.fencing_token() > reader.fencing_token());
    let reason = bounded("the reader's lost notice", reader.lost()).await;
    assert!(!reason.is_empty());
    assert!(!reader.release().await.unwrap());
    assert!(writer.release().await.unwrap());
}

/// `status` shows each live reader of a lock, for the name asked and in a namespace listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_the_readers() {
    let db = TempDb::new();
    let (a, b) = (db.locker("").await, db.locker("").await);
    let r1 = a.lock("st").shared().try_acquire().await.unwrap();
    let r2 = b.lock("st").shared().try_acquire().await.unwrap();
    for listed in [
        a.status(&["st"]).await.unwrap(),
        a.status(&[]).await.unwrap(),
    ] {
        let st = listed
            .iter()
            .find(|s| s.name.as_deref() == Some("st"))
            .expect("st is listed");
        assert_eq!(st.state, LockState::Held);
        let holder = st.holder.as_deref().unwrap();
        for g in [&r1, &r2] {
            let want = format!("shared token {}", g.fencing_token().unwrap());
            assert!(holder.contains(&want), "{want:?} not in {holder}");
        }
    }
}

#[tokio::test]
async fn fair_shared_requests_are_refused() {
    let db = TempDb::new();
    let a = db.locker("").await;
    match a.lock("f").shared().fair().try_acquire().await {
        Err(Error::InvalidOption { reason }) => assert!(reason.contains("shared"), "{reason}"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}
