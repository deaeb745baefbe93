//! The database file: opening it safely, a small pool of connections used from blocking
//! threads (the deadpool way: the synchronous client is wrapped, not reimplemented), and how
//! SQLite's errors become lockhog's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::Notify;

use super::lease::Renewals;
pub(super) use super::sync::Sync;
use super::worker::{Job, Worker};
use super::{schema, trust};
use crate::error::Error;

pub(super) const SCHEME: &str = "sqlite";

/// How long one statement waits for another connection's write transaction (SQLite's busy
/// handler) before giving up with `SQLITE_BUSY`. Lock transactions last well under a
/// millisecond, so only a connection that keeps the database locked (an open `BEGIN
/// EXCLUSIVE` in the `sqlite3` shell, a stuck process) makes a statement wait this long.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most connections one backend has open at once. A burst (every lease of a process
/// renewed in the same second, thousands of guards dropped together) waits for a free
/// connection instead of opening one per operation, so descriptors and memory stay flat; the
/// process's writes are serialised by [`Db::writer`] anyway.
pub(super) const MAX_CONNECTIONS: usize = 8;

/// A failed database operation: the error to report, and whether it was only
/// `SQLITE_BUSY` (the database stayed locked for [`BUSY_TIMEOUT`]), which a waiter retries
/// within its own bound instead of failing.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) busy: bool,
    pub(super) error: Error,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        f.error
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure { busy: false, error }
    }
}

/// One database file, opened by one backend.
pub(super) struct Db {
    path: PathBuf,
    sync: Sync,
    pool: Mutex<Pool>,
    /// Signalled when a connection goes back to the pool or is closed.
    returned: Condvar,
    /// Bounds the operations running at once, so a burst queues here rather than occupying a
    /// blocking thread each while it waits for a connection.
    running: Arc<tokio::sync::Semaphore>,
    shared: Arc<Shared>,
    /// The backend's own thread for its operations.
    worker: Worker,
}

/// The connections not in use, and how many are open in all (in use or not).
struct Pool {
    idle: Vec<Connection>,
    open: usize,
}

/// What every backend of this process on the same file shares.
#[derive(Default)]
struct Shared {
    /// Woken on every release made by this process, so that waiters of this process (all
    /// lockers on this file) try again at once instead of at their next poll.
    released: Notify,
    /// Taken around every write transaction of this process: writers of one process queue
    /// here, and are let in the moment the previous one commits, instead of sleeping in
    /// SQLite's busy handler. Only writers of other processes meet the busy handler.
    writer: Mutex<()>,
    /// Lease renewals waiting to be committed together.
    renewals: Renewals,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// The shared state of each database file of this process.
static SHARED: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = LazyLock::new(Default::default);

fn shared(path: &Path) -> Arc<Shared> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut map = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(n) = map.get(&key).and_then(Weak::upgrade) {
        return n;
    }
    let n = Arc::new(Shared::default());
    map.insert(key, Arc::downgrade(&n));
    n
}

