//! `#[lockhog::hogged(<hogger>)]` on `#[test]` and `#[tokio::test]` functions, and its
//! compile-time errors (tests/ui).

use std::sync::{Arc, LazyLock, Mutex};

static PAY_LOCK: Mutex<()> = Mutex::new(());

#[lockhog::hogged(|| PAY_LOCK.lock().unwrap())]
#[test]
fn the_lock_is_hogged_for_the_whole_test() {
    assert!(PAY_LOCK.try_lock().is_err());
}

static OTHER_LOCK: Mutex<()> = Mutex::new(());

#[test]
#[lockhog::hogged(&OTHER_LOCK)]
fn the_attribute_may_follow_test_and_the_test_may_return_a_result(
) -> Result<(), Box<dyn std::error::Error>> {
    let busy = OTHER_LOCK.try_lock().is_err();
    assert!(busy);
    "42".parse::<u8>()?;
    Ok(())
}

static PANIC_LOCK: Mutex<()> = Mutex::new(());

#[lockhog::hogged(&PANIC_LOCK)]
fn panics_while_hogged() {
    assert!(PANIC_LOCK.try_lock().is_err());
    panic!("the body failed");
}

#[test]
fn the_lock_is_released_when_the_test_body_panics() {
    let payload = std::panic::catch_unwind(panics_while_hogged).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the body failed"));
    assert!(PANIC_LOCK.try_lock().is_ok());
}

static ASYNC_LOCK: LazyLock<Arc<tokio::sync::Mutex<()>>> = LazyLock::new(Default::default);

#[lockhog::hogged(ASYNC_LOCK.clone())]
#[tokio::test]
async fn an_async_test_hogs_from_a_task() {
    assert!(ASYNC_LOCK.try_lock().is_err());
}

#[lockhog::hogged(|| ASYNC_LOCK.clone().lock_owned())]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_closure_on_the_multi_thread_runtime() {
    assert!(ASYNC_LOCK.try_lock().is_err());
}

#[test]
fn misuse_does_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/hogged_*.rs");
}
