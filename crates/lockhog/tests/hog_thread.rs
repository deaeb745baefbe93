//! `hog_lock` from a thread: every kind of hogger, and every way a hogger can go wrong.

use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use lockhog::hog::{hog_lock, try_fn, HogError, HogOptions, LockHogger, NamedLock};
use lockhog::BoxError;

/// Bound for waiting on a channel in these tests: generous, and only reached on failure.
const BOUND: Duration = Duration::from_secs(10);

#[test]
fn a_closure_guard_is_held_until_release() {
    static LOCK: Mutex<u32> = Mutex::new(0);
    let hog = hog_lock(|| LOCK.lock().unwrap()).unwrap();
    assert!(LOCK.try_lock().is_err());
    hog.release().unwrap();
    assert!(LOCK.try_lock().is_ok());
}

#[test]
fn a_std_lock_can_be_passed_directly() {
    static M: Mutex<()> = Mutex::new(());
    static RW: RwLock<u8> = RwLock::new(0);
    let a = hog_lock(&M).unwrap();
    let b = hog_lock(&RW).unwrap();
    assert!(M.try_lock().is_err());
    assert!(RW.try_read().is_err());
    a.release().unwrap();
    b.release().unwrap();
    assert!(M.try_lock().is_ok() && RW.try_read().is_ok());
}

struct PayHogger(&'static Mutex<()>);

impl LockHogger for PayHogger {
    type Guard = MutexGuard<'static, ()>;
    fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
        Ok(self.0.lock().map_err(|e| e.to_string())?)
    }
    fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
        drop(guard);
        Ok(())
    }
}

#[test]
fn a_lock_hogger_is_acquired_and_released() {
    static LOCK: Mutex<()> = Mutex::new(());
    let hog = hog_lock(PayHogger(&LOCK)).unwrap();
    assert!(LOCK.try_lock().is_err());
    hog.release().unwrap();
    assert!(LOCK.try_lock().is_ok());
}

#[test]
fn dropping_the_handle_releases() {
    static LOCK: Mutex<()> = Mutex::new(());
    let hog = hog_lock(&LOCK).unwrap();
    drop(hog);
    assert!(LOCK.try_lock().is_ok(), "Drop waits for the release");
}

#[test]
fn a_lockhog_request_conflicts_with_the_tests_own_locker() {
    let test_locker = lockhog::blocking::Locker::connect("mem:").unwrap();
    let hog_locker = lockhog::blocking::Locker::connect("mem:").unwrap();
    let hog = hog_lock(hog_locker.lock("thread-blocking")).unwrap();
    let err = test_locker
        .lock("thread-blocking")
        .try_acquire()
        .unwrap_err();
    assert!(matches!(err, lockhog::Error::Contended { .. }), "{err:?}");
    hog.release().unwrap();
    test_locker.lock("thread-blocking").try_acquire().unwrap();
}

#[test]
fn an_async_lockhog_request_is_hogged_from_a_thread() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hog_locker = rt.block_on(lockhog::Locker::connect(&url)).unwrap();
    let hog = hog_lock(hog_locker.lock("thread-async")).unwrap();
    let test_locker = lockhog::blocking::Locker::connect(&url).unwrap();
    assert!(test_locker
        .lock("thread-async")
        .try_acquire()
        .unwrap_err()
        .is_not_acquired());
    hog.release().unwrap();
    test_locker.lock("thread-async").try_acquire().unwrap();
}

#[test]
fn a_named_lock_uses_a_connection_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let hog = NamedLock::new(&url, "a b").and("c").hog().unwrap();
    let locker = lockhog::blocking::Locker::connect(&url).unwrap();
    for name in ["a b", "c"] {
        assert!(locker
            .lock(name)
            .try_acquire()
            .unwrap_err()
            .is_not_acquired());
    }
    hog.release().unwrap();
    locker.lock("a b").try_acquire().unwrap();
}

