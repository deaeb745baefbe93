//! Helpers for the tests against a real MariaDB/MySQL server (`LOCKHOG_TEST_MYSQL_URL`, set
//! by `scripts/test`).

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

// Raw `GET_LOCK` names are at most 64 characters: the short unique names.
// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{
    bounded, cycle, lockers, percentile, spawn_timed_wait, unique_short as unique, with_option,
    BOUND,
};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// The server's URL; `None` (with the reason printed) when unset, a panic under `CI=true`.
pub fn url() -> Option<String> {
    common::env_url("LOCKHOG_TEST_MYSQL_URL", "MariaDB")
}

/// The server's URL or return from the test (outside CI).
#[macro_export]
macro_rules! server_url {
    () => {
        match mysql_support::url() {
            Some(u) => u,
            None => return,
        }
    };
}

/// A plain mysql_async connection: what the `mysql` client or any other program would be.
pub async fn raw(url: &str) -> Conn {
    Conn::from_url(url).await.expect("raw connection")
}

/// `GET_LOCK(lock, secs)` on `conn`: `Some(true)` got it, `Some(false)` timed out.
pub async fn get_lock(conn: &mut Conn, lock: &str, secs: f64) -> Option<bool> {
    let r: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (lock, secs))
        .await
        .expect("GET_LOCK");
    r.flatten().map(|v| v == 1)
}

/// `RELEASE_LOCK(lock)` on `conn`: `Some(true)` released, `Some(false)` not ours, `None` no
/// such lock.
pub async fn release_lock(conn: &mut Conn, lock: &str) -> Option<bool> {
    let r: Option<Option<i64>> = conn
        .exec_first("SELECT RELEASE_LOCK(?)", (lock,))
        .await
        .expect("RELEASE_LOCK");
    r.flatten().map(|v| v == 1)
}

/// The connection id holding `lock` (`IS_USED_LOCK`), `None` when free.
pub async fn holder(conn: &mut Conn, lock: &str) -> Option<u64> {
    let r: Option<Option<u64>> = conn
        .exec_first("SELECT IS_USED_LOCK(?)", (lock,))
        .await
        .expect("IS_USED_LOCK");
    r.flatten()
}

/// Returns once some connection other than `admin` waits in `GET_LOCK` (state `User lock`).
/// The server has no event for "a client started waiting", so this asks it again and again;
/// each question is a round trip, so nothing sleeps. Bounded by [`BOUND`]. Only for test
/// files whose tests have no other waiter at that moment.
pub async fn until_someone_waits(admin: &mut Conn) {
    bounded("a waiter in GET_LOCK", async {
        loop {
            let n: Option<u64> = admin
                .query_first(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE STATE = 'User lock' AND ID <> CONNECTION_ID()",
                )
                .await
                .expect("PROCESSLIST");
            if n.unwrap_or(0) > 0 {
                return;
            }
        }
    })
    .await
}
