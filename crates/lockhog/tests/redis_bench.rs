//! Measurements (not tests: `#[ignore]`d, run by hand, nothing asserted about speed):
//!
//! ```text
//! scripts/test --with-services -- cargo test --release -p lockhog --features redis,testkit \
//!     --test redis_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - uncontended acquire+release cycles/s, next to a raw `SET NX PX` + compare-and-delete
//!   `EVAL` loop on one connection, in the same run;
//! - handoff latency (release → the waiter holds it) with pub/sub and with polling only;
//! - 64 clients on 8 locks: throughput and the longest wait.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockhog::Locker;
use redis_support::{bounded, cycle, lockers, percentile, raw, subscribers, unique, with_option};

const RUN: Duration = Duration::from_secs(3);

/// Raw `SET NX PX` + compare-and-delete `EVAL` cycles per second on one connection.
async fn raw_rate(url: &str) -> f64 {
    let mut conn = raw(url).await;
    let script = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    );
    let key = unique("bench-raw");
    let started = Instant::now();
    let mut cycles = 0u64;
    while started.elapsed() < RUN {
        let token = format!("token-{cycles}");
        let ok: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ok.is_some());
        let deleted: i64 = script
            .key(&key)
            .arg(&token)
            .invoke_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        cycles += 1;
    }
    cycles as f64 / started.elapsed().as_secs_f64()
}

/// lockhog try_acquire + release cycles per second on one locker.
async fn lockhog_rate(url: &str) -> f64 {
    let locker = Locker::connect(url).await.unwrap();
    let name = unique("bench-lockhog");
    let started = Instant::now();
    let mut cycles = 0u64;
    while started.elapsed() < RUN {
        assert!(cycle(&locker, &name).await);
        cycles += 1;
    }
    cycles as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn uncontended_cycles() {
    let url = redis_url!();
    // Interleaved, three rounds each, so a busy moment of the machine hits both alike.
    for round in 1..=3 {
        let raw = raw_rate(&url).await;
        let ours = lockhog_rate(&url).await;
        println!(
            "uncontended round {round}: raw SET NX PX + EVAL {raw:.0} cycles/s; lockhog {ours:.0} cycles/s ({:.2} of raw)",
            ours / raw
        );
    }
}

/// How many scripts the server has run (`EVALSHA` and `EVAL` calls in `INFO commandstats`):
/// every acquire attempt is one.
async fn scripts_run(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .map(|l| {
            let calls = l.split(&[':', ','][..]).nth(1).unwrap();
            calls
                .strip_prefix("calls=")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

/// `rounds` handoffs from a holder to a waiter; `pubsub`: the waiters are woken by pub/sub
/// (else they poll).
async fn handoffs(url: &str, rounds: usize, pubsub: bool) -> Vec<Duration> {
    let [holder, waiter] = lockers(url).await;
    let mut conn = raw(url).await;
    let name = unique("bench-handoff");
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let held = holder.lock(&name).try_acquire().await.unwrap();
        let channel = held.resource().replacen(":lock:", ":released:", 1);
        // Nothing else runs scripts while the holder holds (the measurements run one at a
        // time, and its lease is renewed only after ttl/3, 10 s), so the next script is the
        // waiter's first attempt.
        let scripts_before = scripts_run(&mut conn).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let w = waiter.clone();
        let n = name.clone();
        let task = tokio::spawn(async move {
            let g = w.lock(&n).wait().await.unwrap();
            let at = Instant::now();
            let _ = tx.send(at);
            g.release().await.unwrap();
        });
        // Release only once the waiter has made its first attempt and settled into waiting:
        // the server ran its script (and, with pub/sub, it subscribed before that).
        bounded("the waiter's first attempt", async {
            while scripts_run(&mut conn).await == scripts_before
                || (pubsub && subscribers(&mut conn, &channel).await == 0)
            {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let released = Instant::now();
        held.release().await.unwrap();
        let got = rx.await.unwrap();
        task.await.unwrap();
        out.push(got - released);
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn handoff_latency() {
    let url = redis_url!();
    for (label, u, pubsub) in [
        ("pub/sub", url.clone(), true),
        ("polling", with_option(&url, "wake=poll"), false),
    ] {
        let h = handoffs(&u, 100, pubsub).await;
        println!(
            "handoff with {label}: p50 {:?}, p99 {:?}, max {:?}",
            percentile(&h, 0.5),
            percentile(&h, 0.99),
            h[h.len() - 1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn many_clients_few_locks() {
    let url = redis_url!();
    let lockers: [Locker; 8] = lockers(&url).await;
    let names: Arc<Vec<String>> = Arc::new((0..8).map(|i| unique(&format!("bench-{i}"))).collect());
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|c| {
            let locker = lockers[c % 8].clone();
            let names = names.clone();
            tokio::spawn(async move {
                let mut cycles = 0u64;
                let mut longest = Duration::ZERO;
                let mut i = c;
                while started.elapsed() < RUN {
                    i = i.wrapping_mul(31).wrapping_add(7);
                    let asked = Instant::now();
                    let g = locker.lock(&names[i % 8]).wait().await.unwrap();
                    longest = longest.max(asked.elapsed());
                    g.release().await.unwrap();
                    cycles += 1;
                }
                (cycles, longest)
            })
        })
        .collect();
    let mut total = 0;
    let mut longest = Duration::ZERO;
    for t in tasks {
        let (c, l) = t.await.unwrap();
        total += c;
        longest = longest.max(l);
    }
    println!(
        "64 clients on 8 locks: {:.0} acquisitions/s, longest wait {longest:?}",
        total as f64 / started.elapsed().as_secs_f64()
    );
}
