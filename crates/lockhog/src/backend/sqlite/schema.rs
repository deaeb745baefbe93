//! lockhog's tables in the database file, created on first use, and the check that a file
//! holds them in the expected shape.
//!
//! ```sql
//! -- One row per held (or expired, not yet cleaned up) lock. Times are UNIX milliseconds.
//! CREATE TABLE lockhog_locks (
//!     namespace   BLOB NOT NULL,     -- UTF-8 bytes of the namespace
//!     name        BLOB NOT NULL,     -- UTF-8 bytes of the lock name (NUL and all)
//!     owner       TEXT NOT NULL,     -- <128 random bits in hex>/<pid>/<host>, one per acquire
//!     token       INTEGER NOT NULL,  -- the holder's fencing token
//!     acquired_at INTEGER NOT NULL,
//!     expires_at  INTEGER NOT NULL,  -- moved forward by every lease renewal
//!     PRIMARY KEY (namespace, name)
//! ) WITHOUT ROWID;
//! -- The fencing counter: one row, bumped by every acquire.
//! CREATE TABLE lockhog_fencing (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
//! -- Fair (FIFO) waiters: a ticket per waiter, kept alive by the waiter's polls.
//! CREATE TABLE lockhog_waiters (
//!     ticket     INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the queue order
//!     namespace  BLOB NOT NULL,
//!     name       BLOB NOT NULL,
//!     owner      TEXT NOT NULL,
//!     expires_at INTEGER NOT NULL
//! );
//! -- A semaphore's permit count, set by its first user (its permits are lock rows).
//! CREATE TABLE lockhog_semaphores (
//!     namespace BLOB NOT NULL,
//!     name      BLOB NOT NULL,
//!     permits   INTEGER NOT NULL,
//!     PRIMARY KEY (namespace, name)
//! ) WITHOUT ROWID;
//! -- Shared (reader) holders: a leased row per reader, as lockhog_locks has per holder.
//! CREATE TABLE lockhog_readers (
//!     namespace   BLOB NOT NULL,
//!     name        BLOB NOT NULL,
//!     owner       TEXT NOT NULL,
//!     token       INTEGER NOT NULL,
//!     acquired_at INTEGER NOT NULL,
//!     expires_at  INTEGER NOT NULL,
//!     PRIMARY KEY (namespace, name, owner)
//! ) WITHOUT ROWID;
//! ```
//!
//! The tables carry a `lockhog_` prefix so that the lock table can live in an application's
//! own SQLite database without
//! clashing with a `locks` table of the application. Names are stored as BLOBs because SQLite
//! leaves the comparison of TEXT with an embedded NUL undefined; `CAST(name AS TEXT)` shows
//! them in the `sqlite3` shell.

