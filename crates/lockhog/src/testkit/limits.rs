//! The checks on per-request limits: `max_hold` (the lock is given back after that long even
//! while its holder lives, and the guard is told) on every backend, and `steal_after` (a lock
//! held longer than that may be taken over) on the backends that claim it.

use std::time::Duration;

use super::checks::{bounded, hold};
use super::Target;
use crate::Error;

/// A lock taken with `max_hold` is given back once that has run out, although its guard
/// lives: the guard's `lost` completes, another locker acquires it with a greater token, and
/// the guard's release says it was not ours.
pub async fn max_hold_gives_the_lock_back(t: &Target) {
    let name = "conformance-max_hold_gives_the_lock_back";
    let (a, b) = (t.locker().await, t.locker().await);
    let limited = hold(a.lock(name).max_hold(Duration::from_millis(300))).await;
    let reason = bounded("the lost notice of max_hold", limited.lost()).await;
    assert!(reason.contains("max_hold"), "{reason}");
    assert!(limited.is_lost());
    let next = hold(b.lock(name)).await;
    assert!(next.fencing_token() > limited.fencing_token());
    assert!(
        !limited.release().await.unwrap(),
        "a release after max_hold said the lock was ours"
    );
    assert!(
        next.release().await.unwrap(),
        "the max_hold release took the next holder's lock"
    );
    match a.lock(name).max_hold(Duration::ZERO).try_acquire().await {
        Err(Error::InvalidOption { .. }) => {}
        other => panic!("expected InvalidOption for a zero max_hold, got {other:?}"),
    }
}

/// On a backend that claims `steal_after`, a request with it takes over a lock held longer
/// than that from a live, renewing holder, who is told; elsewhere the request is refused.
pub async fn steal_after_takes_over_a_live_holder(t: &Target) {
    let name = "conformance-steal_after_takes_over_a_live_holder";
    let (a, b) = (t.locker().await, t.locker().await);
    let limit = Duration::from_secs(1);
    if !a.capabilities().steal_after {
        match b.lock(name).steal_after(limit).try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("steal_after"), "{reason}")
            }
            other => panic!("expected InvalidOption without steal_after, got {other:?}"),
        }
        return;
    }
    // The holder renews every ttl/3: only its age can free the lock.
    let old = hold(a.lock(name).ttl(limit)).await;
    let new = hold(b.lock(name).ttl(limit).steal_after(limit)).await;
    assert!(new.fencing_token() > old.fencing_token());
    let reason = bounded("the lost notice of the old holder", old.lost()).await;
    assert!(!reason.is_empty());
    assert!(!old.release().await.unwrap());
    assert!(new.release().await.unwrap());
}
