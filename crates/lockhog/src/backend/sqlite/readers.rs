//! Shared (reader) locks in SQLite: one leased row per reader in `lockhog_readers`, renewed,
//! released and expiring exactly as an exclusive holder's row of `lockhog_locks` is.
//!
//! - A **reader** takes the lock when no live exclusive row holds it and no fair waiter is
//!   queued for it (writers that wait behind readers queue there, see below): it deletes the
//!   name's dead reader rows, bumps the fencing counter and inserts its own row, in one
//!   `BEGIN IMMEDIATE` transaction.
//! - A **writer** treats live reader rows as holders, as it does an exclusive row, and
//!   deletes dead ones (expired, or older than `steal_after`) when it takes the lock: a
//!   reader whose row was taken away learns it at its next renewal.
//! - **Writer priority**: a writer that waits while readers hold takes a ticket in the fair
//!   queue (`lockhog_waiters`), and readers never overtake a queued waiter, so the readers
//!   that come after it wait for it.
//!
//! Every statement binds the namespace, name and owner as parameters.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use tokio::runtime::Handle;

use super::acquire::{exclusive_holder, lease_left, millis, now_ms, Attempt, Claim, Outcome, Row};
use super::db::Db;
use super::schema::WRITE;
use crate::backend::owner::describe_owner;

/// What is left of the longest lease among the live readers of `row` at `now` (readers older
/// than `steal_after` do not count); `None` when no reader holds it.
pub(super) fn readers_left(
    conn: &Connection,
    row: &Row,
    steal_after: Option<Duration>,
    now: i64,
) -> rusqlite::Result<Option<Duration>> {
    let mut stmt = conn.prepare_cached(
        "SELECT acquired_at, expires_at FROM lockhog_readers \
         WHERE namespace = ?1 AND name = ?2 AND expires_at > ?3",
    )?;
    let rows = stmt.query_map(params![row.namespace, row.name, now], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut longest = None;
    for r in rows {
        longest = longest.max(lease_left(Some(r?), steal_after, now));
    }
    Ok(longest)
}

/// `who shared token T lease Nms` for each live reader of `name` in namespace `ns`, oldest
/// first: what `status` adds to a lock's holder.
pub(super) fn describe(
    conn: &Connection,
    ns: &[u8],
    name: &[u8],
    now: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT owner, token, expires_at FROM lockhog_readers \
         WHERE namespace = ?1 AND name = ?2 AND expires_at > ?3 ORDER BY token",
    )?;
    let rows = stmt.query_map(params![ns, name, now], |r| {
        let owner = match r.get_ref(0)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
            _ => Vec::new(),
        };
        Ok((owner, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })?;
    rows.map(|r| {
        let (owner, token, expires_at) = r?;
        Ok(format!(
            "{} shared token {token} lease {}ms",
            describe_owner(&owner),
            expires_at - now
        ))
    })
    .collect()
}

/// Deletes the reader rows of `row` that no longer hold it: expired, or (for a writer with
/// `steal_after`) acquired longer ago than that.
pub(super) fn forget_dead_readers(
    conn: &Connection,
    row: &Row,
    steal_after: Option<Duration>,
    now: i64,
) -> rusqlite::Result<()> {
    let stale_before = steal_after.map_or(i64::MIN, |s| now - millis(s));
    conn.prepare_cached(
        "DELETE FROM lockhog_readers WHERE namespace = ?1 AND name = ?2 \
         AND (expires_at <= ?3 OR acquired_at <= ?4)",
    )?
    .execute(params![row.namespace, row.name, now, stale_before])?;
    Ok(())
}

/// The exclusive holder's lease left and whether a fair waiter is queued: what keeps a reader
/// out.
fn blocked(conn: &Connection, a: &Attempt, now: i64) -> rusqlite::Result<(Option<Duration>, bool)> {
    let (ns, name) = (&a.row.namespace, &a.row.name);
    let holder = exclusive_holder(conn, &a.row)?;
    let queued: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM lockhog_waiters \
             WHERE namespace = ?1 AND name = ?2 AND expires_at > ?3)",
        )?
        .query_row(params![ns, name, now], |r| r.get(0))?;
    Ok((lease_left(holder, a.steal_after, now), queued))
}

/// One reader's attempt (see the module docs). Blocking. A look without the write lock comes
/// first, as for a writer.
pub(super) fn attempt(
    db: &Arc<Db>,
    conn: &mut Connection,
    a: Attempt,
    runtime: Handle,
) -> rusqlite::Result<Outcome> {
    let busy = |holder_left| Outcome::Busy {
        new_ticket: None,
        holder_left,
        readers: false,
    };
    let (holder_left, queued) = blocked(conn, &a, now_ms())?;
    if holder_left.is_some() || queued {
        return Ok(busy(holder_left));
    }
    let _turn = db.writer();
    let tx = conn.transaction_with_behavior(WRITE)?;
    let now = now_ms();
    let (holder_left, queued) = blocked(&tx, &a, now)?;
    if holder_left.is_some() || queued || !a.interest.commit() {
        return Ok(busy(holder_left));
    }
    forget_dead_readers(&tx, &a.row, None, now)?;
    let token: i64 = if a.fenced {
        super::acquire::next_token(&tx)?
    } else {
        0
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO lockhog_readers \
         (namespace, name, owner, token, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        a.row.namespace,
        a.row.name,
        a.owner,
        token,
        now,
        now + millis(a.ttl)
    ])?;
    tx.commit()?;
    Ok(Outcome::Acquired {
        claim: Claim::new(db.clone(), a.row, a.owner, runtime),
        token: a.fenced.then(|| u64::try_from(token).unwrap_or(0)),
    })
}
