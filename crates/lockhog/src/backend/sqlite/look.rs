//! What an exclusive attempt reads before it decides: how long the lock is still held (by its
//! exclusive holder or by readers), and who is first in the fair queue.
//!
//! Most names have no reader rows and no queue tickets, so one statement reads the holder's
//! row together with whether the name has any of those; only a name that has some is read in
//! full. A name with none has no reader to wait for, nobody queued ahead, and no dead reader or
//! expired ticket to clear: the attempt needs nothing more.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::acquire::{lease_left, millis, now_ms, Attempt, Queue};
use super::readers;

/// The holder's `(acquired_at, expires_at)` of a name, and whether the name has reader rows
/// and queue tickets, live or not. `acquired_at` and `expires_at` are `NOT NULL`, so a NULL
/// pair means no row.
const LOOK: &str = "SELECT l.acquired_at, l.expires_at, \
     EXISTS (SELECT 1 FROM lockhog_readers r WHERE r.namespace = ?1 AND r.name = ?2), \
     EXISTS (SELECT 1 FROM lockhog_waiters w WHERE w.namespace = ?1 AND w.name = ?2) \
     FROM (SELECT 1) LEFT JOIN lockhog_locks l ON l.namespace = ?1 AND l.name = ?2";

/// What an attempt found.
pub(super) struct Found {
    /// What is left of the longest lease holding the lock: its exclusive holder's or a
    /// live reader's.
    pub(super) holder_left: Option<Duration>,
    /// Live readers hold it.
    pub(super) readers: bool,
    /// The first live ticket of the fair queue.
    pub(super) first: Option<i64>,
    /// The name has reader rows or queue tickets, live or not: only then may there be dead
    /// ones to clear.
    pub(super) crowded: bool,
}

/// Reads, at `now`, what the writer's attempt `a` needs to decide.
pub(super) fn look(conn: &Connection, a: &Attempt, now: i64) -> rusqlite::Result<Found> {
    let (ns, name) = (&a.row.namespace, &a.row.name);
    let (holder, readers, waiters) =
        conn.prepare_cached(LOOK)?
            .query_row(params![ns, name], |r| {
                let (at, until): (Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?);
                Ok((at.zip(until), r.get::<_, bool>(2)?, r.get::<_, bool>(3)?))
            })?;
    let holder_left = lease_left(holder, a.steal_after, now);
    if !readers && !waiters {
        return Ok(Found {
            holder_left,
            readers: false,
            first: None,
            crowded: false,
        });
    }
    let readers_left = readers::readers_left(conn, &a.row, a.steal_after, now)?;
    let first = conn
        .prepare_cached(
            "SELECT ticket FROM lockhog_waiters WHERE namespace = ?1 AND name = ?2 \
             AND expires_at > ?3 ORDER BY ticket LIMIT 1",
        )?
        .query_row(params![ns, name, now], |r| r.get(0))
        .optional()?;
    Ok(Found {
        holder_left: holder_left.max(readers_left),
        readers: readers_left.is_some(),
        first,
        crowded: true,
    })
}

