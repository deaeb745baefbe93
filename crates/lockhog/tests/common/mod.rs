//! Helpers every backend's tests share: the server's URL from the environment (skipped with
//! the reason printed, a failure under `CI=true`), the hang guard, unique names and the small
//! pieces of the measurements. Each `*_support/mod.rs` includes this file with `#[path]` and
//! re-exports what its tests use; a test file that needs no backend helpers includes it as
//! `mod common;`.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use lockhog::{Error, LockGuard, LockRequest, LockState, Locker};

/// The hang guard for every wait: a broken backend fails instead of hanging. Never a speed.
pub const BOUND: Duration = Duration::from_secs(30);

/// What a test does when something it needs from `scripts/test` is missing: `None`, with
/// `skipped: {why}` printed, or under `CI=true` a panic `CI=true and {missing}: {why}`.
pub fn skip_or_fail<T>(missing: &str, why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {missing}: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// The URL in the environment variable `var`, which `scripts/test` sets once it has started
/// `server`; see [`skip_or_fail`] for when it is unset.
pub fn env_url(var: &str, server: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => skip_or_fail(
            "no server",
            &format!("{var} is not set: run through scripts/test, which starts {server}"),
        ),
    }
}

/// `url` with one more query option (`key=value`).
pub fn with_option(url: &str, option: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{option}")
}

/// Bounds `f` by [`BOUND`], panicking with `what` when it does not finish.
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

/// A name no other test (or earlier run) uses: `prefix-<pid>-<nanos>-<n>`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A short name no other test of a running process uses: `prefix-<pid>-<n>`, for servers that
/// keep names short (PostgreSQL's application_name keeps 63 bytes, MySQL's lock names 64).
pub fn unique_short(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `N` lockers on `url`, each with its own connections.
pub async fn lockers<const N: usize>(url: &str) -> [Locker; N] {
    let mut v = Vec::with_capacity(N);
    for _ in 0..N {
        v.push(Locker::connect(url).await.unwrap());
    }
    match v.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("{N} lockers were made"),
    }
}

/// Every locker of `lockers` tries at the same moment to take `name` over with `steal_after`
/// (and a lease of the same length): exactly one must win (a stale holder was planted), the
/// others find the winner in the way. Returns the winner.
pub async fn one_stealer_wins(lockers: &[Locker], name: &str, steal_after: Duration) -> LockGuard {
    at_most_one_stealer_wins(lockers, name, steal_after)
        .await
        .expect("0 stealers won")
}

/// [`one_stealer_wins`] where a race may also end with no winner: on Redlock the stealers
/// can split the nodes' votes so that none has a majority (each then gives its nodes back).
/// Never two winners.
pub async fn at_most_one_stealer_wins(
    lockers: &[Locker],
    name: &str,
    steal_after: Duration,
) -> Option<LockGuard> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(lockers.len()));
    let racers: Vec<_> = lockers
        .iter()
        .map(|l| {
            let (l, name, start) = (l.clone(), name.to_string(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let request = l.lock(&name).ttl(steal_after).steal_after(steal_after);
                request.try_acquire().await
            })
        })
        .collect();
    let mut won = Vec::new();
    for r in racers {
        match bounded("a stealer", r).await.unwrap() {
            Ok(g) => won.push(g),
            Err(Error::Contended { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(won.len() <= 1, "{} stealers won", won.len());
    won.pop()
}

/// One uncontended cycle: `try_acquire` then `release`, both unwrapped; returns what the
/// release said (`true`: it was still ours).
pub async fn cycle(locker: &Locker, name: &str) -> bool {
    locker
        .lock(name)
        .try_acquire()
        .await
        .unwrap()
        .release()
        .await
        .unwrap()
}

/// Spawns `req.wait_for(BOUND)`; the task returns when it got the lock, and the lock. For the
/// handoff measurements: the time from a release to the waiter holding.
pub fn spawn_timed_wait(req: LockRequest) -> tokio::task::JoinHandle<(Instant, LockGuard)> {
    tokio::spawn(async move {
        let g = req.wait_for(BOUND).await.unwrap();
        (Instant::now(), g)
    })
}

/// The `p` quantile (0 to 1) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// While another client holds the foreign `resource`: lockhog's try is contended, `status`
/// says held (under the resource's own name), and a waiter started then gets the lock once
/// `let_go` (the other client letting go) has run. Returns the waiter's guard.
pub async fn taken_after_foreign(
    locker: &Locker,
    resource: &str,
    let_go: impl Future<Output = ()>,
) -> LockGuard {
    match locker.lock_resource(resource).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while another client holds it, got {other:?}"),
    }
    let held = locker.status_resources(&[resource]).await.unwrap();
    assert_eq!(held[0].state, LockState::Held, "{held:?}");
    assert_eq!(held[0].name.as_deref(), Some(resource), "{held:?}");
    let waiter = {
        let (locker, resource) = (locker.clone(), resource.to_string());
        tokio::spawn(async move { locker.lock_resource(&resource).wait_for(BOUND).await })
    };
    let_go.await;
    let guard = bounded("the lockhog waiter", waiter)
        .await
        .unwrap()
        .expect("acquired once the other client let go");
    assert_eq!(guard.resource(), resource);
    guard
}

/// `status` says the foreign `resource` is free.
pub async fn assert_free(locker: &Locker, resource: &str) {
    let free = locker.status_resources(&[resource]).await.unwrap();
    assert_eq!(free[0].state, LockState::Free, "{free:?}");
}

/// A locker on `url` in a namespace of its own, and that namespace: what lockhog would write
/// for its own names lives under it.
pub async fn in_fresh_namespace(url: &str) -> (Locker, String) {
    let namespace = unique("res-ns");
    let url = with_option(url, &format!("namespace={namespace}"));
    (Locker::connect(&url).await.unwrap(), namespace)
}
