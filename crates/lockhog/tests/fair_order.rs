//! Fair (FIFO) locks: 16 waiters queued in a known order acquire in exactly that order, on
//! every backend that can queue (`mem:` and, with the feature, `sqlite:`). Each waiter is
//! confirmed queued before the next one starts; nothing sleeps to let a waiter get in line.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use lockhog::{Error, LockGuard, Locker};

const WAITERS: usize = 16;
/// The hang guard for every wait. Never a speed.
const BOUND: Duration = Duration::from_secs(30);

type Acquire = Pin<Box<dyn Future<Output = lockhog::Result<LockGuard>> + Send>>;

/// Starts a task that finishes `acquire`, records `i` in `order` once it holds the lock,
/// then releases it.
fn finish(
    i: usize,
    acquire: Acquire,
    order: Arc<Mutex<Vec<usize>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let guard = acquire.await.expect("a fair waiter did not acquire");
        order.lock().unwrap().push(i);
        assert!(guard.release().await.unwrap());
    })
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    tokio::time::timeout(BOUND, async {
        for t in tasks {
            t.await.expect("a waiter panicked");
        }
    })
    .await
    .expect("the waiters did not finish in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_fair_waiters_acquire_in_the_order_they_queued() {
    let locker = Locker::connect("mem:").await.unwrap();
    assert!(locker.capabilities().fair);
    let name = "fair-order-mem";
    let holder = locker.lock(name).try_acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..WAITERS {
        let mut acquire: Acquire = Box::pin(locker.lock(name).fair().wait_for(BOUND));
        // One poll runs the acquire into the backend's queue (tokio's semaphore enqueues a
        // waiter on its first poll): waiter i is in line before waiter i + 1 exists.
        let first = std::future::poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "waiter {i} acquired a held lock");
        tasks.push(finish(i, acquire, order.clone()));
    }
    holder.release().await.unwrap();
    join_all(tasks).await;
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
}

#[tokio::test]
async fn backends_that_cannot_queue_refuse_fair_requests() {
    let dir = tempfile::tempdir().unwrap();
    let locker = Locker::connect(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    assert!(!locker.capabilities().fair);
    match locker.lock("fair").fair().try_acquire().await {
        Err(Error::InvalidOption { reason }) => assert!(reason.contains("fair"), "{reason}"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use lockhog::backend::sqlite::SqliteBackend;
    use lockhog::backend::BackendUrl;

    struct Db {
        _dir: tempfile::TempDir,
        url: String,
        /// A second handle on the file, to read the queue.
        queue: SqliteBackend,
    }

    async fn db() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/locks.db", dir.path().display());
        let queue = SqliteBackend::open(&mut BackendUrl::parse(&url).unwrap())
            .unwrap()
            .await
            .unwrap();
        Db {
            _dir: dir,
            url,
            queue,
        }
    }

    /// Waits (polling: SQLite tells no one) until `n` fair waiters are queued for `name`.
    async fn until_queued(db: &Db, name: &str, n: u64) {
        tokio::time::timeout(BOUND, async {
            while db.queue.waiting("lockhog", name).await.unwrap() != n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} waiters were not queued in time"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_fair_waiters_acquire_in_the_order_they_queued() {
        let db = db().await;
        let holder_locker = Locker::connect(&db.url).await.unwrap();
        assert!(holder_locker.capabilities().fair);
        let name = "fair-order-sqlite";
        let holder = holder_locker.lock(name).try_acquire().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..WAITERS {
            // Each waiter on its own locker (its own connections), as separate clients.
            let locker = Locker::connect(&db.url).await.unwrap();
            let acquire: Acquire =
                Box::pin(async move { locker.lock(name).fair().wait_for(BOUND).await });
            tasks.push(finish(i, acquire, order.clone()));
            until_queued(&db, name, i as u64 + 1).await;
        }
        holder.release().await.unwrap();
        join_all(tasks).await;
        assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
        assert_eq!(db.queue.waiting("lockhog", name).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fair_waiter_that_gives_up_or_is_dropped_leaves_the_queue() {
        let db = db().await;
        let locker = Locker::connect(&db.url).await.unwrap();
        let name = "fair-leaves";
        let holder = locker.lock(name).try_acquire().await.unwrap();
        // Timed out: gone from the queue when the acquire returns.
        let outcome = locker
            .lock(name)
            .fair()
            .wait_for(Duration::from_millis(50))
            .await;
        assert!(
            matches!(outcome, Err(Error::TimedOut { .. })),
            "{outcome:?}"
        );
        assert_eq!(db.queue.waiting("lockhog", name).await.unwrap(), 0);
        // Dropped while queued: its ticket is given back in the background.
        let l2 = locker.clone();
        let waiter = tokio::spawn(async move { l2.lock(name).fair().wait().await });
        until_queued(&db, name, 1).await;
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        until_queued(&db, name, 0).await;
        holder.release().await.unwrap();
    }

    /// Tickets whose waiters stopped polling (a dead process) run out and stop holding up the
    /// queue; and while a fair waiter is queued, an unfair request does not overtake it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_tickets_run_out_and_unfair_requests_do_not_overtake() {
        let db = db().await;
        let locker = Locker::connect(&db.url).await.unwrap();
        let name = "fair-dead";
        let path = db.queue.path().to_path_buf();
        let raw = rusqlite::Connection::open(&path).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        // A waiter of another process queued, then died: its ticket lives 400 ms more.
        raw.execute(
            "INSERT INTO lockhog_waiters (namespace, name, owner, expires_at) \
             VALUES (CAST('lockhog' AS BLOB), CAST(?1 AS BLOB), 'dead/1/host', ?2)",
            rusqlite::params![name, now + 400],
        )
        .unwrap();
        // The lock is free, but a fair waiter is first in line.
        assert!(matches!(
            locker.lock(name).try_acquire().await,
            Err(Error::Contended { .. })
        ));
        assert!(matches!(
            locker.lock(name).fair().try_acquire().await,
            Err(Error::Contended { .. })
        ));
        // A live fair waiter behind it gets the lock once the dead ticket ran out.
        let g = locker.lock(name).fair().wait_for(BOUND).await.unwrap();
        let waited_for = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            waited_for >= now + 400,
            "overtook a ticket that was still alive"
        );
        g.release().await.unwrap();
        assert_eq!(db.queue.waiting("lockhog", name).await.unwrap(), 0);
    }
}