/// `Some((holder's lease left, whether readers hold it))` when a look shows that this
/// attempt cannot take the lock and has nothing to write; `None` when the write transaction
/// must decide.
pub(super) fn busy_at_a_glance(
    conn: &Connection,
    a: &Attempt,
) -> rusqlite::Result<Option<(Option<Duration>, bool)>> {
    let now = now_ms();
    let Found {
        holder_left,
        readers,
        first,
        ..
    } = look(conn, a, now)?;
    let must_write = match a.queue {
        Queue::Outside => holder_left.is_none() && first.is_none(),
        // A first attempt takes the lock or a ticket: both are writes.
        Queue::Join { .. } => true,
        Queue::Ticket { id, ticket_ttl } => {
            let expires_at: Option<i64> = conn
                .prepare_cached("SELECT expires_at FROM lockhog_waiters WHERE ticket = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            match expires_at {
                // Ours ran out: queue again.
                None => true,
                // Refresh it while half its life is left.
                Some(e) if e - now < millis(ticket_ttl) / 2 => true,
                Some(_) => holder_left.is_none() && first == Some(id),
            }
        }
    };
    Ok((!must_write).then_some((holder_left, readers)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rusqlite::{params, Connection, StatementStatus};

    use super::super::acquire::{attempt, now_ms, Attempt, Interest, Outcome, Queue, Row};
    use super::super::db::{Db, Sync};
    use super::{look, Found};
    use crate::name::{LockKey, LockName};

    fn try_for(name: &str) -> Attempt {
        Attempt {
            row: Row::of(&LockKey::new("ns", LockName::new(name).unwrap())),
            owner: "me/1/host".into(),
            ttl: Duration::from_secs(30),
            steal_after: None,
            fenced: true,
            queue: Queue::Outside,
            interest: Interest::default(),
        }
    }

    fn lock_row(c: &Connection, name: &str, table: &str, owner: &str, expires_at: i64) {
        let sql = format!(
            "INSERT INTO {table} (namespace, name, owner, token, acquired_at, expires_at) \
             VALUES (CAST('ns' AS BLOB), CAST(?1 AS BLOB), ?2, 1, ?3, ?4)"
        );
        c.execute(&sql, params![name, owner, now_ms() - 1000, expires_at])
            .unwrap();
    }

    fn ticket(c: &Connection, name: &str, expires_at: i64) -> i64 {
        c.query_row(
            "INSERT INTO lockhog_waiters (namespace, name, owner, expires_at) \
             VALUES (CAST('ns' AS BLOB), CAST(?1 AS BLOB), 'w/2/host', ?2) RETURNING ticket",
            params![name, expires_at],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn found(c: &Connection, name: &str) -> (bool, bool, Option<i64>, bool) {
        let Found {
            holder_left,
            readers,
            first,
            crowded,
        } = look(c, &try_for(name), now_ms()).unwrap();
        (holder_left.is_some(), readers, first, crowded)
    }

    /// The one-statement look tells a name that has only (or no) holder row from one with
    /// reader rows or queue tickets, live or dead, and reads the latter in full.
    #[test]
    fn the_quick_look_sees_holders_readers_and_tickets() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("locks.db"), Sync::Normal).unwrap();
        let (now, later) = (now_ms(), now_ms() + 60_000);
        db.with_conn("testing", |c| {
            assert_eq!(found(c, "free"), (false, false, None, false));
            lock_row(c, "held", "lockhog_locks", "h/1/host", later);
            assert_eq!(found(c, "held"), (true, false, None, false));
            lock_row(c, "expired", "lockhog_locks", "h/1/host", now - 1);
            assert_eq!(found(c, "expired"), (false, false, None, false));
            lock_row(c, "read", "lockhog_readers", "r/1/host", later);
            assert_eq!(found(c, "read"), (true, true, None, true));
            lock_row(c, "dead-reader", "lockhog_readers", "r/1/host", now - 1);
            assert_eq!(found(c, "dead-reader"), (false, false, None, true));
            let first = ticket(c, "queued", later);
            assert_eq!(found(c, "queued"), (false, false, Some(first), true));
            ticket(c, "gone", now - 1);
            assert_eq!(found(c, "gone"), (false, false, None, true));
            // Another name's rows are not this one's.
            assert_eq!(found(c, "free"), (false, false, None, false));
            Ok(())
        })
        .unwrap();
    }

    /// The cached look is compiled once: looking at other names (other bound values) runs
    /// the same compiled statement instead of parsing and planning it again at every step.
    #[test]
    fn the_look_is_not_compiled_again_for_each_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("locks.db"), Sync::Normal).unwrap();
        db.with_conn("testing", |c| {
            for name in ["a", "b", "c", "a"] {
                found(c, name);
            }
            let recompiled = c
                .prepare_cached(super::LOOK)?
                .get_status(StatementStatus::RePrepare);
            assert_eq!(
                recompiled, 0,
                "the look was compiled again {recompiled} times"
            );
            Ok(())
        })
        .unwrap();
    }

    /// Taking a lock still clears the name's expired ticket and dead reader.
    #[tokio::test]
    async fn taking_a_lock_clears_dead_tickets_and_readers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path().join("locks.db"), Sync::Normal).unwrap());
        let now = now_ms();
        let outcome = db
            .with_conn("testing", |c| {
                lock_row(c, "x", "lockhog_readers", "r/1/host", now - 1);
                ticket(c, "x", now - 1);
                attempt(&db, c, try_for("x"), tokio::runtime::Handle::current())
            })
            .unwrap();
        let Outcome::Acquired { mut claim, token } = outcome else {
            panic!("the lock was free");
        };
        claim.disarm();
        assert!(token.is_some());
        let left: i64 = db
            .with_conn("testing", |c| {
                c.query_row(
                    "SELECT (SELECT count(*) FROM lockhog_readers) \
                     + (SELECT count(*) FROM lockhog_waiters)",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(left, 0, "the dead reader and the expired ticket are gone");
    }
}
