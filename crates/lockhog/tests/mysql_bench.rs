//! Measurements, not tests (`#[ignore]`d; run with `cargo test --release -p lockhog
//! --features mysql --test mysql_bench -- --ignored --nocapture --test-threads 1` through
//! scripts/test's service mode). They print numbers and assert only that the work was done.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::{Duration, Instant};

use lockhog::Locker;
use mysql_async::prelude::Queryable;
use mysql_support::{
    cycle, get_lock, lockers, percentile, raw, release_lock, spawn_timed_wait, unique,
    until_someone_waits,
};

const RUN: Duration = Duration::from_secs(3);

/// Uncontended acquire + release cycles per second from one task, then the floor: the same
/// two statements (`SELECT GET_LOCK(k, 0)`, `SELECT RELEASE_LOCK(k)`) prepared on one plain
/// mysql_async connection, in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn uncontended_cycles_against_raw_multi_thread() {
    uncontended_cycles_against_raw("multi_thread, 2 workers").await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement"]
async fn uncontended_cycles_against_raw_current_thread() {
    uncontended_cycles_against_raw("current_thread").await;
}

async fn uncontended_cycles_against_raw(runtime: &str) {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("bench-cycles");
    let mut conn = raw(&url).await;
    let lock = unique("bench-raw");
    // Alternating short slices, so that both loops see the same load on a shared machine.
    let slice = Duration::from_millis(250);
    let (mut ours_n, mut ours_t, mut raw_n, mut raw_t) =
        (0u64, Duration::ZERO, 0u64, Duration::ZERO);
    for _ in 0..(RUN.as_millis() * 2 / slice.as_millis()) {
        let started = Instant::now();
        while started.elapsed() < slice {
            assert!(cycle(&locker, &name).await);
            ours_n += 1;
        }
        ours_t += started.elapsed();

        let started = Instant::now();
        while started.elapsed() < slice {
            let got: Option<i64> = conn
                .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
                .await
                .unwrap();
            assert_eq!(got, Some(1));
            let freed: Option<i64> = conn
                .exec_first("SELECT RELEASE_LOCK(?)", (&lock,))
                .await
                .unwrap();
            assert_eq!(freed, Some(1));
            raw_n += 1;
        }
        raw_t += started.elapsed();
    }
    let ours = ours_n as f64 / ours_t.as_secs_f64();
    let floor = raw_n as f64 / raw_t.as_secs_f64();
    println!(
        "{runtime}: lockhog {ours:.0} cycles/s, raw mysql_async {floor:.0} cycles/s, ratio {:.2}",
        ours / floor
    );
}

/// Handoff: from the holder's release to the waiter holding. Between two lockers of one
/// process the in-process arbitration hands over; from another client, the waiter blocked
/// in `GET_LOCK` on the server is woken by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn handoff() {
    let url = server_url!();
    let [a, b] = lockers(&url).await;
    let name = unique("bench-handoff");
    let rounds = 300;

    let mut local = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let held = a.lock(&name).try_acquire().await.unwrap();
        let waiter = spawn_timed_wait(b.lock(&name));
        // A deliberate pause, in a measurement only: the waiter queues behind the holder, so
        // what is timed is a handoff rather than an acquire.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let t0 = Instant::now();
        held.release().await.unwrap();
        let (t1, g) = waiter.await.unwrap();
        local.push(t1.saturating_duration_since(t0));
        g.release().await.unwrap();
    }
    local.sort();

    let mut admin = raw(&url).await;
    let mut holder = raw(&url).await;
    let resource = a.resource(&name).unwrap();
    let mut server = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        assert_eq!(get_lock(&mut holder, &resource, 0.0).await, Some(true));
        let waiter = spawn_timed_wait(a.lock(&name));
        until_someone_waits(&mut admin).await;
        let t0 = Instant::now();
        assert_eq!(release_lock(&mut holder, &resource).await, Some(true));
        let (t1, g) = waiter.await.unwrap();
        server.push(t1.saturating_duration_since(t0));
        g.release().await.unwrap();
    }
    server.sort();
    let _: Option<u64> = admin.query_first("SELECT 1").await.unwrap();
    for (what, v) in [
        ("in-process (two lockers)", &local),
        ("from another client via the server", &server),
    ] {
        println!(
            "handoff {what}: p50 {:?}, p99 {:?}, max {:?} over {rounds}",
            percentile(v, 0.5),
            percentile(v, 0.99),
            v[v.len() - 1]
        );
    }
}

/// Many locks held at once from one process, and how many connections that took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn ten_thousand_locks() {
    let url = server_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let base = unique("bench-many");
    let started = Instant::now();
    let mut guards = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        guards.push(
            locker
                .lock(format!("{base}-{i}"))
                .try_acquire()
                .await
                .unwrap(),
        );
    }
    let took = started.elapsed();
    let mut admin = raw(&url).await;
    let mut ids = std::collections::BTreeSet::new();
    for g in guards.iter().step_by(500) {
        let id: Option<Option<u64>> = admin
            .exec_first("SELECT IS_USED_LOCK(?)", (g.resource(),))
            .await
            .unwrap();
        ids.insert(id.flatten().expect("held"));
    }
    let started = Instant::now();
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    println!(
        "10000 locks acquired in {took:?}, released in {:?}, on {} connection(s) (sampled)",
        started.elapsed(),
        ids.len()
    );
}
