//! Fairness, measured (ignored: run on purpose, in release mode):
//!
//! ```text
//! cargo test --release -p lockhog --features sqlite --test fair_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! 16 clients (each its own locker) contend for one lock for a few seconds, each holding it
//! for a millisecond per turn; it prints the longest and the 99th-percentile wait, and the
//! fewest and most turns a client got, fair versus not, on `mem:` and `sqlite:`. Nothing
//! here asserts a speed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockhog::Locker;

const CLIENTS: usize = 16;
const RUN: Duration = Duration::from_secs(3);
const HOLD: Duration = Duration::from_millis(1);

async fn contend(url: &str, fair: bool) {
    let waits = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..CLIENTS {
        let locker = Locker::connect(url).await.unwrap();
        let waits = waits.clone();
        tasks.push(tokio::spawn(async move {
            let mut turns = 0u32;
            let mut mine = Vec::new();
            while started.elapsed() < RUN {
                let asked = Instant::now();
                let req = locker.lock("fairness");
                let req = if fair { req.fair() } else { req };
                let g = req.wait().await.unwrap();
                mine.push(asked.elapsed());
                // A deliberate pause: the critical section's work, which the measurement needs.
                tokio::time::sleep(HOLD).await;
                g.release().await.unwrap();
                turns += 1;
            }
            waits.lock().unwrap().extend(mine);
            turns
        }));
    }
    let mut turns = Vec::new();
    for t in tasks {
        turns.push(t.await.unwrap());
    }
    let mut waits = waits.lock().unwrap().clone();
    waits.sort();
    let p = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    println!(
        "{:<7} {:<6} {:>6} turns, per client min {:>4} max {:>4}; wait p50 {:>8.1?} p99 {:>8.1?} max {:>8.1?}",
        url.split(':').next().unwrap(),
        if fair { "fair" } else { "unfair" },
        waits.len(),
        turns.iter().min().unwrap(),
        turns.iter().max().unwrap(),
        p(0.5),
        p(0.99),
        waits.last().unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn longest_wait_16_clients_mem() {
    contend("mem:", false).await;
    contend("mem:", true).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn longest_wait_16_clients_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    for sync in ["full", "normal"] {
        let url = format!(
            "sqlite://{}/{sync}.db?synchronous={sync}",
            dir.path().display()
        );
        println!("synchronous={sync}:");
        contend(&url, false).await;
        contend(&url, true).await;
    }
}
