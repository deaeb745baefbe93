//! The transactions that take, renew and give back a lock row, and the fair queue.
//!
//! Every statement binds the namespace, name and owner as parameters; nothing from outside is
//! ever spliced into SQL.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::runtime::Handle;

use super::db::Db;
use super::look::{busy_at_a_glance, look, Found};
use super::readers;
use super::schema::WRITE;
use crate::name::LockKey;

/// Wall-clock UNIX milliseconds: the one clock every process sharing the file can compare
/// (each process's monotonic clock is its own). See the module docs for what a clock jump does.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The primary key of a lock row (with the owner, of a reader's row), and which table it is
/// in.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) namespace: Vec<u8>,
    pub(super) name: Vec<u8>,
    /// A reader's row of `lockhog_readers` rather than one of `lockhog_locks`.
    pub(super) shared: bool,
}

impl Row {
    pub(super) fn of(key: &LockKey) -> Row {
        Row {
            namespace: key.namespace().as_bytes().to_vec(),
            name: key.name().as_str().as_bytes().to_vec(),
            shared: false,
        }
    }

    /// The row of a shared (reader) lock of `key`.
    pub(super) fn reader(key: &LockKey) -> Row {
        Row {
            shared: true,
            ..Row::of(key)
        }
    }
}

/// A lock row of ours. Dropped without [`Claim::disarm`], it deletes the row in the
/// background: so an acquire whose caller went away, or a guard dropped without `release`,
/// leaves nothing held.
pub(super) struct Claim {
    pub(super) db: Arc<Db>,
    pub(super) row: Row,
    pub(super) owner: String,
    runtime: Handle,
    armed: bool,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("name", &String::from_utf8_lossy(&self.row.name))
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Claim {
    /// Our row, just written: deleted in the background unless disarmed.
    pub(super) fn new(db: Arc<Db>, row: Row, owner: String, runtime: Handle) -> Claim {
        Claim {
            db,
            row,
            owner,
            runtime,
            armed: true,
        }
    }

    /// Keeps the row: the caller now gives it back itself.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (db, row, owner) = (
            self.db.clone(),
            self.row.clone(),
            std::mem::take(&mut self.owner),
        );
        // Never blocks: the delete runs on the blocking pool. If the runtime is gone, the
        // lease runs out instead.
        drop(self.runtime.spawn_blocking(move || {
            let turn = db.writer();
            let deleted = db.with_conn("releasing a dropped lock", |c| delete(c, &row, &owner));
            drop(turn);
            match deleted {
                Ok(_) => db.notify_released(),
                Err(f) => tracing::debug!(error = %f.error, "release on drop failed; the lease will run out"),
            }
        }));
    }
}

/// A fair waiter's place in the queue. Dropped without [`Ticket::disarm`], it leaves the
/// queue in the background.
pub(super) struct Ticket {
    db: Arc<Db>,
    row: Row,
    pub(super) id: i64,
    runtime: Handle,
    armed: bool,
}

impl Ticket {
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (db, row, id) = (self.db.clone(), self.row.clone(), self.id);
        drop(self.runtime.spawn_blocking(move || {
            let turn = db.writer();
            let _ = db.with_conn("leaving the queue", |c| leave_queue(c, &row, id));
            drop(turn);
            // The next in line may be in this process.
            db.notify_released();
        }));
    }
}

/// What one attempt asks.
pub(super) struct Attempt {
    pub(super) row: Row,
    pub(super) owner: String,
    pub(super) ttl: Duration,
    /// A lock acquired longer ago than this counts as free, even if its lease is renewed.
    pub(super) steal_after: Option<Duration>,
    /// Draw a fencing token (false when the request opted out: the row's token is then 0).
    pub(super) fenced: bool,
    pub(super) queue: Queue,
    pub(super) interest: Interest,
}

/// Whether the caller of an attempt still waits for it. The attempt runs on another thread
/// and outlives a caller that drops its future; when the caller is gone before the attempt
/// commits, the attempt takes nothing (no lock, no ticket). Once the attempt has started to
/// commit, what it took is given back in the background when its result is dropped.
#[derive(Clone, Debug, Default)]
pub(super) struct Interest(Arc<AtomicU8>);

const WAITING: u8 = 0;
const COMMITTING: u8 = 1;
const GONE: u8 = 2;

