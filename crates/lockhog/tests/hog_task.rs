//! `async_hog_lock` on tokio: current-thread and multi-thread runtimes, local sets, and every
//! way a hogger can go wrong.

use std::sync::Arc;
use std::time::Duration;

use lockhog::hog::{
    async_hog_lock, async_hog_lock_local, AsyncLockHogger, HogError, HogFrom, HogOptions, NamedLock,
};
use lockhog::BoxError;
use tokio::sync::{mpsc, Mutex, OwnedMutexGuard};

/// Bound for waits in these tests: only reached on failure.
const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_closure_guard_is_held_on_the_current_thread_runtime() {
    let lock = Arc::new(Mutex::new(0u8));
    let l = lock.clone();
    let hog = async_hog_lock(move || l.lock_owned()).await.unwrap();
    assert!(lock.try_lock().is_err());
    hog.release().await.unwrap();
    assert!(lock.try_lock().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_guard_is_held_on_the_multi_thread_runtime() {
    let lock = Arc::new(Mutex::new(()));
    let hog = async_hog_lock(lock.clone()).await.unwrap();
    assert!(lock.try_lock().is_err());
    hog.release().await.unwrap();
    assert!(lock.try_lock().is_ok());
}

struct PayHogger(Arc<Mutex<()>>);

impl AsyncLockHogger for PayHogger {
    type Guard = OwnedMutexGuard<()>;
    async fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
        Ok(self.0.clone().lock_owned().await)
    }
    async fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
        drop(guard);
        Ok(())
    }
}

#[tokio::test]
async fn an_async_lock_hogger_is_acquired_and_released() {
    let lock = Arc::new(Mutex::new(()));
    let hog = async_hog_lock(PayHogger(lock.clone())).await.unwrap();
    assert!(lock.try_lock().is_err());
    hog.release().await.unwrap();
    assert!(lock.try_lock().is_ok());
}

#[tokio::test]
async fn dropping_the_handle_releases_at_the_next_await() {
    let lock = Arc::new(Mutex::new(()));
    drop(async_hog_lock(lock.clone()).await.unwrap());
    let _free = tokio::time::timeout(BOUND, lock.lock())
        .await
        .expect("the dropped hog did not release");
}

#[tokio::test]
async fn lockhog_locks_from_a_task_a_thread_and_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let locker = lockhog::Locker::connect(&url).await.unwrap();
    for from in [HogFrom::Task, HogFrom::Thread] {
        let hog = NamedLock::new(&url, "payroll")
            .hog_from(from)
            .hog_async()
            .await
            .unwrap();
        let err = locker.lock("payroll").try_acquire().await.unwrap_err();
        assert!(err.is_not_acquired(), "{from:?}: {err:?}");
        hog.release().await.unwrap();
        drop(locker.lock("payroll").try_acquire().await.unwrap());
    }
    let own = lockhog::Locker::connect(&url).await.unwrap();
    let hog = async_hog_lock(own.lock("payroll")).await.unwrap();
    assert!(locker.lock("payroll").try_acquire().await.is_err());
    hog.release().await.unwrap();
}

#[tokio::test]
async fn a_task_hog_from_sync_code_is_refused() {
    let err = NamedLock::new("mem:", "x")
        .hog_from(HogFrom::Task)
        .hog()
        .unwrap_err();
    assert!(matches!(err, HogError::Unsupported(_)), "{err:?}");
}

struct Failing {
    panic: bool,
}

impl AsyncLockHogger for Failing {
    type Guard = ();
    async fn acquire_lock(&mut self) -> Result<(), BoxError> {
        if self.panic {
            panic!("async hogger fell over");
        }
        Err("the lock service said no".into())
    }
    async fn release_lock(&mut self, (): ()) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn failing_and_panicking_hoggers_are_reported_at_once() {
    let err = async_hog_lock(Failing { panic: false }).await.unwrap_err();
    assert!(matches!(err, HogError::AcquireFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("the lock service said no"));
    let err = async_hog_lock(Failing { panic: true }).await.unwrap_err();
    assert!(
        matches!(&err, HogError::AcquirePanicked { message } if message == "async hogger fell over"),
        "{err:?}"
    );
}

/// A guard that says on a channel when it is dropped.
struct Telltale(
    #[allow(dead_code)] OwnedMutexGuard<()>,
    mpsc::UnboundedSender<()>,
);

impl Drop for Telltale {
    fn drop(&mut self) {
        let _ = self.1.send(());
    }
}

#[tokio::test]
async fn a_hogger_that_acquires_too_late_is_reported_and_releases_at_once() {
    let lock = Arc::new(Mutex::new(()));
    let mine = lock.clone().lock_owned().await;
    let (tx, mut dropped) = mpsc::unbounded_channel();
    let l = lock.clone();
    let opts = HogOptions::new().with_acquire_timeout(Duration::from_millis(20));
    let err = opts
        .async_hog_lock(move || async move { Telltale(l.lock_owned().await, tx) })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("acquire timeout of 20ms"), "{err}");
    drop(mine);
    tokio::time::timeout(BOUND, dropped.recv())
        .await
        .expect("the late hogger did not release");
    assert!(lock.try_lock().is_ok());
}

struct SlowRelease(Arc<Mutex<()>>, mpsc::UnboundedReceiver<()>);

impl AsyncLockHogger for SlowRelease {
    type Guard = OwnedMutexGuard<()>;
    async fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
        Ok(self.0.clone().lock_owned().await)
    }
    async fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
        self.1.recv().await; // never comes
        drop(guard);
        Ok(())
    }
}

#[tokio::test]
async fn a_hogger_that_does_not_release_in_time_is_still_holding_and_aborted() {
    let lock = Arc::new(Mutex::new(()));
    let (_never, rx) = mpsc::unbounded_channel();
    let opts = HogOptions::new().with_release_timeout(Duration::from_millis(30));
    let hog = opts
        .async_hog_lock(SlowRelease(lock.clone(), rx))
        .await
        .unwrap();
    let err = hog.release().await.unwrap_err();
    assert!(matches!(err, HogError::StillHolding { .. }), "{err:?}");
    assert!(err.to_string().contains("release timeout of 30ms"), "{err}");
    // The task was aborted, which drops the guard it held.
    let _free = tokio::time::timeout(BOUND, lock.lock())
        .await
        .expect("the aborted hog still holds");
}

#[tokio::test]
async fn a_guard_that_is_not_send_is_held_on_a_local_set() {
    static PAY_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let hog = async_hog_lock_local(|| async { PAY_LOCK.lock().unwrap() })
                .await
                .unwrap();
            assert!(PAY_LOCK.try_lock().is_err());
            hog.release().await.unwrap();
            assert!(PAY_LOCK.try_lock().is_ok());
        })
        .await;
}
