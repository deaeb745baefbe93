//! `lockhog bench --scale`: how the cost of a lock grows with the work around it — contended
//! cycles over a grid of clients × locks, and one more acquire's latency while this process
//! holds many locks.
//!
//! Each point reuses a workload of the plain bench ([`workloads::contended`],
//! [`workloads::uncontended`]); a point the backend or the machine cannot take (a server's
//! connection limit, the descriptors of the file backend, a lock table that is full) is kept
//! in the report with its error, so one wall does not hide the rest of the curve.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockhog::{LockGuard, Locker};
use tokio::task::JoinSet;

use super::plan::{BenchArgs, Progress, NAME_PREFIX};
use super::scale_report::{ContendedPoint, HeldPoint, ScaleReport};
use super::workloads::{self, BOUND};
use crate::exit::Failure;

/// Acquires (and releases) of a held set in flight at once: enough to hide a network round
/// trip, few enough not to look like a crowd of clients.
const IN_FLIGHT: usize = 64;

/// Descriptors kept free beside the held locks of the file backend (the binary's own, the
/// measuring locker's, the runtime's).
const FD_MARGIN: u64 = 256;

/// Runs every point of the grid, then every held-set size, on `url`.
pub async fn run(url: &str, args: &BenchArgs, progress: &Progress) -> Result<ScaleReport, Failure> {
    let locker = crate::lock::connect(&crate::args::BackendArgs {
        url: Some(url.to_string()),
    })
    .await?;
    let mut contended = Vec::new();
    for &locks in &args.scale_locks {
        let names: Vec<String> = (0..locks)
            .map(|i| format!("{NAME_PREFIX}/scale-{i}"))
            .collect();
        for &clients in &args.scale_clients {
            progress.phase(
                &format!("{clients} clients on {locks} locks"),
                args.duration,
            );
            let outcome = workloads::contended(
                url,
                usize::from(clients),
                names.clone(),
                None,
                args.duration,
            )
            .await;
            contended.push(ContendedPoint {
                clients: usize::from(clients),
                locks: usize::from(locks),
                outcome: outcome.map_err(message),
            });
        }
    }

    let scheme = super::plan::scheme_of(url);
    let nofile = (scheme == "file").then(raise_nofile);
    let held = held_curve(&locker, args, nofile, progress).await;
    Ok(ScaleReport {
        backend: locker.url().to_string(),
        scheme,
        duration: args.duration,
        nofile,
        contended,
        held,
    })
}

fn message(f: Failure) -> String {
    f.message
        .unwrap_or_else(|| format!("failed with status {}", f.code))
}

/// Grows one held set through the sizes asked (ascending), measuring at each; a size that
/// cannot be reached ends the curve there, and the larger sizes say why they were not tried.
async fn held_curve(
    locker: &Locker,
    args: &BenchArgs,
    nofile: Option<(u64, u64)>,
    progress: &Progress,
) -> Vec<HeldPoint> {
    let mut sizes = args.scale_held.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut held: Vec<LockGuard> = Vec::new();
    let mut points = Vec::new();
    let mut wall: Option<String> = None;
    for size in sizes {
        let size = size as usize;
        if let Some(why) = &wall {
            points.push(HeldPoint::failed(size, format!("not tried: {why}")));
            continue;
        }
        if let Some((soft, hard)) = nofile {
            if size as u64 + FD_MARGIN > soft {
                let why = format!(
                    "the file backend keeps a descriptor per held lock, and RLIMIT_NOFILE is \
                     {soft} (hard limit {hard})"
                );
                points.push(HeldPoint::failed(size, why.clone()));
                wall = Some(format!("{size} held locks failed"));
                continue;
            }
        }
        progress.phase(&format!("acquiring {size} locks to hold"), Duration::ZERO);
        let started = Instant::now();
        let from = held.len();
        let fill_limit = args.scale_fill_limit;
        if let Err(why) = acquire_many(locker, &mut held, HELD_PREFIX, from..size, fill_limit).await
        {
            points.push(HeldPoint::failed(
                size,
                format!("held {} of {size}: {why}", held.len()),
            ));
            wall = Some(format!("{size} held locks failed"));
            continue;
        }
        let fill = started.elapsed();
        progress.phase(
            &format!("one more acquire + release while holding {size}"),
            args.duration,
        );
        let name = format!("{NAME_PREFIX}/held-probe");
        let outcome = workloads::uncontended(locker, &name, args.duration).await;
        let lost = held.iter().filter(|g| g.is_lost()).count();
        points.push(HeldPoint {
            held: size,
            fill,
            lost,
            outcome: outcome.map_err(message),
        });
    }
    release_many(held).await;
    points
}

/// Acquires the locks `{prefix}{i}` for `i` in `range` into `held`, [`IN_FLIGHT`] at a time,
/// within `limit`.
pub(super) async fn acquire_many(
    locker: &Locker,
    held: &mut Vec<LockGuard>,
    prefix: &str,
    range: std::ops::Range<usize>,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let locker = Arc::new(locker.clone());
    let mut next = range.start;
    let mut tasks = JoinSet::new();
    loop {
        while next < range.end && tasks.len() < IN_FLIGHT {
            let l = locker.clone();
            let name = format!("{prefix}{next}");
            tasks.spawn(async move { l.lock(name).wait_for(BOUND).await });
            next += 1;
        }
        let Some(done) = tasks.join_next().await else {
            return Ok(());
        };
        match done {
            Ok(Ok(guard)) => held.push(guard),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => return Err(format!("an acquire task failed: {e}")),
        }
        if Instant::now() > deadline && next < range.end {
            // Those in flight finish (they are held, and released with the rest).
            while let Some(Ok(Ok(guard))) = tasks.join_next().await {
                held.push(guard);
            }
            return Err(format!(
                "acquiring them took longer than --scale-fill-limit ({} s)",
                limit.as_secs_f64()
            ));
        }
    }
}

/// The names of the held locks, before their number.
const HELD_PREFIX: &str = "lockhog-bench/held-";

/// Releases every guard, [`IN_FLIGHT`] at a time; a failed release is left to the store's
/// own expiry (the bench reports figures, not releases).
pub(super) async fn release_many(held: Vec<LockGuard>) {
    let mut tasks = JoinSet::new();
    for guard in held {
        if tasks.len() >= IN_FLIGHT {
            let _ = tasks.join_next().await;
        }
        tasks.spawn(guard.release());
    }
    while tasks.join_next().await.is_some() {}
}

/// Raises the soft RLIMIT_NOFILE to the hard one, and returns (soft, hard) as they are after.
fn raise_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}
