//! Measurements for the SQLite backend (ignored: run them on purpose, in release mode):
//!
//! ```text
//! cargo test --release -p lockhog --features sqlite --test sqlite_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `cycles_single_process`: uncontended acquire + release cycles per second, with
//!   `synchronous=full` (the default: a sync per commit) and `normal`.
//! - `handoff_four_processes`: 4 processes contend for one lock; the handoff is the time from
//!   one holder's release to the next holder's acquire (wall clock, shared by the processes).
//!
//! Nothing here asserts a speed: they print what they measured.

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lockhog::Locker;
use sqlite_support::cycle;

const CHILD_ENV: &str = "LOCKHOG_SQLITE_BENCH_CHILD";
const RUN: Duration = Duration::from_secs(3);

fn wall_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn cycles_single_process() {
    for sync in ["full", "normal"] {
        cycles(sync).await;
    }
}

async fn cycles(sync: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}/bench.db?synchronous={sync}",
        dir.path().display()
    );
    let locker = Locker::connect(&url).await.unwrap();
    for _ in 0..100 {
        cycle(&locker, "warm").await;
    }
    let started = Instant::now();
    let mut cycles = 0u64;
    while started.elapsed() < RUN {
        cycle(&locker, "bench").await;
        cycles += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sqlite synchronous={sync}, single process: {cycles} acquire+release cycles in {secs:.2}s = {:.0} cycles/s ({:.0} us/cycle)",
        cycles as f64 / secs,
        secs * 1e6 / cycles as f64
    );
}

/// One contending process: prints `<token> <acquired ns> <released ns>` per cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child of handoff_four_processes"]
async fn child_worker() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let locker = Locker::connect(&url).await.unwrap();
    let started = Instant::now();
    let mut lines = String::new();
    while started.elapsed() < RUN {
        let g = locker.lock("handoff").wait().await.unwrap();
        let acquired = wall_ns();
        let token = g.fencing_token().unwrap();
        g.release().await.unwrap();
        lines.push_str(&format!("{token} {acquired} {}\n", wall_ns()));
    }
    print!("{lines}");
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn handoff_four_processes() {
    for sync in ["full", "normal"] {
        handoff(sync);
    }
}

fn handoff(sync: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}/bench.db?synchronous={sync}",
        dir.path().display()
    );
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "child_worker",
                    "--nocapture",
                    "--quiet",
                ])
                .env(CHILD_ENV, &url)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut cycles: Vec<(u64, u128, u128, usize)> = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        for line in BufReader::new(&out.stdout[..])
            .lines()
            .map_while(Result::ok)
        {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 3 {
                if let (Ok(t), Ok(a), Ok(r)) = (f[0].parse(), f[1].parse(), f[2].parse()) {
                    cycles.push((t, a, r, i));
                }
            }
        }
    }
    cycles.sort();
    let mut handoffs: Vec<f64> = cycles
        .windows(2)
        .filter(|w| w[0].3 != w[1].3)
        .map(|w| (w[1].1 as f64 - w[0].2 as f64) / 1e3)
        .collect();
    handoffs.sort_by(f64::total_cmp);
    let per: Vec<usize> = (0..4)
        .map(|i| cycles.iter().filter(|c| c.3 == i).count())
        .collect();
    println!(
        "sqlite synchronous={sync}, 4 processes: {} cycles in {RUN:?} = {:.0} cycles/s; per process {per:?}; \
         handoffs to another process: {} with p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        cycles.len(),
        cycles.len() as f64 / RUN.as_secs_f64(),
        handoffs.len(),
        percentile(&handoffs, 0.5),
        percentile(&handoffs, 0.99),
        handoffs.last().copied().unwrap_or(f64::NAN),
    );
}
