//! A thread of its own for the database operations of one backend: an operation is handed to
//! a thread that already waits for it, on one channel, and answers on one channel back.
//!
//! tokio's blocking pool does the same job, but each operation is a new task (allocated,
//! scheduled, joined) and goes to whichever pool thread the pool wakes, rarely the one that ran
//! the previous operation (its caches and SQLite's are cold). Most operations of a backend run
//! one at a time (an acquire, then its release), so one waiting thread serves them; an
//! operation that finds it busy runs on the blocking pool as before, so operations of one
//! backend still run side by side when they overlap.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

/// An operation. It runs the database work, then calls its argument (which lets the worker
/// take the next operation) before it hands the outcome to its caller, so that a caller that
/// goes on at once finds the worker free.
pub(super) type Job = Box<dyn FnOnce(&dyn Fn()) + Send>;

/// The thread of one backend, started when the backend opens its database. It stops when the
/// backend is dropped (the channel closes); nothing waits for it to stop, since the last user
/// may be an operation running on the thread itself.
pub(super) struct Worker {
    /// `None` when the thread could not be started (the blocking pool then runs everything).
    lane: Option<Lane>,
}

struct Lane {
    jobs: Sender<Job>,
    /// True while the thread waits for an operation; whoever sets it false hands it one.
    idle: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the thread.
    pub(super) fn start() -> Worker {
        let (jobs, queue) = channel::<Job>();
        let idle = Arc::new(AtomicBool::new(true));
        let free = idle.clone();
        let started = std::thread::Builder::new()
            .name("lockhog-sqlite".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let told = Cell::new(false);
                    let done = || {
                        if !told.replace(true) {
                            free.store(true, Ordering::Release);
                        }
                    };
                    // A panicking operation drops its answer (its caller gets an error); the
                    // thread serves the next one.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&done)));
                    done();
                }
            });
        if let Err(e) = &started {
            tracing::debug!(error = %e, "no thread of its own for the sqlite backend; the blocking pool runs its operations");
        }
        Worker {
            lane: started.ok().map(|_| Lane { jobs, idle }),
        }
    }

    /// Hands `job` to the thread if it is waiting for one; gives it back otherwise.
    pub(super) fn offer(&self, job: Job) -> Result<(), Job> {
        let Some(lane) = &self.lane else {
            return Err(job);
        };
        if lane
            .idle
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(job);
        }
        // Fails only when the thread is gone (it never leaves while the channel is open, so
        // only after a panic outside an operation): the job comes back, and `idle` stays false,
        // so later operations go to the blocking pool at once.
        lane.jobs.send(job).map_err(|e| e.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::super::db::{Db, Sync};
    use super::Worker;

    /// One operation after another runs on the backend's own thread, not on the blocking pool.
    #[tokio::test]
    async fn operations_one_at_a_time_run_on_the_backends_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path().join("locks.db"), Sync::Normal).unwrap());
        let mut threads = Vec::new();
        for _ in 0..3 {
            let ran_on = db
                .call("testing", |_| {
                    Ok(std::thread::current().name().map(str::to_owned))
                })
                .await
                .unwrap();
            threads.push(ran_on);
        }
        assert_eq!(threads, vec![Some("lockhog-sqlite".to_owned()); 3]);
    }

    /// An operation that finds the thread busy runs beside it on the blocking pool instead of
    /// waiting for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_that_finds_the_thread_busy_does_not_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path().join("locks.db"), Sync::Normal).unwrap());
        let (go, gate) = std::sync::mpsc::channel::<()>();
        let (inside, entered) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let db = db.clone();
            async move {
                db.call("testing", move |_| {
                    let _ = inside.send(std::thread::current().name().map(str::to_owned));
                    let waited = gate.recv_timeout(Duration::from_secs(30));
                    Ok(waited.is_ok())
                })
                .await
            }
        });
        let first_on = entered.await.unwrap();
        assert_eq!(first_on.as_deref(), Some("lockhog-sqlite"));
        let second_on = db
            .call("testing", |_| {
                Ok(std::thread::current().name().map(str::to_owned))
            })
            .await
            .unwrap();
        go.send(()).unwrap();
        assert!(
            first.await.unwrap().unwrap(),
            "the second operation waited for the first"
        );
        assert_ne!(second_on.as_deref(), Some("lockhog-sqlite"));
    }

    /// The thread ends once its backend is gone.
    #[test]
    fn the_thread_ends_with_its_backend() {
        let worker = Worker::start();
        let lane = worker.lane.as_ref().expect("the thread started");
        // The thread holds the other reference until it ends.
        let alive = Arc::downgrade(&lane.idle);
        assert_eq!(alive.strong_count(), 2);
        drop(worker);
        let until = Instant::now() + Duration::from_secs(30);
        while alive.strong_count() > 0 {
            assert!(
                Instant::now() < until,
                "the thread still runs 30 s after its backend went"
            );
            std::thread::yield_now();
        }
    }
}
