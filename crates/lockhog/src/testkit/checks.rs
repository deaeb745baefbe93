//! The checks. Each takes a [`Target`] and panics with a message when the backend breaks a
//! promise. None asserts a speed: waits are bounded by [`BOUND`] only to turn a hang into a
//! failure.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout, Instant};

use super::process::HoldProcess;
use super::{assert_not_acquired, not_applicable, Target, BOUND};
use crate::{Error, LockGuard, LockRequest, LockState, Locker, MAX_NAME_BYTES};

const THREADS: usize = 4;
/// Why the checks that start `lockhog hold` skip a target made from a locker factory.
pub(super) const NO_URL: &str = "the target has no URL another process could connect to";
const ITERATIONS: u64 = 25;

pub(super) async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

pub(super) async fn hold(req: LockRequest) -> LockGuard {
    match req.wait_for(BOUND).await {
        Ok(g) => g,
        Err(e) => panic!("expected to acquire within {BOUND:?}: {e}"),
    }
}

/// Counts critical sections and fails on any overlap; the counter is deliberately updated by a
/// separate load and store, so lost updates show when exclusion breaks.
#[derive(Default)]
struct Section {
    inside: AtomicU32,
    counter: AtomicU64,
}

impl Section {
    fn enter(&self) -> u64 {
        assert_eq!(
            self.inside.fetch_add(1, Ordering::SeqCst),
            0,
            "two holders inside the critical section"
        );
        self.counter.load(Ordering::SeqCst)
    }
    fn leave(&self, seen: u64) {
        self.counter.store(seen + 1, Ordering::SeqCst);
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

/// N threads over two lockers (blocking API), M iterations each, one name.
pub async fn mutual_exclusion_threads(t: &Target) {
    let lockers = [t.locker().await, t.locker().await];
    let section = Arc::new(Section::default());
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let locker = crate::blocking::Locker::from(lockers[i % 2].clone());
            let section = section.clone();
            std::thread::spawn(move || {
                for _ in 0..ITERATIONS {
                    let guard = locker
                        .lock("conformance-threads")
                        .wait_for(BOUND)
                        .expect("acquire");
                    let seen = section.enter();
                    std::thread::yield_now();
                    section.leave(seen);
                    assert!(
                        guard.release().expect("release"),
                        "lost the lock inside the section"
                    );
                }
            })
        })
        .collect();
    bounded("the threads", async {
        for h in handles {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .unwrap()
                .expect("a thread panicked");
        }
    })
    .await;
    assert_eq!(
        section.counter.load(Ordering::SeqCst),
        THREADS as u64 * ITERATIONS
    );
}

