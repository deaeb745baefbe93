//! `cleanup` deletes expired rows and dead waiters' tickets only:
//! live locks stay, and fencing tokens keep growing across it.

#![cfg(all(feature = "sqlite", feature = "testkit"))]

mod sqlite_support;

use std::time::Duration;

use lockhog::testkit::HoldProcess;
use lockhog::LockState;
use sqlite_support::{bin, bounded, row, TempDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_expired_rows_only() {
    let db = TempDb::new();
    let url = db.url("");
    let locker = db.locker("").await;
    let live = locker.lock("live").try_acquire().await.unwrap();
    // A holder that dies without releasing: its row stays until its lease runs out.
    let mut dead = HoldProcess::start(&bin(), &url, &["--ttl", "0.3"], &["expired"]);
    let dead_token = dead.held[0].token;
    dead.send("abandon");
    assert!(dead.wait().success());
    // A fair waiter that died: its ticket is already past its expiry.
    db.raw()
        .execute(
            "INSERT INTO lockhog_waiters (namespace, name, owner, expires_at) \
             VALUES (CAST('lockhog' AS BLOB), CAST('live' AS BLOB), 'dead/1/host', 0)",
            [],
        )
        .unwrap();
    // The lease runs out by the clock alone; nothing announces it, so status is polled.
    bounded("the abandoned lease to run out", async {
        loop {
            let listed = locker.status(&["expired"]).await.unwrap();
            if listed[0].state == LockState::Free {
                break;
            }
            // A deliberate pause between polls (bounded above): nothing announces an
            // expiry, so there is no event to wait on.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let listed = locker.status(&[]).await.unwrap();
    let expired = listed
        .iter()
        .find(|s| s.name.as_deref() == Some("expired"))
        .unwrap();
    assert!(
        expired.holder.as_deref().unwrap().starts_with("expired"),
        "{expired:?}"
    );
    let held = listed
        .iter()
        .find(|s| s.name.as_deref() == Some("live"))
        .unwrap();
    assert_eq!(held.state, LockState::Held);
    let holder = held.holder.as_deref().unwrap();
    assert!(
        holder.contains(&format!("pid {}", std::process::id())) && holder.contains("token"),
        "{holder}"
    );

    // Through the command line, as a cron job would run it.
    let out = std::process::Command::new(bin())
        .args(["cleanup", "-b", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cleanup: removed 2 kept 1"
    );

    let raw = db.raw();
    assert_eq!(row(&raw, "expired"), None, "the expired row is still there");
    assert!(row(&raw, "live").is_some(), "cleanup removed a live lock");
    let tickets: i64 = raw
        .query_row("SELECT count(*) FROM lockhog_waiters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tickets, 0);
    assert!(matches!(
        locker.lock("live").try_acquire().await,
        Err(lockhog::Error::Contended { .. })
    ));
    let next = locker.lock("expired").try_acquire().await.unwrap();
    assert!(next.fencing_token() > dead_token.max(live.fencing_token()));
    // Nothing left to clean.
    let report = locker.cleanup().await.unwrap();
    assert_eq!((report.removed, report.kept), (0, 2));
    next.release().await.unwrap();
    live.release().await.unwrap();
}
