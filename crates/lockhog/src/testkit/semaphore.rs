//! The checks for counting semaphores ([`Locker::semaphore`](crate::Locker::semaphore)): at
//! most N holders under contention, try/wait outcomes, a count that differs from the stored
//! one refused, fencing per permit, and refusal on backends without semaphores.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::checks::bounded;
use super::{assert_not_acquired, not_applicable, Target, BOUND};
use crate::{Error, LockGuard, Locker, SemaphoreRequest};

const PERMITS: u32 = 3;
const CLIENTS: usize = 8;
const ITERATIONS: usize = 10;

async fn hold(req: SemaphoreRequest) -> LockGuard {
    match req.wait_for(BOUND).await {
        Ok(g) => g,
        Err(e) => panic!("expected a permit within {BOUND:?}: {e}"),
    }
}

/// False (with the reason printed) when the backend has no semaphores, after checking that
/// it refuses them with `InvalidOption` rather than handing out something weaker.
async fn has_semaphores(check: &str, locker: &Locker) -> bool {
    if locker.capabilities().semaphore {
        return true;
    }
    match locker
        .semaphore("conformance-sem-refused", 2)
        .try_acquire()
        .await
    {
        Err(Error::InvalidOption { .. }) => {}
        other => panic!("a backend without semaphores must refuse them, got {other:?}"),
    }
    not_applicable(check, "the backend has no semaphores (and refuses them)");
    false
}

/// CLIENTS tasks over two lockers take a permit of a PERMITS-permit semaphore, ITERATIONS
/// times each; an atomic counts the holders inside and fails above PERMITS.
pub async fn semaphore_admits_at_most_n(t: &Target) {
    let lockers = [t.locker().await, t.locker().await];
    if !has_semaphores("semaphore_admits_at_most_n", &lockers[0]).await {
        return;
    }
    let inside = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let locker = lockers[i % 2].clone();
            let inside = inside.clone();
            tokio::spawn(async move {
                for _ in 0..ITERATIONS {
                    let permit = hold(locker.semaphore("conformance-sem-n", PERMITS)).await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(
                        now <= PERMITS,
                        "{now} holders of a {PERMITS}-permit semaphore"
                    );
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert!(
                        permit.release().await.expect("release"),
                        "lost a permit inside the section"
                    );
                }
            })
        })
        .collect();
    bounded("the tasks", async {
        for task in tasks {
            task.await.expect("a task panicked");
        }
    })
    .await;
}

/// N `try_acquire`s from two lockers all succeed with N different permits; the next is
/// `Contended` and a bounded wait `TimedOut`; a waiter wakes when one permit is released and
/// takes that permit with a greater fencing token.
pub async fn semaphore_try_wait_and_release(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    if !has_semaphores("semaphore_try_wait_and_release", &a).await {
        return;
    }
    let name = "conformance-sem-try";
    let mut held = Vec::new();
    for i in 0..PERMITS {
        let locker = if i % 2 == 0 { &a } else { &b };
        held.push(
            locker
                .semaphore(name, PERMITS)
                .try_acquire()
                .await
                .unwrap_or_else(|e| panic!("permit {i} of {PERMITS} is free: {e}")),
        );
    }
    let resources: HashSet<&str> = held.iter().map(LockGuard::resource).collect();
    assert_eq!(resources.len(), held.len(), "two holders share a permit");
    assert_not_acquired(b.semaphore(name, PERMITS).try_acquire().await, "contended");
    let short = Duration::from_millis(100);
    assert_not_acquired(
        bounded("wait_for", b.semaphore(name, PERMITS).wait_for(short)).await,
        "timed out",
    );

    let waiter = tokio::spawn(async move { hold(b.semaphore(name, PERMITS)).await });
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "a waiter got a permit while all were held"
    );
    let freed = held.pop().expect("PERMITS > 0");
    let (freed_resource, freed_token) = (freed.resource().to_string(), freed.fencing_token());
    assert!(freed.release().await.unwrap());
    let woken = bounded("the waiter", waiter)
        .await
        .expect("waiter panicked");
    assert_eq!(woken.resource(), freed_resource, "the only free permit");
    assert!(
        woken.fencing_token() > freed_token,
        "a permit's fencing token did not increase"
    );
    drop(woken);
    for g in held {
        assert!(g.release().await.unwrap());
    }
}

/// A caller asking for another count under a name in use is refused with `InvalidOption`,
/// fewer and more alike, from another locker too; the stored count still works afterwards.
pub async fn semaphore_different_count_refused(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    if !has_semaphores("semaphore_different_count_refused", &a).await {
        return;
    }
    let name = "conformance-sem-count";
    let permit = hold(a.semaphore(name, PERMITS)).await;
    for other in [PERMITS - 1, PERMITS + 1] {
        for locker in [&a, &b] {
            match locker.semaphore(name, other).try_acquire().await {
                Err(Error::InvalidOption { .. }) => {}
                got => panic!("{other} permits on a {PERMITS}-permit semaphore: {got:?}"),
            }
        }
    }
    let second = hold(b.semaphore(name, PERMITS)).await;
    assert!(second.release().await.unwrap());
    assert!(permit.release().await.unwrap());
    for bad in [0, crate::backend::slots::MAX_PERMITS + 1] {
        match a.semaphore("conformance-sem-bad", bad).try_acquire().await {
            Err(Error::InvalidOption { .. }) => {}
            got => panic!("{bad} permits: {got:?}"),
        }
    }
}

/// A `lockhog hold --permits` killed with SIGKILL gives its permit back without anyone
/// cleaning up (a lease backend after its ttl), where the backend has crash release.
pub async fn semaphore_killed_holder_releases(t: &Target) {
    let a = t.locker().await;
    if !has_semaphores("semaphore_killed_holder_releases", &a).await {
        return;
    }
    let caps = a.capabilities();
    if !caps.cross_process || !caps.crash_release {
        return not_applicable(
            "semaphore_killed_holder_releases",
            "the backend has no crash release across processes",
        );
    }
    let Some(url) = t.url() else {
        return not_applicable("semaphore_killed_holder_releases", super::checks::NO_URL);
    };
    let name = "conformance-sem-killed";
    let permits = PERMITS.to_string();
    let args = ["--ttl", "1", "--permits", &permits];
    let holders: Vec<_> = (0..PERMITS)
        .map(|_| super::process::HoldProcess::start(&t.hold_bin(), url, &args, &[name]))
        .collect();
    assert_not_acquired(a.semaphore(name, PERMITS).try_acquire().await, "contended");
    let mut holders = holders.into_iter();
    let killed = holders.next().expect("PERMITS > 0");
    let (resource, token) = (killed.held[0].resource.clone(), killed.held[0].token);
    killed.kill();
    let next = hold(a.semaphore(name, PERMITS)).await;
    assert_eq!(next.resource(), resource, "the killed holder's permit");
    assert!(next.fencing_token() > token);
    assert!(next.release().await.unwrap());
    for h in holders {
        h.kill();
    }
}
