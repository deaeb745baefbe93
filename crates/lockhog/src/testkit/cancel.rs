//! Cancel safety at random points: acquire, release and renewal futures dropped after a random
//! number of polls, thousands of times, then a check that nothing is left held.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::{Target, BOUND};
use crate::{Error, LockGuard, LockState, Locker};

/// `LOCKHOG_CANCEL_SEED`: the seed of the random drop points (printed by every run).
pub const CANCEL_SEED_ENV: &str = "LOCKHOG_CANCEL_SEED";
/// `LOCKHOG_CANCEL_ITERATIONS`: overrides the number of rounds per backend.
pub const CANCEL_ITERATIONS_ENV: &str = "LOCKHOG_CANCEL_ITERATIONS";

/// Rounds on a backend: 1,000 where a round costs well under a millisecond or two; fewer on
/// Redlock (three nodes per step) and etcd (a lease grant, a transaction and a revoke per
/// acquire). A round stops early, with a printed note, once [`BUDGET`] is spent, but never
/// before [`MIN_ROUNDS`].
fn rounds_for(scheme: &str) -> u32 {
    match scheme {
        "etcd" | "etcds" => 200,
        "redlock" => 500,
        _ => 1000,
    }
}

/// Rounds in which a short-lease guard is dropped while its renewal runs (lease backends only):
/// each holds the lock for a random time up to [`RENEW_HOLD_MAX`], so they are few.
const RENEWAL_ROUNDS: u32 = 10;
const RENEW_TTL: Duration = Duration::from_millis(900);
const RENEW_HOLD_MAX_MS: u64 = 700;

/// The time after which the rounds stop early (the check must stay a few seconds per backend).
const BUDGET: Duration = Duration::from_secs(15);
const MIN_ROUNDS: u32 = 100;

/// The lease given to the locks the rounds take, on lease backends: longer than [`BOUND`], so a
/// lock left held by a dropped future cannot expire before the check that finds it.
const LONG_TTL: Duration = Duration::from_secs(120);

/// xorshift64*: small, seedable, enough to pick drop points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A poll count spread evenly over orders of magnitude, 0 to 4095: early drop points (the
    /// first await) as often as late ones (mid-way through a round trip or a wait).
    fn polls(&mut self) -> u32 {
        let span = 1u64 << self.below(13);
        self.below(span) as u32
    }
}