impl Db {
    /// Opens (creating when missing) the database file at `path` and makes sure it holds
    /// lockhog's tables. Blocking.
    ///
    /// The parent directory must exist: a mistyped path is an error, not a new directory
    /// tree (SQLite's own shell behaves the same). A file that is not a SQLite database is
    /// refused before anything is written to it.
    pub(super) fn open(path: PathBuf, sync: Sync) -> Result<Db, Error> {
        let shown = path.display().to_string();
        let parent = path.parent().unwrap_or(Path::new("/"));
        match std::fs::metadata(parent) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::backend(
                    SCHEME,
                    format!("{} is not a directory", parent.display()),
                ))
            }
            Err(e) => {
                return Err(Error::backend_io(
                    SCHEME,
                    format!(
                        "the directory of the database {shown} cannot be used (lockhog does not \
                         create it)"
                    ),
                    e,
                ))
            }
        }
        if path.is_dir() {
            return Err(Error::backend(
                SCHEME,
                format!("{shown} is a directory, not a database file"),
            ));
        }
        // Before SQLite reads the files (opening them replays a -wal log, and as root it
        // gives the log to the database's owner), and again once the file surely exists.
        trust::check_files(&path)?;
        let conn =
            connect(&path, true, sync).map_err(|e| describe(&path, "cannot open", e).error)?;
        trust::check_files(&path)?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(Error::backend(
                SCHEME,
                format!("{shown} can only be read by this user; locks need to write to it"),
            ));
        }
        schema::prepare(&conn).map_err(|e| describe(&path, "cannot prepare", e).error)?;
        Ok(Db {
            sync,
            shared: shared(&path),
            pool: Mutex::new(Pool {
                idle: vec![conn],
                open: 1,
            }),
            returned: Condvar::new(),
            running: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
            worker: Worker::start(),
            path,
        })
    }

    /// The database file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Wakes this process's waiters on this file.
    pub(super) fn notify_released(&self) {
        self.shared.released.notify_waiters();
    }

    /// The notifier [`Db::notify_released`] wakes.
    pub(super) fn released(&self) -> &Notify {
        &self.shared.released
    }

    /// The lease renewals of this process on this file, queued for their next commit.
    pub(super) fn renewals(&self) -> &Renewals {
        &self.shared.renewals
    }

    /// This process's turn to write to the file; hold it for the whole write transaction.
    /// Blocking.
    pub(super) fn writer(&self) -> MutexGuard<'_, ()> {
        self.shared.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a pooled connection, on the calling (blocking) thread.
    pub(super) fn with_conn<T>(
        &self,
        doing: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Failure> {
        let mut conn = match self.take_conn() {
            Some(c) => c,
            // The file exists now: never create it again (a deleted database is an error,
            // not a silently empty lock table).
            None => match connect(&self.path, false, self.sync) {
                Ok(c) => c,
                Err(e) => {
                    self.put_back(None);
                    return Err(describe(&self.path, doing, e));
                }
            },
        };
        let out = f(&mut conn);
        // A connection left inside a transaction (an error half-way) is closed, which rolls
        // the transaction back; others go back to the pool.
        self.put_back(conn.is_autocommit().then_some(conn));
        out.map_err(|e| describe(&self.path, doing, e))
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, or `None` with a place reserved to open one; waits while
    /// [`MAX_CONNECTIONS`] are open and all in use. Blocking.
    fn take_conn(&self) -> Option<Connection> {
        let mut pool = self.pool();
        loop {
            if let Some(c) = pool.idle.pop() {
                return Some(c);
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                return None;
            }
            pool = self.returned.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Gives a connection back, or (`None`) the place of one that was closed or never opened.
    fn put_back(&self, conn: Option<Connection>) {
        let mut pool = self.pool();
        match conn {
            Some(c) => pool.idle.push(c),
            None => pool.open -= 1,
        }
        drop(pool);
        self.returned.notify_one();
    }

    /// How many connections are open now (for tests of the bound).
    #[cfg(test)]
    pub(super) fn open_connections(&self) -> usize {
        self.pool().open
    }

    /// [`Db::call`] for an operation that writes, in this process's writer queue.
    pub(super) async fn call_write<T, F>(
        self: &Arc<Self>,
        doing: &'static str,
        f: F,
    ) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        self.call(doing, move |c| {
            let _turn = db.writer();
            f(c)
        })
        .await
    }

    /// Runs `f` on a pooled connection, on this backend's own thread when it is free (see
    /// `worker.rs`), else on tokio's blocking pool.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not stop `f`: it runs to its end and its result is dropped.
    /// Results that own something in the database (a claimed row, a queue ticket) give it
    /// back when dropped, so an abandoned call leaves nothing behind.
    pub(super) async fn call<T, F>(
        self: &Arc<Self>,
        doing: &'static str,
        f: F,
    ) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        // Held until the operation ends, even when this future is dropped first.
        let running = self.running.clone().acquire_owned().await;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |done: &dyn Fn()| {
            let out = db.with_conn(doing, f);
            drop(running);
            done();
            // The caller may be gone: the result is then dropped here.
            let _ = answer.send(out);
        });
        if let Err(job) = self.worker.offer(job) {
            // The thread is busy with another operation.
            drop(tokio::task::spawn_blocking(move || job(&|| {})));
        }
        answered.await.unwrap_or_else(|_| {
            Err(Failure::from(Error::backend(
                SCHEME,
                format!("{doing}: the database operation failed (it panicked)"),
            )))
        })
    }
}

/// SQLite's busy handler, for a write lock held by another process: tries again after 50 us,
/// doubling up to 2 ms, for [`BUSY_TIMEOUT`] in all. (SQLite's own `busy_timeout` sleeps up
/// to 100 ms between tries, which is most of a handoff's time when processes contend.)
fn busy_handler() -> impl FnMut(i32) -> bool + Send + 'static {
    let mut started = std::time::Instant::now();
    move |count| {
        if count == 0 {
            started = std::time::Instant::now();
        } else if started.elapsed() >= BUSY_TIMEOUT {
            return false;
        }
        let pause = Duration::from_micros(50) * 2u32.saturating_pow(count.clamp(0, 6) as u32);
        // A blocking-pool thread: sleeping is the only way to wait for another process.
        std::thread::sleep(pause.min(Duration::from_millis(2)));
        true
    }
}

