//! The locks lockhog takes are plain `GET_LOCK` locks: another client sees and blocks on
//! them (lockhog blocking on theirs is in `mysql_wake.rs`). The lock string is the documented one, also
//! when computed in SQL, and long or Unicode names stay within MySQL's 64 characters.

#![cfg(feature = "mysql")]

mod mysql_support;

use lockhog::backend::mysql::lock_string;
use lockhog::{LockState, Locker};
use mysql_async::prelude::Queryable;
use mysql_support::{bounded, get_lock, holder, raw, release_lock, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_client_blocks_on_lockhogs_lock_and_gets_it_on_release() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("interop-raw-waits");
    let guard = locker.lock(&name).try_acquire().await.unwrap();
    let resource = guard.resource().to_string();
    assert_eq!(resource, lock_string("lockhog", &name).unwrap());
    assert_eq!(resource, locker.resource(&name).unwrap());

    let mut other = raw(&url).await;
    assert_eq!(get_lock(&mut other, &resource, 0.0).await, Some(false));
    assert!(holder(&mut other, &resource).await.is_some());
    // A raw wait blocks in the server until lockhog releases.
    let waiter = tokio::spawn(async move {
        let got = get_lock(&mut other, &resource, 30.0).await;
        (other, resource, got)
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "the raw client got a held lock");
    assert!(guard.release().await.unwrap());
    let (mut other, resource, got) = bounded("the raw waiter", waiter).await.unwrap();
    assert_eq!(got, Some(true));
    assert_eq!(release_lock(&mut other, &resource).await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_sql_gives_the_same_lock_string() {
    let url = server_url!();
    let mut conn = raw(&url).await;
    let names = [
        "nightly-report".to_string(),
        "x".into(),
        "y".repeat(1024),
        "ключ-🔒-鍵 with spaces".into(),
        r#"it's "quoted"; DROP TABLE locks; --"#.into(),
        "with\0nul".into(),
        "é".repeat(512),
    ];
    for ns in ["lockhog", "app ü"] {
        for name in &names {
            let sql: Option<String> = conn
                .exec_first(
                    "SELECT CONCAT('lh:', REGEXP_REPLACE(LEFT(?, 24), '[^A-Za-z0-9._-]', '_'), ':', \
                     LEFT(SHA2(CONCAT(UNHEX(LPAD(HEX(OCTET_LENGTH(?)), 2, '0')), \
                     UNHEX('00000000000000'), ?, ?), 256), 32))",
                    (name.as_str(), ns, ns, name.as_str()),
                )
                .await
                .unwrap();
            let ours = lock_string(ns, name).unwrap();
            assert_eq!(
                sql.as_deref(),
                Some(ours.as_str()),
                "namespace {ns:?}, name {name:?}"
            );
            assert!(ours.len() <= 64, "{ours}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_and_unicode_names_fit_and_still_conflict_correctly() {
    let url = server_url!();
    let (a, b) = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    let base = unique("long");
    // Same first 24 characters, different ends: different locks.
    let one = format!("{base}-{}-one", "z".repeat(200));
    let two = format!("{base}-{}-two", "z".repeat(200));
    let uni = format!("{base}-{}", "🔒".repeat(200));
    let g1 = a.lock(&one).try_acquire().await.unwrap();
    let g2 = a.lock(&two).try_acquire().await.unwrap();
    let g3 = a.lock(&uni).try_acquire().await.unwrap();
    for g in [&g1, &g2, &g3] {
        assert!(g.resource().len() <= 64, "{}", g.resource());
        assert!(g.resource().is_ascii());
    }
    assert_eq!(
        g1.resource().split(':').nth(1),
        g2.resource().split(':').nth(1)
    );
    assert_ne!(g1.resource(), g2.resource());
    for n in [&one, &two, &uni] {
        assert!(b.lock(n).try_acquire().await.unwrap_err().is_not_acquired());
    }
    let mut other = raw(&url).await;
    for g in [&g1, &g2, &g3] {
        assert_eq!(get_lock(&mut other, g.resource(), 0.0).await, Some(false));
    }
    drop(g1);
    let again = bounded("the freed long name", b.lock(&one).wait())
        .await
        .unwrap();
    assert!(b
        .lock(&two)
        .try_acquire()
        .await
        .unwrap_err()
        .is_not_acquired());
    again.release().await.unwrap();
    g2.release().await.unwrap();
    g3.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_other_clients_locks_where_the_server_can() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let mut admin = raw(&url).await;
    // MariaDB lists user locks only through the metadata_lock_info plugin.
    let installed: Option<String> = admin
        .query_first(
            "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS \
             WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'",
        )
        .await
        .unwrap();
    if installed.is_none() {
        if let Err(e) = admin
            .query_drop("INSTALL SONAME 'metadata_lock_info'")
            .await
        {
            eprintln!("skipped: cannot install metadata_lock_info: {e}");
            return;
        }
    }
    let name = unique("status-list");
    let resource = locker.resource(&name).unwrap();
    let mut other = raw(&url).await;
    assert_eq!(get_lock(&mut other, &resource, 0.0).await, Some(true));
    let mine = locker
        .lock(unique("status-mine"))
        .try_acquire()
        .await
        .unwrap();
    let listed = locker.status(&[]).await.unwrap();
    let theirs = listed
        .iter()
        .find(|s| s.resource == resource)
        .unwrap_or_else(|| panic!("{resource} missing from {listed:?}"));
    assert_eq!(theirs.state, LockState::Held);
    assert_eq!(
        theirs.name, None,
        "another process's lock has no name we know"
    );
    let id = other.id();
    assert!(theirs
        .holder
        .as_deref()
        .unwrap()
        .starts_with(&format!("connection {id} ")));
    let ours = listed
        .iter()
        .find(|s| s.resource == mine.resource())
        .expect("our own lock is listed");
    assert_eq!(ours.name.as_deref(), Some(mine.name().as_str()));
    assert!(
        ours.holder.as_deref().unwrap().contains("this process"),
        "{ours:?}"
    );
    mine.release().await.unwrap();
    release_lock(&mut other, &resource).await;
}
