//! `lockhog bench`: what a lock costs on a backend, measured from this machine.
//!
//! Four figures, in three phases that share `--duration` (40 % / 30 % / 30 %):
//! - **uncontended**: acquire (one attempt) + release cycles of one lock from one task, back to
//!   back: cycles per second and the p50/p99 latency of a cycle;
//! - **handoff**: a holder releases while a waiter — another thread with its own [`Locker`](lockhog::Locker),
//!   and so its own connections — waits in `wait()`; the time from just before the release to
//!   the waiter holding the lock, both read from the one monotonic clock of this process;
//! - **contended**: `--clients` clients, each with its own `Locker`, acquiring and releasing
//!   random locks among `--locks` as fast as they can: cycles per second in all;
//! - **fairness**: over those contended acquisitions, the median and the longest wait, and how
//!   many cycles the luckiest and the unluckiest client got;
//! - **semaphore**, on backends with semaphores: [`SEMAPHORE_CLIENTS`] clients taking and
//!   giving back permits of one [`SEMAPHORE_PERMITS`]-permit semaphore, for the second half of
//!   the contended phase's time: cycles per second and waits.
//!
//! `--floor` measures the same uncontended cycle (and handoff, where the protocol can block)
//! with the backend's own commands on a bare client, without lockhog: what any lock built on
//! that protocol must pay (see [`floor`]). `scripts/bench` runs both and compares them.
//!
//! `--scale` measures how those costs grow with clients, locks and locks held (see [`scale`]);
//! `--soak` holds many locks for a long time and checks nothing leaks or is lost (see
//! [`soak`], run by `scripts/soak`).
//!
//! Progress goes to stderr only when it is a terminal; the report goes to stdout.

mod floor;
mod plan;
mod report;
mod scale;
mod scale_report;
mod soak;
mod stats;
mod workloads;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::args::BackendArgs;
use crate::exit::{Failure, Outcome, SUCCESS};
use plan::{phases, scheme_of, Progress, NAME_PREFIX};
pub use plan::{BenchArgs, BENCH_EXAMPLES};
use report::Report;
use workloads::{SEMAPHORE_CLIENTS, SEMAPHORE_PERMITS};

pub async fn run(args: BenchArgs) -> Outcome {
    let progress = Progress(std::io::stderr().is_terminal());
    let url = match &args.backend.url {
        Some(url) => url.clone(),
        None => match std::env::var(lockhog::URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => lockhog::default_url(),
        },
    };
    let mut verdict = Ok(SUCCESS);
    let (json, text) = if args.scale {
        let report = scale::run(&url, &args, &progress).await?;
        (report.to_json(), report.to_text())
    } else if args.soak {
        let report = soak::run(&url, &args).await?;
        let problems = report.problems();
        if !problems.is_empty() {
            verdict = Err(Failure::new(
                1,
                format!("soak failed: {}", problems.join("; ")),
            ));
        }
        (report.to_json(), report.to_text())
    } else {
        let report = if args.floor {
            floor::run(&url, &args, &progress).await?
        } else {
            measure(&url, &args, &progress).await?
        };
        (report.to_json(), report.to_text())
    };
    let text = if args.json { format!("{json}\n") } else { text };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(crate::exit::UNAVAILABLE, format!("cannot write: {e}")))?;
    verdict
}

async fn measure(url: &str, args: &BenchArgs, progress: &Progress) -> Result<Report, Failure> {
    let locker = crate::lock::connect(&BackendArgs {
        url: Some(url.to_string()),
    })
    .await?;
    let (u_run, h_run, c_run) = phases(args.duration);

    progress.phase("uncontended acquire + release", u_run);
    let uncontended =
        workloads::uncontended(&locker, &format!("{NAME_PREFIX}/uncontended"), u_run).await?;

    // The waiter must be settled in its wait (a first attempt, a subscription) before the
    // release, or the measure is of its start-up: a few of its cycles' worth, at least 2 ms.
    let park = uncontended
        .cycle
        .p99()
        .unwrap_or_default()
        .mul_f64(5.0)
        .clamp(Duration::from_millis(2), Duration::from_millis(20));
    progress.phase("handoff", h_run);
    let handoff =
        workloads::handoff(url, &locker, &format!("{NAME_PREFIX}/handoff"), h_run, park).await?;

    // Backends with semaphores share the contended phase's time with the semaphore phase, so
    // that the run keeps to --duration.
    let with_semaphore = locker.capabilities().semaphore;
    let (c_run, s_run) = if with_semaphore {
        (c_run / 2, c_run - c_run / 2)
    } else {
        (c_run, Duration::ZERO)
    };
    progress.phase(
        &format!("{} clients on {} locks", args.clients, args.locks),
        c_run,
    );
    let names = (0..args.locks)
        .map(|i| format!("{NAME_PREFIX}/contended-{i}"))
        .collect();
    let contended =
        workloads::contended(url, usize::from(args.clients), names, None, c_run).await?;
    let semaphore = if with_semaphore {
        progress.phase(
            &format!("{SEMAPHORE_CLIENTS} clients on a {SEMAPHORE_PERMITS}-permit semaphore"),
            s_run,
        );
        let name = vec![format!("{NAME_PREFIX}/semaphore")];
        let permits = Some(SEMAPHORE_PERMITS);
        Some(workloads::contended(url, SEMAPHORE_CLIENTS, name, permits, s_run).await?)
    } else {
        None
    };

    Ok(Report {
        mode: "lockhog",
        backend: locker.url().to_string(),
        scheme: scheme_of(url),
        duration: args.duration,
        clients: usize::from(args.clients),
        locks: usize::from(args.locks),
        commands: None,
        uncontended: Some(uncontended),
        handoff: Some(handoff),
        contended: Some(contended),
        semaphore,
        named_floor: None,
    })
}
