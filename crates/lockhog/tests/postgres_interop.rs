//! psql interop against a real server: lockhog and a plain client doing `pg_advisory_lock`
//! on the documented key block each other both ways; the key's SQL in the docs is right;
//! `status` shows foreign holders and our names.

#![cfg(feature = "postgres")]

mod postgres_support;

use lockhog::backend::postgres::{advisory_key, resource};
use lockhog::{Error, LockState, Locker};
use postgres_support::{bounded, holders, raw, unique, BOUND};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_blocks_lockhog() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let psql = raw(&url, "interop-psql").await;
    let name = unique("interop-psql-first");
    let key = advisory_key("lockhog", &name).unwrap();
    psql.execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();

    match locker.lock(&name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while psql holds it, got {other:?}"),
    }
    let waiter = {
        let (locker, name) = (locker.clone(), name.clone());
        tokio::spawn(async move { locker.lock(&name).wait_for(BOUND).await })
    };
    let unlocked: bool = psql
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(unlocked);
    let guard = bounded("the lockhog waiter", waiter)
        .await
        .unwrap()
        .expect("acquired once psql released");
    assert_eq!(guard.resource(), resource(key));
    assert_eq!(holders(&psql, key).await.len(), 1, "lockhog holds it now");
    assert!(guard.release().await.unwrap());
    assert!(holders(&psql, key).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockhog_blocks_a_plain_client() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let psql = raw(&url, "interop-psql").await;
    let name = unique("interop-lockhog-first");
    let key = advisory_key("lockhog", &name).unwrap();
    let guard = locker.lock(&name).try_acquire().await.unwrap();

    let got: bool = psql
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(!got, "psql took a lock lockhog holds");
    let blocked = tokio::spawn(async move {
        psql.execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
        psql
    });
    assert!(guard.release().await.unwrap());
    let psql = bounded("psql's pg_advisory_lock", blocked).await.unwrap();
    match locker.lock(&name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while psql holds it, got {other:?}"),
    }
    psql.execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
}

/// The SQL in the module docs computes the same key as lockhog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_sql_gives_the_same_key() {
    let url = server_url!();
    let psql = raw(&url, "interop-key").await;
    let sql = "SELECT ('x' || encode(substr(sha256( \
                   decode(lpad(to_hex(octet_length(convert_to($1, 'UTF8'))), 2, '0') \
                          || '00000000000000', 'hex') \
                   || convert_to($1, 'UTF8') || convert_to($2, 'UTF8')), 1, 8), 'hex') \
               )::bit(64)::bigint";
    for (ns, name) in [
        ("lockhog", "nightly-report"),
        ("lockhog", "ключ-🔒-鍵"),
        ("app", r#"it's "quoted"; DROP TABLE locks; --"#),
        (&"n".repeat(128)[..], "x"),
    ] {
        let from_sql: i64 = psql.query_one(sql, &[&ns, &name]).await.unwrap().get(0);
        assert_eq!(from_sql, advisory_key(ns, name).unwrap(), "{ns} / {name}");
    }
}

/// `status` lists a foreign holder with its pid and application, and names our own locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_holders_and_our_names() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let psql = raw(&url, "interop-status").await;
    let pid: i32 = psql
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let (ours, theirs) = (unique("status-ours"), unique("status-theirs"));
    let their_key = advisory_key("lockhog", &theirs).unwrap();
    psql.execute("SELECT pg_advisory_lock($1)", &[&their_key])
        .await
        .unwrap();
    let guard = locker.lock(&ours).try_acquire().await.unwrap();

    let named = locker.status(&[&ours, &theirs]).await.unwrap();
    assert_eq!(named.len(), 2);
    assert_eq!(named[0].state, LockState::Held);
    assert_eq!(named[0].resource, guard.resource());
    let holder = named[0].holder.as_deref().unwrap();
    assert!(
        holder.starts_with("pid ") && holder.contains("lockhog"),
        "{holder}"
    );
    assert!(holder.contains(" held since "), "{holder}");
    assert_eq!(named[1].state, LockState::Held);
    let holder = named[1].holder.as_deref().unwrap();
    assert!(
        holder.starts_with(&format!("pid {pid} interop-status")),
        "{holder}"
    );

    let all = locker.status(&[]).await.unwrap();
    let mine = all
        .iter()
        .find(|s| s.resource == guard.resource())
        .expect("our lock is listed");
    assert_eq!(mine.name.as_deref(), Some(ours.as_str()));
    let foreign = all
        .iter()
        .find(|s| s.resource == resource(their_key))
        .expect("psql's lock is listed");
    assert_eq!(
        foreign.name, None,
        "lockhog cannot know a foreign lock's name"
    );

    guard.release().await.unwrap();
    psql.execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
    let after = locker.status(&[&ours, &theirs]).await.unwrap();
    assert!(
        after.iter().all(|s| s.state == LockState::Free),
        "{after:?}"
    );
}
