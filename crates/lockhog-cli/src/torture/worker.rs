//! A torture worker: the hidden `lockhog torture-worker` subcommand, one process per client.
//!
//! It connects to the harness's Unix socket, says `hello <id> <pid>`, and loops until told
//! `stop` (or until the harness goes away): acquire a random lock of `<names>-0 …
//! <names>-<M-1>` (from `LOCKHOG_URL`, so no password shows in a process list), then
//!
//! ```text
//! enter L T      -> ok | end       the section starts only once the harness answered;
//!                                  `end`: the run is over, the section never starts
//! write L T      -> accept|reject  the fenced resource; a refused holder leaves at once
//! write L T      -> accept|reject  a second write after a short random pause
//! exit L T       -> ok             the section ends before the release starts
//! released L T ours|lost|failed    what release() said (no answer)
//! ```
//!
//! A backend error is reported as `error <message>` and retried with a growing, bounded
//! backoff; after three in a row the worker connects afresh. Every wait is bounded: an acquire
//! waits at most two seconds before the loop looks at `stop` again, a release at most five.

use std::time::Duration;

use lockhog::{LockGuard, Locker};

use super::args::WorkerArgs;
use super::journal::Release;
use super::link::{connect, inside, Link};
use super::rng::Rng;
use crate::exit::{Outcome, SUCCESS};

/// How long one acquire waits before the loop checks for `stop`.
const ACQUIRE_BOUND: Duration = Duration::from_secs(2);
/// How long a release may take before it counts as failed.
const RELEASE_BOUND: Duration = Duration::from_secs(5);

/// Runs the worker until the harness says `stop` or goes away.
pub async fn run(args: WorkerArgs) -> Outcome {
    if let Some(lock) = args.section {
        return super::via_run::section(&args, lock).await;
    }
    let (mut link, mut stop) = connect(&args.socket).await?;
    if !link
        .send(&format!("hello {} {}", args.id, std::process::id()))
        .await
    {
        return Ok(SUCCESS);
    }
    if args.via_run {
        return super::via_run::worker(&args, link, stop).await;
    }
    let ttl = Duration::from_millis(args.ttl_ms.max(1));
    let mut rng = Rng::from_entropy();
    let mut locker: Option<Locker> = None;
    let mut errors: u32 = 0;
    while !*stop.borrow() {
        if errors > 0 {
            let backoff = Duration::from_millis((25u64 << errors.min(5)).min(1000));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => break,
            }
        }
        let current = match &locker {
            Some(l) => l.clone(),
            None => match Locker::from_env().await {
                Ok(l) => {
                    locker = Some(l.clone());
                    l
                }
                Err(e) => {
                    errors = errors.saturating_add(1);
                    link.send(&format!("error connect: {e}")).await;
                    continue;
                }
            },
        };
        let lock = rng.below(u64::from(args.locks)) as u32;
        let name = format!("{}-{lock}", args.names);
        let request = async {
            match args.permits {
                Some(n) => {
                    current
                        .semaphore(&name, n)
                        .ttl(ttl)
                        .wait_for(ACQUIRE_BOUND)
                        .await
                }
                None => current.lock(&name).ttl(ttl).wait_for(ACQUIRE_BOUND).await,
            }
        };
        let acquired = tokio::select! {
            r = request => r,
            _ = stop.changed() => break,
        };
        let guard = match acquired {
            Ok(g) => g,
            Err(e) if e.is_not_acquired() => continue,
            Err(e) => {
                errors = errors.saturating_add(1);
                if errors >= 3 {
                    locker = None;
                }
                link.send(&format!("error acquire: {e}")).await;
                continue;
            }
        };
        errors = 0;
        let lock = match args
            .permits
            .map(|n| (n, slot_of(&current, &name, n, &guard)))
        {
            None => lock,
            Some((n, Some(slot))) => lock * n + slot,
            Some((_, None)) => {
                // Journaled under a wrong slot it would look like an overlap: say so instead.
                let resource = guard.resource().to_string();
                drop(guard);
                link.send(&format!(
                    "error a permit of {name} on no known slot: {resource}"
                ))
                .await;
                continue;
            }
        };
        match section(&mut link, &mut rng, lock, guard).await {
            Some(true) => {}
            Some(false) | None => break,
        }
    }
    Ok(SUCCESS)
}

/// Which of the `permits` permits (slots) of the semaphore `name` `guard` holds: the slot
/// whose resource is the guard's.
fn slot_of(locker: &Locker, name: &str, permits: u32, guard: &LockGuard) -> Option<u32> {
    let suffix = lockhog::backend::slots::SLOT_SUFFIX;
    (0..permits).find(|i| {
        locker
            .resource(&format!("{name}{suffix}{i}"))
            .is_ok_and(|r| r == guard.resource())
    })
}

/// One critical section and the release. `Some(true)` to go on, `Some(false)` when told to
/// stop, `None` when the harness went away.
async fn section(link: &mut Link, rng: &mut Rng, lock: u32, guard: LockGuard) -> Option<bool> {
    // The library refuses a named lock without a token, so this holds.
    let token = guard
        .fencing_token()
        .expect("a lock taken by name has a fencing token");
    let go_on = inside(link, rng, lock, token).await?;
    let outcome = match tokio::time::timeout(RELEASE_BOUND, guard.release()).await {
        Ok(Ok(true)) => Release::Ours,
        Ok(Ok(false)) => Release::Lost,
        Ok(Err(_)) | Err(_) => Release::Failed,
    };
    if go_on {
        link.send(&format!("released {lock} {token} {}", outcome.word()))
            .await
            .then_some(true)
    } else {
        Some(false)
    }
}