impl Interest {
    /// The attempt's go-ahead for a commit that takes something: false when the caller went
    /// away (the attempt then rolls back).
    pub(super) fn commit(&self) -> bool {
        self.0
            .compare_exchange(WAITING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The caller is gone (or done): no commit starts after this.
    pub(super) fn abandon(&self) {
        let _ = self
            .0
            .compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Where an attempt stands in the fair queue.
pub(super) enum Queue {
    /// Not a fair waiter (an unfair request, or a fair one that tries once): take the lock
    /// only when it is free and nobody is queued for it.
    Outside,
    /// A fair waiter without a ticket yet: take a ticket if the lock cannot be had now.
    Join { ticket_ttl: Duration },
    /// A fair waiter holding ticket `id`: refresh it, and take the lock once it is first.
    Ticket { id: i64, ticket_ttl: Duration },
}

/// How an attempt went.
pub(super) enum Outcome {
    Acquired {
        claim: Claim,
        token: Option<u64>,
    },
    Busy {
        /// A ticket this attempt took (a first one, or a new one after ours ran out).
        new_ticket: Option<Ticket>,
        /// How long the holder's lease has left, when the lock is held.
        holder_left: Option<Duration>,
        /// Readers hold the lock (a writer that waits then queues, see `readers.rs`).
        readers: bool,
    },
}

/// One attempt. Blocking.
///
/// It first looks without the write lock: most attempts of a waiter find the lock held, and a
/// read in WAL mode takes no lock, writes nothing (no sync) and never waits. Only when the
/// lock looks free to us, or our queue ticket needs writing, does it run the real attempt in a
/// `BEGIN IMMEDIATE` transaction, which checks everything again.
pub(super) fn attempt(
    db: &Arc<Db>,
    conn: &mut Connection,
    a: Attempt,
    runtime: Handle,
) -> rusqlite::Result<Outcome> {
    if a.row.shared {
        return super::readers::attempt(db, conn, a, runtime);
    }
    if let Some((holder_left, readers)) = busy_at_a_glance(conn, &a)? {
        return Ok(Outcome::Busy {
            new_ticket: None,
            holder_left,
            readers,
        });
    }
    let _turn = db.writer();
    let tx = conn.transaction_with_behavior(WRITE)?;
    let now = now_ms();
    let (ns, name) = (&a.row.namespace, &a.row.name);
    let Found {
        holder_left,
        readers,
        first,
        crowded,
    } = look(&tx, &a, now)?;
    if crowded {
        // Forget waiters whose ticket ran out (they died or stopped polling): `first` is
        // already the first of the others.
        tx.prepare_cached(
            "DELETE FROM lockhog_waiters WHERE namespace = ?1 AND name = ?2 AND expires_at <= ?3",
        )?
        .execute(params![ns, name, now])?;
    }

    let mut new_ticket = None;
    let mine = match a.queue {
        Queue::Outside => None,
        Queue::Join { ticket_ttl } => {
            if holder_left.is_none() && first.is_none() {
                None // free and nobody queued: no need to queue
            } else {
                let id = join_queue(&tx, &a, now + millis(ticket_ttl))?;
                new_ticket = Some(id);
                Some(id)
            }
        }
        Queue::Ticket { id, ticket_ttl } => {
            let refreshed = tx
                .prepare_cached("UPDATE lockhog_waiters SET expires_at = ?2 WHERE ticket = ?1")?
                .execute(params![id, now + millis(ticket_ttl)])?;
            if refreshed == 1 {
                Some(id)
            } else {
                // Our ticket ran out (this waiter did not poll in time) and was forgotten:
                // queue again, at the back.
                let id = join_queue(&tx, &a, now + millis(ticket_ttl))?;
                new_ticket = Some(id);
                Some(id)
            }
        }
    };
    // Fair waiters go first: the lock is ours only when it is free and nobody is queued, or
    // we are first in the queue (a ticket taken just now is last: first only when alone).
    let head = first.or(new_ticket);
    let can_take = holder_left.is_none() && (head.is_none() || head == mine);
    if !can_take {
        if new_ticket.is_some() && !a.interest.commit() {
            // The waiter went away: no ticket for it (dropping `tx` rolls back).
            return Ok(Outcome::Busy {
                new_ticket: None,
                holder_left,
                readers,
            });
        }
        tx.commit()?;
        return Ok(Outcome::Busy {
            new_ticket: new_ticket.map(|id| Ticket {
                db: db.clone(),
                row: a.row.clone(),
                id,
                runtime,
                armed: true,
            }),
            holder_left,
            readers,
        });
    }
    if !a.interest.commit() {
        // The caller went away before the lock was taken: take nothing.
        return Ok(Outcome::Busy {
            new_ticket: None,
            holder_left: None,
            readers: false,
        });
    }
    if let Some(id) = mine {
        leave_queue(&tx, &a.row, id)?;
    }
    if crowded {
        // Readers that no longer hold it (a stale one learns at its next renewal).
        readers::forget_dead_readers(&tx, &a.row, a.steal_after, now)?;
    }
    let token: i64 = if a.fenced { next_token(&tx)? } else { 0 };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO lockhog_locks \
         (namespace, name, owner, token, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![ns, name, a.owner, token, now, now + millis(a.ttl)])?;
    tx.commit()?;
    Ok(Outcome::Acquired {
        claim: Claim::new(db.clone(), a.row, a.owner, runtime),
        token: a.fenced.then(|| u64::try_from(token).unwrap_or(0)),
    })
}

/// Bumps the fencing counter and returns the new token (inside the caller's transaction).
///
/// An `UPDATE` and a read rather than one upsert with `RETURNING`: SQLite gathers the rows a
/// `RETURNING` clause returns in a temporary table, built and freed on every acquire.
pub(super) fn next_token(conn: &Connection) -> rusqlite::Result<i64> {
    let bumped = conn
        .prepare_cached("UPDATE lockhog_fencing SET value = value + 1 WHERE id = 1")?
        .execute([])?;
    if bumped == 0 {
        // The row is created with the table; only a hand-edited database lacks it.
        conn.prepare_cached("INSERT INTO lockhog_fencing (id, value) VALUES (1, 1)")?
            .execute([])?;
    }
    conn.prepare_cached("SELECT value FROM lockhog_fencing WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// What is left of the lease of a holder `(acquired_at, expires_at)` at `now`; `None` when
/// there is no holder, its lease ran out, or it is older than `steal_after`.
pub(super) fn lease_left(
    holder: Option<(i64, i64)>,
    steal_after: Option<Duration>,
    now: i64,
) -> Option<Duration> {
    let (acquired_at, expires_at) = holder?;
    let stale = steal_after.is_some_and(|s| acquired_at.saturating_add(millis(s)) <= now);
    (expires_at > now && !stale).then(|| Duration::from_millis((expires_at - now) as u64))
}

/// The exclusive holder's `(acquired_at, expires_at)` of `row`, live or not.
pub(super) fn exclusive_holder(
    conn: &Connection,
    row: &Row,
) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT acquired_at, expires_at FROM lockhog_locks WHERE namespace = ?1 AND name = ?2",
    )?
    .query_row(params![row.namespace, row.name], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

fn join_queue(conn: &Connection, a: &Attempt, expires_at: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO lockhog_waiters (namespace, name, owner, expires_at) VALUES (?1, ?2, ?3, ?4) \
         RETURNING ticket",
    )?
    .query_row(
        params![a.row.namespace, a.row.name, a.owner, expires_at],
        |r| r.get(0),
    )
}

/// Removes ticket `id` from the queue of `row`.
pub(super) fn leave_queue(conn: &Connection, row: &Row, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM lockhog_waiters WHERE ticket = ?1 AND namespace = ?2 AND name = ?3",
    )?
    .execute(params![id, row.namespace, row.name])?;
    Ok(())
}

/// Deletes the row if it is still `owner`'s; true when it was.
pub(super) fn delete(conn: &Connection, row: &Row, owner: &str) -> rusqlite::Result<bool> {
    let sql = if row.shared {
        "DELETE FROM lockhog_readers WHERE namespace = ?1 AND name = ?2 AND owner = ?3"
    } else {
        "DELETE FROM lockhog_locks WHERE namespace = ?1 AND name = ?2 AND owner = ?3"
    };
    let n = conn
        .prepare_cached(sql)?
        .execute(params![row.namespace, row.name, owner])?;
    Ok(n == 1)
}

/// Moves the row's expiry to `ttl` from now if it is still `owner`'s; true when it was.
pub(super) fn renew(
    conn: &Connection,
    row: &Row,
    owner: &str,
    ttl: Duration,
) -> rusqlite::Result<bool> {
    let sql = if row.shared {
        "UPDATE lockhog_readers SET expires_at = ?4 \
         WHERE namespace = ?1 AND name = ?2 AND owner = ?3"
    } else {
        "UPDATE lockhog_locks SET expires_at = ?4 \
         WHERE namespace = ?1 AND name = ?2 AND owner = ?3"
    };
    let n = conn.prepare_cached(sql)?.execute(params![
        row.namespace,
        row.name,
        owner,
        now_ms() + millis(ttl)
    ])?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::super::db::{Db, Sync};
    use super::next_token;

    /// Each token is the last plus one, and a counter row deleted by hand is made again.
    #[test]
    fn tokens_count_up_and_survive_a_deleted_counter_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("locks.db"), Sync::Normal).unwrap();
        let tokens = db
            .with_conn("testing", |c| {
                let mut tokens = vec![next_token(c)?, next_token(c)?];
                c.execute("DELETE FROM lockhog_fencing", [])?;
                tokens.push(next_token(c)?);
                tokens.push(next_token(c)?);
                Ok(tokens)
            })
            .unwrap();
        assert_eq!(tokens, [1, 2, 1, 2]);
    }
}
