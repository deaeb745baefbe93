//! `lockhog hold [-b URL] [-n | -w SECS] [--ttl SECS] [--permits N] [--json] NAME…`
//!
//! Takes every lock, prints one flushed line per lock, then obeys stdin: `release` or end of
//! file releases them all and prints `released NAME` per lock; SIGINT and SIGTERM do the same;
//! `abandon` exits at once without releasing, which is how tests play a crashed holder.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use lockhog::LockGuard;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::cli::HoldArgs;
use crate::exit::{self, Failure, Outcome};
use crate::lock::{self, millis, Signals, Target};
use crate::output;

/// What ends a hold.
enum End {
    /// `release`, end of input, or a signal: release every lock.
    Release,
    /// `abandon`: exit without releasing.
    Abandon,
}

pub async fn run(args: HoldArgs) -> Outcome {
    let targets = Target::all(&args.names, &args.resources);
    lock::check_targets(&args.backend, &targets)?;
    for list in [&args.names, &args.resources] {
        if let Some(twice) = first_duplicate(list) {
            // Asking for a lock we already hold would wait on ourselves forever on most
            // backends.
            return Err(Failure::usage(format!("lock {twice:?} is named twice")));
        }
    }
    let mut signals = Signals::install()?;
    let locker = lock::connect(&args.backend).await?;
    let deadline = lock::deadline(&args.acquire);

    let mut guards: Vec<LockGuard> = Vec::with_capacity(targets.len());
    for target in targets {
        tokio::select! {
            acquired = lock::acquire(&locker, target, &args.acquire, deadline) => match acquired {
                Ok(guard) => guards.push(guard),
                Err(e) => {
                    // Give back what we took: all or nothing.
                    release_quietly(guards).await;
                    return Err(e.into());
                }
            },
            sig = signals.recv() => {
                release_quietly(guards).await;
                return Err(Failure::silent(exit::from_signal(sig)));
            }
        }
    }
    let held_since = Instant::now();
    for guard in &guards {
        print(&output::held(guard, args.json));
    }

    match wait_for_end(&guards, &mut signals).await {
        End::Abandon => abandon(guards),
        End::Release => release_all(guards, args.json, held_since).await,
    }
}

fn first_duplicate(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .find(|n| !seen.insert(n.as_str()))
        .map(String::as_str)
}

/// Reads stdin line by line (without blocking the runtime: tokio reads it on its blocking
/// pool) until a line or a signal says how to end.
async fn wait_for_end(guards: &[LockGuard], signals: &mut Signals) -> End {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut lost = vec![false; guards.len()];
    loop {
        line.clear();
        tokio::select! {
            read = stdin.read_until(b'\n', &mut line) => match read {
                Ok(0) => {
                    tracing::info!("end of input: releasing");
                    return End::Release;
                }
                Ok(_) => match String::from_utf8_lossy(&line).trim() {
                    "release" => return End::Release,
                    "abandon" => return End::Abandon,
                    "" => {}
                    other => exit::warn(format_args!(
                        "unknown command {other:?} on stdin (expected release or abandon)"
                    )),
                },
                Err(e) => {
                    exit::warn(format_args!("cannot read stdin ({e}): releasing"));
                    return End::Release;
                }
            },
            sig = signals.recv() => {
                tracing::info!(sig, "signal: releasing");
                return End::Release;
            }
            (i, reason) = first_lost(guards, &lost) => {
                lost[i] = true;
                exit::warn(format_args!(
                    "lock {:?} was lost: {reason}",
                    guards[i].name().as_str()
                ));
            }
        }
    }
}

/// Completes with the index and reason of the first guard not yet in `reported` that the
/// backend reports lost; never completes when there is none.
async fn first_lost(guards: &[LockGuard], reported: &[bool]) -> (usize, String) {
    type Watch<'a> = Pin<Box<dyn Future<Output = String> + 'a>>;
    let mut watches: Vec<(usize, Watch<'_>)> = guards
        .iter()
        .enumerate()
        .filter(|(i, _)| !reported[*i])
        .map(|(i, g)| (i, Box::pin(g.lost()) as Watch<'_>))
        .collect();
    poll_fn(|cx| {
        for (i, watch) in watches.iter_mut() {
            if let Poll::Ready(reason) = watch.as_mut().poll(cx) {
                return Poll::Ready((*i, reason));
            }
        }
        Poll::Pending
    })
    .await
}

/// Exits at once with status 0 without releasing anything: the guards are forgotten so that
/// no release, not even the best-effort one of Drop, runs. Locks bound to a descriptor or a
/// connection die with the process; leases stay until they expire.
fn abandon(guards: Vec<LockGuard>) -> ! {
    tracing::info!(locks = guards.len(), "abandoning without release");
    std::mem::forget(guards);
    std::process::exit(0)
}

async fn release_all(guards: Vec<LockGuard>, json: bool, held_since: Instant) -> Outcome {
    let held_ms = millis(held_since.elapsed());
    let mut failure = None;
    for guard in guards {
        let name = guard.name().as_str().to_string();
        match guard.release().await {
            Ok(ours) => {
                if !ours {
                    exit::warn(format_args!(
                        "lock {name:?} had been lost before it was released"
                    ));
                }
                tracing::info!(name, held_ms, "released");
                print(&output::released(&name, json));
            }
            Err(e) => {
                // Keep releasing the others; the backend frees this one by its own means.
                exit::warn(format_args!("cannot release lock {name:?}: {e}"));
                failure.get_or_insert(Failure::silent(exit::code_for(&e)));
            }
        }
    }
    failure.map_or(Ok(exit::SUCCESS), Err)
}

/// Releases locks taken before a failure, reporting nothing on stdout.
async fn release_quietly(guards: Vec<LockGuard>) {
    for guard in guards {
        let name = guard.name().as_str().to_string();
        if let Err(e) = guard.release().await {
            exit::warn(format_args!("cannot release lock {name:?}: {e}"));
        }
    }
}

fn print(line: &str) {
    if let Err(e) = output::emit(line) {
        // The reader went away; stdin (or a signal) still says when to release.
        tracing::warn!(err = %e, "cannot write to stdout");
    }
}