fn seed() -> u64 {
    if let Some(seed) = std::env::var(CANCEL_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Polls `fut` at most `k` times, yielding to the runtime between polls (the future's own
/// tasks — a connection, a blocking thread — keep running meanwhile), then drops it. `Some`
/// when it completed first.
pub async fn poll_then_drop<F: Future>(fut: F, k: u32) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for _ in 0..k {
        let polled = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        if let Poll::Ready(out) = polled {
            return Some(out);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// What a round does before its check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// A `try_acquire` of a free lock, dropped after k polls.
    Try,
    /// A `wait_for` of a free lock, dropped after k polls.
    WaitFree,
    /// A `wait_for` of a lock another locker holds, dropped after k polls, while the holder
    /// releases after j yields (so the drop lands before, during or after the hand-over).
    WaitHeld,
    /// `release()` of a held lock, dropped after k polls.
    Release,
    /// A guard dropped (release on Drop) after k yields.
    DropGuard,
}

const STEPS: [Step; 5] = [
    Step::Try,
    Step::WaitFree,
    Step::WaitHeld,
    Step::Release,
    Step::DropGuard,
];

/// Drops acquire futures (`try` and `wait_for`, on free and on held locks), release futures
/// and guards after a random number of polls, and on lease backends guards whose renewal is
/// running, then checks after every round that nothing is left held: another locker acquires
/// the lock within [`BOUND`] (dropped releases are asynchronous on network backends), a third
/// attempt is turned away while it holds it (no stale release or renewal deleted its lock), its
/// `release` says the lock was still its own, and `status` then shows the lock free.
///
/// The drop points come from a xorshift generator whose seed is printed; set
/// `LOCKHOG_CANCEL_SEED` to replay a run, `LOCKHOG_CANCEL_ITERATIONS` to change the number of
/// rounds (1,000 per backend, 500 on Redlock, 200 on etcd, plus 10 renewal rounds on lease
/// backends; rounds stop early, never before 100, once 15 s are spent).
pub async fn cancel_at_random_points(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    let caps = a.capabilities();
    let scheme = a.url().split(':').next().unwrap_or("").to_ascii_lowercase();
    let rounds = std::env::var(CANCEL_ITERATIONS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rounds_for(&scheme));
    let seed = seed();
    eprintln!(
        "cancel_at_random_points: {scheme}: seed {seed} ({CANCEL_SEED_ENV}={seed} replays it), \
         up to {rounds} rounds"
    );
    let mut rng = Rng::new(seed);
    let name = "conformance-cancel-random";
    let ttl = caps.lease.then_some(LONG_TTL);
    let request = |l: &Locker| match ttl {
        Some(ttl) => l.lock(name).ttl(ttl),
        None => l.lock(name),
    };
    let started = Instant::now();
    let mut counts = [0u32; STEPS.len()];
    let mut completed = 0u32;
    let mut done = 0u32;
    for round in 0..rounds {
        if round >= MIN_ROUNDS && started.elapsed() > BUDGET {
            eprintln!(
                "cancel_at_random_points: {scheme}: stopping after {round} rounds, the {BUDGET:?} \
                 budget is spent"
            );
            break;
        }
        let step = STEPS[rng.below(STEPS.len() as u64) as usize];
        let k = rng.polls();
        let context = format!("seed {seed}, round {round}, {step:?} dropped after {k} polls");
        counts[step as usize] += 1;
        match step {
            Step::Try | Step::WaitFree => {
                let fut = async {
                    match step {
                        Step::Try => request(&a).try_acquire().await,
                        _ => request(&a).wait_for(BOUND).await,
                    }
                };
                if let Some(out) = poll_then_drop(fut, k).await {
                    completed += 1;
                    let guard = out.unwrap_or_else(|e| panic!("{context}: {e}"));
                    let_go(guard, rng.below(2) == 0, &context).await;
                }
            }
            Step::WaitHeld => {
                let holder = must(request(&b).wait_for(BOUND).await, &context);
                let j = rng.polls();
                let waiter = poll_then_drop(request(&a).wait_for(BOUND), k);
                let release = async {
                    for _ in 0..j {
                        tokio::task::yield_now().await;
                    }
                    holder.release().await
                };
                let (won, released) = tokio::join!(waiter, release);
                released.unwrap_or_else(|e| panic!("{context}: holder's release: {e}"));
                if let Some(out) = won {
                    completed += 1;
                    let guard = out.unwrap_or_else(|e| panic!("{context}: {e}"));
                    let_go(guard, rng.below(2) == 0, &context).await;
                }
            }
            Step::Release => {
                let guard = must(request(&a).wait_for(BOUND).await, &context);
                if let Some(out) = poll_then_drop(guard.release(), k).await {
                    completed += 1;
                    assert!(
                        out.unwrap_or_else(|e| panic!("{context}: {e}")),
                        "{context}: release said the lock was not ours"
                    );
                }
            }
            Step::DropGuard => {
                let guard = must(request(&a).wait_for(BOUND).await, &context);
                for _ in 0..k {
                    tokio::task::yield_now().await;
                }
                drop(guard);
            }
        }
        check_free(&a, &b, name, &context).await;
        done += 1;
    }
    let mut renewals = 0;
    if caps.lease {
        // Guards on a short lease, renewed every third of it, dropped at a random moment of
        // their renewal schedule. The sleep only scatters the drop point; nothing waits on it.
        for round in 0..RENEWAL_ROUNDS {
            let held_ms = rng.below(RENEW_HOLD_MAX_MS + 1);
            let context = format!("seed {seed}, renewal round {round}, dropped after {held_ms} ms");
            let guard = must(a.lock(name).ttl(RENEW_TTL).wait_for(BOUND).await, &context);
            tokio::time::sleep(Duration::from_millis(held_ms)).await;
            let k = rng.polls();
            for _ in 0..k {
                tokio::task::yield_now().await;
            }
            drop(guard);
            check_free(&a, &b, name, &context).await;
            renewals += 1;
        }
    }
    eprintln!(
        "cancel_at_random_points: {scheme}: {done} rounds (try {}, wait on a free lock {}, \
         wait on a held lock {}, release {}, guard dropped {}; {completed} futures completed \
         before their drop point), {renewals} renewal rounds, in {:?}; seed {seed}",
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        started.elapsed()
    );
}

#[track_caller]
fn must(out: Result<LockGuard, Error>, context: &str) -> LockGuard {
    out.unwrap_or_else(|e| panic!("{context}: expected to acquire within {BOUND:?}: {e}"))
}

async fn let_go(guard: LockGuard, by_release: bool, context: &str) {
    if by_release {
        assert!(
            guard
                .release()
                .await
                .unwrap_or_else(|e| panic!("{context}: release: {e}")),
            "{context}: release said the lock was not ours"
        );
    } else {
        drop(guard);
    }
}

/// Nothing is left held: `b` acquires within the bound, `a` is turned away meanwhile, `b`'s
/// release finds the lock still its own, and status shows it free.
async fn check_free(a: &Locker, b: &Locker, name: &str, context: &str) {
    let guard =
        b.lock(name).wait_for(BOUND).await.unwrap_or_else(|e| {
            panic!("{context}: left held: another locker could not acquire: {e}")
        });
    match a.lock(name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("{context}: a try while another locker holds the lock gave {other:?}"),
    }
    assert!(
        guard
            .release()
            .await
            .unwrap_or_else(|e| panic!("{context}: release: {e}")),
        "{context}: a stale release or renewal took the next holder's lock"
    );
    let status = b
        .status(&[name])
        .await
        .unwrap_or_else(|e| panic!("{context}: status: {e}"));
    assert_eq!(
        status[0].state,
        LockState::Free,
        "{context}: status after the release: {status:?}"
    );
}
