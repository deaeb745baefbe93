//! Helpers of the SQLite tests: a database file in a fresh directory, a raw connection to
//! look behind the library's back, the `lockhog` binary, and hang guards.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{bounded, cycle, BOUND};

use std::path::{Path, PathBuf};
use std::time::Duration;

use lockhog::Locker;

/// A database path in a temporary directory removed at the end of the test.
pub struct TempDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks.db");
        TempDb { _dir: dir, path }
    }

    /// `sqlite://<path><query>`.
    pub fn url(&self, query: &str) -> String {
        format!("sqlite://{}{query}", self.path.display())
    }

    pub async fn locker(&self, query: &str) -> Locker {
        Locker::connect(&self.url(query)).await.unwrap()
    }

    /// A plain connection to the file, as the `sqlite3` shell would have.
    pub fn raw(&self) -> rusqlite::Connection {
        raw(&self.path)
    }
}

pub fn raw(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// `(owner, token, expires_at)` of the row of `name` in the default namespace.
pub fn row(conn: &rusqlite::Connection, name: &str) -> Option<(String, i64, i64)> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT owner, token, expires_at FROM lockhog_locks \
         WHERE namespace = CAST('lockhog' AS BLOB) AND name = ?1",
        [name.as_bytes()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .unwrap()
}

/// SQLite's count of commits made by other connections to the file (`PRAGMA data_version`
/// changes whenever another connection commits).
pub fn data_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap()
}

/// The `lockhog` binary built with this workspace (`cargo test --workspace --all-features`
/// builds it; or set `LOCKHOG_BIN`).
pub fn bin() -> PathBuf {
    lockhog::hog::find_binary().unwrap_or_else(|e| {
        panic!(
            "{e}: build it with `cargo test --workspace --all-features` (with the sqlite feature)"
        )
    })
}

/// Polls `check` until it returns `Some`, at most [`BOUND`]. Only for states that no event
/// announces: a lease running out is a matter of the clock, and SQLite tells no one.
pub async fn poll_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    bounded(what, async {
        loop {
            if let Some(v) = check() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Wall-clock UNIX milliseconds, the clock lease expiries are written in.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
