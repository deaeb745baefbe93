//! The SQLite lease: renewal keeps a lock past several ttls, stops the moment the guard is
//! released or dropped, reports a row deleted behind our back as lost, and never touches
//! another owner's row.

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::time::Duration;

use lockhog::Error;
use sqlite_support::{bounded, data_version, now_ms, row, TempDb};

/// Long enough that a loaded machine still renews in time (every ttl/3), short enough that
/// several ttls pass quickly.
const TTL: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_the_lock_past_several_ttls() {
    let db = TempDb::new();
    let (a, b) = (db.locker("").await, db.locker("").await);
    let guard = a.lock("renewed").ttl(TTL).try_acquire().await.unwrap();
    let raw = db.raw();
    let (owner, token, first_expiry) = row(&raw, "renewed").unwrap();
    let until = now_ms() + 4 * TTL.as_millis() as i64;
    // Four ttls pass: without renewal the row would have expired three times over. Checked
    // all along, since an expired lease could be taken and given back in between.
    let mut last_expiry = first_expiry;
    while now_ms() < until {
        tokio::time::sleep(TTL / 4).await;
        let (o, t, expiry) = row(&raw, "renewed").expect("the row is gone");
        assert_eq!((o.as_str(), t), (owner.as_str(), token), "another holder");
        assert!(expiry > now_ms(), "the lease ran out while the guard lived");
        assert!(expiry >= last_expiry);
        last_expiry = expiry;
        assert!(matches!(
            b.lock("renewed").try_acquire().await,
            Err(Error::Contended { .. })
        ));
    }
    assert!(last_expiry > first_expiry, "the lease was never renewed");
    assert!(!guard.is_lost());
    assert!(guard.release().await.unwrap());
    assert_eq!(row(&raw, "renewed"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_stops_when_the_guard_is_released_or_dropped() {
    let db = TempDb::new();
    let locker = db.locker("").await;
    let ttl = Duration::from_millis(150);
    let raw = db.raw();
    for drop_it in [false, true] {
        let guard = locker.lock("stopped").ttl(ttl).try_acquire().await.unwrap();
        if drop_it {
            drop(guard);
            // The drop gives the row back in the background: wait for that commit.
            sqlite_support::poll_until("the release on drop", || {
                row(&raw, "stopped").is_none().then_some(())
            })
            .await;
        } else {
            assert!(guard.release().await.unwrap());
        }
        // From here on, nothing may write to the file: data_version moves with every commit
        // of another connection. The window is several renewal periods (ttl/3); its length is
        // how long a wrong renewal would have to show, not a speed.
        let before = data_version(&raw);
        tokio::time::sleep(ttl * 4).await;
        assert_eq!(data_version(&raw), before, "written after the release");
        assert_eq!(row(&raw, "stopped"), None, "the row came back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_deleted_behind_our_back_is_reported_lost() {
    let db = TempDb::new();
    let locker = db.locker("").await;
    let guard = locker.lock("deleted").ttl(TTL).try_acquire().await.unwrap();
    db.raw()
        .execute(
            "DELETE FROM lockhog_locks WHERE name = CAST('deleted' AS BLOB)",
            [],
        )
        .unwrap();
    let reason = bounded("the lost notice", guard.lost()).await;
    assert!(reason.contains("gone"), "{reason}");
    assert!(
        !guard.release().await.unwrap(),
        "release said a lost lock was ours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_never_deletes_another_owners_row() {
    let db = TempDb::new();
    let (a, b) = (db.locker("").await, db.locker("").await);
    let raw = db.raw();
    for drop_it in [false, true] {
        let first = a.lock("taken-over").ttl(TTL).try_acquire().await.unwrap();
        // Someone else's row replaces ours, as after an expiry and a new acquire.
        raw.execute(
            "UPDATE lockhog_locks SET owner = 'someone-else', expires_at = expires_at + 600000 \
             WHERE name = CAST('taken-over' AS BLOB)",
            [],
        )
        .unwrap();
        if drop_it {
            let before = data_version(&raw);
            drop(first);
            // The drop's compare-and-delete runs in the background and, finding another
            // owner, must change nothing: data_version moves with every commit that changes
            // the file. The window only gives a wrong delete time to show; it is not a speed.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                data_version(&raw),
                before,
                "the file changed after the drop"
            );
        } else {
            assert!(!first.release().await.unwrap());
        }
        assert!(matches!(
            b.lock("taken-over").try_acquire().await,
            Err(Error::Contended { .. })
        ));
        let (owner, _, _) = row(&raw, "taken-over").expect("another owner's row was deleted");
        assert_eq!(owner, "someone-else");
        raw.execute("DELETE FROM lockhog_locks", []).unwrap();
    }
}

/// Thousands of locks held by one process, each renewed every ttl/3: more renewals a second
/// than the disk gives commits, unless they are committed together. Every lease must still
/// be renewed in time, twice over, and none reported lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_leases_held_by_one_process_are_all_renewed() {
    const HELD: usize = 3000;
    let ttl = Duration::from_millis(1500);
    let db = TempDb::new();
    let locker = db.locker("").await;
    let mut guards = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let guard = locker.lock(format!("many-{i}")).ttl(ttl);
        guards.push(guard.try_acquire().await.unwrap());
    }
    let raw = db.raw();
    let expiries = |raw: &rusqlite::Connection| -> (i64, i64) {
        raw.query_row(
            "SELECT count(*), coalesce(min(expires_at), 0) FROM lockhog_locks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    // Every lease renewed twice after the last acquire: each expiry is then more than one ttl
    // past that moment. A lease that ran out in between shows as a lost guard below.
    let past = now_ms() + 2 * ttl.as_millis() as i64;
    sqlite_support::poll_until("every lease renewed twice", || {
        let (rows, earliest) = expiries(&raw);
        assert_eq!(rows as usize, HELD, "rows went missing");
        (earliest > past).then_some(())
    })
    .await;
    let lost = guards.iter().filter(|g| g.is_lost()).count();
    assert_eq!(
        lost, 0,
        "{lost} of {HELD} leases ran out while their guards lived"
    );
    for guard in guards {
        assert!(guard.release().await.unwrap());
    }
}
