//! `status` (the rows of a namespace: who holds what, with which token, for how much longer)
//! and `cleanup` (delete expired rows and dead waiters' tickets).

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::acquire::{now_ms, Row};
use crate::backend::owner::describe_owner;
use crate::backend::{CleanupReport, LockState};

/// The owner column as text, whatever another program may have written there.
fn owner_text(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        other => format!("{other:?}"),
    }
}

/// One row as status reads it, before it becomes a [`LockStatus`](crate::LockStatus).
#[derive(Debug)]
pub(super) struct RowStatus {
    pub(super) name: Vec<u8>,
    pub(super) state: LockState,
    pub(super) holder: Option<String>,
}

fn describe(
    owner: &str,
    token: i64,
    expires_at: i64,
    now: i64,
    queued: i64,
) -> (LockState, String) {
    let who = describe_owner(owner.as_bytes());
    let mut text = if expires_at > now {
        format!("{who} token {token} lease {}ms", expires_at - now)
    } else {
        // Listed so that `status` shows what `cleanup` would remove; free to acquire.
        format!(
            "expired {}ms ago, was {who} token {token}",
            now - expires_at
        )
    };
    if queued > 0 {
        text.push_str(&format!(" queued {queued}"));
    }
    let state = if expires_at > now {
        LockState::Held
    } else {
        LockState::Free
    };
    (state, text)
}

fn queued(conn: &Connection, ns: &[u8], name: &[u8], now: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM lockhog_waiters WHERE namespace = ?1 AND name = ?2 AND expires_at > ?3",
    )?
    .query_row(params![ns, name, now], |r| r.get(0))
}

/// Adds the live readers of `name` to a lock's state and holder: held, and each reader
/// described after the exclusive holder (an expired one, when there is one).
fn with_readers(
    conn: &Connection,
    ns: &[u8],
    name: &[u8],
    now: i64,
    (state, holder): (LockState, Option<String>),
) -> rusqlite::Result<(LockState, Option<String>)> {
    let readers = super::readers::describe(conn, ns, name, now)?;
    if readers.is_empty() {
        return Ok((state, holder));
    }
    let all: Vec<String> = holder.into_iter().chain(readers).collect();
    Ok((LockState::Held, Some(all.join("; "))))
}

/// The live fair waiters queued for `row`.
pub(super) fn waiting(conn: &Connection, row: &Row) -> rusqlite::Result<u64> {
    Ok(queued(conn, &row.namespace, &row.name, now_ms())?.max(0) as u64)
}

/// The rows of `rows`, or every row of `namespace` (held first by name, then expired ones)
/// when `rows` is empty.
pub(super) fn status(
    conn: &Connection,
    namespace: &str,
    rows: &[Row],
) -> rusqlite::Result<Vec<RowStatus>> {
    let now = now_ms();
    let mut out = Vec::new();
    if rows.is_empty() {
        let mut stmt = conn.prepare_cached(
            "SELECT name, owner, token, expires_at FROM lockhog_locks WHERE namespace = ?1 \
             ORDER BY name",
        )?;
        let found = stmt
            .query_map(params![namespace.as_bytes()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    owner_text(r.get_ref(1)?),
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let ns = namespace.as_bytes();
        for (name, owner, token, expires_at) in found {
            let q = queued(conn, ns, &name, now)?;
            let (state, holder) = describe(&owner, token, expires_at, now, q);
            let (state, holder) = with_readers(conn, ns, &name, now, (state, Some(holder)))?;
            out.push(RowStatus {
                name,
                state,
                holder,
            });
        }
        // Names held only by readers.
        let read_only: Vec<Vec<u8>> = conn
            .prepare_cached(
                "SELECT DISTINCT name FROM lockhog_readers r WHERE namespace = ?1 \
                 AND expires_at > ?2 AND NOT EXISTS (SELECT 1 FROM lockhog_locks l \
                 WHERE l.namespace = r.namespace AND l.name = r.name) ORDER BY name",
            )?
            .query_map(params![ns, now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for name in read_only {
            let (state, holder) = with_readers(conn, ns, &name, now, (LockState::Free, None))?;
            out.push(RowStatus {
                name,
                state,
                holder,
            });
        }
        return Ok(out);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT owner, token, expires_at FROM lockhog_locks WHERE namespace = ?1 AND name = ?2",
    )?;
    for row in rows {
        let found = stmt
            .query_row(params![row.namespace, row.name], |r| {
                Ok((
                    owner_text(r.get_ref(0)?),
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let q = queued(conn, &row.namespace, &row.name, now)?;
        let (state, holder) = match found {
            Some((owner, token, expires_at)) => {
                let (state, text) = describe(&owner, token, expires_at, now, q);
                (state, Some(text))
            }
            None if q > 0 => (LockState::Free, Some(format!("queued {q}"))),
            None => (LockState::Free, None),
        };
        let (state, holder) = with_readers(conn, &row.namespace, &row.name, now, (state, holder))?;
        out.push(RowStatus {
            name: row.name.clone(),
            state,
            holder,
        });
    }
    Ok(out)
}

/// Deletes the namespace's expired rows and dead waiters' tickets, in one transaction.
/// Rows whose lease is live stay, even when older than `steal_after`: cleanup never takes a
/// lock from a holder that is still renewing it.
pub(super) fn cleanup(conn: &mut Connection, namespace: &str) -> rusqlite::Result<CleanupReport> {
    let tx = conn.transaction_with_behavior(super::schema::WRITE)?;
    let now = now_ms();
    let ns = namespace.as_bytes();
    let locks = tx.execute(
        "DELETE FROM lockhog_locks WHERE namespace = ?1 AND expires_at <= ?2",
        params![ns, now],
    )?;
    let tickets = tx.execute(
        "DELETE FROM lockhog_waiters WHERE namespace = ?1 AND expires_at <= ?2",
        params![ns, now],
    )?;
    let readers = tx.execute(
        "DELETE FROM lockhog_readers WHERE namespace = ?1 AND expires_at <= ?2",
        params![ns, now],
    )?;
    let kept: i64 = tx.query_row(
        "SELECT count(*) FROM lockhog_locks WHERE namespace = ?1",
        params![ns],
        |r| r.get(0),
    )?;
    tx.commit()?;
    tracing::debug!(locks, tickets, readers, kept, "sqlite cleanup");
    Ok(CleanupReport::new(
        (locks + tickets + readers) as u64,
        kept.max(0) as u64,
    ))
}
