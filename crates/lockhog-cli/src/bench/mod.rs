//! `lockhog bench`: what a lock costs on a backend, measured from this machine.
//!
//! Four figures, in three phases that share `--duration` (40 % / 30 % / 30 %):
//! - **uncontended**: acquire (one attempt) + release cycles of one lock from one task, back to
//!   back: cycles per second and the p50/p99 latency of a cycle;
//! - **handoff**: a holder releases while a waiter — another thread with its own [`Locker`],
//!   and so its own connections — waits in `wait()`; the time from just before the release to
//!   the waiter holding the lock, both read from the one monotonic clock of this process;
//! - **contended**: `--clients` clients, each with its own `Locker`, acquiring and releasing
//!   random locks among `--locks` as fast as they can: cycles per second in all;
//! - **fairness**: over those contended acquisitions, the median and the longest wait, and how
//!   many cycles the luckiest and the unluckiest client got.
//!
//! `--floor` measures the same uncontended cycle (and handoff, where the protocol can block)
//! with the backend's own commands on a bare client, without lockhog: what any lock built on
//! that protocol must pay (see [`floor`]). `scripts/bench` runs both and compares them.
//!
//! Progress goes to stderr only when it is a terminal; the report goes to stdout.

mod floor;
mod floor_sql;
mod report;
mod stats;
mod workloads;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use crate::cli::BackendArgs;
use crate::exit::{Failure, Outcome, SUCCESS};
use report::Report;

/// `lockhog bench`'s options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Seconds for the whole run, split across the phases (fractions allowed)
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_duration)]
    pub duration: Duration,
    /// Clients of the contended phase, each with its own connections
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub clients: u16,
    /// Locks the contended clients share
    #[arg(long, value_name = "M", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub locks: u16,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Measure the backend's own lock commands on a bare client instead of lockhog (the floor)
    #[arg(long)]
    pub floor: bool,
}

pub const BENCH_EXAMPLES: &str = "\
Examples:
  lockhog bench -b file:///tmp/locks
  lockhog bench -b postgres://user:pw@127.0.0.1/db --duration 10 --clients 16 --locks 4
  lockhog bench -b redis://127.0.0.1:6379 --json
  lockhog bench -b redis://127.0.0.1:6379 --floor    # raw SET NX PX + EVALSHA, no lockhog

Phases (sharing --duration 40/30/30 %): uncontended acquire+release cycles; handoff from a
releasing holder to a blocked waiter on its own connections; N clients on M locks, with the
median and longest wait. With --json, one JSON object with keys uncontended_cycles_per_s,
uncontended_p50_us, uncontended_p99_us, handoff_p50_us, handoff_p99_us,
contended_cycles_per_s, median_wait_ms, max_wait_ms and more. Lock names start with
`lockhog-bench/`; do not run two benches on one backend at once.";

fn parse_duration(text: &str) -> Result<Duration, String> {
    match lockhog::url::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the duration must be above zero".into()),
        Ok(d) if d > Duration::from_secs(3600) => Err("at most 3600 seconds".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Progress lines on stderr, only for a person watching.
struct Progress(bool);

impl Progress {
    fn phase(&self, what: &str, run: Duration) {
        if self.0 {
            eprintln!("lockhog bench: {what} ({:.1} s)…", run.as_secs_f64());
        }
    }
}

const NAME_PREFIX: &str = "lockhog-bench";

pub async fn run(args: BenchArgs) -> Outcome {
    let progress = Progress(std::io::stderr().is_terminal());
    let url = match &args.backend.url {
        Some(url) => url.clone(),
        None => match std::env::var(lockhog::URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => lockhog::default_url(),
        },
    };
    let report = if args.floor {
        floor::run(&url, &args, &progress).await?
    } else {
        measure(&url, &args, &progress).await?
    };
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_text()
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(crate::exit::UNAVAILABLE, format!("cannot write: {e}")))?;
    Ok(SUCCESS)
}

/// Splits the run: 40 % uncontended, 30 % handoff, 30 % contended.
fn phases(total: Duration) -> (Duration, Duration, Duration) {
    (total.mul_f64(0.4), total.mul_f64(0.3), total.mul_f64(0.3))
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

    progress.phase(
        &format!("{} clients on {} locks", args.clients, args.locks),
        c_run,
    );
    let names = (0..args.locks)
        .map(|i| format!("{NAME_PREFIX}/contended-{i}"))
        .collect();
    let contended = workloads::contended(url, usize::from(args.clients), names, c_run).await?;

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
    })
}

fn scheme_of(url: &str) -> String {
    url.split_once(':').map_or("", |(s, _)| s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_share_the_duration() {
        let (u, h, c) = phases(Duration::from_secs(10));
        assert_eq!(
            (u, h, c),
            (
                Duration::from_secs(4),
                Duration::from_secs(3),
                Duration::from_secs(3)
            )
        );
        assert!(parse_duration("0").is_err());
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
    }
}
