//! `contend`: n attempts at once, exactly one winner, every time, without sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockhog::hog::{contend, contend_async, ContendError, ContendOptions};

#[derive(Debug, PartialEq)]
enum Outcome {
    Won,
    Contended,
}

fn count(outcomes: &[Outcome], which: Outcome) -> usize {
    outcomes.iter().filter(|o| **o == which).count()
}

#[test]
fn one_winner_on_a_std_mutex_for_2_to_16_attempts() {
    for n in 2..=16 {
        let lock = Arc::new(Mutex::new(()));
        let outcomes = contend(n, move |ctx| match lock.try_lock() {
            Ok(_guard) => {
                assert!(ctx.hold_until_others_done());
                Outcome::Won
            }
            Err(_) => Outcome::Contended,
        })
        .unwrap();
        assert_eq!(outcomes.len(), n);
        assert_eq!(count(&outcomes, Outcome::Won), 1, "n = {n}: {outcomes:?}");
        assert_eq!(count(&outcomes, Outcome::Contended), n - 1, "n = {n}");
    }
}

/// Each attempt connects a locker of its own, as separate requests of a service would.
fn race_lockhog(url: &str, name: &str, n: usize) -> Vec<Result<u64, lockhog::Error>> {
    let (url, name) = (url.to_string(), name.to_string());
    contend(n, move |ctx| {
        let locker = lockhog::blocking::Locker::connect(&url)?;
        let guard = locker.lock(&name).try_acquire()?;
        ctx.hold_until_others_done();
        let token = guard.fencing_token().unwrap();
        guard.release()?;
        Ok(token)
    })
    .unwrap()
}

fn assert_one_winner(outcomes: &[Result<u64, lockhog::Error>], n: usize) {
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let contended = outcomes
        .iter()
        .filter(|o| matches!(o, Err(lockhog::Error::Contended { .. })))
        .count();
    assert_eq!((won, contended), (1, n - 1), "{outcomes:?}");
}

#[test]
fn one_winner_on_a_mem_lock_for_2_to_16_attempts() {
    for n in 2..=16 {
        let outcomes = race_lockhog("mem:", &format!("contend-mem-{n}"), n);
        assert_one_winner(&outcomes, n);
    }
}

#[test]
fn one_winner_on_a_file_lock_for_2_to_16_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    for n in 2..=16 {
        let outcomes = race_lockhog(&url, "pay-individual-42", n);
        assert_one_winner(&outcomes, n);
    }
}

#[test]
fn outcomes_come_back_in_index_order() {
    let outcomes = contend(16, |ctx| (ctx.index(), ctx.n())).unwrap();
    assert_eq!(outcomes, (0..16).map(|i| (i, 16)).collect::<Vec<_>>());
}

#[test]
fn attempts_that_wait_without_bound_time_out_with_a_clear_error() {
    let lock = Arc::new(Mutex::new(()));
    let opts = ContendOptions::new().timeout(Duration::from_millis(100));
    let err = opts
        .contend(3, move |ctx| {
            // Wrong on purpose: a blocking lock waits for the holder, who waits for it.
            let _guard = lock.lock().unwrap();
            ctx.hold_until_others_done()
        })
        .unwrap_err();
    assert!(
        matches!(err, ContendError::TimedOut { n: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("timeout of 100ms"), "{err}");
}

#[test]
fn a_panicking_attempt_is_reported_with_its_index() {
    let err = contend(4, |ctx| {
        if ctx.index() == 2 {
            panic!("attempt two broke");
        }
    })
    .unwrap_err();
    match err {
        ContendError::AttemptPanicked { index, message } => {
            assert_eq!((index, message.as_str()), (2, "attempt two broke"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn zero_attempts_is_an_error() {
    assert!(matches!(contend(0, |_| ()), Err(ContendError::NoAttempts)));
}

async fn race_tokio_mutex(n: usize) -> Vec<Outcome> {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    contend_async(n, move |ctx| {
        let lock = lock.clone();
        async move {
            match lock.try_lock() {
                Ok(_guard) => {
                    assert!(ctx.hold_until_others_done().await);
                    Outcome::Won
                }
                Err(_) => Outcome::Contended,
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn async_one_winner_on_the_current_thread_runtime() {
    for n in 2..=16 {
        let outcomes = race_tokio_mutex(n).await;
        assert_eq!(count(&outcomes, Outcome::Won), 1, "n = {n}: {outcomes:?}");
        assert_eq!(count(&outcomes, Outcome::Contended), n - 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_one_winner_on_the_multi_thread_runtime() {
    for n in 2..=16 {
        let outcomes = race_tokio_mutex(n).await;
        assert_eq!(count(&outcomes, Outcome::Won), 1, "n = {n}: {outcomes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_one_winner_on_a_mem_lock_each_with_its_own_locker() {
    for n in [2, 5, 16] {
        let name = format!("contend-async-{n}");
        let outcomes = contend_async(n, move |ctx| {
            let name = name.clone();
            async move {
                let locker = lockhog::Locker::connect("mem:").await?;
                let guard = locker.lock(&name).try_acquire().await?;
                ctx.hold_until_others_done().await;
                guard.release().await
            }
        })
        .await
        .unwrap();
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{outcomes:?}");
        assert!(outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|e| matches!(e, lockhog::Error::Contended { .. })));
    }
}