#[test]
fn a_failing_hogger_is_reported_at_once() {
    let err = hog_lock(try_fn(|| Err::<(), _>("no route to the lock server"))).unwrap_err();
    assert!(matches!(err, HogError::AcquireFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("no route to the lock server"));

    let err = hog_lock(NamedLock::new("nope://", "x")).unwrap_err();
    assert!(matches!(err, HogError::AcquireFailed { .. }), "{err:?}");
}

#[test]
fn a_panicking_hogger_is_reported_at_once() {
    let err = hog_lock(|| -> () { panic!("the hogger fell over") }).unwrap_err();
    match err {
        HogError::AcquirePanicked { message } => assert_eq!(message, "the hogger fell over"),
        other => panic!("{other:?}"),
    }
}

/// A guard that says on a channel when it is dropped.
struct Telltale(
    #[allow(dead_code)] MutexGuard<'static, ()>,
    mpsc::Sender<()>,
);

impl Drop for Telltale {
    fn drop(&mut self) {
        let _ = self.1.send(());
    }
}

#[test]
fn a_hogger_that_acquires_too_late_is_reported_and_releases_at_once() {
    static LOCK: Mutex<()> = Mutex::new(());
    let mine = LOCK.lock().unwrap();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let opts = HogOptions::new().with_acquire_timeout(Duration::from_millis(20));
    let err = opts
        .hog_lock(move || Telltale(LOCK.lock().unwrap(), dropped_tx))
        .unwrap_err();
    match &err {
        HogError::AcquireTimedOut { timeout } => assert_eq!(*timeout, Duration::from_millis(20)),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("acquire timeout of 20ms"), "{err}");
    // Let the late hogger in: it must give the lock back by itself.
    drop(mine);
    dropped_rx
        .recv_timeout(BOUND)
        .expect("the late hogger did not release");
    let _again = LOCK.lock().unwrap();
}

/// A hogger whose release waits for the test's word.
struct SlowRelease {
    lock: &'static Mutex<()>,
    go: mpsc::Receiver<()>,
}

impl LockHogger for SlowRelease {
    type Guard = MutexGuard<'static, ()>;
    fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
        Ok(self.lock.lock().map_err(|e| e.to_string())?)
    }
    fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
        self.go.recv_timeout(BOUND)?;
        drop(guard);
        Ok(())
    }
}

#[test]
fn a_hogger_that_does_not_release_in_time_is_still_holding() {
    static LOCK: Mutex<()> = Mutex::new(());
    let (go_tx, go) = mpsc::channel();
    let opts = HogOptions::new().with_release_timeout(Duration::from_millis(30));
    let hog = opts.hog_lock(SlowRelease { lock: &LOCK, go }).unwrap();
    let err = hog.release().unwrap_err();
    assert!(matches!(err, HogError::StillHolding { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the hogger is still holding the lock: it did not finish releasing within the release \
         timeout of 30ms"
    );
    assert!(LOCK.try_lock().is_err(), "it is indeed still holding");
    go_tx.send(()).unwrap();
    let _again = LOCK.lock().unwrap();
}

struct BadRelease(bool);

impl LockHogger for BadRelease {
    type Guard = ();
    fn acquire_lock(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
    fn release_lock(&mut self, (): ()) -> Result<(), BoxError> {
        if self.0 {
            panic!("release blew up");
        }
        Err("release refused".into())
    }
}

#[test]
fn release_failures_and_panics_are_reported() {
    let err = hog_lock(BadRelease(false)).unwrap().release().unwrap_err();
    assert!(matches!(err, HogError::ReleaseFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("release refused"));
    let err = hog_lock(BadRelease(true)).unwrap().release().unwrap_err();
    assert!(
        matches!(&err, HogError::ReleasePanicked { message } if message == "release blew up"),
        "{err:?}"
    );
}

#[test]
fn dropping_a_handle_whose_release_fails_panics() {
    let hog = hog_lock(BadRelease(false)).unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(hog))).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("release refused"), "{message}");
}

#[test]
fn a_thread_hog_cannot_abandon() {
    static LOCK: Mutex<()> = Mutex::new(());
    let err = hog_lock(&LOCK).unwrap().abandon().unwrap_err();
    assert!(matches!(err, HogError::Unsupported(_)), "{err:?}");
    assert!(LOCK.try_lock().is_ok(), "released by the handle's drop");
}
