//! A semaphore's permit count in SQLite: one row of `lockhog_semaphores`, inserted by the
//! first user and compared by every later one, in one write transaction. Its permits are slot
//! locks (see [`crate::backend::slots`]), ordinary leased rows of `lockhog_locks`.

use rusqlite::{params, Connection};

use super::acquire::Row;
use super::schema::WRITE;

/// Inserts `permits` for `row` unless a count is there, and returns the count stored.
pub(super) fn record(c: &mut Connection, row: &Row, permits: u32) -> rusqlite::Result<i64> {
    let tx = c.transaction_with_behavior(WRITE)?;
    tx.execute(
        "INSERT OR IGNORE INTO lockhog_semaphores (namespace, name, permits) VALUES (?1, ?2, ?3)",
        params![row.namespace, row.name, permits],
    )?;
    let recorded = tx.query_row(
        "SELECT permits FROM lockhog_semaphores WHERE namespace = ?1 AND name = ?2",
        params![row.namespace, row.name],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(recorded)
}
