//! Measurements, not tests (`#[ignore]`d; run with `cargo test --release -p lockhog
//! --features postgres --test postgres_bench -- --ignored --nocapture` through scripts/test's
//! service mode). They print numbers and assert only that the work was done.

#![cfg(feature = "postgres")]

mod postgres_support;

use std::time::{Duration, Instant};

use lockhog::backend::postgres::advisory_key;
use lockhog::Locker;
use postgres_support::{
    cycle, locker_as, lockers, percentile, raw, sessions, spawn_timed_wait, unique, unique_app,
    BOUND,
};

/// Uncontended acquire + release cycles per second from one task, on a current-thread
/// runtime (as pgbench's one client is one thread) and on a multi-thread one.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement"]
async fn uncontended_cycles_current_thread() {
    uncontended_cycles("current_thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn uncontended_cycles_multi_thread() {
    uncontended_cycles("multi_thread, 2 workers").await;
}

async fn uncontended_cycles(runtime: &str) {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("bench-cycles");
    for _ in 0..1000 {
        cycle(&locker, &name).await;
    }
    let run = Duration::from_secs(5);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < run {
        assert!(cycle(&locker, &name).await);
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("uncontended acquire+release ({runtime}): {n} cycles, {rate:.0} cycles/s");
}

/// The floor: the same two prepared statements on a plain tokio-postgres client.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement"]
async fn raw_tokio_postgres_cycles() {
    let url = server_url!();
    let c = raw(&url, "bench-raw").await;
    let lock = c
        .prepare("SELECT CASE WHEN pg_try_advisory_lock($1) THEN nextval('lockhog_fencing') END")
        .await
        .unwrap();
    let unlock = c.prepare("SELECT pg_advisory_unlock($1)").await.unwrap();
    let key = advisory_key("lockhog", &unique("bench-raw")).unwrap();
    let run = Duration::from_secs(5);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < run {
        c.query_one(&lock, &[&key]).await.unwrap();
        c.query_one(&unlock, &[&key]).await.unwrap();
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("raw tokio-postgres lock+unlock (current_thread): {rate:.0} cycles/s");
}

/// Holder releases → waiter holds: in-process (two lockers of this process) and across
/// sessions (a plain client holds, lockhog waits blocked in pg_advisory_lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn handoff_latency() {
    let url = server_url!();
    let [a, b] = lockers(&url).await;
    let psql = raw(&url, "bench-handoff").await;
    let name = unique("bench-handoff");
    let key = advisory_key("lockhog", &name).unwrap();
    let rounds = 300;

    let mut in_process = Vec::new();
    for _ in 0..rounds {
        let held = a.lock(&name).try_acquire().await.unwrap();
        let waiter = spawn_timed_wait(b.lock(&name));
        tokio::task::yield_now().await;
        let t0 = Instant::now();
        held.release().await.unwrap();
        let (t1, g) = waiter.await.unwrap();
        in_process.push(t1.saturating_duration_since(t0));
        g.release().await.unwrap();
    }

    let mut cross = Vec::new();
    for _ in 0..rounds {
        psql.execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
        let waiter = spawn_timed_wait(b.lock(&name));
        // Release only once lockhog's waiter is blocked on the server.
        let deadline = Instant::now() + BOUND;
        loop {
            let waiting: i64 = psql
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                     AND (classid::bigint << 32) | objid::bigint = $1",
                    &[&key],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the waiter never blocked");
            tokio::task::yield_now().await;
        }
        let t0 = Instant::now();
        psql.execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .unwrap();
        let (t1, g) = waiter.await.unwrap();
        cross.push(t1.saturating_duration_since(t0));
        g.release().await.unwrap();
    }
    for (what, mut v) in [("in-process", in_process), ("psql -> lockhog", cross)] {
        v.sort();
        println!(
            "handoff {what}: p50 {:?} p99 {:?} (n={})",
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.len()
        );
    }
}

/// Many locks held at once from one process: how many connections that takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn ten_thousand_locks() {
    let url = server_url!();
    let app = unique_app("bench10k");
    let locker = locker_as(&url, &app).await;
    let admin = raw(&url, "bench-admin").await;
    let base = unique("bench10k");
    let started = Instant::now();
    let mut guards = Vec::with_capacity(10_000);
    for batch in 0..100 {
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (l, n) = (locker.clone(), format!("{base}-{batch}-{i}"));
                tokio::spawn(async move { l.lock(&n).try_acquire().await })
            })
            .collect();
        for t in tasks {
            guards.push(t.await.unwrap().unwrap());
        }
    }
    let took = started.elapsed();
    let conns = sessions(&admin, &app).await;
    println!(
        "{} locks held at once on {conns} connections (acquired in {took:?})",
        guards.len()
    );
    for g in guards {
        g.release().await.unwrap();
    }
}
