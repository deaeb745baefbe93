//! `with_lock` and `run` tell the caller when the lock was lost while the body ran, and hand
//! back what the body returned: a real SQLite lease taken over mid-body (by `steal_after`)
//! gives `Error::LostWhileHeld`, never `Ok`.

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::time::Duration;

use lockhog::{Error, Locker};
use sqlite_support::{bounded, TempDb, BOUND};

/// The holder renews every ttl/3, so its lease never runs out on its own: only `steal_after`
/// (its age) frees it, while the body runs.
const TTL: Duration = Duration::from_secs(1);

/// Inside the body, `thief` takes the lock over and keeps it: the event that the body's lock
/// is gone, waited for rather than slept for.
async fn steal(thief: &Locker, name: &str) -> lockhog::LockGuard {
    bounded("the takeover", thief.lock(name).ttl(TTL).wait_for(BOUND))
        .await
        .expect("the thief acquires once steal_after has passed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lock_reports_a_lock_lost_mid_body_with_the_bodys_value() {
    let db = TempDb::new();
    let (owner, thief) = (
        db.locker("?steal_after=1s").await,
        db.locker("?steal_after=1s").await,
    );
    let name = "with-lock-lost";
    let mut stolen = None;
    let outcome = owner
        .with_lock(owner.lock(name).ttl(TTL), || async {
            stolen = Some(steal(&thief, name).await);
            "the body's value".to_string()
        })
        .await;
    match outcome {
        Err(Error::LostWhileHeld {
            name: n,
            reason,
            value,
            ..
        }) => {
            assert_eq!(n, name);
            assert!(!reason.is_empty());
            assert_eq!(value.take::<String>().as_deref(), Some("the body's value"));
        }
        other => panic!("expected LostWhileHeld, got {other:?}"),
    }
    // The owner's release did not take the thief's lock.
    let stolen = stolen.expect("the body ran");
    assert!(stolen.release().await.unwrap());
}

#[test]
fn blocking_run_reports_a_lock_lost_mid_body() {
    let db = TempDb::new();
    let url = db.url("?steal_after=1s");
    let owner = lockhog::blocking::Locker::connect(&url).unwrap();
    let thief = lockhog::blocking::Locker::connect(&url).unwrap();
    let outcome = owner.lock("run-lost").ttl(TTL).run(|| {
        thief
            .lock("run-lost")
            .ttl(TTL)
            .wait_for(BOUND)
            .expect("the thief acquires once steal_after has passed")
            .release()
            .unwrap();
        7u8
    });
    match outcome {
        Err(Error::LostWhileHeld { value, .. }) => assert_eq!(value.take::<u8>(), Some(7)),
        other => panic!("expected LostWhileHeld, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lock_held_throughout_gives_the_value_in_ok() {
    let db = TempDb::new();
    let owner = db.locker("").await;
    assert_eq!(owner.with_lock("kept", || async { 5 }).await.unwrap(), 5);
}