/// A connection with lockhog's settings: the busy handler, the sync mode, a fixed query plan
/// per statement, and no URI interpretation of the path.
fn connect(path: &Path, create: bool, sync: Sync) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(busy_handler()))?;
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    // Every statement of lockhog looks rows up by their key, whatever the values bound. Without
    // this, SQLite (built with STAT4, as rusqlite's bundled copy is) marks a statement whose
    // plan might depend on a bound value to be compiled again on every new binding: a cached
    // statement would be parsed and planned anew at every step.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

/// SQLite's error as lockhog's, saying what was being done and, for the errors a user can
/// act on, what it means.
pub(super) fn describe(path: &Path, doing: &str, e: rusqlite::Error) -> Failure {
    let shown = path.display();
    let code = e.sqlite_error_code();
    let (busy, message) = match code {
        Some(ErrorCode::NotADatabase) => (
            false,
            format!(
                "{shown} is not a SQLite database ({e}); lockhog left it untouched: give the path \
                 of a new file or of a SQLite database"
            ),
        ),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => (
            true,
            format!(
                "{doing} {shown}: another connection kept the database locked for more than \
                 {BUSY_TIMEOUT:?} (an open write transaction elsewhere?)"
            ),
        ),
        Some(ErrorCode::CannotOpen) => (
            false,
            format!("{doing} {shown}: cannot open the file ({e})"),
        ),
        Some(ErrorCode::ReadOnly) => (
            false,
            format!("{doing} {shown}: the database is read-only for this user ({e})"),
        ),
        _ => (false, format!("{doing} {shown}: {e}")),
    };
    Failure {
        busy,
        error: Error::Backend {
            backend: SCHEME,
            message,
            source: Some(Box::new(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    use super::{Db, Sync, MAX_CONNECTIONS};

    /// Counts operations inside the database and holds them there until released one by one.
    #[derive(Default)]
    struct Gate {
        inside: AtomicUsize,
        most_inside: AtomicUsize,
        done: AtomicUsize,
        released: Mutex<usize>,
        moved: Condvar,
    }

    impl Gate {
        /// Lets every held operation out, so that a failed check ends the test instead of
        /// leaving blocking threads the runtime would wait for.
        fn open_all(&self) {
            *self.released.lock().unwrap_or_else(|p| p.into_inner()) = usize::MAX / 2;
            self.moved.notify_all();
        }
    }

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < until, "waited 30 s for {what}");
            std::thread::yield_now();
        }
    }

    /// A burst of operations (every lease renewed at once) never has more than
    /// `MAX_CONNECTIONS` connections open nor more operations inside at once: the rest queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_queues_for_a_bounded_pool() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path().join("locks.db"), Sync::Full).unwrap());
        let gate = Arc::new(Gate::default());
        let burst = 4 * MAX_CONNECTIONS;
        let calls: Vec<_> = (0..burst)
            .map(|_| {
                let (db, gate) = (db.clone(), gate.clone());
                tokio::spawn(async move {
                    db.call("testing", move |c| {
                        let now = gate.inside.fetch_add(1, Ordering::SeqCst) + 1;
                        gate.most_inside.fetch_max(now, Ordering::SeqCst);
                        let mut released = gate.released.lock().unwrap();
                        while *released == 0 {
                            released = gate.moved.wait(released).unwrap();
                        }
                        *released -= 1;
                        drop(released);
                        gate.inside.fetch_sub(1, Ordering::SeqCst);
                        gate.done.fetch_add(1, Ordering::SeqCst);
                        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    })
                    .await
                })
            })
            .collect();
        let checker = {
            let (db, gate) = (db.clone(), gate.clone());
            tokio::task::spawn_blocking(move || {
                struct OpenOnDrop(Arc<Gate>);
                impl Drop for OpenOnDrop {
                    fn drop(&mut self) {
                        self.0.open_all();
                    }
                }
                let _open = OpenOnDrop(gate.clone());
                for finished in 0..burst {
                    let inside = || gate.inside.load(Ordering::SeqCst);
                    let expected = MAX_CONNECTIONS.min(burst - finished);
                    wait_until("the pool to fill", || inside() >= expected);
                    assert!(db.open_connections() <= MAX_CONNECTIONS);
                    *gate.released.lock().unwrap() += 1;
                    gate.moved.notify_all();
                    wait_until("one to finish", || {
                        gate.done.load(Ordering::SeqCst) > finished
                    });
                }
            })
        };
        checker.await.unwrap();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 1);
        }
        assert_eq!(gate.most_inside.load(Ordering::SeqCst), MAX_CONNECTIONS);
        assert!(db.open_connections() <= MAX_CONNECTIONS);
    }
}
