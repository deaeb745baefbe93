//! What a bench run is: its options, how `--duration` splits into phases, and the progress
//! lines a person watching sees.

use std::time::Duration;

use clap::Args;

use crate::args::BackendArgs;

/// What every lock name of a bench starts with.
pub const NAME_PREFIX: &str = "lockhog-bench";

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
    #[arg(long, conflicts_with_all = ["scale", "soak"])]
    pub floor: bool,
    /// Measure how cost grows: contended cycles over a grid of clients × locks, and acquire
    /// latency while this process holds many locks; --duration is then per point
    #[arg(long, conflicts_with = "soak")]
    pub scale: bool,
    /// With --scale: the client counts of the grid
    #[arg(long, value_name = "N,..", value_delimiter = ',', default_value = "1,8,64,256",
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub scale_clients: Vec<u16>,
    /// With --scale: the lock counts of the grid
    #[arg(long, value_name = "M,..", value_delimiter = ',', default_value = "1,16,1000",
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub scale_locks: Vec<u16>,
    /// With --scale: how many locks to hold while measuring one more acquire (ascending)
    #[arg(long, value_name = "K,..", value_delimiter = ',', default_value = "1000,10000,100000",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub scale_held: Vec<u32>,
    /// With --scale: the longest the held set may take to acquire before a point is given up
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_duration)]
    pub scale_fill_limit: Duration,
    /// Hold --soak-held locks for --duration with their renewals, sampling this process's
    /// memory, descriptors and connections; fails on a lost lock or growth (scripts/soak)
    #[arg(long)]
    pub soak: bool,
    /// With --soak: the locks held
    #[arg(long, value_name = "K", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub soak_held: u32,
    /// With --soak: seconds between two samples
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_duration)]
    pub soak_sample: Duration,
}

/// `--help` text after the options.
pub const BENCH_EXAMPLES: &str = "\
Examples:
  lockhog bench -b file:///tmp/locks
  lockhog bench -b postgres://user:pw@127.0.0.1/db --duration 10 --clients 16 --locks 4
  lockhog bench -b redis://127.0.0.1:6379 --json
  lockhog bench -b redis://127.0.0.1:6379 --floor    # raw SET NX PX + EVALSHA, no lockhog

Phases (sharing --duration 40/30/30 %): uncontended acquire+release cycles; handoff from a
releasing holder to a blocked waiter on its own connections; N clients on M locks, with the
median and longest wait (on backends with semaphores, half of that share goes to 16 clients
on one 4-permit semaphore: semaphore_cycles_per_s, semaphore_median_wait_ms). With --json, one JSON object with keys uncontended_cycles_per_s,
uncontended_p50_us, uncontended_p99_us, handoff_p50_us, handoff_p99_us,
contended_cycles_per_s, median_wait_ms, max_wait_ms and more. Lock names start with
`lockhog-bench/`; do not run two benches on one backend at once.

Scaling (--scale, --duration per point, e.g. 1):
  lockhog bench -b redis://127.0.0.1:6379 --scale --duration 1 --json
  lockhog bench -b file:///tmp/locks --scale --scale-clients 1,8 --scale-locks 1,16 --scale-held 1000
  contended cycles/s and p50/p99 wait for every --scale-clients × --scale-locks point (each
  client its own locker), then the p50/p99 of one more acquire+release while this process
  holds each of --scale-held locks (acquired first, 64 at a time; a size whose set takes
  longer than --scale-fill-limit to acquire is given up). A point the backend or the machine
  cannot take (server connection limits, descriptors, lock table size) is reported with its
  error instead of failing the run. For the file backend, the soft RLIMIT_NOFILE is raised to
  the hard one, as every held lock keeps a descriptor open.

Soak (--soak, by scripts/soak): hold --soak-held locks for --duration with their renewals,
sampling resident memory, open descriptors and sockets every --soak-sample; at the end every
held lock must still be held (no lost notice, and `status` from a fresh connection says held),
resident memory may grow by at most 25 % + 16 MiB, descriptors and sockets by at most 8.";

fn parse_duration(text: &str) -> Result<Duration, String> {
    match lockhog::url::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the duration must be above zero".into()),
        Ok(d) if d > Duration::from_secs(3600) => Err("at most 3600 seconds".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Progress lines on stderr, only for a person watching.
pub struct Progress(pub bool);

impl Progress {
    /// Says on stderr which phase starts and how long it runs.
    pub fn phase(&self, what: &str, run: Duration) {
        if self.0 {
            eprintln!("lockhog bench: {what} ({:.1} s)…", run.as_secs_f64());
        }
    }
}

/// Splits the run: 40 % uncontended, 30 % handoff, 30 % contended.
pub fn phases(total: Duration) -> (Duration, Duration, Duration) {
    (total.mul_f64(0.4), total.mul_f64(0.3), total.mul_f64(0.3))
}

/// The URL's scheme, which names the backend in the report.
pub fn scheme_of(url: &str) -> String {
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
