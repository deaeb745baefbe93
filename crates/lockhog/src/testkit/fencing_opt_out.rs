//! The check of requests that opt out of fencing ([`LockRequest::no_fencing`] and the URL's
//! `?fencing=off`): no token (unless it comes free), the same exclusion, and fenced tokens
//! that keep growing around them.
//!
//! [`LockRequest::no_fencing`]: crate::LockRequest::no_fencing

use super::checks::{hold, token_of};
use super::{assert_not_acquired, Target};
use crate::{LockGuard, Locker};

const NAME: &str = "conformance-no-fencing";

/// An opted-out acquire has no token, except where the token comes free
/// ([`Capabilities::free_fencing`](crate::Capabilities::free_fencing)), where it is still
/// greater than every earlier one; it excludes fenced and opted-out acquirers alike, and is
/// excluded by them; a fenced acquire after it gets a token greater than every earlier one.
/// A locker from the URL with `fencing=off` opts every request out the same way.
pub async fn fencing_can_be_opted_out(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let free = a.capabilities().free_fencing;
    let fenced = hold(a.lock(NAME)).await;
    let mut last = token_of(&fenced);
    // A fenced holder excludes an opted-out acquirer.
    assert_not_acquired(b.lock(NAME).no_fencing().try_acquire().await, "contended");
    fenced.release().await.unwrap();

    let unfenced = hold(a.lock(NAME).no_fencing()).await;
    check_unfenced(&unfenced, free, &mut last, "no_fencing()");
    // An opted-out holder excludes both kinds.
    assert_not_acquired(b.lock(NAME).try_acquire().await, "contended");
    assert_not_acquired(b.lock(NAME).no_fencing().try_acquire().await, "contended");
    unfenced.release().await.unwrap();

    if let Some(url) = t.url() {
        let sep = if url.contains('?') { '&' } else { '?' };
        let off = Locker::connect(&format!("{url}{sep}fencing=off"))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", crate::url::redact(url)));
        let g = hold(off.lock(NAME)).await;
        check_unfenced(&g, free, &mut last, "?fencing=off");
        assert_not_acquired(b.lock(NAME).try_acquire().await, "contended");
        g.release().await.unwrap();
    }

    let again = hold(b.lock(NAME)).await;
    assert!(
        token_of(&again) > last,
        "a fenced token {} after {last}, around opted-out acquires",
        token_of(&again)
    );
    again.release().await.unwrap();
}

/// `g`, acquired opting out: no token, or (`free`) one above `last`, which it becomes.
fn check_unfenced(g: &LockGuard, free: bool, last: &mut u64, how: &str) {
    match g.fencing_token() {
        None => assert!(!free, "{how}: no token, though the backend's token is free"),
        Some(t) => {
            assert!(
                free,
                "{how}: token {t} for an acquire that opted out of fencing"
            );
            assert!(t > *last, "{how}: token {t} after {last}");
            *last = t;
        }
    }
}