/// N tasks over two lockers (async API), M iterations each, one name.
pub async fn mutual_exclusion_tasks(t: &Target) {
    let lockers = [t.locker().await, t.locker().await];
    let section = Arc::new(Section::default());
    let tasks: Vec<_> = (0..THREADS)
        .map(|i| {
            let locker = lockers[i % 2].clone();
            let section = section.clone();
            tokio::spawn(async move {
                for _ in 0..ITERATIONS {
                    let guard = hold(locker.lock("conformance-tasks")).await;
                    let seen = section.enter();
                    tokio::task::yield_now().await;
                    section.leave(seen);
                    assert!(guard.release().await.expect("release"));
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
    assert_eq!(
        section.counter.load(Ordering::SeqCst),
        THREADS as u64 * ITERATIONS
    );
}

/// `try_acquire` fails while another locker holds the lock, and succeeds after the release.
pub async fn try_fails_while_held(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let held = a
        .lock("conformance-try")
        .try_acquire()
        .await
        .expect("free lock");
    assert_not_acquired(b.lock("conformance-try").try_acquire().await, "contended");
    assert_not_acquired(a.lock("conformance-try").try_acquire().await, "contended");
    assert!(held.release().await.unwrap());
    let again = b
        .lock("conformance-try")
        .try_acquire()
        .await
        .expect("free after release");
    again.release().await.unwrap();
}

/// `wait_for` gives up with `TimedOut`, not before its bound.
pub async fn wait_for_gives_up_at_its_bound(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let _held = a.lock("conformance-wait-for").try_acquire().await.unwrap();
    let bound = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = bounded("wait_for", b.lock("conformance-wait-for").wait_for(bound)).await;
    let waited = started.elapsed();
    match outcome {
        Err(Error::TimedOut {
            waited: reported, ..
        }) => {
            assert!(reported >= bound, "reported {reported:?} < bound {bound:?}");
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(
        waited >= bound,
        "gave up after {waited:?}, before its bound {bound:?}"
    );
}

/// A blocked waiter acquires once the holder releases, with a greater token.
pub async fn waiter_wakes_on_release(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let first = a.lock("conformance-wake").try_acquire().await.unwrap();
    let first_token = token_of(&first);
    let waiter = tokio::spawn(async move { hold(b.lock("conformance-wake")).await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "the waiter acquired a held lock");
    first.release().await.unwrap();
    let second = bounded("the waiter", waiter)
        .await
        .expect("waiter panicked");
    assert!(token_of(&second) > first_token);
}

/// Dropping a guard releases the lock.
pub async fn release_by_drop(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let guard = a.lock("conformance-drop").try_acquire().await.unwrap();
    drop(guard);
    let again = hold(b.lock("conformance-drop")).await;
    again.release().await.unwrap();
}

/// `release` says the lock was still ours.
pub async fn release_reports_ownership(t: &Target) {
    let a = t.locker().await;
    let guard = a.lock("conformance-release").try_acquire().await.unwrap();
    assert!(!guard.is_lost());
    assert_eq!(guard.stats().attempts, 1);
    assert!(
        guard.release().await.unwrap(),
        "release said the lock was not ours"
    );
}

/// Tokens strictly increase across holders on both lockers.
pub async fn fencing_tokens_increase(t: &Target) {
    let lockers = [t.locker().await, t.locker().await];
    let mut last = 0;
    for round in 0..10 {
        let g = hold(lockers[round % 2].lock("conformance-fencing")).await;
        assert!(token_of(&g) > last, "token {} after {last}", token_of(&g));
        last = token_of(&g);
        g.release().await.unwrap();
    }
}

/// `cleanup` removes only what nobody holds, and tokens keep growing across it.
pub async fn fencing_tokens_survive_cleanup(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let first = hold(a.lock("conformance-cleanup")).await;
    let kept = hold(a.lock("conformance-cleanup-held")).await;
    let token = token_of(&first);
    first.release().await.unwrap();
    b.cleanup().await.expect("cleanup");
    assert_not_acquired(
        b.lock("conformance-cleanup-held").try_acquire().await,
        "contended",
    );
    let again = hold(b.lock("conformance-cleanup")).await;
    assert!(
        token_of(&again) > token,
        "token {} after {token} across cleanup",
        token_of(&again)
    );
    again.release().await.unwrap();
    kept.release().await.unwrap();
}

/// A lease that nobody renews (its holder abandoned it) expires, and the next holder gets a
/// greater token.
pub async fn lease_expires_when_not_renewed(t: &Target) {
    let a = t.locker().await;
    if !a.capabilities().lease {
        return not_applicable(
            "lease_expires_when_not_renewed",
            "the backend has no leases",
        );
    }
    let Some(url) = t.url() else {
        return not_applicable("lease_expires_when_not_renewed", NO_URL);
    };
    let mut holder =
        HoldProcess::start(&t.hold_bin(), url, &["--ttl", "1"], &["conformance-lease"]);
    let token = holder.held[0].token.expect("a named lock has a token");
    holder.send("abandon");
    assert!(holder.wait().success());
    let next = hold(a.lock("conformance-lease")).await;
    assert!(token_of(&next) > token);
}

/// The fencing token of a lock taken by name, which every backend gives.
pub(crate) fn token_of(guard: &LockGuard) -> u64 {
    guard
        .fencing_token()
        .expect("a lock taken by name has a fencing token")
}

fn limit_names() -> Vec<String> {
    vec![
        "x".into(),
        "y".repeat(MAX_NAME_BYTES),
        "é".repeat(MAX_NAME_BYTES / 2),
        "ключ-🔒-鍵".into(),
        r#"it's "quoted"; DROP TABLE locks; --"#.into(),
        "with\0nul".into(),
        "a b".into(),
        "a%20b".into(),
        "../../etc/passwd".into(),
        "$(touch /tmp/pwned) `id` | & > <".into(),
        "\n\t\r".into(),
    ]
}

/// Names of 1 and 1024 bytes, Unicode, quotes, NUL, path and shell syntax are all usable,
/// distinct from each other, and exclusive across lockers.
pub async fn names_at_the_limits(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let names = limit_names();
    let mut guards = Vec::new();
    for name in &names {
        // All held at once: no two of these names may map to the same resource.
        let g = a
            .lock(name)
            .try_acquire()
            .await
            .unwrap_or_else(|e| panic!("name {name:?}: {e}"));
        guards.push(g);
    }
    for name in &names {
        assert_not_acquired(b.lock(name).try_acquire().await, "contended");
    }
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    for name in &names {
        b.lock(name)
            .try_acquire()
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    }
}

/// Empty and over-long names are refused before any I/O, as `InvalidName`.
pub async fn invalid_names_are_refused(t: &Target) {
    let a = t.locker().await;
    for name in [String::new(), "z".repeat(MAX_NAME_BYTES + 1)] {
        match a.lock(&name).try_acquire().await {
            Err(Error::InvalidName { .. }) => {}
            other => panic!(
                "name of {} bytes: expected InvalidName, got {other:?}",
                name.len()
            ),
        }
        assert!(matches!(
            a.status(&[&name]).await,
            Err(Error::InvalidName { .. })
        ));
    }
}

/// Equal `Hash` values name the same lock; different ones do not.
pub async fn hashed_names(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let held = a
        .lock_hashed(&("conformance", 7u64))
        .try_acquire()
        .await
        .unwrap();
    assert_not_acquired(
        b.lock_hashed(&("conformance", 7u64)).try_acquire().await,
        "contended",
    );
    let other = b
        .lock_hashed(&("conformance", 8u64))
        .try_acquire()
        .await
        .unwrap();
    other.release().await.unwrap();
    held.release().await.unwrap();
}

/// The same name in two namespaces is two locks.
pub async fn namespaces_are_separate(t: &Target) {
    let a = t.locker().await;
    let b = t
        .locker()
        .await
        .with_namespace("conformance-other")
        .unwrap();
    let one = a.lock("conformance-ns").try_acquire().await.unwrap();
    let two = b
        .lock("conformance-ns")
        .try_acquire()
        .await
        .expect("another namespace, another lock");
    assert_ne!(one.resource(), two.resource());
    let b2 = t
        .locker()
        .await
        .with_namespace("conformance-other")
        .unwrap();
    assert_not_acquired(b2.lock("conformance-ns").try_acquire().await, "contended");
    one.release().await.unwrap();
    two.release().await.unwrap();
}

/// `with_lock` runs its body only when the lock is acquired, and releases after.
pub async fn with_lock_runs_only_when_acquired(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let ran = AtomicU32::new(0);
    let out = a
        .with_lock("conformance-with-lock", || async {
            ran.fetch_add(1, Ordering::SeqCst);
            42
        })
        .await
        .unwrap();
    assert_eq!(out, 42);
    let held = a.lock("conformance-with-lock").try_acquire().await.unwrap();
    let outcome = b
        .with_lock(b.lock("conformance-with-lock").no_wait(), || async {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .await;
    assert_not_acquired(outcome, "contended");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the body ran without the lock"
    );
    held.release().await.unwrap();
}

/// Dropping a waiting acquire at various points never leaves the lock held.
pub async fn cancelled_acquire_leaves_nothing_held(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    for round in 0..10u64 {
        let held = a.lock("conformance-cancel").try_acquire().await.unwrap();
        // The cut-off only decides where the waiting future is dropped; any point must do.
        let cut = Duration::from_millis(round * 3);
        let outcome = timeout(cut, b.lock("conformance-cancel").wait()).await;
        assert!(outcome.is_err(), "acquired a held lock");
        held.release().await.unwrap();
        hold(a.lock("conformance-cancel"))
            .await
            .release()
            .await
            .unwrap();
    }
    // Nothing may be left behind by the dropped waiters: a third locker gets the lock.
    let c = t.locker().await;
    hold(c.lock("conformance-cancel"))
        .await
        .release()
        .await
        .unwrap();
}

/// `status` says held while held and free after release.
pub async fn status_reports_held_and_free(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let name = "conformance-status";
    let g = a.lock(name).try_acquire().await.unwrap();
    let seen = b.status(&[name]).await.expect("status");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].state, LockState::Held, "{seen:?}");
    assert_eq!(seen[0].resource, g.resource());
    let listed = b.status(&[]).await.expect("status of all");
    assert!(
        listed
            .iter()
            .any(|s| s.resource == g.resource() && s.state == LockState::Held),
        "the held lock is missing from {listed:?}"
    );
    g.release().await.unwrap();
    let seen = b.status(&[name]).await.expect("status");
    assert_eq!(seen[0].state, LockState::Free, "{seen:?}");
}

/// A backend URL where nothing answers gives `Backend` errors, within the wait bound.
pub async fn unreachable_backend_errors(t: &Target) {
    let Some(url) = t.unreachable_url() else {
        return not_applicable("unreachable_backend_errors", "the backend has no server");
    };
    let outcome = bounded("an acquire on an unreachable server", async {
        match Locker::connect(url).await {
            Ok(l) => l
                .lock("conformance-unreachable")
                .wait_for(Duration::from_secs(2))
                .await
                .map(drop),
            Err(e) => Err(e),
        }
    })
    .await;
    assert!(matches!(outcome, Err(Error::Backend { .. })), "{outcome:?}");
}
