//! A hog that cannot acquire reports `AcquireTimedOut`, every time: the hogger's own wait
//! ends at the same deadline as the caller's, and whichever notices first, the error is the
//! same. Run many times over with both cores kept busy, where the two used to race.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockhog::hog::{HogError, HogFrom, HogOptions, NamedLock};

const ROUNDS: usize = 150;
const TIMEOUT: Duration = Duration::from_millis(5);

/// Keeps every core busy until dropped, so the hog's thread and the caller are scheduled late
/// and in any order.
struct Busy(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spinners = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Busy(stop, spinners)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for s in self.1.drain(..) {
            let _ = s.join();
        }
    }
}

fn check(round: usize, outcome: Result<impl std::fmt::Debug, HogError>) {
    match outcome {
        Err(HogError::AcquireTimedOut { timeout }) => assert_eq!(timeout, TIMEOUT),
        other => panic!("round {round}: expected AcquireTimedOut, got {other:?}"),
    }
}

#[test]
fn a_thread_hog_that_cannot_acquire_always_times_out() {
    let name = format!("hog-race-thread-{}", std::process::id());
    let held = lockhog::blocking::Locker::connect("mem:")
        .unwrap()
        .lock(&name)
        .try_acquire()
        .unwrap();
    let _busy = Busy::start();
    let opts = HogOptions::new().with_acquire_timeout(TIMEOUT);
    for round in 0..ROUNDS {
        let hog = NamedLock::new("mem:", &name)
            .hog_from(HogFrom::Thread)
            .options(opts.clone());
        check(round, hog.hog());
    }
    held.release().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_hog_that_cannot_acquire_always_times_out() {
    let name = format!("hog-race-task-{}", std::process::id());
    let held = lockhog::Locker::connect("mem:")
        .await
        .unwrap()
        .lock(&name)
        .try_acquire()
        .await
        .unwrap();
    let _busy = Busy::start();
    let opts = HogOptions::new().with_acquire_timeout(TIMEOUT);
    for round in 0..ROUNDS {
        let hog = NamedLock::new("mem:", &name)
            .hog_from(HogFrom::Task)
            .options(opts.clone());
        check(round, hog.hog_async().await);
    }
    held.release().await.unwrap();
}
