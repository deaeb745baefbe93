//! Helpers for the tests against a real PostgreSQL server (`LOCKHOG_TEST_POSTGRES_URL`, set by
//! `scripts/test`).

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// The hang guard for every wait: long enough for a loaded machine, never asserted as a speed.
pub const BOUND: Duration = Duration::from_secs(30);

/// The server's URL; `None` (with the reason printed) when unset, a panic under `CI=true`.
pub fn url() -> Option<String> {
    match std::env::var("LOCKHOG_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let why = "LOCKHOG_TEST_POSTGRES_URL is not set: run through scripts/test, which starts PostgreSQL";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and no server: {why}");
            }
            eprintln!("skipped: {why}");
            None
        }
    }
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

/// `url` with one more query option.
pub fn with_option(url: &str, option: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{option}")
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

/// Bounds `f` by [`BOUND`], panicking with `what` when it does not finish.
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
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

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A short application_name (at most 63 bytes survive) no other test uses.
pub fn unique_app(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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
        _ => {
            let why = "LOCKHOG_TEST_POSTGRES_TLS_URL or LOCKHOG_TEST_POSTGRES_CA is not set: \
                       run through scripts/test, which starts PostgreSQL with TLS";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and no TLS server: {why}");
            }
            eprintln!("skipped: {why}");
            None
        }
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
