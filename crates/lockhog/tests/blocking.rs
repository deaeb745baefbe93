//! The blocking API from plain threads (locks, semaphores, several locks at once), and its
//! refusal inside a runtime.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use lockhog::blocking::Locker;
use lockhog::Error;

/// How long a test waits for something that must happen before failing.
const BOUND: Duration = Duration::from_secs(30);

fn temp_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    (dir, url)
}

#[test]
fn a_waiting_thread_gets_the_lock_when_the_holder_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let locker = Locker::connect(&url).unwrap();
    let held = locker.lock("handoff").try_acquire().unwrap();
    let (tx, rx) = mpsc::channel();
    let other = Locker::connect(&url).unwrap();
    let waiter = std::thread::spawn(move || {
        let g = other
            .lock("handoff")
            .wait_for(Duration::from_secs(30))
            .unwrap();
        tx.send(g.fencing_token()).unwrap();
        g.release().unwrap()
    });
    let first = held.fencing_token();
    drop(held);
    let second = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the waiter never got the lock");
    assert!(second > first);
    assert!(waiter.join().unwrap());
}

#[test]
fn with_lock_does_not_run_when_contended() {
    let locker = Locker::connect("mem:").unwrap();
    let _held = locker.lock("blocking-with-lock").try_acquire().unwrap();
    let mut ran = false;
    let outcome = locker
        .lock("blocking-with-lock")
        .no_wait()
        .run(|| ran = true);
    assert!(matches!(outcome, Err(lockhog::Error::Contended { .. })));
    assert!(!ran);
}

#[test]
fn semaphore_admits_at_most_n_threads_each_on_its_own_locker() {
    const PERMITS: u32 = 2;
    let (_dir, url) = temp_url();
    let inside = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let locker = Locker::connect(&url).unwrap();
            let inside = inside.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let permit = locker
                        .semaphore("threads", PERMITS)
                        .wait_for(BOUND)
                        .unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= PERMITS, "{now} holders of {PERMITS} permits");
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert!(permit.release().unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a thread panicked");
    }
}

#[test]
fn semaphore_try_wait_count_and_run() {
    let (_dir, url) = temp_url();
    let (a, b) = (
        Locker::connect(&url).unwrap(),
        Locker::connect(&url).unwrap(),
    );
    let first = a.semaphore("jobs", 2).try_acquire().unwrap();
    let second = b.semaphore("jobs", 2).try_acquire().unwrap();
    assert_ne!(first.resource(), second.resource());
    assert!(matches!(
        b.semaphore("jobs", 2).try_acquire(),
        Err(Error::Contended { .. })
    ));
    assert!(matches!(
        b.semaphore("jobs", 2).wait_for(Duration::from_millis(50)),
        Err(Error::TimedOut { .. })
    ));
    for other in [1, 3] {
        match a.semaphore("jobs", other).try_acquire() {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("2 permits"), "{reason}")
            }
            got => panic!("{other} permits on a 2-permit semaphore: {got:?}"),
        }
    }
    let mut ran = false;
    let outcome = a
        .semaphore("jobs", 2)
        .waiting(lockhog::Wait::No)
        .run(|| ran = true);
    assert!(matches!(outcome, Err(Error::Contended { .. })));
    assert!(!ran, "ran without a permit");

    // A waiting thread takes the permit given back, with a greater token.
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let g = b.semaphore("jobs", 2).wait_for(BOUND).unwrap();
        tx.send((g.resource().to_string(), g.fencing_token()))
            .unwrap();
        g.release().unwrap()
    });
    let (freed, token) = (first.resource().to_string(), first.fencing_token());
    assert!(first.release().unwrap());
    let (got, got_token) = rx
        .recv_timeout(BOUND)
        .expect("the waiter never got a permit");
    assert_eq!(got, freed);
    assert!(got_token > token);
    assert!(waiter.join().unwrap());
    assert_eq!(a.semaphore("jobs", 2).run(|| 7).unwrap(), 7);
    drop(second);
}

#[test]
fn lock_all_takes_all_or_none_and_a_waiter_gets_all() {
    let (_dir, url) = temp_url();
    let (a, b) = (
        Locker::connect(&url).unwrap(),
        Locker::connect(&url).unwrap(),
    );
    let held = b.lock("to").try_acquire().unwrap();
    match a.lock_all(["from", "to"]).try_acquire() {
        Err(Error::Contended { name }) => assert_eq!(name, "to"),
        other => panic!("lock_all with one lock held elsewhere: {other:?}"),
    }
    // None of the set stays held: "from" was given back.
    drop(b.lock("from").try_acquire().expect("from was left held"));
    assert!(matches!(
        a.lock_all(["from", "to"])
            .wait_for(Duration::from_millis(50)),
        Err(Error::TimedOut { .. })
    ));

    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let all = a.lock_all(["to", "from"]).wait_for(BOUND).unwrap();
        let names: Vec<String> = all.guards().iter().map(|g| g.name().to_string()).collect();
        tx.send(names).unwrap();
        assert!(!all.is_lost());
        assert_eq!(all.wait_lost(Duration::ZERO), None);
        all.release().unwrap()
    });
    drop(held);
    let mut names = rx.recv_timeout(BOUND).expect("the waiter never got both");
    names.sort();
    assert_eq!(names, ["from", "to"]);
    assert!(waiter.join().unwrap());
    drop(
        b.lock_all(["from", "to"])
            .try_acquire()
            .expect("both were given back"),
    );
}

#[tokio::test]
#[should_panic(expected = "inside an async runtime")]
async fn refuses_to_block_a_runtime() {
    let _ = Locker::connect("mem:");
}
