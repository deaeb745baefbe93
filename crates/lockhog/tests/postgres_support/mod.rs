//! Helpers for the tests against a real PostgreSQL server (`LOCKHOG_TEST_POSTGRES_URL`, set by
//! `scripts/test`).

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{
    bounded, cycle, lockers, percentile, skip_or_fail, spawn_timed_wait, unique,
    unique_short as unique_app, with_option, BOUND,
};

use lockhog::Locker;
use tokio_postgres::{Client, NoTls};

/// The server's URL; `None` (with the reason printed) when unset, a panic under `CI=true`.
pub fn url() -> Option<String> {
    common::env_url("LOCKHOG_TEST_POSTGRES_URL", "PostgreSQL")
}

/// The server's URL or return from the test (outside CI).
#[macro_export]
macro_rules! server_url {
    () => {
        match postgres_support::url() {
            Some(u) => u,
            None => return,
        }
    };
}

/// A plain tokio-postgres session: what `psql` or any other client would be.
pub async fn raw(url: &str, application_name: &str) -> Client {
    let url = with_option(url, &format!("application_name={application_name}"));
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("raw connection");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// The sessions holding advisory key `key` (granted), as (pid, mode).
pub async fn holders(c: &Client, key: i64) -> Vec<(i32, String)> {
    c.query(
        "SELECT pid, mode FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 \
         AND granted AND (classid::bigint << 32) | objid::bigint = $1 ORDER BY pid",
        &[&key],
    )
    .await
    .expect("pg_locks")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Sessions whose application_name is `app`.
pub async fn sessions(c: &Client, app: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .get(0)
}

/// A locker whose sessions carry application_name `app`, to find them in `pg_stat_activity`.
pub async fn locker_as(url: &str, app: &str) -> Locker {
    Locker::connect(&with_option(url, &format!("application_name={app}")))
        .await
        .unwrap()
}

/// Advisory locks (granted ones only, or waited for too) of the sessions of application `app`.
pub async fn advisory_locks_of(c: &Client, app: &str, granted_only: bool) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND (l.granted OR NOT $2) AND a.application_name = $1",
        &[&app, &granted_only],
    )
    .await
    .expect("pg_locks")
    .get(0)
}

/// The TLS side of the test server, set by `scripts/test`.
pub struct Tls {
    /// A role that may log in only over TLS (`hostnossl … reject`), at 127.0.0.1.
    pub url: String,
    /// The CA that signed the server's certificate (for localhost and 127.0.0.1).
    pub ca: String,
}

/// The TLS settings; `None` (with the reason printed) when unset, a panic under `CI=true`.
pub fn tls() -> Option<Tls> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("LOCKHOG_TEST_POSTGRES_TLS_URL"),
        var("LOCKHOG_TEST_POSTGRES_CA"),
    ) {
        (Some(url), Some(ca)) => Some(Tls { url, ca }),
        _ => skip_or_fail(
            "no TLS server",
            "LOCKHOG_TEST_POSTGRES_TLS_URL or LOCKHOG_TEST_POSTGRES_CA is not set: \
             run through scripts/test, which starts PostgreSQL with TLS",
        ),
    }
}

/// The TLS settings or return from the test (outside CI).
#[macro_export]
macro_rules! tls_server {
    () => {
        match postgres_support::tls() {
            Some(t) => t,
            None => return,
        }
    };
}
