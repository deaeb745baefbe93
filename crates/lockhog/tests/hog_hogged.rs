//! The decorator forms (`hogged`, `async_hogged`) and the scoped forms (`hog_scoped`,
//! `with_hogged`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use lockhog::hog::{async_hogged, hog_scoped, hogged, try_fn, with_hogged, HogError};

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn hogged_returns_the_bodys_value_and_releases() {
    static LOCK: Mutex<()> = Mutex::new(());
    let seen_busy = hogged(&LOCK, || LOCK.try_lock().is_err()).unwrap();
    assert!(seen_busy);
    assert!(LOCK.try_lock().is_ok());
}

#[test]
fn hogged_releases_when_the_body_panics_and_the_panic_goes_on() {
    static LOCK: Mutex<()> = Mutex::new(());
    let payload =
        catch_unwind(|| hogged(|| LOCK.lock().unwrap(), || panic!("body broke"))).unwrap_err();
    assert_eq!(panic_text(payload), "body broke");
    assert!(LOCK.try_lock().is_ok(), "released before the panic went on");
}

#[test]
fn hogged_does_not_run_the_body_when_the_hog_fails() {
    let mut ran = false;
    let err = hogged(try_fn(|| Err::<(), _>("no lock today")), || ran = true).unwrap_err();
    assert!(matches!(err, HogError::AcquireFailed { .. }));
    assert!(!ran);
}

#[tokio::test]
async fn async_hogged_returns_and_releases_even_on_panic() {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let busy = async_hogged(lock.clone(), async { lock.try_lock().is_err() })
        .await
        .unwrap();
    assert!(busy);
    assert!(lock.try_lock().is_ok());

    let l = lock.clone();
    let outcome = tokio::spawn(async move {
        async_hogged(l, async { panic!("async body broke") })
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        panic_text(outcome.unwrap_err().into_panic()),
        "async body broke"
    );
    assert!(lock.try_lock().is_ok());
}

#[test]
fn a_scoped_hog_borrows_a_local_lock() {
    let ledger = Mutex::new(vec![1, 2, 3]);
    std::thread::scope(|s| {
        let hog = hog_scoped(s, || ledger.lock().unwrap()).unwrap();
        assert!(ledger.try_lock().is_err());
        hog.release().unwrap();
    });
    assert_eq!(ledger.lock().unwrap().len(), 3);
}

#[test]
fn with_hogged_borrows_and_releases_even_on_panic() {
    let pay_lock = Mutex::new(());
    assert!(with_hogged(&pay_lock, || pay_lock.try_lock().is_err()).unwrap());
    let payload = catch_unwind(AssertUnwindSafe(|| {
        with_hogged(&pay_lock, || panic!("scoped body broke"))
    }))
    .unwrap_err();
    assert_eq!(panic_text(payload), "scoped body broke");
    assert!(pay_lock.try_lock().is_ok());
}
