//! The scenarios of the Python `lock-hog` guide, played in Rust: each test is an example to
//! copy. The code under test comes first in each section, then its test.
//!
//! The database scenarios (a Postgres transaction-level advisory lock held from another
//! transaction, a Redis lock) are in `hog_db_examples.rs`.

use std::sync::{Mutex, MutexGuard};

use lockhog::hog::{async_hog_lock, hog_lock, hogged, LockHogger, NamedLock};
use lockhog::BoxError;

// ---------------------------------------------------------------------------------------------
// Debouncing a function: `pay_individual` refuses to run while another thread is paying.

mod pay {
    use std::sync::Mutex;

    #[derive(Debug, PartialEq, Eq)]
    pub struct AlreadyPayingIndividual;

    pub static PAY_INDIVIDUAL_LOCK: Mutex<()> = Mutex::new(());

    pub fn pay_individual(amount: u64) -> Result<u64, AlreadyPayingIndividual> {
        let _guard = PAY_INDIVIDUAL_LOCK
            .try_lock()
            .map_err(|_| AlreadyPayingIndividual)?;
        Ok(amount) // the actual payment
    }
}

/// The guide's `PayIndividualLockHogger`: how to take and give back the lock.
struct PayIndividualLockHogger;

impl LockHogger for PayIndividualLockHogger {
    type Guard = MutexGuard<'static, ()>;

    fn acquire_lock(&mut self) -> Result<Self::Guard, BoxError> {
        Ok(pay::PAY_INDIVIDUAL_LOCK.lock().map_err(|e| e.to_string())?)
    }

    fn release_lock(&mut self, guard: Self::Guard) -> Result<(), BoxError> {
        drop(guard);
        Ok(())
    }
}

// The tests below share one lock; each takes this so that they do not run into each other
// (the test harness runs tests on parallel threads).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn raises_if_multiple_threads_try_to_pay_individuals() {
    let _serial = serial();
    let hog = hog_lock(PayIndividualLockHogger).unwrap();
    assert_eq!(pay::pay_individual(10), Err(pay::AlreadyPayingIndividual));
    hog.release().unwrap();
    assert_eq!(pay::pay_individual(10), Ok(10));
}

/// The guide's aside: any way of taking the lock will do — a closure returning the guard, or
/// the lock itself.
#[test]
fn a_closure_or_the_lock_itself_will_do() {
    let _serial = serial();
    let hog = hog_lock(|| pay::PAY_INDIVIDUAL_LOCK.lock().unwrap()).unwrap();
    assert_eq!(pay::pay_individual(10), Err(pay::AlreadyPayingIndividual));
    hog.release().unwrap();

    let hog = hog_lock(&pay::PAY_INDIVIDUAL_LOCK).unwrap();
    assert_eq!(pay::pay_individual(10), Err(pay::AlreadyPayingIndividual));
    hog.release().unwrap();
}

/// The decorator form.
#[test]
fn decorated_with_hogged() {
    let _serial = serial();
    let outcome = hogged(PayIndividualLockHogger, || pay::pay_individual(10)).unwrap();
    assert_eq!(outcome, Err(pay::AlreadyPayingIndividual));
    assert_eq!(pay::pay_individual(10), Ok(10), "released after the body");
}

/// The attribute form. (This one runs its body under the hog, so it takes the serial lock
/// inside the hogger: the hog thread then holds both, in the same order as the other tests.)
#[lockhog::hogged(|| (serial(), pay::PAY_INDIVIDUAL_LOCK.lock().unwrap()))]
#[test]
fn decorated_with_the_attribute() {
    assert_eq!(pay::pay_individual(10), Err(pay::AlreadyPayingIndividual));
}

// ---------------------------------------------------------------------------------------------
// Hogging an async lock: `pay_individual` waits at most 100 ms for the lock, then gives up.

mod async_pay {
    use std::sync::{Arc, LazyLock};
    use std::time::Duration;

    use tokio::sync::Mutex;

    #[derive(Debug, PartialEq, Eq)]
    pub struct AlreadyPayingIndividual;

    pub static PAY_INDIVIDUAL_LOCK: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Default::default);

    pub async fn pay_individual(amount: u64) -> Result<u64, AlreadyPayingIndividual> {
        let _guard = tokio::time::timeout(Duration::from_millis(100), PAY_INDIVIDUAL_LOCK.lock())
            .await
            .map_err(|_| AlreadyPayingIndividual)?;
        Ok(amount)
    }
}

#[tokio::test]
async fn raises_if_multiple_tasks_try_to_pay_individuals() {
    let hog = async_hog_lock(|| async_pay::PAY_INDIVIDUAL_LOCK.clone().lock_owned())
        .await
        .unwrap();
    assert_eq!(
        async_pay::pay_individual(10).await,
        Err(async_pay::AlreadyPayingIndividual)
    );
    hog.release().await.unwrap();
    assert_eq!(async_pay::pay_individual(10).await, Ok(10));
}

// ---------------------------------------------------------------------------------------------
// Hogging a file lock: a nightly job that must not run twice, locked through lockhog's file
// backend; the test hogs the same lock by URL and name, through a connection of its own.

mod nightly {
    #[derive(Debug)]
    pub enum JobError {
        AlreadyRunning,
        Lock(#[allow(dead_code)] lockhog::Error), // shown through Debug
    }

    pub fn run_nightly_report(
        locker: &lockhog::blocking::Locker,
    ) -> Result<&'static str, JobError> {
        let guard = locker
            .lock("nightly-report")
            .try_acquire()
            .map_err(|e| match e {
                lockhog::Error::Contended { .. } => JobError::AlreadyRunning,
                other => JobError::Lock(other),
            })?;
        // ... the report ...
        guard.release().map_err(JobError::Lock)?;
        Ok("report written")
    }
}

#[test]
fn the_nightly_report_refuses_to_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let locker = lockhog::blocking::Locker::connect(&url).unwrap();

    let hog = NamedLock::new(&url, "nightly-report").hog().unwrap();
    assert!(matches!(
        nightly::run_nightly_report(&locker),
        Err(nightly::JobError::AlreadyRunning)
    ));
    hog.release().unwrap();
    assert_eq!(
        nightly::run_nightly_report(&locker).unwrap(),
        "report written"
    );
}