use std::time::Instant;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::db::BUSY_TIMEOUT;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS lockhog_locks (
    namespace   BLOB NOT NULL,
    name        BLOB NOT NULL,
    owner       TEXT NOT NULL,
    token       INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lockhog_fencing (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO lockhog_fencing (id, value) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS lockhog_waiters (
    ticket     INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  BLOB NOT NULL,
    name       BLOB NOT NULL,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lockhog_waiters_by_lock ON lockhog_waiters (namespace, name, ticket);
CREATE TABLE IF NOT EXISTS lockhog_semaphores (
    namespace BLOB NOT NULL,
    name      BLOB NOT NULL,
    permits   INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lockhog_readers (
    namespace   BLOB NOT NULL,
    name        BLOB NOT NULL,
    owner       TEXT NOT NULL,
    token       INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, name, owner)
) WITHOUT ROWID;
";

/// Statements that fail to prepare when a table lacks a column lockhog uses.
const SHAPE: &[&str] = &[
    "SELECT namespace, name, owner, token, acquired_at, expires_at FROM lockhog_locks LIMIT 0",
    "SELECT id, value FROM lockhog_fencing LIMIT 0",
    "SELECT ticket, namespace, name, owner, expires_at FROM lockhog_waiters LIMIT 0",
    "SELECT namespace, name, permits FROM lockhog_semaphores LIMIT 0",
    "SELECT namespace, name, owner, token, acquired_at, expires_at FROM lockhog_readers LIMIT 0",
];

/// What, besides lockhog's table, is named `lockhog_fencing` or fires on it.
const PLANTED: &str = "SELECT group_concat(type || ' ' || name, ', ') FROM sqlite_master \
    WHERE (name = 'lockhog_fencing' AND type <> 'table') \
       OR (type = 'trigger' AND tbl_name = 'lockhog_fencing')";

/// Makes the database ready: refuses a file that is not SQLite (by reading it first, before
/// any write), switches it to WAL mode and creates the tables. Safe to run from many
/// processes at once on a new file: a step that finds the database busy is retried for up to
/// [`BUSY_TIMEOUT`].
pub(super) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    // Reading the schema reads the file's header: a file that is not a database fails here
    // with SQLITE_NOTADB, and nothing has been written to it.
    let _: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    // A trigger (or a view by that name) could rewrite the counter on every bump.
    let planted: Option<String> = conn.query_row(PLANTED, [], |r| r.get(0))?;
    if let Some(what) = planted {
        return Err(refusal(format!(
            "the database has {what} on the fencing counter lockhog_fencing, which lockhog did \
             not create and which could make tokens repeat; use another file"
        )));
    }
    retry_busy(|| {
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Readers never block the writer in WAL mode, and a commit needs one write to the
            // log instead of two to journal and database. The mode stays with the file.
            let now: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !now.eq_ignore_ascii_case("wal") {
                // E.g. a file system without shared memory: the rollback journal is slower
                // but just as correct with IMMEDIATE transactions.
                tracing::warn!(mode = now, "the SQLite database cannot use WAL mode");
            }
        }
        Ok(())
    })?;
    retry_busy(|| {
        let mut conn_tx = unchecked_tx(conn)?;
        conn_tx.execute_batch(CREATE)?;
        conn_tx.commit_now()
    })?;
    for sql in SHAPE {
        conn.prepare(sql).map_err(|e| wrong_shape(sql, e))?;
    }
    Ok(())
}

fn wrong_shape(sql: &str, e: rusqlite::Error) -> rusqlite::Error {
    let table = sql.rsplit("FROM ").next().unwrap_or(sql);
    refusal(format!(
        "the database has a table {} that lockhog did not create ({e}); use another file",
        table.trim_end_matches(" LIMIT 0")
    ))
}

fn refusal(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some(message),
    )
}

/// `BEGIN IMMEDIATE` on a shared `&Connection` (rusqlite's `Transaction` needs `&mut`, which
/// `prepare` does not have).
struct UncheckedTx<'c> {
    conn: &'c Connection,
    open: bool,
}

fn unchecked_tx(conn: &Connection) -> rusqlite::Result<UncheckedTx<'_>> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    Ok(UncheckedTx { conn, open: true })
}

impl UncheckedTx<'_> {
    fn execute_batch(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }
    fn commit_now(mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for UncheckedTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Runs `f` again while it fails with `SQLITE_BUSY` (the busy handler does not cover every
/// step: changing the journal mode can fail at once), up to [`BUSY_TIMEOUT`] in all.
fn retry_busy(mut f: impl FnMut() -> rusqlite::Result<()>) -> rusqlite::Result<()> {
    let started = Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match f() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                // A blocking thread, and the only way to wait for another process's lock:
                // SQLite has no notification across processes.
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The behaviour of every transaction that writes: take the write lock at `BEGIN`, so that
/// the busy handler covers the wait and a read-then-write never fails half-way with
/// `SQLITE_BUSY_SNAPSHOT`.
pub(super) const WRITE: TransactionBehavior = TransactionBehavior::Immediate;
