//! The checks on attempts: a wait that runs out says how many attempts it made, and a retry
//! policy's cap on attempts ends a wait after exactly that many.

use std::time::Duration;

use super::checks::{bounded, hold};
use super::Target;
use crate::{Error, RetryPolicy};

/// A wait that runs out reports its attempts; a capped wait gives up after exactly its cap,
/// also without a bound; a capped wait acquires a free lock at its first attempt; a fair wait
/// cannot be capped.
pub async fn attempts_are_counted_and_capped(t: &Target) {
    let name = "conformance-attempts_are_counted_and_capped";
    let (a, b) = (t.locker().await, t.locker().await);
    let held = hold(a.lock(name)).await;

    match bounded(
        "wait_for",
        b.lock(name).wait_for(Duration::from_millis(200)),
    )
    .await
    {
        Err(Error::TimedOut { attempts, .. }) => assert!(attempts >= 1, "{attempts} attempts"),
        other => panic!("expected TimedOut, got {other:?}"),
    }

    let capped = RetryPolicy::default()
        .initial(Duration::from_millis(1))
        .max(Duration::from_millis(5))
        .max_attempts(3);
    // No wait bound: only the cap can end this wait.
    match bounded("a capped wait", b.lock(name).retry(capped).wait()).await {
        Err(e @ Error::TimedOut { attempts: 3, .. }) => {
            assert!(e.to_string().contains("3 attempts"), "{e}");
        }
        other => panic!("expected TimedOut after 3 attempts, got {other:?}"),
    }
    match b.lock(name).retry(capped).fair().wait().await {
        Err(Error::InvalidOption { .. }) => {}
        other => panic!("expected InvalidOption for a capped fair wait, got {other:?}"),
    }

    assert!(held.release().await.unwrap());
    let g = bounded(
        "a capped wait on a free lock",
        b.lock(name).retry(capped).wait(),
    )
    .await
    .expect("a free lock");
    assert_eq!(g.stats().attempts, 1);
    assert!(g.release().await.unwrap());
}
