//! The blocking API from plain threads, and its refusal inside a runtime.

use std::sync::mpsc;
use std::time::Duration;

use lockhog::blocking::Locker;

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

#[tokio::test]
#[should_panic(expected = "inside an async runtime")]
async fn refuses_to_block_a_runtime() {
    let _ = Locker::connect("mem:");
}
